import type { Heap } from '../tensor/index.js';
import type { WasmKernels } from './wasm/index.js';
import type { Job, ThreadPool } from './threads.js';
import { splitRange } from './threads.js';

/**
 * Threaded versions of the heavy wasm kernels. Work is split over OUTPUTS, never over a reduction,
 * so every thread count gives bit for bit the single-thread answer:
 * - matmuls: by rows of the output, or (when there are fewer rows than threads, as in decoding) by
 *   columns at multiples of 4 through the strided kernels (see assembly/matmul.ts for why that is exact);
 * - scan forward: by (batch, channel) pairs;
 * - scan backward: by a FIXED number of channel groups (independent of the thread count), each with
 *   its own dB/dC partial buffers, added afterwards in group order. One thread does the same.
 * Small problems run on the calling thread: waking workers costs more than they save.
 */
export const MIN_PARALLEL_FLOPS = 1 << 16;
/** Channel groups of the scan backward: part of the arithmetic, so fixed, not the thread count. */
export const SCAN_GROUPS = 8;

type Kernel = (...args: number[]) => void;

export function threadedKernels(pool: ThreadPool, w: WasmKernels, heap: Heap): Partial<Record<keyof WasmKernels, Kernel>> {
  const T = pool.size;
  const jobs = (make: (t: number) => Job) => pool.run(Array.from({ length: T }, (_, t) => make(t)));

  const matmulNT: Kernel = (out, a, b, M, N, K, beta) => {
    if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return w.matmulNT(out, a, b, M, N, K, beta);
    if (M >= T) {
      const r = splitRange(M, T);
      return jobs((t) => ({ name: 'matmulNT', args: [out + r[t][0] * N * 4, a + r[t][0] * K * 4, b, r[t][1] - r[t][0], N, K, beta] }));
    }
    const c = splitRange(N, T, 4);
    return jobs((t) => ({ name: 'matmulNTStrided', args: [out + c[t][0] * 4, a, b + c[t][0] * K * 4, M, c[t][1] - c[t][0], K, beta, N] }));
  };

  // out (M,N) = a·b with A[i,k] at a + i·sa + k·sk: split rows when there are enough, else columns
  const gemmAB = (name: 'matmulNNStrided' | 'matmulTNStrided', single: Kernel): Kernel => (out, a, b, M, N, K, beta) => {
    if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return single(out, a, b, M, N, K, beta);
    const lda = name === 'matmulNNStrided' ? K : M; // NN: a (M,K) rows of K; TN: a (K,M) rows of M
    const rowStep = name === 'matmulNNStrided' ? K * 4 : 4;
    if (M >= T) {
      const r = splitRange(M, T);
      return jobs((t) => ({ name, args: [out + r[t][0] * N * 4, a + r[t][0] * rowStep, b, r[t][1] - r[t][0], N, K, beta, lda, N, N] }));
    }
    const c = splitRange(N, T, 4);
    return jobs((t) => ({ name, args: [out + c[t][0] * 4, a, b + c[t][0] * 4, M, c[t][1] - c[t][0], K, beta, lda, N, N] }));
  };

  const scanForward: Kernel = (y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk) => {
    if (T === 1 || B * L * ED * N < MIN_PARALLEL_FLOPS) return w.scanForward(y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk);
    const r = splitRange(B * ED, T);
    return jobs((t) => ({ name: 'scanForwardRange', args: [y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk, r[t][0], r[t][1]] }));
  };

  const scanStep: Kernel = (y, h, x, delta, A, Bm, Cm, D, B, ED, N) =>
    scanForward(y, h, 0, x, delta, A, Bm, Cm, D, B, 1, ED, N, 1);

  const scanBackward: Kernel = (dx, ddelta, dA, dB, dC, dD, dh0, dy, x, delta, A, Bm, Cm, D, hck, _work, B, L, ED, N, chunk) => {
    const G = Math.min(SCAN_GROUPS, ED);
    const n = B * L * N;
    const groups = splitRange(ED, G);
    const partBytes = n * 4 * G;
    const dBp = heap.alloc(partBytes), dCp = heap.alloc(partBytes); // zero-filled
    const workBytes = (chunk + 1) * N * 4;
    const work = heap.alloc(workBytes * G);
    try {
      const owner = splitRange(G, Math.min(T, G)); // thread t runs groups owner[t]
      const run = (t: number) => {
        for (let g = owner[t][0]; g < owner[t][1]; g++) {
          w.scanBackwardRange(dx, ddelta, dA, dBp + g * n * 4, dCp + g * n * 4, dD, dh0, dy, x, delta, A, Bm, Cm, D, hck,
            work + g * workBytes, B, L, ED, N, chunk, groups[g][0], groups[g][1]);
        }
      };
      if (T === 1 || B * L * ED * N < MIN_PARALLEL_FLOPS) {
        for (let t = 0; t < owner.length; t++) run(t);
      } else {
        // one job per thread may span several groups: issue them as successive rounds
        const rounds = Math.max(...owner.map(([a, b]) => b - a));
        for (let k = 0; k < rounds; k++) {
          jobs((t) => {
            const g = t < owner.length ? owner[t][0] + k : -1;
            if (g < 0 || g >= owner[t][1]) return null;
            return { name: 'scanBackwardRange', args: [dx, ddelta, dA, dBp + g * n * 4, dCp + g * n * 4, dD, dh0, dy, x, delta, A, Bm, Cm, D,
              hck, work + g * workBytes, B, L, ED, N, chunk, groups[g][0], groups[g][1]] };
          });
        }
      }
      const e = splitRange(n, T === 1 || n < MIN_PARALLEL_FLOPS ? 1 : T, 4);
      if (e.length === 1) { w.accumulatePartials(dB, dBp, G, n, n); w.accumulatePartials(dC, dCp, G, n, n); }
      else {
        jobs((t) => ({ name: 'accumulatePartials', args: [dB + e[t][0] * 4, dBp + e[t][0] * 4, G, e[t][1] - e[t][0], n] }));
        jobs((t) => ({ name: 'accumulatePartials', args: [dC + e[t][0] * 4, dCp + e[t][0] * 4, G, e[t][1] - e[t][0], n] }));
      }
    } finally {
      heap.release(work); heap.release(dCp); heap.release(dBp);
    }
  };

  // quantised products: rows of the output, or columns (weight rows) when there are few rows
  const matmulQ = (single: Kernel, name: 'matmulQ8Strided' | 'matmulQ4Strided', wRowBytes: (K: number) => number): Kernel =>
    (out, qx, sx, qw, sw, M, N, K) => {
      if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return single(out, qx, sx, qw, sw, M, N, K);
      const nb = K / 32;
      if (M >= T) {
        const r = splitRange(M, T);
        return jobs((t) => ({ name, args: [out + r[t][0] * N * 4, qx + r[t][0] * K, sx + r[t][0] * nb * 4, qw, sw, r[t][1] - r[t][0], N, K, N] }));
      }
      const c = splitRange(N, T, 2);
      return jobs((t) => ({ name, args: [out + c[t][0] * 4, qx, sx, qw + c[t][0] * wRowBytes(K), sw + c[t][0] * nb * 4, M, c[t][1] - c[t][0], K, N] }));
    };

  return {
    matmulQ8: matmulQ(w.matmulQ8, 'matmulQ8Strided', (K) => K),
    matmulQ4: matmulQ(w.matmulQ4, 'matmulQ4Strided', (K) => K / 2),
    matmulNT,
    matmulNN: gemmAB('matmulNNStrided', w.matmulNN),
    matmulTN: gemmAB('matmulTNStrided', w.matmulTN),
    scanForward,
    scanStep,
    scanBackward,
  };
}
