/**
 * `frugal bench`: one run on the current machine that measures its ceilings (read bandwidth, GEMM),
 * batch-1 decode and prefill of a mamba-130m-shaped model at f32 / q8 / q4 on 1 and all threads,
 * many streams decoding together, training of the d256 model, every hot kernel against its
 * TypeScript twin, and the peers (llama.cpp, PyTorch) side by side. See types.ts for the
 * document and the plans (full ≤ 10 minutes, quick ≈ 1, tiny for tests).
 */
import { cpus } from 'node:os';
import type { MambaLM } from '../../models/mamba/model.js';
import type {
  DecodeEntry,
  MachinePoint,
  PeerEntry,
  PrefillEntry,
  Skipped,
  SpeedDoc,
  SpeedMode,
  SpeedPlan,
  StreamsEntry,
  TrainEntry,
} from './types.js';
import { PRECISIONS, speedPlan } from './types.js';
import { cpuSample, measureKernels, measureMachine, otherCpuShare, otherCpuShareNow } from './machine.js';
import { quantizeModel, weightBytes } from '../../models/quant.js';
import { TokenCounter, buildModel, decodeRate, makeWeights, prefillRate, streamsRate, trainRate } from './models.js';
import type { ModelWeights } from './models.js';
import { runLlamaPeer, runTorchPeer } from './peers.js';
import type { PeerRun } from './peers.js';

/** The run's time budget: optional measurements are skipped, and listed, once it runs short. */
export class Budget {
  private readonly t0 = performance.now();
  constructor(readonly seconds: number) {}
  get elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }
  get left(): number {
    return this.seconds - this.elapsed;
  }
  /** Whether less than `fraction` of the budget is spent. */
  before(fraction: number): boolean {
    return this.elapsed < fraction * this.seconds;
  }
}

export interface SpeedOptions {
  mode: SpeedMode;
  /** "All threads" (default os.availableParallelism()). */
  threads: number;
  /** Path of llama.cpp's llama-bench, or null. */
  llamaBench: string | null;
  /** Python with torch for the PyTorch peer, or null to skip it. */
  python: string | null;
  seed: number;
  /** Seconds the whole run aims to stay under (optional parts are skipped past it); default from the mode. */
  budgetSeconds?: number;
  command: string;
  log: (m: string) => void;
}

export interface SpeedResult {
  doc: SpeedDoc;
  tokens: number;
}

/** Measurements of the decode model at every (threads, precision). */
interface DecodeRuns {
  decode: DecodeEntry[];
  prefill: PrefillEntry[];
  streams: StreamsEntry[];
  skipped: Skipped[];
}

function decodeSection(
  plan: SpeedPlan,
  w: ModelWeights,
  machine: MachinePoint[],
  count: TokenCounter,
  budget: Budget,
  log: (m: string) => void,
  keep: (m: MambaLM) => void,
): DecodeRuns {
  const r: DecodeRuns = { decode: [], prefill: [], streams: [], skipped: [] };
  const model = plan.decodeName;
  for (const T of plan.threads) {
    const bw = (machine.find((x) => x.threads === T) as MachinePoint).bandwidth_gbs;
    for (const precision of PRECISIONS) {
      const m = buildModel(w, T);
      try {
        if (precision !== 'f32') quantizeModel(m, precision);
        const bytes = weightBytes(m);
        const tokS = decodeRate(m, plan.decodeTokens, plan.minSeconds, count);
        const bound = (bw * 1e9) / bytes;
        r.decode.push({ model, precision, threads: T, tok_s: tokS, weight_bytes_per_token: bytes, bound_fraction: tokS / bound });
        log(
          `decode: ${model} ${precision} ${T} thread${T > 1 ? 's' : ''}: ${tokS.toFixed(2)} tok/s, ` +
            `${(bytes / 1e6).toFixed(1)} MB/token, ${((100 * tokS) / bound).toFixed(0)}% of the ${bound.toFixed(1)} tok/s bandwidth bound`,
        );
        for (const L of plan.prefillLens) {
          if (precision !== 'f32' && !plan.prefillAllPrecisions.includes(L)) continue;
          if (precision !== 'f32' && L > 128 && !budget.before(0.4)) {
            r.skipped.push({
              section: 'prefill',
              what: `${precision} ${L} tokens ${T} threads`,
              reason: `the time budget (${budget.seconds} s) runs short`,
            });
            continue;
          }
          const p = prefillRate(m, L, plan.minSeconds, count);
          r.prefill.push({ model, precision, threads: T, prompt_tokens: L, tok_s: p, over_steps: p / tokS });
          log(
            `prefill: ${precision} ${T} thread${T > 1 ? 's' : ''} ${L} tokens: ${p.toFixed(1)} tok/s (${(p / tokS).toFixed(1)}× single steps)`,
          );
        }
        const top = T === plan.threads[plan.threads.length - 1];
        if (precision === 'f32' && plan.streamThreads.includes(T)) {
          if (top || budget.before(0.3)) r.streams.push(...streamsSection(plan, m, T, count, log));
          else r.skipped.push({ section: 'streams', what: `${T} threads`, reason: `the time budget (${budget.seconds} s) runs short` });
        }
        if (precision === 'f32' && T === plan.threads[0]) keep(m);
      } finally {
        m.e.dispose();
      }
    }
  }
  return r;
}

function streamsSection(plan: SpeedPlan, m: MambaLM, T: number, count: TokenCounter, log: (m: string) => void): StreamsEntry[] {
  const out: StreamsEntry[] = [];
  let one = NaN;
  for (const S of plan.streams) {
    const agg = streamsRate(m, S, Math.max(2, plan.decodeTokens / 4), plan.minSeconds, count);
    if (S === 1 || !Number.isFinite(one)) one = agg / S;
    out.push({ model: plan.decodeName, precision: 'f32', streams: S, threads: T, aggregate_tok_s: agg, over_one: agg / one });
    log(`streams: ${S} × f32 on ${T} thread${T > 1 ? 's' : ''}: ${agg.toFixed(1)} tok/s aggregate (${(agg / one).toFixed(1)}× one stream)`);
  }
  return out;
}

function trainSection(plan: SpeedPlan, machine: MachinePoint[], count: TokenCounter, log: (m: string) => void): TrainEntry[] {
  const out: TrainEntry[] = [];
  for (const T of plan.threads) {
    const t = trainRate(plan.trainModel, T, plan.trainBatch, plan.trainSeq, plan.trainSteps, plan.minSeconds, count);
    const peak = (machine.find((x) => x.threads === T) as MachinePoint).gemm_gflops * 1e9;
    const flops = 6 * t.parameters * t.tokPerSec;
    const entry: TrainEntry = {
      model: plan.trainName,
      threads: T,
      batch: plan.trainBatch,
      seq_len: plan.trainSeq,
      parameters: t.parameters,
      tok_s: t.tokPerSec,
      mfu: flops / peak,
      mfu_with_scan: (flops + t.scanFlopsPerToken * t.tokPerSec) / peak,
    };
    out.push(entry);
    log(
      `train: ${plan.trainName} ${T} thread${T > 1 ? 's' : ''}: ${t.tokPerSec.toFixed(0)} tok/s, MFU ${(100 * entry.mfu).toFixed(0)}% ` +
        `(${(100 * entry.mfu_with_scan).toFixed(0)}% with the scan) of ${(peak / 1e9).toFixed(1)} GFLOP/s`,
    );
  }
  return out;
}

/** frugal's own figure for a peer's measure, or NaN. */
function frugalFigure(run: PeerRun, doc: Pick<SpeedDoc, 'decode' | 'prefill' | 'train'>): number {
  const same = (e: { threads: number }) => e.threads === run.threads;
  if (run.measure === 'decode') return doc.decode.find((e) => same(e) && e.precision === run.precision)?.tok_s ?? NaN;
  if (run.measure === 'train') return doc.train.find(same)?.tok_s ?? NaN;
  const m = /^prefill-(\d+)$/.exec(run.measure);
  if (m) return doc.prefill.find((e) => same(e) && e.precision === run.precision && e.prompt_tokens === Number(m[1]))?.tok_s ?? NaN;
  return NaN;
}

function pairPeers(runs: PeerRun[], doc: Pick<SpeedDoc, 'decode' | 'prefill' | 'train'>, skipped: Skipped[]): PeerEntry[] {
  const out: PeerEntry[] = [];
  for (const r of runs) {
    const mine = frugalFigure(r, doc);
    if (!Number.isFinite(mine) || !(r.tok_s > 0)) {
      skipped.push({
        section: 'peers',
        what: `${r.name} ${r.measure} ${r.precision} ${r.threads} threads`,
        reason: 'no frugal figure to compare with in this run',
      });
      continue;
    }
    out.push({ ...r, frugal_tok_s: mine, ratio: mine / r.tok_s });
  }
  return out;
}

/** Run the whole benchmark; progress goes to `log`. */
export function runSpeedBench(o: SpeedOptions): SpeedResult {
  const plan = speedPlan(o.mode, o.threads);
  const budget = new Budget(o.budgetSeconds ?? plan.budgetSeconds);
  const log = o.log,
    count = new TokenCounter();
  const skipped: Skipped[] = [];
  const busyBefore = otherCpuShareNow(500);
  if (busyBefore > 0.1)
    log(`bench: warning: other processes keep ${(100 * busyBefore).toFixed(0)}% of the CPUs busy: every figure will be low`);
  const cpu0 = cpuSample();
  log(`bench: ${o.mode} run, threads ${plan.threads.join(' and ')}; decode model ${plan.decodeName}, training model ${plan.trainName}`);

  const points = measureMachine(plan.bandwidthBytes, plan.gemmSize, plan.threads, plan.minSeconds / 3, log);
  const top = points[points.length - 1];
  const machine = {
    ...top,
    cpu: cpus()[0]?.model?.trim() ?? 'unknown',
    logical_cpus: cpus().length,
    node: process.version,
    other_busy_before: busyBefore,
    other_busy_during: NaN,
    bandwidth_bytes: plan.bandwidthBytes,
    gemm_shape: plan.gemmSize,
    by_threads: points,
  };
  const kernels = measureKernels(plan.kernelTiny, plan.kernelSeconds, log);

  const weights = makeWeights(plan.decodeModel, o.seed);
  log(`bench: ${plan.decodeName}: ${[...weights.values.values()].reduce((a, v) => a + v.length, 0).toLocaleString('en-US')} parameters`);
  let llamaRuns: PeerRun[] = [];
  const peerThreads = o.mode === 'quick' ? plan.threads.slice(-1) : plan.threads; // quick: all threads only
  const keep = (m: MambaLM) => {
    // the f32 model is converted for llama.cpp while it exists
    if (o.llamaBench === null) return;
    const lr = runLlamaPeer({
      llamaBench: o.llamaBench,
      model: m,
      precisions: [...PRECISIONS],
      threads: peerThreads,
      promptTokens: plan.prefillLens[0],
      decodeTokens: plan.decodeTokens,
      repetitions: o.mode === 'full' ? 3 : 1,
      log,
    });
    llamaRuns = lr.runs;
    skipped.push(...lr.skipped);
  };
  const dec = decodeSection(plan, weights, points, count, budget, log, keep);
  skipped.push(...dec.skipped);
  if (o.llamaBench === null) skipped.push({ section: 'peers', what: 'llama.cpp', reason: 'no --llama-bench PATH given' });
  const train = trainSection(plan, points, count, log);

  let torchRuns: PeerRun[] = [];
  if (o.python === null) skipped.push({ section: 'peers', what: 'pytorch', reason: 'skipped (--no-torch)' });
  else if (budget.left < 15 && o.mode !== 'tiny')
    skipped.push({ section: 'peers', what: 'pytorch', reason: `the time budget (${budget.seconds} s) is spent` });
  else {
    const tr = runTorchPeer({ python: o.python, threads: peerThreads, mode: o.mode, budgetSeconds: Math.max(15, budget.left - 5), log });
    torchRuns = tr.runs;
    skipped.push(...tr.skipped);
  }
  const body = { decode: dec.decode, prefill: dec.prefill, train };
  const peers = pairPeers([...llamaRuns, ...torchRuns], body, skipped);
  for (const s of skipped) log(`bench: skipped ${s.section}: ${s.what}: ${s.reason}`);
  machine.other_busy_during = otherCpuShare(cpu0, cpuSample());
  if (machine.other_busy_during > 0.1)
    log(
      `bench: warning: other processes kept ${(100 * machine.other_busy_during).toFixed(0)}% of the CPUs busy during the run: its figures are low`,
    );
  const doc: SpeedDoc = {
    command: o.command,
    mode: o.mode,
    seconds: budget.elapsed,
    machine,
    ...body,
    streams: dec.streams,
    kernels,
    peers,
    skipped,
  };
  return { doc, tokens: count.tokens };
}
