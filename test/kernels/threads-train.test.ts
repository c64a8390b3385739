import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import type { Tensor } from '../../src/tensor/index.js';
import * as ref from '../../src/kernels/ref/index.js';
import { MIN_PARALLEL_ELEMENTS } from '../../src/kernels/parallel-train.js';
import { expectClose } from '../helpers/compare.js';

/**
 * The threaded passes of a training step (kernels/parallel-train.ts) give the one-thread answer
 * bit for bit at 1-4 threads (the grouped backward kernels too: their groups do not depend on the
 * thread count), on odd sizes above the threshold (ranges that end inside an f32x4
 * vector, row counts that do not divide), hand their work to the workers, and match the reference.
 */
// one engine per thread count for every case (starting workers is the slow part)
const engines = new Map<number, Engine>();
afterAll(() => {
  for (const e of engines.values()) e.dispose();
});
function engine(T: number): Engine {
  let e = engines.get(T);
  if (!e) {
    e = new Engine({ kernels: 'wasm', threads: T });
    engines.set(T, e);
  }
  return e;
}
const THREADS = [1, 2, 3, 4];
const bits = (a: Float64Array) => Buffer.from(Float32Array.from(a).buffer);

/** An array argument: its size and the range its values are drawn from. */
type Arr = { n: number; lo?: number; hi?: number };
type Arg = Arr | number;
const arr = (n: number, lo = -3, hi = 3): Arr => ({ n, lo, hi });

const N = 40001; // odd, above MIN_PARALLEL_ELEMENTS
const [R, C, C0, W] = [301, 263, 37, 131]; // rows, columns, first column, width of a slice
const CASES: [string, Arg[]][] = [
  ['add', [arr(N), arr(N), arr(N), N]],
  ['mul', [arr(N), arr(N), arr(N), N]],
  ['accumulate', [arr(N), arr(N), N]],
  ['mulAccumulate', [arr(N), arr(N), arr(N), N]],
  ['siluForward', [arr(N), arr(N, -12, 12), N]],
  ['softplusForward', [arr(N), arr(N, -12, 12), N]],
  ['siluBackward', [arr(N), arr(N), arr(N, -12, 12), N]],
  ['softplusBackward', [arr(N), arr(N), arr(N, -12, 12), N]],
  ['swigluForward', [arr(N), arr(N, -12, 12), arr(N), N]],
  ['swigluBackward', [arr(N), arr(N), arr(N), arr(N, -12, 12), arr(N), N]],
  ['adamwStep', [arr(N), arr(N), arr(N), arr(N, 0.1, 2), N, 1e-3, 0.9, 0.95, 1e-8, 0.1, 0.1, 0.05]],
  ['sliceColumns', [arr(R * W), arr(R * C), R, C, C0, W]],
  ['sliceColumnsBackward', [arr(R * C), arr(R * W), R, C, C0, W]],
  ['dtSoftplusForward', [arr(R * W), arr(R * W, -6, 6), arr(W), R, W, 0, Number.POSITIVE_INFINITY]],
  ['dtSoftplusForward', [arr(R * W), arr(R * W, -6, 6), arr(W), R, W, 0.01, 2]],
  ['rmsnormForward', [arr(R * W), arr(R), arr(R * W), arr(W, 0.5, 1.5), R, W, 1e-5]],
  ['addRmsnormForward', [arr(R * W), arr(R * W), arr(R), arr(R * W), arr(R * W), arr(W, 0.5, 1.5), R, W, 1e-5]],
  ['mambaDeltaPrefill', [arr(R * W), arr(R * W, -6, 6), arr(W), R, W]],
  ['mambaGatePrefill', [arr(R * W), arr(R * W), arr(R * 2 * W, -12, 12), R, W]],
  ['conv1dForward', [arr(3 * 101 * W), arr(3 * 101 * W), arr(W * 4), arr(W), 3, 101, W, 4]],
  // out (67, 40; rows of 43) += a (67, 45; rows of 52) @ b (45, 40; rows of 44)
  ['matmulNNStrided', [arr(67 * 43), arr(67 * 52), arr(45 * 44), 67, 40, 45, 1, 52, 44, 43]],
  // out (67, 40; rows of 43) += a (45, 67; rows of 70)ᵀ @ b (45, 40; rows of 44)
  ['matmulTNStrided', [arr(67 * 43), arr(45 * 70), arr(45 * 44), 67, 40, 45, 1, 70, 44, 43]],
  ['transpose', [arr(133 * 311), arr(301 * 133), 301, 133, 311]],
  ['padRows', [arr(301 * 141), arr(301 * 133), 301, 133, 141]],
  // backward kernels that also sum over rows: a fixed number of row groups with partials
  ['conv1dBackward', [arr(5 * 61 * W), arr(W * 4), arr(W), arr(5 * 61 * W), arr(5 * 61 * W), arr(W * 4), 5, 61, W, 4]],
  ['dtSoftplusBackward', [arr(R * W), arr(W), arr(R * W), arr(R * W, -6, 6), arr(W), R, W, 0, Number.POSITIVE_INFINITY]],
  ['dtSoftplusBackward', [arr(R * W), arr(W), arr(R * W), arr(R * W, -6, 6), arr(W), R, W, 0.01, 2]],
  ['rmsnormBackward', [arr(R * W), arr(W), arr(R * W), arr(R * W), arr(W, 0.5, 1.5), arr(R, 0.5, 2), R, W]],
];

type Kernel = (...a: unknown[]) => void;

/** Run `name` on engine e with the case's arguments (arrays filled from one seed); returns every array after the call. */
function runOn(e: Engine, name: string, args: Arg[]): Float64Array[] {
  const rng = Rng.fromSeed(5);
  const tensors: Tensor[] = [];
  const actual = args.map((a) => {
    if (typeof a === 'number') return a;
    const t = e.persistent([a.n]).set(Array.from({ length: a.n }, () => (a.lo ?? -3) + ((a.hi ?? 3) - (a.lo ?? -3)) * rng.uniform()));
    tensors.push(t);
    return t;
  });
  (e.k[name as keyof typeof ref] as unknown as Kernel)(...actual);
  const out = tensors.map((t) => t.toFloat64());
  for (const t of tensors) t.dispose();
  return out;
}

/** The reference kernel on float64 copies of the same inputs. */
function runRef(name: string, args: Arg[]): Float64Array[] {
  const rng = Rng.fromSeed(5);
  const arrays: Float64Array[] = [];
  const actual = args.map((a) => {
    if (typeof a === 'number') return a;
    const v = Float64Array.from(Float32Array.from({ length: a.n }, () => (a.lo ?? -3) + ((a.hi ?? 3) - (a.lo ?? -3)) * rng.uniform()));
    arrays.push(v);
    return v;
  });
  // biome-ignore lint/performance/noDynamicNamespaceImportAccess: the test loops over the reference kernels by name
  (ref[name as keyof typeof ref] as unknown as Kernel)(...actual);
  return arrays;
}

describe.each(CASES)('threaded %s', (name, args) => {
  it('is bit-identical for 1-4 threads, splits the work, and matches the reference', () => {
    const outs = THREADS.map((T) => {
      const e = engine(T);
      const before = e.k.parallelRuns();
      const got = runOn(e, name, args);
      const runs = e.k.parallelRuns() - before; // one, or a round per group for the grouped kernels
      expect(runs > 0, 'work went to the worker threads').toBe(T > 1);
      return got;
    });
    for (let i = 1; i < outs.length; i++)
      outs[i].forEach((a, j) => expect(bits(a).equals(bits(outs[0][j])), `array ${j}, ${THREADS[i]} threads`).toBe(true));
    const want = runRef(name, args);
    want.forEach((w, j) => expectClose(outs[0][j], w, 1e-5, `${name} array ${j} vs reference`));
  });
});

describe('small passes', () => {
  it('stay on the calling thread below the threshold', () => {
    const e = engine(2);
    const n = MIN_PARALLEL_ELEMENTS - 1;
    const before = e.k.parallelRuns();
    runOn(e, 'siluForward', [arr(n), arr(n), n]);
    expect(e.k.parallelRuns() - before).toBe(0);
  });
});
