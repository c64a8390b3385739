import type { WasmKernelName, WasmKernels } from './wasm/index.js';
import type { Job, ThreadPool } from './threads.js';
import { splitRange } from './threads.js';

/**
 * Threaded versions of the passes around the products of a training step (elementwise ops, the
 * column slices, the bias + softplus of Δ, RMSNorm's forward, the depthwise conv, AdamW): on two
 * threads these ran on one and held back the step's scaling. Each splits over OUTPUTS only:
 * - elementwise kernels by element ranges at multiples of 4 (the f32x4 lanes), so each element
 *   meets the same lane arithmetic as in one call;
 * - row kernels by ranges of rows, the depthwise conv by streams.
 * Nothing is reduced across a split, so every thread count gives bit for bit the one-thread answer.
 * Kernels whose backward reduces over rows (a bias or weight gradient) stay on one thread.
 */

/** Elements (or element-equivalents) below which waking the workers costs more than it saves. */
export const MIN_PARALLEL_ELEMENTS = 1 << 15;

/**
 * How a kernel splits: `ptrs` are its array arguments with the bytes each advances per unit of
 * the split (a function of the arguments for row strides), `count` the argument holding the
 * number of units, `align` the multiple every boundary lands on, `work` elements per unit.
 */
interface Split {
  ptrs: readonly (readonly [number, (a: readonly number[]) => number])[];
  count: number;
  align: number;
  work: (a: readonly number[]) => number;
}

const F4 = () => 4;
/** n-element kernels: the listed array arguments advance 4 bytes per element, n at `count`. */
const elementwise = (ptrs: readonly number[], count: number): Split => ({
  ptrs: ptrs.map((i) => [i, F4] as const),
  count,
  align: 4,
  work: () => 1,
});

const SPLITS: Partial<Record<WasmKernelName, Split>> = {
  // (out, x, y, n) and (dst, x, y, n)
  add: elementwise([0, 1, 2], 3),
  mul: elementwise([0, 1, 2], 3),
  mulAccumulate: elementwise([0, 1, 2], 3),
  accumulate: elementwise([0, 1], 2),
  // (out, x, n) and (dx, dout, x, n)
  siluForward: elementwise([0, 1], 2),
  softplusForward: elementwise([0, 1], 2),
  siluBackward: elementwise([0, 1, 2], 3),
  softplusBackward: elementwise([0, 1, 2], 3),
  // (out, gate, up, n) and (dgate, dup, dout, gate, up, n)
  swigluForward: elementwise([0, 1, 2], 3),
  swigluBackward: elementwise([0, 1, 2, 3, 4], 5),
  // (p, g, m, v, n, …): each parameter's update is its own
  adamwStep: elementwise([0, 1, 2, 3], 4),
  // (out, x, rows, C, c0, w) and (dx, dout, rows, C, c0, w): out rows of w, x rows of C
  sliceColumns: {
    ptrs: [
      [0, (a) => 4 * a[5]],
      [1, (a) => 4 * a[3]],
    ],
    count: 2,
    align: 1,
    work: (a) => a[5],
  },
  sliceColumnsBackward: {
    ptrs: [
      [0, (a) => 4 * a[3]],
      [1, (a) => 4 * a[5]],
    ],
    count: 2,
    align: 1,
    work: (a) => a[5],
  },
  // (out, dt, bias, rows, H, lo, hi): out and dt rows of H
  dtSoftplusForward: {
    ptrs: [
      [0, (a) => 4 * a[4]],
      [1, (a) => 4 * a[4]],
    ],
    count: 3,
    align: 1,
    work: (a) => a[4],
  },
  // (out, rstd, x, w, rows, D, eps)
  rmsnormForward: {
    ptrs: [
      [0, (a) => 4 * a[5]],
      [1, F4],
      [2, (a) => 4 * a[5]],
    ],
    count: 4,
    align: 1,
    work: (a) => a[5],
  },
  // (out, x, w, bias, B, L, C, K): each stream's L × C outputs are its own
  conv1dForward: {
    ptrs: [
      [0, (a) => 4 * a[5] * a[6]],
      [1, (a) => 4 * a[5] * a[6]],
    ],
    count: 4,
    align: 1,
    work: (a) => a[5] * a[6] * a[7],
  },
};

/** One kernel run over the split's ranges, one job per thread (threads with an empty range get none). */
function threaded(pool: ThreadPool, name: WasmKernelName, s: Split, single: (...a: number[]) => void): (...a: number[]) => void {
  const T = pool.size;
  return (...args: number[]) => {
    const n = args[s.count];
    if (T === 1 || n * s.work(args) < MIN_PARALLEL_ELEMENTS || n < 2 * s.align) return single(...args);
    const r = splitRange(n, T, s.align);
    const jobs = r.map(([a, b]): Job => {
      if (a === b) return null;
      const j = args.slice();
      for (const [i, step] of s.ptrs) j[i] = args[i] + a * step(args);
      j[s.count] = b - a;
      // the job carries the arguments of `name` with some offsets moved: the same kernel's own shape
      return { name, args: j } as unknown as Job;
    });
    pool.run(jobs);
  };
}

/** The threaded stand-ins of the kernels in SPLITS, typed as the kernels they replace. */
export function threadedTrainKernels(pool: ThreadPool, w: WasmKernels): Partial<WasmKernels> {
  const out: Partial<Record<WasmKernelName, unknown>> = {};
  for (const [name, s] of Object.entries(SPLITS) as [WasmKernelName, Split][]) {
    out[name] = threaded(pool, name, s, w[name] as unknown as (...a: number[]) => void);
  }
  return out as Partial<WasmKernels>;
}
