/**
 * The machine's ceilings, measured with frugal's own kernels in the same run as everything else
 * (they vary by ±15% from run to run; each is reported as the median pass with min and max, and
 * fractions of a ceiling use its max, the best the machine did): read bandwidth with the wasm `readBandwidth` kernel over a
 * buffer of ≥ 1 GiB, GEMM throughput with `matmulNTP4` (weights in panels), and the speed-up of every hot wasm kernel
 * over its TypeScript twin.
 */
import type { WasmKind } from '../../kernels/backend.js';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Heap } from '../../tensor/index.js';
import type { Tensor } from '../../tensor/index.js';
import { Engine } from '../../ops/index.js';
import { getWasmModule, instantiateWasmKernels } from '../../kernels/wasm/index.js';
import { ThreadPool, splitRange } from '../../kernels/threads.js';
import { Rng } from '../../io/rng.js';
import type { KernelEntry, MachinePoint } from './types.js';
import { spread } from '../formulas.js';
import type { Spread } from '../formulas.js';

/** Seconds of every timed call of `fn` after `warm` untimed calls: at least minReps calls and minSeconds. */
export function timePerCall(fn: () => void, minSeconds: number, minReps = 1, warm = 1): { mean: number; samples: number[] } {
  for (let i = 0; i < warm; i++) fn();
  const samples: number[] = [];
  const t0 = performance.now();
  let now = t0;
  while (samples.length < minReps || now - t0 < minSeconds * 1000) {
    const s = performance.now();
    fn();
    now = performance.now();
    samples.push((now - s) / 1000);
  }
  return { mean: (now - t0) / 1000 / samples.length, samples };
}

/** `work` units per second of one call of `fn` (GB for a read, GFLOP for a product). */
function rateOf(work: number, fn: () => void): number {
  const s = performance.now();
  fn();
  return work / ((performance.now() - s) / 1000);
}

/** The rates `rate` returns over ≥ minReps calls and ≥ minSeconds, after `warm` calls left out. */
export function ratesOver(rate: () => number, minSeconds: number, minReps = 3, warm = 0): number[] {
  const xs: number[] = [];
  timePerCall(() => xs.push(rate()), minSeconds, minReps, warm);
  return xs.slice(warm);
}

/** CPU time of the whole machine and of this process (its threads, and its finished children). */
export interface CpuSample {
  wallMs: number;
  busyMs: number;
  ownMs: number;
}

/** Children's CPU time from /proc/self/stat (cutime + cstime, clock ticks of 10 ms); 0 where there is no /proc. */
function childrenMs(): number {
  try {
    const f = readFileSync('/proc/self/stat', 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(rest[13]) + Number(rest[14])) * 10;
  } catch {
    return 0;
  }
}

export function cpuSample(): CpuSample {
  let busyMs = 0;
  for (const c of cpus()) busyMs += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  const u = process.cpuUsage();
  return { wallMs: performance.now(), busyMs, ownMs: (u.user + u.system) / 1000 + childrenMs() };
}

/**
 * The share of the machine's CPUs that OTHER processes kept busy between two samples (0: the
 * machine was ours alone, 1: every CPU busy with other work). Every figure of the run drops with it.
 */
export function otherCpuShare(a: CpuSample, b: CpuSample): number {
  const wall = Math.max(1e-9, b.wallMs - a.wallMs) * cpus().length;
  return Math.min(1, Math.max(0, (b.busyMs - a.busyMs - (b.ownMs - a.ownMs)) / wall));
}

/** otherCpuShare over the next `ms` milliseconds, sleeping meanwhile. */
export function otherCpuShareNow(ms: number): number {
  const a = cpuSample();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return otherCpuShare(a, cpuSample());
}

/**
 * Stream counts each thread's piece may be read as (assembly/bench.ts). Which is fastest depends
 * on the CPU's prefetchers: 16 beat 1 by ≈ 40% on one core of a Xeon, while on the AMD EPYC we
 * measure on 2–4 streams read ≈ 36 GB/s on one core and 16 only ≈ 19
 * (`node tools/bench-read-streams.mjs`). The probe tries each and keeps the best: it is a ceiling.
 */
export const READ_STREAMS = [2, 4, 8, 16] as const;

/**
 * A streaming read of a buffer of ≥ `bytes` in its own wasm memory on T threads: one contiguous
 * piece per thread, each read as the stream count of READ_STREAMS that was fastest in two probe
 * passes. `pass()` reads it once and returns GB/s (1e9 bytes). Dispose to stop its workers.
 */
export class BandwidthProbe {
  readonly streams: number;
  readonly bytes: number;
  private readonly pool: ThreadPool;
  private readonly parts: [number, number][];
  private readonly x: number;
  private readonly out: number;

  constructor(
    bytes: number,
    readonly threads: number,
  ) {
    const heap = new Heap();
    const n = Math.max(32, Math.floor(bytes / 4 / 32) * 32);
    this.bytes = n * 4;
    this.x = heap.alloc(n * 4);
    this.out = heap.alloc(64 * threads);
    heap.f32(this.x, n).fill(1); // touch every page with real data
    const module = getWasmModule();
    this.pool = new ThreadPool(heap.memory, module, instantiateWasmKernels(module, heap.memory), threads);
    this.parts = splitRange(n, threads, 32);
    let streams: number = READ_STREAMS[0],
      best = Number.POSITIVE_INFINITY;
    for (const S of READ_STREAMS) {
      const t = Math.min(...timePerCall(() => this.read(S), 0, 2, 1).samples);
      if (t < best) [best, streams] = [t, S];
    }
    this.streams = streams;
  }

  private read(S: number): void {
    this.pool.run(this.parts.map(([a, b], t) => ({ name: 'readBandwidth' as const, args: [this.out + 64 * t, this.x + a * 4, b - a, S] })));
  }

  /** One timed pass: GB/s. */
  pass(): number {
    return rateOf(this.bytes / 1e9, () => this.read(this.streams));
  }

  dispose(): void {
    this.pool.dispose();
  }
}

/**
 * The weight read of a decoding step as frugal does it: its GEMV (matmulNTP4 at M = 1, the threads
 * splitting the columns as in decoding) over a weight matrix of ≥ `bytes` in its own engine.
 * `pass()` runs it once and returns GB/s of weight bytes. The decode bound takes the faster of this
 * and the pure read kernel (a decode at 2 threads read its weights at up to 1.2× the read kernel's
 * rate in alternating rounds; the GEMV reads as decoding does, two far-apart panels a thread).
 * Dispose to free its engine.
 */
export class GemvProbe {
  readonly bytes: number;
  private readonly e: Engine;
  private readonly ts: Tensor[];
  constructor(bytes: number, threads: number, kernels: WasmKind = 'wasm') {
    const K = 768,
      N = Math.max(4, Math.ceil(bytes / (4 * K) / 4) * 4);
    this.bytes = N * K * 4;
    this.e = new Engine({ kernels, threads });
    const w = this.e.persistent([N, K]),
      x = this.e.persistent([1, K]),
      out = this.e.persistent([1, N]);
    w.floats().fill(1 / K); // touch every page with real data (the layout's order does not matter to a read)
    x.floats().fill(1);
    this.ts = [out, x, w];
  }

  pass(): number {
    const [out, x, w] = this.ts;
    return rateOf(this.bytes / 1e9, () => this.e.k.matmulNTP4(out, x, w, 1, w.shape[0], w.shape[1], 0));
  }

  dispose(): void {
    this.e.dispose();
  }
}

/**
 * Read bandwidth in GB/s (1e9 bytes) at each thread count: a BandwidthProbe over `bytes`, as many
 * passes as fit in minSeconds (at least 3).
 */
export function measureBandwidth(bytes: number, threads: readonly number[], minSeconds: number): Map<number, Spread & { streams: number }> {
  const result = new Map<number, Spread & { streams: number }>();
  for (const T of threads) {
    const probe = new BandwidthProbe(bytes, T);
    try {
      result.set(T, { ...spread(ratesOver(() => probe.pass(), minSeconds, 3, 1)), streams: probe.streams });
    } finally {
      probe.dispose();
    }
  }
  return result;
}

/** Fill a new tensor of `e` with uniform values in [lo, hi) from `rng`. */
function uniform(e: Engine, shape: number[], rng: Rng, lo = -1, hi = 1): Tensor {
  const t = e.persistent(shape);
  const v = t.floats();
  for (let i = 0; i < v.length; i++) v[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

/**
 * frugal's fastest f32 product at M = N = K = `size` on `e`'s threads: matmulNTP4, the weight in
 * panels of four rows as inference holds its weights (ops/panels.ts), which runs at or above
 * matmulNT over rows. `call()` runs it once and returns GFLOP/s. Dispose to free its operands.
 */
export class GemmProbe {
  private readonly ts: Tensor[];
  constructor(
    private readonly e: Engine,
    readonly size: number,
  ) {
    const rng = Rng.fromSeed(11);
    const a = uniform(e, [size, size], rng),
      b = uniform(e, [size, size], rng),
      bp = e.persistent([size, size]),
      out = e.persistent([size, size]);
    e.k.packPanels4(bp, b, size, size);
    b.dispose();
    this.ts = [a, bp, out];
  }

  call(): number {
    const [a, bp, out] = this.ts,
      n = this.size;
    return rateOf((2 * n ** 3) / 1e9, () => this.e.k.matmulNTP4(out, a, bp, n, n, n, 0));
  }

  dispose(): void {
    for (const t of this.ts) t.dispose();
  }
}

/** GFLOP/s of a GemmProbe on `e` (two warm-up calls wake the workers), as many calls as fit in minSeconds (at least 3). */
export function measureGemm(e: Engine, size: number, minSeconds: number): Spread {
  const probe = new GemmProbe(e, size);
  try {
    return spread(ratesOver(() => probe.call(), minSeconds, 3, 2));
  } finally {
    probe.dispose();
  }
}

/** Bandwidth and GEMM at every thread count. */
export function measureMachine(
  bandwidthBytes: number,
  gemmSize: number,
  threads: readonly number[],
  minSeconds: number,
  log: (m: string) => void,
  kernels: WasmKind = 'wasm',
): MachinePoint[] {
  const bw = measureBandwidth(bandwidthBytes, threads, minSeconds);
  const points: MachinePoint[] = [];
  for (const T of threads) {
    const e = new Engine({ kernels, threads: T });
    try {
      const g = measureGemm(e, gemmSize, minSeconds),
        b = bw.get(T) as Spread & { streams: number };
      points.push({
        threads: T,
        bandwidth_gbs: b.median,
        bandwidth_gbs_min: b.min,
        bandwidth_gbs_max: b.max,
        read_streams: b.streams,
        gemm_gflops: g.median,
        gemm_gflops_min: g.min,
        gemm_gflops_max: g.max,
      });
      log(
        `machine: ${T} thread${T > 1 ? 's' : ''}: read ${b.median.toFixed(1)} GB/s (${b.min.toFixed(1)}–${b.max.toFixed(1)}; ${b.streams} streams a thread), ` +
          `matmulNTP4 ${gemmSize}³ ${g.median.toFixed(1)} GFLOP/s (${g.min.toFixed(1)}–${g.max.toFixed(1)})`,
      );
    } finally {
      e.dispose();
    }
  }
  return points;
}

/** One kernel case: allocate its operands on `e` (values from `rng`) and return the call to time. */
interface KernelCase {
  name: string;
  shape: string;
  make: (e: Engine, rng: Rng) => () => void;
}

function ids(e: Engine, n: number, V: number, rng: Rng): Tensor {
  const t = e.persistent([n], 'i32');
  const v = t.ints();
  for (let i = 0; i < n; i++) v[i] = Math.floor(rng.uniform() * V);
  return t;
}

/** The hot kernels of decode, prefill and training, at mamba-130m / d256 shapes (tiny: small ones). */
function kernelCases(tiny: boolean): KernelCase[] {
  const s = (full: number, small: number) => (tiny ? small : full);
  const D = s(768, 32),
    ED = s(1536, 64),
    Vt = s(4096, 256),
    L = s(256, 16),
    N = 16,
    G = s(256, 16);
  const n = s(1 << 18, 1 << 10),
    rows = s(2048, 32),
    K = 4,
    chunk = 16;
  const u = uniform;
  return [
    {
      name: 'matmulNT',
      shape: `decode in_proj 1×${D} · (${2 * ED}×${D})ᵀ`,
      make: (e, r) => {
        const x = u(e, [1, D], r),
          w = u(e, [2 * ED, D], r),
          y = e.persistent([1, 2 * ED]);
        return () => e.k.matmulNT(y, x, w, 1, 2 * ED, D, 0);
      },
    },
    {
      name: 'matmulNT',
      shape: `${G}×${G}×${G}`,
      make: (e, r) => {
        const a = u(e, [G, G], r),
          b = u(e, [G, G], r),
          y = e.persistent([G, G]);
        return () => e.k.matmulNT(y, a, b, G, G, G, 0);
      },
    },
    {
      name: 'matmulTN',
      shape: `weight grad ${G}×${G}, ${rows} rows`,
      make: (e, r) => {
        const a = u(e, [rows, G], r),
          b = u(e, [rows, G], r),
          y = e.persistent([G, G]);
        return () => e.k.matmulTN(y, a, b, G, G, rows, 0);
      },
    },
    {
      name: 'scanStep',
      shape: `B1 ED${ED} N${N}`,
      make: (e, r) => {
        const y = e.persistent([1, ED]),
          h = u(e, [1, ED, N], r),
          x = u(e, [1, ED], r),
          dl = u(e, [1, ED], r, 0.001, 0.2);
        const A = u(e, [ED, N], r, -16, -1),
          Bm = u(e, [1, N], r),
          Cm = u(e, [1, N], r),
          Dp = u(e, [ED], r);
        return () => e.k.scanStep(y, h, x, dl, A, Bm, Cm, Dp, 1, ED, N);
      },
    },
    {
      name: 'scanForward',
      shape: `B1 L${L} ED${ED} N${N}`,
      make: (e, r) => {
        const y = e.persistent([1, L, ED]),
          h = e.persistent([1, ED, N]),
          x = u(e, [1, L, ED], r),
          dl = u(e, [1, L, ED], r, 0.001, 0.2);
        const A = u(e, [ED, N], r, -16, -1),
          Bm = u(e, [1, L, N], r),
          Cm = u(e, [1, L, N], r),
          Dp = u(e, [ED], r);
        return () => {
          h.zero();
          e.k.scanForward(y, h, null, x, dl, A, Bm, Cm, Dp, 1, L, ED, N, chunk);
        };
      },
    },
    {
      name: 'scanBackward',
      shape: `B1 L${L} ED${ED / 2} N${N}`,
      make: (e, r) => {
        const C = ED / 2,
          nc = Math.ceil(L / chunk);
        const x = u(e, [1, L, C], r),
          dl = u(e, [1, L, C], r, 0.001, 0.2),
          A = u(e, [C, N], r, -16, -1);
        const Bm = u(e, [1, L, N], r),
          Cm = u(e, [1, L, N], r),
          Dp = u(e, [C], r),
          dy = u(e, [1, L, C], r);
        const hck = u(e, [1, nc, C, N], r),
          work = e.persistent([(2 * chunk + 1) * N]);
        const dx = e.persistent([1, L, C]),
          dd = e.persistent([1, L, C]),
          dA = e.persistent([C, N]);
        const dB = e.persistent([1, L, N]),
          dC = e.persistent([1, L, N]),
          dD = e.persistent([C]);
        return () => e.k.scanBackward(dx, dd, dA, dB, dC, dD, null, dy, x, dl, A, Bm, Cm, Dp, hck, work, 1, L, C, N, chunk);
      },
    },
    {
      name: 'conv1dForward',
      shape: `B1 L${L} C${ED} K${K}`,
      make: (e, r) => {
        const o = e.persistent([1, L, ED]),
          x = u(e, [1, L, ED], r),
          w = u(e, [ED, K], r),
          b = u(e, [ED], r);
        return () => e.k.conv1dForward(o, x, w, b, 1, L, ED, K);
      },
    },
    {
      name: 'rmsnormForward',
      shape: `${L}×${D}`,
      make: (e, r) => {
        const o = e.persistent([L, D]),
          rs = e.persistent([L]),
          x = u(e, [L, D], r),
          w = u(e, [D], r);
        return () => e.k.rmsnormForward(o, rs, x, w, L, D, 1e-5);
      },
    },
    {
      name: 'siluForward',
      shape: `n ${n}`,
      make: (e, r) => {
        const o = e.persistent([n]),
          x = u(e, [n], r, -8, 8);
        return () => e.k.siluForward(o, x, n);
      },
    },
    {
      name: 'softplusForward',
      shape: `n ${n}`,
      make: (e, r) => {
        const o = e.persistent([n]),
          x = u(e, [n], r, -8, 8);
        return () => e.k.softplusForward(o, x, n);
      },
    },
    {
      name: 'crossEntropyForward',
      shape: `${rows}×256`,
      make: (e, r) => {
        const lg = u(e, [rows, 256], r, -5, 5),
          ls = e.persistent([rows]),
          lse = e.persistent([rows]),
          t = ids(e, rows, 256, r);
        return () => e.k.crossEntropyForward(ls, lse, lg, t, rows, 256);
      },
    },
    {
      name: 'embeddingForward',
      shape: `${rows} rows of ${Vt}×${D}`,
      make: (e, r) => {
        const tab = u(e, [Vt, D], r),
          o = e.persistent([rows, D]),
          t = ids(e, rows, Vt, r);
        return () => e.k.embeddingForward(o, tab, t, rows, D);
      },
    },
    {
      name: 'adamwStep',
      shape: `n ${n}`,
      make: (e, r) => {
        const p = u(e, [n], r),
          g = u(e, [n], r),
          m = u(e, [n], r, -0.01, 0.01),
          v = u(e, [n], r, 0, 1e-4);
        return () => e.k.adamwStep(p, g, m, v, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5, 0.5);
      },
    },
  ];
}

/** wasm (one thread, build `kernels`) over ref for every case; each side on its own engine with the same values. */
export function measureKernels(tiny: boolean, seconds: number, log: (m: string) => void, kernels: WasmKind = 'wasm'): KernelEntry[] {
  const out: KernelEntry[] = [];
  for (const c of kernelCases(tiny)) {
    const ew = new Engine({ kernels, threads: 1 }),
      er = new Engine({ kernels: 'ref' });
    try {
      const tw = timePerCall(c.make(ew, Rng.fromSeed(5)), seconds, 2).mean;
      const tr = timePerCall(c.make(er, Rng.fromSeed(5)), seconds, 1).mean;
      out.push({ name: c.name, shape: c.shape, wasm_ms: tw * 1e3, ref_ms: tr * 1e3, wasm_over_ref: tr / tw });
      log(`kernels: ${c.name} ${c.shape}: wasm ${(tw * 1e3).toFixed(3)} ms, ref ${(tr * 1e3).toFixed(3)} ms, ×${(tr / tw).toFixed(1)}`);
    } finally {
      ew.dispose();
      er.dispose();
    }
  }
  return out;
}
