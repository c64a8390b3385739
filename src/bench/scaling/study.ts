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
 * The architectures run in lockstep: at each context every one prefills to it, then their decode
 * bursts alternate (A, B, A, B …), so a change of load from other processes reaches every curve.
 * Budgets: a context whose projected cost for the running architectures (prefill fitted as
 * a·n + b·n², decode as growing up to 2.5× per doubling) would overrun the time left stops the
 * costliest of them first; one whose state would exceed the memory budget stops that one. The
 * report says where and why each one stopped.
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
export const DECODE_BURSTS = 5;
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
 * `count` bursts of `perBurst` greedy steps, a short pause apart: wall and CPU milliseconds
 * of every step, and the process's CPU seconds over all of them (every thread: GC included).
 */
function decodeBursts(
  model: TrainableModel,
  state: ModelState,
  logits: Float32Array<ArrayBufferLike>,
  perBurst: number,
  count: number,
): { logits: Float32Array<ArrayBufferLike>; bursts: Burst[]; cpuSeconds: number } {
  const c0 = process.cpuUsage(),
    bursts: Burst[] = [];
  for (let r = 0; r < count; r++) {
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

/**
 * One architecture's part of the study, advanced one context at a time so that runScaling can take
 * the architectures in lockstep: every context point alternates their decode bursts (A, B, A, B …),
 * so a change in the load from other processes reaches both curves alike.
 */
class ArchRun {
  readonly points: ScalingPoint[] = [];
  stopped: StopInfo;
  done = false;
  private readonly model: TrainableModel;
  private readonly engine: Engine;
  private readonly work: (context: number) => WorkCount;
  private readonly bytesAt: (tokens: number) => number;
  private readonly nextIds: (n: number) => Int32Array;
  private readonly state: ModelState;
  private readonly cumulative: { context: number; seconds: number }[] = [];
  private readonly decodeSeconds: number[] = [];
  private bursts: Burst[] = [];
  private joules: number[] = [];
  private measuredMethod: { method: string; scope: string } | null = null;
  private cpuSeconds = 0;
  private prefillTotal = 0;
  private tokens = 0;
  private spent = 0; // seconds this architecture has run (setup, warm-up, prefills, bursts)
  private logits: Float32Array<ArrayBufferLike>;
  private warned = false; // a decode burst is short: say once, not at every context, why it is not measured

  constructor(
    readonly arch: StudyArch,
    private readonly o: ScalingOptions,
    private readonly power: CorePower,
    private readonly measured: boolean,
    private readonly log: (msg: string) => void,
  ) {
    const t0 = performance.now();
    ({ model: this.model, engine: this.engine, work: this.work, bytesAt: this.bytesAt } = setup(arch, o));
    const V = this.model.config.vocabSize,
      rng = Rng.fromSeed(o.seed + 17);
    this.nextIds = (n: number) => Int32Array.from({ length: n }, () => rng.int(V));
    // warm-up on a throwaway state: let the JIT compile and optimise the prefill and step paths
    // (two prefills, then steps for WARMUP_MS) before anything is timed
    const warm = this.model.createState(1),
      w = Math.min(256, o.minContext);
    let wl: Float32Array<ArrayBufferLike> = this.model.prefill(this.nextIds(w), w, warm);
    wl = this.model.prefill(this.nextIds(w), w, warm);
    for (const end = performance.now() + (o.tiny ? 50 : WARMUP_MS); performance.now() < end; )
      wl = this.model.step(Int32Array.of(argmax(wl)), warm);
    disposeState(warm);
    this.state = this.model.createState(1);
    this.logits = new Float32Array(V);
    this.stopped = { reason: 'completed', lastContext: null, nextContext: null, detail: `reached ${o.maxContext} tokens` };
    this.spent += (performance.now() - t0) / 1000;
  }

  /** Decode steps timed per point. */
  private get d(): number {
    return this.o.decodeTokens * DECODE_BURSTS;
  }

  /** Seconds the next context is expected to take (0 before the first). */
  projected(): number {
    return projectNextSeconds(this.cumulative, this.decodeSeconds);
  }

  /** Stop before context n: the memory budget, or (`left` seconds short of the projection) the time budget. */
  stopAt(n: number, left: number | null): void {
    const last = this.points.at(-1)?.context ?? null,
      need = this.bytesAt(n + this.d + 1);
    if (left === null)
      this.stopped = {
        reason: 'memory',
        lastContext: last,
        nextContext: n,
        detail: `the state at ${n} tokens would hold ${mib(need)}, over the ${mib(this.o.maxStateBytes)} memory budget`,
      };
    else
      this.stopped = {
        reason: 'time',
        lastContext: last,
        nextContext: n,
        detail: `${n} tokens would take about ${this.projected().toFixed(0)} s more, over the ${Math.max(0, left).toFixed(0)} s left of its time budget`,
      };
    this.done = true;
  }

  /** Whether context n fits the memory budget. */
  fits(n: number): boolean {
    return this.bytesAt(n + this.d + 1) <= this.o.maxStateBytes;
  }

  /** Real chunked prefills up to n tokens, then one untimed step. */
  prefillTo(n: number): void {
    const t0 = performance.now();
    if (this.model instanceof TransformerLM) this.model.reserve(this.state, n + this.d + 1);
    while (this.state.position < n) {
      const L = Math.min(this.o.prefillChunk, n - this.state.position);
      this.logits = this.model.prefill(this.nextIds(L), L, this.state);
      this.tokens += L;
    }
    this.prefillTotal += (performance.now() - t0) / 1000;
    this.cumulative.push({ context: n, seconds: this.prefillTotal });
    this.logits = this.model.step(Int32Array.of(argmax(this.logits)), this.state);
    this.bursts = [];
    this.joules = [];
    this.cpuSeconds = 0;
    this.spent += (performance.now() - t0) / 1000;
  }

  /** One timed decode burst (with its energy where the machine measures it). */
  burst(): void {
    const t0 = performance.now();
    const warn = (m: string) => {
      if (!this.warned) this.log(`bench ${this.arch}: ${m}`);
      this.warned = true;
    };
    const meter = this.measured ? startEnergy({ tdp: this.o.tdp, warn }) : null;
    const dec = decodeBursts(this.model, this.state, this.logits, this.o.decodeTokens, 1);
    const m = meter?.stop(this.o.decodeTokens) ?? null;
    if (m && m.kind === 'measured') {
      this.joules.push(m.jPerToken);
      this.measuredMethod = { method: m.method, scope: m.scope };
    }
    this.logits = dec.logits;
    this.bursts.push(...dec.bursts);
    this.cpuSeconds += dec.cpuSeconds;
    this.tokens += this.o.decodeTokens;
    this.spent += (performance.now() - t0) / 1000;
  }

  /** The point at context n from this context's bursts. */
  finishPoint(n: number): void {
    const d = this.d,
      times = this.bursts.flatMap((b) => b.times),
      wall = times.reduce((x, y) => x + y, 0) / 1000;
    const step = spread(times);
    this.tokens += 1;
    this.decodeSeconds.push(wall);
    const at = this.work(n + (d + 1) / 2);
    const estimated: Record<string, number> = { 'cpu-time': (this.cpuSeconds * this.power.watts) / d };
    for (const id of PROFILE_IDS) estimated[`analytic:${id}`] = analyticEstimate(at, 1, getProfile(id)).joules;
    const measured =
      this.joules.length === this.bursts.length && this.measuredMethod
        ? { jPerToken: this.joules.reduce((x, y) => x + y, 0) / this.joules.length, ...this.measuredMethod }
        : null;
    const point: ScalingPoint = {
      context: n,
      decodeMsPerToken: step.median,
      decodeMsPerTokenMin: step.min,
      decodeMsPerTokenMax: step.max,
      decodeMsPerTokenMean: (wall * 1000) / d,
      decodeCpuMsPerToken: median(this.bursts.flatMap((b) => b.cpu)),
      stateBytes: stateBytes(this.state),
      prefillSeconds: this.prefillTotal,
      prefillTokensPerSecond: n / Math.max(this.prefillTotal, 1e-9),
      energy: { estimated, measured },
    };
    this.points.push(point);
    this.log(
      `bench ${this.arch}: context ${n}: decode ${point.decodeMsPerToken.toFixed(3)} ms/token (CPU ${point.decodeCpuMsPerToken.toFixed(3)}), state ${(point.stateBytes / 1024).toFixed(0)} KiB, ` +
        `prefill ${this.prefillTotal.toFixed(2)} s (${point.prefillTokensPerSecond.toFixed(0)} tok/s), ${estimated['cpu-time'].toExponential(2)} J/token (estimated)`,
    );
  }

  result(): ArchResult {
    disposeState(this.state);
    this.engine.dispose();
    if (this.stopped.reason === 'completed') this.stopped.lastContext = this.points.at(-1)?.context ?? null;
    return {
      arch: this.arch,
      parameters: this.model.parameterCount,
      hfConfig: this.model.hfConfig(),
      points: this.points,
      stopped: this.stopped,
      seconds: this.spent,
      tokens: this.tokens,
    };
  }
}

/**
 * The architectures in lockstep until maxContext or a budget stops each: at every context each
 * one prefills to it, then their decode bursts alternate (A, B, A, B …, DECODE_BURSTS each). A
 * context whose projected cost for all running architectures exceeds the time left stops the one
 * projected to cost most, until the rest fit; the report says where and why each one stopped.
 */
function runLockstep(runs: ArchRun[], o: ScalingOptions, deadlineMs: number): void {
  for (let n = o.minContext; n <= o.maxContext; n *= 2) {
    for (const r of runs) if (!r.done && !r.fits(n)) r.stopAt(n, null);
    let active = runs.filter((r) => !r.done);
    for (;;) {
      const left = (deadlineMs - performance.now()) / 1000,
        need = active.reduce((x, r) => x + (r.points.length > 0 ? r.projected() : 0), 0);
      if (need <= left || active.every((r) => r.points.length === 0)) break;
      const worst = active.reduce((x, r) => (r.projected() > x.projected() ? r : x));
      worst.stopAt(n, left);
      active = active.filter((r) => r !== worst);
    }
    if (active.length === 0) return;
    for (const r of active) r.prefillTo(n);
    for (let b = 0; b < DECODE_BURSTS; b++) {
      if (b > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BURST_PAUSE_MS);
      for (const r of active) r.burst();
    }
    for (const r of active) r.finishPoint(n);
  }
}

/** Run the study for one architecture alone until maxContext or a budget stops it. */
export function runArch(
  arch: StudyArch,
  o: ScalingOptions,
  deadlineMs: number,
  power: CorePower,
  measured: boolean,
  log: (msg: string) => void = () => {},
): ArchResult {
  const r = new ArchRun(arch, o, power, measured, log);
  runLockstep([r], o, deadlineMs);
  return r.result();
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
  const runs = o.archs.map((arch) => new ArchRun(arch, o, power, measured, log));
  runLockstep(runs, o, deadline);
  const results = runs.map((r) => r.result());
  return {
    options: o,
    energy: { cpuWattsPerCore: power.watts, cpuPowerSource: power.source, measured, profiles: PROFILE_IDS.map(getProfile) },
    results,
    seconds: (performance.now() - start) / 1000,
    tokens: results.reduce((n, r) => n + r.tokens, 0),
  };
}
