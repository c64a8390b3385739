import { Engine } from '../../ops/index.js';
import type { KernelKind } from '../../kernels/backend.js';
import { Rng } from '../../io/rng.js';
import { argmax } from '../../infer/sample.js';
import { MambaLM } from '../../models/mamba/model.js';
import { Mamba2LM } from '../../models/mamba2/model.js';
import { convDim } from '../../models/mamba2/config.js';
import { TransformerLM } from '../../models/transformer/model.js';
import type { ModelState, TrainableModel } from '../../models/types.js';
import { PROFILE_IDS, analyticEstimate, getProfile, startEnergy, wattsPerCore } from '../../energy/index.js';
import type { CorePower, HardwareProfile, WorkCount } from '../../energy/index.js';
import { kvBytesPerToken, mamba2DecodeWork, mambaDecodeWork, transformerDecodeWork } from './cost.js';
import { studyPair } from './models.js';
import { median, spread } from '../formulas.js';

/**
 * `frugal bench scaling`: for each architecture, one stream grows from minContext to maxContext
 * tokens by real chunked prefills (prefill continues from the state it leaves), and at every power
 * of two it decodes a handful of tokens greedily from that state, recording the per-token decode
 * latency, the memory the state holds (recurrent state vs KV cache) and the energy per token.
 * The decoded tokens stay in the context; the next prefill continues to the next power of two.
 *
 * Budgets: each architecture gets an equal share of the time still left when it starts, and stops
 * before a context whose projected cost (prefill fitted as a·n + b·n², decode as growing up to 2.5×
 * per doubling) would overrun it, or whose state would exceed the memory budget. The report says
 * where and why each one stopped.
 */
export const ARCHS = ['mamba', 'transformer', 'mamba2'] as const;
export type StudyArch = (typeof ARCHS)[number];

export interface ScalingOptions {
  archs: StudyArch[];
  minContext: number; // a power of two
  maxContext: number; // a power of two
  decodeTokens: number; // timed decode steps per burst; DECODE_BURSTS bursts per point, after one untimed step
  prefillChunk: number; // tokens per prefill call
  budgetSeconds: number; // whole study
  maxStateBytes: number; // memory budget for one stream's state / KV cache
  tiny: boolean; // tiny models (tests)
  kernels: KernelKind;
  threads: number;
  seed: number;
  tdp?: number;
}

export interface PointEnergy {
  /** J/token by estimation method ('cpu-time', 'analytic:<profile>'): all estimates. */
  estimated: Record<string, number>;
  /** Measured J/token when the machine has counters, else null. */
  measured: { jPerToken: number; method: string; scope: string } | null;
}

export interface ScalingPoint {
  context: number; // tokens in the state when decoding starts
  decodeMsPerToken: number; // the median step of all bursts, with the fastest and slowest step beside it
  decodeMsPerTokenMin: number;
  decodeMsPerTokenMax: number;
  decodeMsPerTokenMean: number;
  decodeCpuMsPerToken: number; // median CPU time of this process per step: robust to other processes sharing the cores
  stateBytes: number; // bytes the stream's state holds (allocated)
  prefillSeconds: number; // prefill time to reach this context (cumulative, decode steps excluded)
  prefillTokensPerSecond: number;
  energy: PointEnergy;
}

export interface StopInfo {
  reason: 'completed' | 'time' | 'memory';
  lastContext: number | null;
  nextContext: number | null;
  detail: string;
}

export interface ArchResult {
  arch: StudyArch;
  parameters: number;
  hfConfig: Record<string, unknown>;
  points: ScalingPoint[];
  stopped: StopInfo;
  seconds: number;
  tokens: number; // prefill + decode tokens processed
}

/**
 * Seconds the next doubling (n -> 2n) is expected to take, from the cumulative prefill times at the
 * last two contexts (n/2, T1) and (n, T2) fitted as T(n) = a·n + b·n² (a, b ≥ 0), plus the last
 * point's decode time grown by the observed ratio (clamped to [1, 2.5]).
 */
export function projectNextSeconds(prefill: { context: number; seconds: number }[], decode: number[]): number {
  const p2 = prefill.at(-1),
    p1 = prefill.at(-2);
  if (!p2) return 0;
  let a: number, b: number;
  if (!p1) {
    a = p2.seconds / p2.context;
    b = 0;
  } else {
    const n1 = p1.context,
      n2 = p2.context;
    b = (p2.seconds - (n2 / n1) * p1.seconds) / (n2 * n2 - n2 * n1);
    a = (p1.seconds - b * n1 * n1) / n1;
    if (b < 0) {
      b = 0;
      a = p2.seconds / n2;
    }
    if (a < 0) {
      a = 0;
      b = p2.seconds / (n2 * n2);
    }
  }
  const n = p2.context,
    next = 2 * n;
  const prefillNext = a * (next - n) + b * (next * next - n * n);
  const d2 = decode.at(-1) ?? 0,
    d1 = decode.at(-2);
  const growth = d1 && d1 > 0 ? Math.min(2.5, Math.max(1, d2 / d1)) : 2;
  return prefillNext + d2 * growth;
}

/** Milliseconds of decode steps run before any measurement (JIT warm-up). */
const WARMUP_MS = 1000;
/** Decode bursts per point and the pause between them: the reported latency is the median step of all bursts. */
export const DECODE_BURSTS = 3;
const BURST_PAUSE_MS = 20;

function mib(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}
function disposeState(state: ModelState): void {
  for (const t of state.tensors.values()) t.dispose();
}
function stateBytes(state: ModelState): number {
  let n = 0;
  for (const t of state.tensors.values()) n += t.byteLength;
  return n;
}

interface ArchSetup {
  model: TrainableModel;
  engine: Engine;
  work: (context: number) => WorkCount;
  bytesAt: (tokens: number) => number;
}

function setup(arch: StudyArch, o: ScalingOptions): ArchSetup {
  const pair = studyPair(o.tiny),
    e = new Engine({ kernels: o.kernels, threads: o.threads }),
    rng = Rng.fromSeed(o.seed);
  if (arch === 'mamba') {
    const m = new MambaLM(e, pair.mamba).init(rng);
    const fixed = pair.mamba.nLayer * pair.mamba.dInner * (pair.mamba.dConv + pair.mamba.dState) * 4;
    return { model: m, engine: e, work: () => mambaDecodeWork(pair.mamba, m.parameterCount), bytesAt: () => fixed };
  }
  if (arch === 'mamba2') {
    const c = pair.mamba2,
      m = new Mamba2LM(e, c).init(rng);
    const fixed = c.nLayer * (convDim(c) * c.dConv + c.dInner * c.dState) * 4;
    return { model: m, engine: e, work: () => mamba2DecodeWork(c, m.parameterCount), bytesAt: () => fixed };
  }
  const m = new TransformerLM(e, pair.transformer).init(rng);
  return {
    model: m,
    engine: e,
    work: (n) => transformerDecodeWork(pair.transformer, m.parameterCount, n),
    bytesAt: (tokens) => kvBytesPerToken(pair.transformer) * tokens,
  };
}

interface Burst {
  times: number[];
  cpu: number[];
}

/**
 * DECODE_BURSTS bursts of `perBurst` greedy steps, a short pause apart: wall and CPU milliseconds
 * of every step, and the process's CPU seconds over all of them (every thread: GC included).
 */
function decodeBursts(
  model: TrainableModel,
  state: ModelState,
  logits: Float32Array<ArrayBufferLike>,
  perBurst: number,
): { logits: Float32Array<ArrayBufferLike>; bursts: Burst[]; cpuSeconds: number } {
  const c0 = process.cpuUsage(),
    bursts: Burst[] = [];
  for (let r = 0; r < DECODE_BURSTS; r++) {
    if (r > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BURST_PAUSE_MS);
    const b: Burst = { times: [], cpu: [] };
    for (let i = 0; i < perBurst; i++) {
      const u0 = process.cpuUsage(),
        s0 = performance.now();
      logits = model.step(Int32Array.of(argmax(logits)), state);
      b.times.push(performance.now() - s0);
      const u = process.cpuUsage(u0);
      b.cpu.push((u.user + u.system) / 1000);
    }
    bursts.push(b);
  }
  const cu = process.cpuUsage(c0);
  return { logits, bursts, cpuSeconds: (cu.user + cu.system) / 1e6 };
}

/** Run the study for one architecture until maxContext or a budget stops it. */
export function runArch(
  arch: StudyArch,
  o: ScalingOptions,
  deadlineMs: number,
  power: CorePower,
  measured: boolean,
  log: (msg: string) => void = () => {},
): ArchResult {
  const t0 = performance.now();
  const { model, engine, work, bytesAt } = setup(arch, o);
  const V = model.config.vocabSize,
    d = o.decodeTokens * DECODE_BURSTS,
    rng = Rng.fromSeed(o.seed + 17);
  const nextIds = (n: number) => Int32Array.from({ length: n }, () => rng.int(V));
  // warm-up on a throwaway state: let the JIT compile and optimise the prefill and step paths
  // (two prefills, then steps for WARMUP_MS) before anything is timed
  const warm = model.createState(1),
    w = Math.min(256, o.minContext);
  let wl: Float32Array<ArrayBufferLike> = model.prefill(nextIds(w), w, warm);
  wl = model.prefill(nextIds(w), w, warm);
  for (const end = performance.now() + (o.tiny ? 50 : WARMUP_MS); performance.now() < end; )
    wl = model.step(Int32Array.of(argmax(wl)), warm);
  disposeState(warm);

  let warned = false; // a decode burst is short: say once, not at every context, why it is not measured
  const warnOnce = (m: string) => {
    if (!warned) log(`bench ${arch}: ${m}`);
    warned = true;
  };
  const state = model.createState(1);
  const points: ScalingPoint[] = [],
    cumulative: { context: number; seconds: number }[] = [],
    decodeSeconds: number[] = [];
  let prefillTotal = 0,
    tokens = 0;
  let logits: Float32Array<ArrayBufferLike> = new Float32Array(V);
  let stopped: StopInfo = { reason: 'completed', lastContext: null, nextContext: null, detail: `reached ${o.maxContext} tokens` };
  for (let n = o.minContext; n <= o.maxContext; n *= 2) {
    const last = points.at(-1)?.context ?? null;
    const need = bytesAt(n + d + 1);
    if (need > o.maxStateBytes) {
      stopped = {
        reason: 'memory',
        lastContext: last,
        nextContext: n,
        detail: `the state at ${n} tokens would hold ${mib(need)}, over the ${mib(o.maxStateBytes)} memory budget`,
      };
      break;
    }
    const projected = projectNextSeconds(cumulative, decodeSeconds),
      left = (deadlineMs - performance.now()) / 1000;
    if (points.length > 0 && projected > left) {
      stopped = {
        reason: 'time',
        lastContext: last,
        nextContext: n,
        detail: `${n} tokens would take about ${projected.toFixed(0)} s more, over the ${Math.max(0, left).toFixed(0)} s left of its time budget`,
      };
      break;
    }
    if (model instanceof TransformerLM) model.reserve(state, n + d + 1);
    const p0 = performance.now();
    while (state.position < n) {
      const L = Math.min(o.prefillChunk, n - state.position);
      logits = model.prefill(nextIds(L), L, state);
      tokens += L;
    }
    const increment = (performance.now() - p0) / 1000;
    prefillTotal += increment;
    cumulative.push({ context: n, seconds: prefillTotal });
    // one untimed step (warm-up), then the timed bursts
    logits = model.step(Int32Array.of(argmax(logits)), state);
    const meter = measured ? startEnergy({ tdp: o.tdp, warn: warnOnce }) : null;
    const dec = decodeBursts(model, state, logits, o.decodeTokens);
    logits = dec.logits;
    const m = meter?.stop(d) ?? null;
    const times = dec.bursts.flatMap((b) => b.times),
      wall = times.reduce((x, y) => x + y, 0) / 1000,
      cpuSec = dec.cpuSeconds;
    const step = spread(times);
    tokens += d + 1;
    decodeSeconds.push(wall);
    const at = work(n + (d + 1) / 2);
    const estimated: Record<string, number> = { 'cpu-time': (cpuSec * power.watts) / d };
    for (const id of PROFILE_IDS) estimated[`analytic:${id}`] = analyticEstimate(at, 1, getProfile(id)).joules;
    const point: ScalingPoint = {
      context: n,
      decodeMsPerToken: step.median,
      decodeMsPerTokenMin: step.min,
      decodeMsPerTokenMax: step.max,
      decodeMsPerTokenMean: (wall * 1000) / d,
      decodeCpuMsPerToken: median(dec.bursts.flatMap((b) => b.cpu)),
      stateBytes: stateBytes(state),
      prefillSeconds: prefillTotal,
      prefillTokensPerSecond: n / Math.max(prefillTotal, 1e-9),
      energy: { estimated, measured: m && m.kind === 'measured' ? { jPerToken: m.jPerToken, method: m.method, scope: m.scope } : null },
    };
    points.push(point);
    log(
      `bench ${arch}: context ${n}: decode ${point.decodeMsPerToken.toFixed(3)} ms/token (CPU ${point.decodeCpuMsPerToken.toFixed(3)}), state ${(point.stateBytes / 1024).toFixed(0)} KiB, ` +
        `prefill ${prefillTotal.toFixed(2)} s (${point.prefillTokensPerSecond.toFixed(0)} tok/s), ${estimated['cpu-time'].toExponential(2)} J/token (estimated)`,
    );
  }
  disposeState(state);
  engine.dispose();
  if (stopped.reason === 'completed') stopped.lastContext = points.at(-1)?.context ?? null;
  return {
    arch,
    parameters: model.parameterCount,
    hfConfig: model.hfConfig(),
    points,
    stopped,
    seconds: (performance.now() - t0) / 1000,
    tokens,
  };
}

export interface ScalingResult {
  options: ScalingOptions;
  /** The CPU-time estimate's power, and every analytic hardware profile with its figures and sources. */
  energy: { cpuWattsPerCore: number; cpuPowerSource: string; measured: boolean; profiles: HardwareProfile[] };
  results: ArchResult[];
  seconds: number;
  tokens: number;
}

/** Run the whole study (architectures in the order given); progress lines go to `log`. */
export function runScaling(o: ScalingOptions, log: (msg: string) => void = () => {}): ScalingResult {
  const start = performance.now(),
    deadline = start + o.budgetSeconds * 1000;
  const power = wattsPerCore(undefined, o.tdp);
  const probe = startEnergy({ tdp: o.tdp, idleBaseline: false });
  const measured = probe.sources.length > 0;
  probe.stop();
  const results: ArchResult[] = [];
  o.archs.forEach((arch, i) => {
    const share = (deadline - performance.now()) / (o.archs.length - i);
    results.push(runArch(arch, o, performance.now() + share, power, measured, log));
  });
  return {
    options: o,
    energy: { cpuWattsPerCore: power.watts, cpuPowerSource: power.source, measured, profiles: PROFILE_IDS.map(getProfile) },
    results,
    seconds: (performance.now() - start) / 1000,
    tokens: results.reduce((n, r) => n + r.tokens, 0),
  };
}
