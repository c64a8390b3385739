/**
 * `frugal bench`: one run on the current machine that measures its ceilings (read bandwidth, GEMM,
 * the CPU's theoretical peak), batch-1 decode and prefill of a mamba-130m-shaped model at f32 / q8
 * / q4 on 1 and all threads, many streams decoding together, training of the d256 model, every hot
 * kernel against its TypeScript twin, and the peers (llama.cpp, PyTorch) in interleaved rounds.
 * See types.ts for the document and the plans (full ≤ 10 minutes, quick ≈ 1, tiny for tests).
 */
import { cpus } from 'node:os';
import { stateBytesPerStream } from './arch.js';
import type { BenchArch, BenchModel } from './arch.js';
import type {
  DecodeEntry,
  Interleaved,
  MachinePoint,
  PeerBuilds,
  PrefillEntry,
  Skipped,
  SpeedDoc,
  SpeedMode,
  SpeedPlan,
  StreamsEntry,
  TrainEntry,
} from './types.js';
import { PRECISIONS, speedPlan } from './types.js';
import {
  BandwidthProbe,
  GemmProbe,
  GemvProbe,
  cpuSample,
  measureKernels,
  measureMachine,
  otherCpuShare,
  otherCpuShareNow,
  ratesOver,
} from './machine.js';
import { quantizeModel, weightBytes } from '../../models/quant.js';
import { TokenCounter, buildModel, decodeRate, makeWeights, prefillRate, streamsRate, trainRate } from './models.js';
import type { ModelWeights } from './models.js';
import { llamaRound, prepareLlama, probeTorch, torchRound } from './peers.js';
import type { LlamaPeer, TorchPeer } from './peers.js';
import { Comparisons, runRounds } from './compare.js';
import { cpuPeak, peakGflopsAt } from './cpu-peak.js';
import type { CpuPeak } from './cpu-peak.js';
import { boundFraction, bandwidthBound, flopsFraction, prefillFlopsPerToken, trainFlopsPerToken } from '../formulas.js';
import type { Spread } from '../formulas.js';
import { peakRssBytes, resetPeakRss, runInterleaved, steadyFlags, withPeakRss } from './steady.js';
import { measureBuilds } from './builds.js';
import type { WasmKind } from '../../kernels/backend.js';

/** The embedding table and an untied head: read by row (or at the last position only), not per prompt token. */
const TABLES = /(^|\.)(embeddings|embed_tokens)\.weight$|^lm_head\.weight$/;

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
  /** The architecture measured (default mamba: Mamba-1). */
  arch?: BenchArch;
  /** Seconds the whole run aims to stay under (optional parts are skipped past it); default from the mode. */
  budgetSeconds?: number;
  /** Kernel builds: every section runs on the first (default wasm); with more, builds.ts times them all. */
  kernels?: readonly WasmKind[];
  command: string;
  log: (m: string) => void;
}

export interface SpeedResult {
  doc: SpeedDoc;
  tokens: number;
}

/** Everything the sections share. */
interface Run {
  plan: SpeedPlan;
  mode: SpeedMode;
  machine: MachinePoint[];
  peak: CpuPeak;
  count: TokenCounter;
  budget: Budget;
  log: (m: string) => void;
  skipped: Skipped[];
  comparisons: Comparisons;
  llama: LlamaPeer | null;
  torch: TorchPeer | null;
  /** Thread counts the peers run at (quick and tiny: all threads only). */
  peerThreads: number[];
  /** The kernel build every section runs on. */
  kernels: WasmKind;
  /** Parameters of the decode model, and those of its embedding table and untied head (prefill FLOPs skip them). */
  parameters: number;
  tableParameters: number;
}

const rate = (s: Spread) => ({ tok_s: s.median, tok_s_min: s.min, tok_s_max: s.max });
/** A timed figure with the peak resident memory while it ran. */
function measured(fn: () => Spread): { s: Spread; peak_rss_bytes: number } {
  const { value, peakRss } = withPeakRss(fn);
  return { s: value, peak_rss_bytes: peakRss };
}
const plural = (T: number) => `${T} thread${T > 1 ? 's' : ''}`;
const range = (s: Spread, d = 1) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;

/** Interleaved rounds of frugal's decode and 128-token prefill against each peer at (T, precision). */
function decodePeers(r: Run, m: BenchModel, T: number, precision: (typeof PRECISIONS)[number]): void {
  if (!r.peerThreads.includes(T)) return;
  const L = r.plan.prefillLens[0],
    secs = r.plan.roundSeconds;
  const frugal = () =>
    new Map([
      ['decode', decodeRate(m, Math.max(2, r.plan.decodeTokens / 4), secs, r.count).median],
      [`prefill-${L}`, prefillRate(m, L, secs, r.count).median],
    ]);
  const canContinue = () => r.budget.before(0.8);
  const key = (name: 'llama.cpp' | 'pytorch') => (measure: string) => ({ name, measure, precision, threads: T });
  const llama = r.llama;
  if (llama?.files.has(precision)) {
    runRounds(
      {
        rounds: r.plan.peerRounds,
        canContinue,
        frugal,
        key: key('llama.cpp'),
        what: `llama.cpp ${precision} ${plural(T)}`,
        peer: () => llamaRound(llama, precision, T, L, r.plan.decodeTokens, r.mode === 'full' ? 3 : 1, r.log),
      },
      r.comparisons,
      r.skipped,
    );
  }
  const torch = r.torch;
  if (torch && precision === 'f32') {
    runRounds(
      {
        rounds: r.plan.peerRounds,
        canContinue,
        frugal,
        key: key('pytorch'),
        what: `pytorch decode and prefill ${plural(T)}`,
        peer: () => torchRound(torch, r.mode, 'decode,prefill', T, r.log),
      },
      r.comparisons,
      r.skipped,
    );
  }
}

/** Measurements of the decode model at every (threads, precision). */
interface DecodeRuns {
  decode: DecodeEntry[];
  prefill: PrefillEntry[];
  streams: StreamsEntry[];
}

function decodeSection(r: Run, w: ModelWeights): DecodeRuns {
  const out: DecodeRuns = { decode: [], prefill: [], streams: [] };
  const { plan, budget, count, log } = r,
    model = plan.decodeName;
  for (const T of plan.threads) {
    const point = r.machine.find((x) => x.threads === T) as MachinePoint,
      bw = point.bandwidth_gbs_max,
      gemm = point.gemm_gflops_max;
    for (const precision of PRECISIONS) {
      const m = buildModel(w, T, r.kernels);
      try {
        if (precision !== 'f32') quantizeModel(m, precision);
        const bytes = weightBytes(m);
        const { s, peak_rss_bytes } = measured(() => decodeRate(m, plan.decodeTokens, plan.minSeconds, count));
        const bound = bandwidthBound(bw, bytes);
        out.decode.push({
          model,
          precision,
          threads: T,
          ...rate(s),
          peak_rss_bytes,
          weight_bytes_per_token: bytes,
          bound_tok_s: bound,
          bound_fraction: boundFraction(s.median, bw, bytes),
        });
        log(
          `decode: ${model} ${precision} ${plural(T)}: ${range(s, 2)} tok/s, ${(bytes / 1e6).toFixed(1)} MB/token, ` +
            `${((100 * s.median) / bound).toFixed(0)}% of the ${bound.toFixed(1)} tok/s bandwidth bound`,
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
          const { s: p, peak_rss_bytes: rss } = measured(() => prefillRate(m, L, plan.minSeconds, count));
          const flops = prefillFlopsPerToken(r.parameters, r.tableParameters, m.config.vocabSize, plan.decodeModel.dModel, L);
          const of = flopsFraction(p.median, flops, gemm);
          out.prefill.push({
            model,
            precision,
            threads: T,
            prompt_tokens: L,
            ...rate(p),
            peak_rss_bytes: rss,
            over_steps: p.median / s.median,
            flops_per_token: flops,
            of_gemm_peak: of,
          });
          log(
            `prefill: ${precision} ${plural(T)} ${L} tokens: ${range(p)} tok/s (${(p.median / s.median).toFixed(1)}× single steps), ` +
              `${(100 * of).toFixed(0)}% of the ${gemm.toFixed(1)} GFLOP/s GEMM peak`,
          );
        }
        if (precision === 'f32' && plan.streamThreads.includes(T)) {
          const top = T === plan.threads[plan.threads.length - 1];
          if (top || budget.before(0.3)) out.streams.push(...streamsSection(plan, m, T, count, log, r.parameters, gemm));
          else r.skipped.push({ section: 'streams', what: `${T} threads`, reason: `the time budget (${budget.seconds} s) runs short` });
        }
        decodePeers(r, m, T, precision);
      } finally {
        m.e.dispose();
      }
    }
  }
  return out;
}

function streamsSection(
  plan: SpeedPlan,
  m: BenchModel,
  T: number,
  count: TokenCounter,
  log: (m: string) => void,
  parameters: number,
  gemm: number,
): StreamsEntry[] {
  const out: StreamsEntry[] = [];
  let one = NaN;
  for (const S of plan.streams) {
    const { s: agg, peak_rss_bytes } = measured(() => streamsRate(m, S, Math.max(2, plan.decodeTokens / 4), plan.minSeconds, count));
    const bound = flopsFraction(agg.median, 2 * parameters, gemm);
    if (S === 1 || !Number.isFinite(one)) one = agg.median / S;
    out.push({
      model: plan.decodeName,
      precision: 'f32',
      streams: S,
      threads: T,
      aggregate_tok_s: agg.median,
      aggregate_tok_s_min: agg.min,
      aggregate_tok_s_max: agg.max,
      over_one: agg.median / one,
      of_compute_bound: bound,
      peak_rss_bytes,
    });
    log(
      `streams: ${S} × f32 on ${plural(T)}: ${range(agg)} tok/s aggregate (${(agg.median / one).toFixed(1)}× one stream, ` +
        `${(100 * bound).toFixed(0)}% of the compute bound)`,
    );
  }
  return out;
}

function trainSection(r: Run): TrainEntry[] {
  const { plan, count, log } = r,
    out: TrainEntry[] = [];
  for (const T of plan.threads) {
    resetPeakRss();
    const t = trainRate(plan.arch, plan.trainModel, T, plan.trainBatch, plan.trainSeq, plan.trainSteps, plan.minSeconds, count, r.kernels);
    const peak_rss_bytes = peakRssBytes();
    const gemm = (r.machine.find((x) => x.threads === T) as MachinePoint).gemm_gflops_max,
      cpu = peakGflopsAt(r.peak, T);
    const f = trainFlopsPerToken(t.parameters),
      fs = trainFlopsPerToken(t.parameters, t.scanFlopsPerToken),
      tok = t.rate.median;
    const e: TrainEntry = {
      model: plan.trainName,
      threads: T,
      batch: plan.trainBatch,
      seq_len: plan.trainSeq,
      parameters: t.parameters,
      ...rate(t.rate),
      peak_rss_bytes,
      flops_per_token: f,
      flops_per_token_with_scan: fs,
      mfu: flopsFraction(tok, f, cpu),
      mfu_with_scan: flopsFraction(tok, fs, cpu),
      of_gemm_peak: flopsFraction(tok, f, gemm),
      of_gemm_peak_with_scan: flopsFraction(tok, fs, gemm),
    };
    out.push(e);
    log(
      `train: ${plan.trainName} ${plural(T)}: ${range(t.rate, 0)} tok/s, MFU ${(100 * e.mfu).toFixed(1)}% of the CPU's ${cpu.toFixed(0)} GFLOP/s peak ` +
        `(${(100 * e.mfu_with_scan).toFixed(1)}% with the scan); ${(100 * e.of_gemm_peak).toFixed(0)}% of frugal's measured GEMM peak ${gemm.toFixed(1)} GFLOP/s`,
    );
    const torch = r.torch;
    if (torch && r.peerThreads.includes(T)) {
      runRounds(
        {
          rounds: plan.peerRounds,
          canContinue: () => r.budget.before(0.9),
          what: `pytorch train ${plural(T)}`,
          frugal: () =>
            new Map([
              [
                'train',
                trainRate(plan.arch, plan.trainModel, T, plan.trainBatch, plan.trainSeq, 1, plan.roundSeconds, count, r.kernels).rate
                  .median,
              ],
            ]),
          peer: () => torchRound(torch, r.mode, 'train', T, log),
          key: (measure) => ({ name: 'pytorch', measure, precision: 'f32', threads: T }),
        },
        r.comparisons,
        r.skipped,
      );
    }
  }
  return out;
}

/** The best of `fn`'s rates over ≥ 3 calls and ≥ `seconds`: a ceiling as the machine reached it right then. */
const bestOf = (fn: () => number, seconds: number) => Math.max(...ratesOver(fn, seconds));

/**
 * The fractions of a ceiling measured again, each in alternation with its ceiling (steady.ts
 * runInterleaved): every decode figure against reads of as many bytes as it reads per token (the
 * faster of the pure read kernel and frugal's GEMV: BandwidthProbe, GemvProbe), the
 * f32 prefill of the shortest prompt and every streams figure against GEMM probes on the model's
 * own engine. A shared machine's load moves a figure and its ceiling together, so the fraction
 * holds where the start-of-run ceiling does not. Runs after every figure that reads peak memory
 * (the probe's buffer would count in theirs); past the budget q8 and q4 keep the start ceiling.
 */
function interleavedSection(r: Run, w: ModelWeights, dec: DecodeRuns): void {
  const { plan, count, log } = r,
    rounds = plan.peerRounds,
    secs = plan.roundSeconds,
    L = Math.min(...plan.prefillLens);
  const say = (what: string, x: Interleaved) =>
    log(
      `interleaved: ${what}: ${(100 * x.median).toFixed(0)}% (${(100 * x.min).toFixed(0)}–${(100 * x.max).toFixed(0)}%) of the ${x.ceiling} ` +
        `measured around each of ${x.rounds} rounds`,
    );
  for (const T of plan.threads)
    for (const precision of PRECISIONS) {
      const d = dec.decode.find((e) => e.threads === T && e.precision === precision);
      const pf =
        precision === 'f32' ? dec.prefill.find((e) => e.threads === T && e.precision === 'f32' && e.prompt_tokens === L) : undefined;
      const ss = precision === 'f32' ? dec.streams.filter((e) => e.threads === T) : [];
      if (!d && !pf && ss.length === 0) continue;
      // the f32 fractions are targets and always measured; q8 and q4 only while the budget lasts
      if (precision !== 'f32' && !r.budget.before(0.9)) {
        r.skipped.push({
          section: 'interleaved',
          what: `${precision} ${plural(T)}`,
          reason: `the time budget (${r.budget.seconds} s) runs short: these fractions use the ceilings from the start of the run`,
        });
        continue;
      }
      const m = buildModel(w, T, r.kernels);
      try {
        if (precision !== 'f32') quantizeModel(m, precision);
        if (d) {
          const bytes = d.weight_bytes_per_token,
            probe = new BandwidthProbe(bytes, T),
            gemv = new GemvProbe(bytes, T, r.kernels);
          try {
            // the bound: the faster of a pure read and frugal's own GEMV over as many bytes
            const x = runInterleaved(
              rounds,
              () => (decodeRate(m, Math.max(2, plan.decodeTokens / 4), secs, count).median * bytes) / 1e9,
              () =>
                Math.max(
                  bestOf(() => probe.pass(), secs / 20),
                  bestOf(() => gemv.pass(), secs / 20),
                ),
            );
            d.interleaved = { ceiling: 'read bandwidth', ...x };
            d.bound_fraction = x.median;
            say(`decode ${precision} ${plural(T)}`, d.interleaved);
          } finally {
            gemv.dispose();
            probe.dispose();
          }
        }
        if (!pf && ss.length === 0) continue;
        const g = new GemmProbe(m.e, plan.gemmSize),
          ceiling = () => bestOf(() => g.call(), secs / 10);
        try {
          const flops = pf?.flops_per_token;
          if (pf && flops !== undefined) {
            const x = runInterleaved(rounds, () => (prefillRate(m, L, secs, count).median * flops) / 1e9, ceiling);
            pf.interleaved = { ceiling: 'GEMM peak', ...x };
            pf.of_gemm_peak = x.median;
            say(`prefill f32 ${L} tokens ${plural(T)}`, pf.interleaved);
          }
          for (const e of ss) {
            const steps = Math.max(2, plan.decodeTokens / 4);
            const x = runInterleaved(
              rounds,
              () => (streamsRate(m, e.streams, steps, secs, count).median * 2 * r.parameters) / 1e9,
              ceiling,
            );
            e.interleaved = { ceiling: 'GEMM peak', ...x };
            e.of_compute_bound = x.median;
            say(`${e.streams} streams ${plural(T)}`, e.interleaved);
          }
        } finally {
          g.dispose();
        }
      } finally {
        m.e.dispose();
      }
    }
}

/** The llama.cpp and PyTorch peers this run can use, with the reasons for those it cannot. */
function openPeers(o: SpeedOptions, w: ModelWeights, skipped: Skipped[]): { llama: LlamaPeer | null; torch: TorchPeer | null } {
  let llama: LlamaPeer | null = null;
  // llama.cpp runs GGUF files of architecture mamba and mamba2, which frugal convert writes
  if (w.arch !== 'mamba' && w.arch !== 'mamba2') {
    const reason = `llama.cpp runs Mamba-1 and Mamba-2 (GGUF mamba, mamba2), not ${w.arch}`;
    skipped.push({ section: 'peers', what: 'llama.cpp', reason });
  } else if (o.llamaBench === null) skipped.push({ section: 'peers', what: 'llama.cpp', reason: 'no --llama-bench PATH given' });
  else {
    const m = buildModel(w, 1);
    try {
      llama = prepareLlama(o.llamaBench, m, PRECISIONS, skipped);
    } finally {
      m.e.dispose();
    }
  }
  let torch: TorchPeer | null = null;
  if (w.arch !== 'mamba') {
    const reason = `the PyTorch peer (tools/bench_torch.py) builds Mamba-1 only, not ${w.arch}`;
    skipped.push({ section: 'peers', what: 'pytorch', reason });
  } else if (o.python === null) skipped.push({ section: 'peers', what: 'pytorch', reason: 'skipped (--no-torch)' });
  else torch = probeTorch(o.python, skipped);
  return { llama, torch };
}

function stateOf(w: ModelWeights): number {
  const m = buildModel(w, 1);
  try {
    return stateBytesPerStream(m);
  } finally {
    m.e.dispose();
  }
}

/** Run the whole benchmark; progress goes to `log`. */
export function runSpeedBench(o: SpeedOptions): SpeedResult {
  const plan = speedPlan(o.mode, o.threads, o.arch ?? 'mamba');
  const budget = new Budget(o.budgetSeconds ?? plan.budgetSeconds);
  const log = o.log,
    count = new TokenCounter(),
    builds = o.kernels ?? ['wasm'],
    kernels = builds[0];
  const skipped: Skipped[] = [];
  const busyBefore = otherCpuShareNow(500);
  if (busyBefore > 0.1)
    log(`bench: warning: other processes keep ${(100 * busyBefore).toFixed(0)}% of the CPUs busy: every figure will be low`);
  const cpu0 = cpuSample();
  log(
    `bench: ${o.mode} run, threads ${plan.threads.join(' and ')}; decode model ${plan.decodeName}, training model ${plan.trainName}; kernels ${kernels}`,
  );
  const peak = cpuPeak();
  log(
    `machine: CPU peak ${peak.gflops.toFixed(0)} GFLOP/s float32 = ${peak.cores} cores × ${peak.ghz.toFixed(2)} GHz × ${peak.flops_per_cycle} FLOP/cycle; ` +
      `detected: ${peak.detected.join('; ')}; assumed: ${peak.assumed.join('; ')}`,
  );

  const points = measureMachine(plan.bandwidthBytes, plan.gemmSize, plan.threads, plan.minSeconds / 3, log, kernels);
  const top = points[points.length - 1];
  const machine = {
    ...top,
    cpu: cpus()[0]?.model?.trim() ?? 'unknown',
    isa: peak.isa,
    logical_cpus: cpus().length,
    node: process.version,
    v8: process.versions.v8,
    cpu_peak: peak,
    other_busy_before: busyBefore,
    other_busy_during: NaN,
    bandwidth_bytes: plan.bandwidthBytes,
    gemm_shape: plan.gemmSize,
    by_threads: points,
    after: [] as MachinePoint[],
    rss_method: resetPeakRss() ? ('per-figure' as const) : ('process-peak' as const),
  };
  const kernelTimes = measureKernels(plan.kernelTiny, plan.kernelSeconds, log, kernels);

  const weights = makeWeights(plan.arch, plan.decodeModel, o.seed);
  const stateBytes = stateOf(weights);
  log(
    `bench: ${plan.arch} ${plan.decodeName}: ${[...weights.values.values()].reduce((a, v) => a + v.length, 0).toLocaleString('en-US')} parameters, ` +
      `${(stateBytes / 1024).toFixed(0)} KiB of state per stream`,
  );
  const { llama, torch } = openPeers(o, weights, skipped);
  let parameters = 0,
    tableParameters = 0;
  for (const [name, v] of weights.values) {
    parameters += v.length;
    if (TABLES.test(name)) tableParameters += v.length;
  }
  const run: Run = {
    plan,
    mode: o.mode,
    machine: points,
    peak,
    count,
    budget,
    log,
    skipped,
    comparisons: new Comparisons(),
    llama,
    torch,
    peerThreads: o.mode === 'full' ? plan.threads : plan.threads.slice(-1),
    kernels,
    parameters,
    tableParameters,
  };
  let dec: DecodeRuns, train: TrainEntry[];
  try {
    dec = decodeSection(run, weights);
    train = trainSection(run);
  } finally {
    llama?.dispose();
  }
  const buildEntries = builds.length > 1 ? measureBuilds(builds, plan, weights, count, log) : undefined;
  interleavedSection(run, weights, dec);
  const peers = run.comparisons.entries((T) => peakGflopsAt(peak, T));
  const peerBuilds: PeerBuilds = {};
  if (llama) peerBuilds.llama_cpp = llama.build;
  if (torch) peerBuilds.pytorch = torch.build;
  for (const s of skipped) log(`bench: skipped ${s.section}: ${s.what}: ${s.reason}`);
  log('bench: the machine ceilings again, at the end of the run');
  const after = measureMachine(plan.bandwidthBytes, plan.gemmSize, plan.threads, plan.minSeconds / 3, log, kernels);
  machine.after = after;
  machine.other_busy_during = otherCpuShare(cpu0, cpuSample());
  if (machine.other_busy_during > 0.1)
    log(
      `bench: warning: other processes kept ${(100 * machine.other_busy_during).toFixed(0)}% of the CPUs busy during the run: its figures are low`,
    );
  const doc: SpeedDoc = {
    command: o.command,
    mode: o.mode,
    arch: plan.arch,
    ...(plan.decodeModel.layerTypes ? { layer_types: [...plan.decodeModel.layerTypes] } : {}),
    state_bytes_per_stream: stateBytes,
    seconds: budget.elapsed,
    machine,
    decode: dec.decode,
    prefill: dec.prefill,
    train,
    streams: dec.streams,
    kernels: kernelTimes,
    kernel_build: kernels,
    ...(buildEntries ? { builds: buildEntries } : {}),
    peers,
    peer_builds: peerBuilds,
    skipped,
  };
  doc.flags = steadyFlags(doc);
  for (const f of doc.flags) log(`bench: flag ${f.kind}: ${f.figure}: ${f.detail}`);
  return { doc, tokens: count.tokens };
}
