import type { Heap } from '../tensor/index.js';
import type { WasmKernelName, WasmKernels } from './wasm/index.js';
import type { Job, ThreadPool } from './threads.js';
import { CHUNKS_PER_THREAD, chunkedJob, splitRange } from './threads.js';

/**
 * Threaded versions of the passes around the products of a training step (elementwise ops, the
 * column slices, the bias + softplus of Δ, RMSNorm's forward, the depthwise conv, AdamW, the
 * transposes and strided NN products of the taped linear layer, ops.ts) and of a prompt (Mamba-1's
 * fused Δ and gate): on two threads these ran on one and held back the scaling. Each splits over OUTPUTS only:
 * - elementwise kernels by element ranges at multiples of 4 (the f32x4 lanes), so each element
 *   meets the same lane arithmetic as in one call, in chunks the threads claim as they go;
 * - row kernels by ranges of rows (the NN product: each row of out sums over k in the same order
 *   in any tile), the depthwise conv by streams, the transpose by rows of its input.
 * Nothing is reduced across a split, so every thread count gives bit for bit the one-thread answer.
 * Backward kernels that also sum over rows (the conv's weight and bias gradients, the bias of Δ,
 * RMSNorm's weight) run as a FIXED number of row groups (REDUCE_GROUPS, not the thread count), each
 * summing into its own zeroed partials, which are then added in group order, as the scan backward
 * does: one thread runs the same groups in turn, so every thread count gives the same bits.
 */

/** Row groups of the backward kernels that sum over rows: part of the arithmetic, so fixed. */
export const REDUCE_GROUPS = 4;

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

/** Row kernels: rows counted at argument `count`, W floats a row at argument `width`; `wide` arrays hold rows of 2·W. */
const byRows = (count: number, width: number, ptrs: readonly number[], wide: readonly number[] = []): Split => ({
  ptrs: [
    ...ptrs.map((i) => [i, (a: readonly number[]) => 4 * a[width]] as const),
    ...wide.map((i) => [i, (a: readonly number[]) => 8 * a[width]] as const),
  ],
  count,
  align: 1,
  work: (a) => a[width],
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
  dtSoftplusForward: byRows(3, 4, [0, 1]),
  // (hOut, out, rstd, h, delta, w, rows, D, eps): the residual add and the next block's norm of a prompt
  addRmsnormForward: {
    ptrs: [
      [0, (a) => 4 * a[7]],
      [1, (a) => 4 * a[7]],
      [2, F4],
      [3, (a) => 4 * a[7]],
      [4, (a) => 4 * a[7]],
    ],
    count: 6,
    align: 1,
    work: (a) => a[7],
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
  // (out, a, b, M, N, K, beta, lda, ldb, ldo): by rows of out (the taped forward's products, ops.ts)
  matmulNNStrided: {
    ptrs: [
      [0, (a) => 4 * a[9]],
      [1, (a) => 4 * a[7]],
    ],
    count: 3,
    align: 1,
    work: (a) => a[4] * a[5],
  },
  // (out, a, b, M, N, K, beta, lda, ldb, ldo): by rows of out, i.e. columns of a, in whole 4-row tiles (the weight gradient, ops.ts)
  matmulTNStrided: {
    ptrs: [
      [0, (a) => 4 * a[9]],
      [1, F4],
    ],
    count: 3,
    align: 4,
    work: (a) => a[4] * a[5],
  },
  // (out, x, rows, cols, ldo): by rows
  padRows: {
    ptrs: [
      [0, (a) => 4 * a[4]],
      [1, (a) => 4 * a[3]],
    ],
    count: 2,
    align: 1,
    work: (a) => a[3],
  },
  // (out, x, rows, cols, ldo): by rows of x, i.e. column ranges of out (16 at a time: whole cache lines)
  transpose: {
    ptrs: [
      [0, F4],
      [1, (a) => 4 * a[3]],
    ],
    count: 2,
    align: 16,
    work: (a) => a[3],
  },
  // prefill's Δ (delta, dtp, bias, M, ED) and gate (out, y, xz, M, ED): rows of ED, xz rows of 2·ED
  mambaDeltaPrefill: byRows(3, 4, [0, 1]),
  mambaGatePrefill: byRows(3, 4, [0, 1], [2]),
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

/** A split whose `sums` arguments (with their size in floats) are sums over all units: those get per-group partials. */
interface GroupSplit extends Split {
  sums: readonly (readonly [number, (a: readonly number[]) => number])[];
}

const GROUPED: Partial<Record<WasmKernelName, GroupSplit>> = {
  // (dx, dw, dbias, dout, x, w, B, L, C, K): by streams; dw (C, K) and dbias (C) sum over them
  conv1dBackward: {
    ptrs: [0, 3, 4].map((i) => [i, (a: readonly number[]) => 4 * a[7] * a[8]] as const),
    count: 6,
    align: 1,
    work: (a) => a[7] * a[8] * a[9],
    sums: [
      [1, (a) => a[8] * a[9]],
      [2, (a) => a[8]],
    ],
  },
  // (ddt, dbias, dout, dt, bias, rows, H, lo, hi): by rows; dbias (H) sums over them
  dtSoftplusBackward: {
    ptrs: [0, 2, 3].map((i) => [i, (a: readonly number[]) => 4 * a[6]] as const),
    count: 5,
    align: 1,
    work: (a) => a[6],
    sums: [[1, (a) => a[6]]],
  },
  // (dx, dw, dout, x, w, rstd, rows, D): by rows; dw (D) sums over them
  rmsnormBackward: {
    ptrs: [...[0, 2, 3].map((i) => [i, (a: readonly number[]) => 4 * a[7]] as const), [5, F4] as const],
    count: 6,
    align: 1,
    work: (a) => a[7],
    sums: [[1, (a) => a[7]]],
  },
};

/**
 * A grouped kernel: REDUCE_GROUPS row groups (fewer when there are fewer units), each with its own
 * zeroed partials of the summed outputs, run in rounds of one group per thread; then the partials
 * are added into those outputs in group order.
 */
function grouped(pool: ThreadPool, heap: Heap, w: WasmKernels, name: WasmKernelName, s: GroupSplit): (...a: number[]) => void {
  const T = pool.size,
    single = w[name] as unknown as (...a: number[]) => void;
  return (...args: number[]) => {
    const n = args[s.count],
      G = Math.min(REDUCE_GROUPS, n);
    if (G < 2) return single(...args);
    const groups = splitRange(n, G),
      sizes = s.sums.map(([, f]) => f(args)),
      parts = sizes.map((k) => heap.alloc(G * k * 4)); // zero-filled
    const job = (g: number): number[] => {
      const j = args.slice();
      for (const [i, step] of s.ptrs) j[i] = args[i] + groups[g][0] * step(args);
      s.sums.forEach(([i], k) => {
        j[i] = parts[k] + g * sizes[k] * 4;
      });
      j[s.count] = groups[g][1] - groups[g][0];
      return j;
    };
    try {
      if (T === 1 || n * s.work(args) < MIN_PARALLEL_ELEMENTS) for (let g = 0; g < G; g++) single(...job(g));
      else {
        const owner = splitRange(G, Math.min(T, G)); // thread t runs groups owner[t], one a round
        const rounds = Math.max(...owner.map(([a, b]) => b - a));
        for (let k = 0; k < rounds; k++)
          pool.run(
            Array.from({ length: T }, (_, t): Job => {
              const g = t < owner.length ? owner[t][0] + k : -1;
              return g < 0 || g >= owner[t][1] ? null : ({ name, args: job(g) } as unknown as Job);
            }),
          );
      }
      s.sums.forEach(([i], k) => w.accumulatePartials(args[i], parts[k], G, sizes[k], sizes[k]));
    } finally {
      for (const p of parts) heap.release(p);
    }
  };
}

/**
 * One kernel run over the split's ranges: chunks (about CHUNKS_PER_THREAD a thread, at the split's
 * alignment) that the threads claim as they go, so a thread the OS has set aside does not hold the
 * others at the join; one range per thread when there are too few units for that.
 */
function threaded(pool: ThreadPool, name: WasmKernelName, s: Split, single: (...a: number[]) => void): (...a: number[]) => void {
  const T = pool.size;
  return (...args: number[]) => {
    const n = args[s.count];
    if (T === 1 || n * s.work(args) < MIN_PARALLEL_ELEMENTS || n < 2 * s.align) return single(...args);
    const size = s.align * Math.ceil(n / (s.align * CHUNKS_PER_THREAD * T));
    if (Math.ceil(n / size) >= T) {
      const moves = Object.fromEntries(s.ptrs.map(([i, step]) => [i, step(args)]));
      // the chunks carry the arguments of `name` with some offsets moved: the same kernel's own shape
      return pool.runChunked(chunkedJob(name, args as unknown as Parameters<WasmKernels[typeof name]>, moves, s.count, n, size));
    }
    const r = splitRange(n, T, s.align);
    const jobs = r.map(([a, b]): Job => {
      if (a === b) return null;
      const j = args.slice();
      for (const [i, step] of s.ptrs) j[i] = args[i] + a * step(args);
      j[s.count] = b - a;
      return { name, args: j } as unknown as Job;
    });
    pool.run(jobs);
  };
}

/** The threaded stand-ins of the kernels in SPLITS and GROUPED, typed as the kernels they replace. */
export function threadedTrainKernels(pool: ThreadPool, w: WasmKernels, heap: Heap): Partial<WasmKernels> {
  const out: Partial<Record<WasmKernelName, unknown>> = {};
  for (const [name, s] of Object.entries(SPLITS) as [WasmKernelName, Split][]) {
    out[name] = threaded(pool, name, s, w[name] as unknown as (...a: number[]) => void);
  }
  for (const [name, s] of Object.entries(GROUPED) as [WasmKernelName, GroupSplit][]) out[name] = grouped(pool, heap, w, name, s);
  return out as Partial<WasmKernels>;
}
