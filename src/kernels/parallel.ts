import type { Heap } from '../tensor/index.js';
import type { WasmKernelName, WasmKernels } from './wasm/index.js';
import type { ChunkedJob, Job, ThreadPool } from './threads.js';
import { CHUNKS_PER_THREAD, chunkedJob, splitRange } from './threads.js';
import { ssdWorkSize } from './ssd-work.js';
import { threadedTrainKernels } from './parallel-train.js';
import { PREP_BLOCK_BYTES } from './ref/quant4x4.js';

/**
 * Threaded versions of the heavy wasm kernels, each typed as the kernel it stands in for. Work is
 * split over OUTPUTS, never over a reduction, so every thread count gives bit for bit the
 * single-thread answer:
 * - matmuls: by rows of the output, or (when there are fewer rows than threads, as in decoding) by
 *   columns at multiples of 4 through the strided kernels (see assembly/matmul.ts for why that is exact);
 * - scan forward and Mamba-1's fused decoding step: by (batch, channel) pairs; its conv step, for
 *   a batch of streams, by streams;
 * - scan backward: by a FIXED number of channel groups (independent of the thread count), each with
 *   its own dB/dC partial buffers, added afterwards in group order. One thread does the same.
 * - Mamba-2's chunked SSD: by streams (each stream's outputs are its own); its backward by a FIXED
 *   number of stream groups, each with its own dA/dD partials, added in group order.
 * Small problems run on the calling thread: waking workers costs more than they save.
 */
export const MIN_PARALLEL_FLOPS = 1 << 16;
/** Channel groups of the scan backward: part of the arithmetic, so fixed, not the thread count. */
export const SCAN_GROUPS = 8;
/** Stream groups of the SSD backward (fixed for the same reason). */
export const SSD_GROUPS = 8;

/** What each threaded kernel needs: the thread count, the single-thread kernels, one job per thread, or chunks claimed as the threads go. */
interface Pool {
  T: number;
  w: WasmKernels;
  jobs: (make: (t: number) => Job) => void;
  chunked: <K extends WasmKernelName>(job: ChunkedJob<K>) => void;
}

/**
 * Width of the column chunks of an (M ≥ threads) product whose kernel keeps blocks of `block`
 * weight rows hot: at most one such block (so the chunk is one pass of the kernel's own loop), a
 * multiple of 4 (so every element takes the path it takes in one call), and at least 16; 0 when N
 * is too narrow for CHUNKS_PER_THREAD chunks a thread, and the rows are chunked instead. Among the
 * widths down to half the largest, the first whose chunks come out as a multiple of the threads
 * with a last chunk at least 3/4 full: the threads claim chunks as they go, so equal chunks, as
 * many for each, end together (at 2 threads, out_proj's 768 columns in 40s left one thread idle for
 * half a chunk at the end of every layer: 20 chunks, the last of 8 columns; 24 of 32 do not).
 */
export function columnChunk(N: number, T: number, block: number): number {
  const most = Math.min(block & ~3, Math.floor(N / (CHUNKS_PER_THREAD * T)) & ~3);
  if (most < 16) return 0;
  for (let w = most; w >= Math.max(16, most / 2); w -= 4) {
    const n = Math.ceil(N / w),
      last = N - (n - 1) * w;
    if (n % T === 0 && 4 * last >= 3 * w) return w;
  }
  return most;
}

/** Rows per chunk: a multiple of the kernel's row tile, about CHUNKS_PER_THREAD chunks a thread. */
export function rowChunk(M: number, T: number, tile: number): number {
  return tile * Math.max(1, Math.ceil(M / (tile * CHUNKS_PER_THREAD * T)));
}

/** The f32 NT product's block of b rows (assembly/matmul.ts ntBlock). */
const ntBlock = (K: number) => Math.max(16, Math.floor(65536 / Math.max(K, 1)) & ~3);
/** The quantised products' block of weight rows (assembly/quant.ts qBlock), by bytes per weight row. */
const qBlock = (rowBytes: number) => Math.max(4, Math.floor(131072 / Math.max(rowBytes, 1)));

export function threadedKernels(pool: ThreadPool, w: WasmKernels, heap: Heap): Partial<WasmKernels> {
  const p: Pool = {
    T: pool.size,
    w,
    jobs: (make) => pool.run(Array.from({ length: pool.size }, (_, t) => make(t))),
    chunked: (job) => pool.runChunked(job),
  };
  const scanForward = threadedScanForward(p);
  return {
    ...threadedTrainKernels(pool, w, heap),
    matmulNT: threadedMatmulNT(p),
    matmulNTP4: threadedMatmulNT(p, 'matmulNTP4'),
    matmulNN: threadedGemmAB(p, 'matmulNNStrided', w.matmulNN),
    matmulTN: threadedGemmAB(p, 'matmulTNStrided', w.matmulTN),
    matmulQ8: threadedMatmulQ(p, w.matmulQ8, 'matmulQ8Strided', (K) => K),
    matmulQ4: threadedMatmulQ(p, w.matmulQ4, 'matmulQ4Strided', (K) => K / 2),
    matmulQ4x4: threadedMatmulX4(p, 'matmulQ4x4Strided', (K) => K / 2),
    matmulQ8x4: threadedMatmulX4(p, 'matmulQ8x4Strided', (K) => K),
    quantizeQ8: threadedRows(p, 'quantizeQ8', (K) => [K, (K / 32) * 4, K * 4]),
    prepQ8x4: threadedRows(p, 'prepQ8x4', (K) => [(K / 32) * PREP_BLOCK_BYTES, K, (K / 32) * 4]),
    prepQ4x4: threadedRows(p, 'prepQ4x4', (K) => [(K / 32) * PREP_BLOCK_BYTES, K, (K / 32) * 4]),
    scanForward,
    scanStep: (y, h, x, delta, A, Bm, Cm, D, B, ED, N) => scanForward(y, h, 0, x, delta, A, Bm, Cm, D, B, 1, ED, N, 1),
    scanBackward: threadedScanBackward(p, heap),
    mambaScanStep: threadedMambaScanStep(p),
    mambaConvStep: threadedMambaConvStep(p),
    ssdChunkForward: threadedSsdForward(p, heap),
    ssdChunkBackward: threadedSsdBackward(p, heap),
  };
}

/**
 * The f32 NT product, with b in the row layout (`matmulNT`) or in panels of four rows
 * (`matmulNTP4`): a panel starts where its first row starts, so both split alike.
 */
function threadedMatmulNT({ T, w, jobs, chunked }: Pool, name: 'matmulNT' | 'matmulNTP4' = 'matmulNT'): WasmKernels['matmulNT'] {
  const strided = name === 'matmulNT' ? 'matmulNTStrided' : 'matmulNTP4Strided';
  const single = w[name];
  return (out, a, b, M, N, K, beta) => {
    if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return single(out, a, b, M, N, K, beta);
    if (M >= T) {
      // a prompt's projections: chunks of columns (weight rows, read once in all), or of rows when N is narrow
      const cw = columnChunk(N, T, ntBlock(K));
      if (cw > 0) return chunked(chunkedJob(strided, [out, a, b, M, N, K, beta, N], { 0: 4, 2: K * 4 }, 4, N, cw));
      if (M >= T * rowChunk(M, T, 2))
        return chunked(chunkedJob(name, [out, a, b, M, N, K, beta], { 0: N * 4, 1: K * 4 }, 3, M, rowChunk(M, T, 2)));
      // a few rows of a narrow product (a small batch of streams): one share each
      const r = splitRange(M, T);
      return jobs((t) => ({ name, args: [out + r[t][0] * N * 4, a + r[t][0] * K * 4, b, r[t][1] - r[t][0], N, K, beta] }));
    }
    const c = splitRange(N, T, 4);
    return jobs((t) => ({ name: strided, args: [out + c[t][0] * 4, a, b + c[t][0] * K * 4, M, c[t][1] - c[t][0], K, beta, N] }));
  };
}

/** out (M,N) = a·b with A[i,k] at a + i·sa + k·sk: split rows when there are enough, else columns */
function threadedGemmAB(
  { T, jobs, chunked }: Pool,
  name: 'matmulNNStrided' | 'matmulTNStrided',
  single: WasmKernels['matmulNN'],
): WasmKernels['matmulNN'] {
  const lda = (M: number, K: number) => (name === 'matmulNNStrided' ? K : M); // NN: a (M,K) rows of K; TN: a (K,M) rows of M
  return (out, a, b, M, N, K, beta) => {
    if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return single(out, a, b, M, N, K, beta);
    const rowStep = name === 'matmulNNStrided' ? K * 4 : 4;
    if (M >= T * rowChunk(M, T, 4)) {
      // chunks of rows in whole 4-row tiles of the kernel, claimed as the threads go
      return chunked(chunkedJob(name, [out, a, b, M, N, K, beta, lda(M, K), N, N], { 0: N * 4, 1: rowStep }, 3, M, rowChunk(M, T, 4)));
    }
    if (M >= T) {
      const r = splitRange(M, T);
      return jobs((t) => ({
        name,
        args: [out + r[t][0] * N * 4, a + r[t][0] * rowStep, b, r[t][1] - r[t][0], N, K, beta, lda(M, K), N, N],
      }));
    }
    const c = splitRange(N, T, 4);
    return jobs((t) => ({ name, args: [out + c[t][0] * 4, a, b + c[t][0] * 4, M, c[t][1] - c[t][0], K, beta, lda(M, K), N, N] }));
  };
}

/** Quantised products: rows of the output, or columns (weight rows) when there are few rows. */
function threadedMatmulQ(
  { T, jobs, chunked }: Pool,
  single: WasmKernels['matmulQ8'],
  name: 'matmulQ8Strided' | 'matmulQ4Strided',
  wRowBytes: (K: number) => number,
): WasmKernels['matmulQ8'] {
  return (out, qx, sx, qw, sw, M, N, K) => {
    if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return single(out, qx, sx, qw, sw, M, N, K);
    const nb = K / 32;
    if (M >= T) {
      const cw = columnChunk(N, T, qBlock(wRowBytes(K)));
      if (cw > 0) return chunked(chunkedJob(name, [out, qx, sx, qw, sw, M, N, K, N], { 0: 4, 3: wRowBytes(K), 4: nb * 4 }, 6, N, cw));
      if (M >= T * rowChunk(M, T, 4))
        return chunked(chunkedJob(name, [out, qx, sx, qw, sw, M, N, K, N], { 0: N * 4, 1: K, 2: nb * 4 }, 5, M, rowChunk(M, T, 4)));
      const r = splitRange(M, T);
      return jobs((t) => ({
        name,
        args: [out + r[t][0] * N * 4, qx + r[t][0] * K, sx + r[t][0] * nb * 4, qw, sw, r[t][1] - r[t][0], N, K, N],
      }));
    }
    const c = splitRange(N, T, 2);
    return jobs((t) => ({
      name,
      args: [out + c[t][0] * 4, qx, sx, qw + c[t][0] * wRowBytes(K), sw + c[t][0] * nb * 4, M, c[t][1] - c[t][0], K, N],
    }));
  };
}

/**
 * Products with packed weights (groups of four rows): as threadedMatmulQ, with every split of the
 * weight rows at a multiple of 4. A weight row's share of a group is its row's bytes (K/2 for q4,
 * K for q8) and K/32 scales, as in the row layout, so a split at row 4g starts at the same offsets.
 */
function threadedMatmulX4(
  { T, w, jobs, chunked }: Pool,
  name: 'matmulQ4x4Strided' | 'matmulQ8x4Strided',
  wRowBytes: (K: number) => number,
): WasmKernels['matmulQ4x4'] {
  const single = name === 'matmulQ4x4Strided' ? w.matmulQ4x4 : w.matmulQ8x4;
  return (out, prep, qw, sw, M, N, K) => {
    if (T === 1 || M * N * K < MIN_PARALLEL_FLOPS) return single(out, prep, qw, sw, M, N, K);
    const nb = K / 32,
      rowW = wRowBytes(K);
    const args: Parameters<WasmKernels['matmulQ4x4Strided']> = [out, prep, qw, sw, M, N, K, N];
    if (M >= T) {
      const cw = columnChunk(N, T, qBlock(rowW + nb * 4));
      if (cw > 0) return chunked(chunkedJob(name, args, { 0: 4, 2: rowW, 3: nb * 4 }, 5, N, cw));
      return chunked(chunkedJob(name, args, { 0: N * 4, 1: nb * 288 }, 4, M, rowChunk(M, T, 2)));
    }
    const c = splitRange(N, T, 4);
    return jobs((t) => ({ name, args: [out + c[t][0] * 4, prep, qw + c[t][0] * rowW, sw + c[t][0] * nb * 4, M, c[t][1] - c[t][0], K, N] }));
  };
}

function threadedScanForward({ T, w, jobs, chunked }: Pool): WasmKernels['scanForward'] {
  return (y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk) => {
    if (T === 1 || B * L * ED * N < MIN_PARALLEL_FLOPS) return w.scanForward(y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk);
    if (L === 1) {
      // a decoding step: too little work a thread to pay for claiming chunks
      const r = splitRange(B * ED, T);
      return jobs((t) => ({ name: 'scanForwardRange', args: [y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk, r[t][0], r[t][1]] }));
    }
    // a prompt or a training batch: (stream, channel) pairs [start, start + count) in chunks of a multiple of 4
    const args: Parameters<WasmKernels['scanForwardRange']> = [y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk, 0, 0];
    return chunked(chunkedJob('scanForwardRange', args, { 14: 1, 15: 1 }, 15, B * ED, rowChunk(B * ED, T, 4)));
  };
}

/**
 * A quantised product's per-row preparation of its activations (quantizeQ8, then prepQ8x4 or
 * prepQ4x4 for packed weights) by rows: every row's output is its own, so any split gives the same
 * bytes. `strides` gives each of the three arrays' bytes per row. In a prompt these ran on one
 * thread while the products used all of them (14% of a 128-token q8 prefill at 2 threads).
 */
function threadedRows(
  { T, w, jobs }: Pool,
  name: 'quantizeQ8' | 'prepQ8x4' | 'prepQ4x4',
  strides: (K: number) => [number, number, number],
): WasmKernels['quantizeQ8'] {
  const single = w[name];
  return (a, b, c, rows, K) => {
    // a few operations a value
    if (T === 1 || rows < T || rows * K * 8 < MIN_PARALLEL_FLOPS) return single(a, b, c, rows, K);
    const r = splitRange(rows, T),
      [sa, sb, sc] = strides(K);
    return jobs((t) => ({ name, args: [a + r[t][0] * sa, b + r[t][0] * sb, c + r[t][0] * sc, r[t][1] - r[t][0], K] }));
  };
}

/**
 * Mamba-1's conv step (and its SiLU) for a batch of streams, by streams: each stream's window,
 * outputs and SiLU are its own. One stream stays on the calling thread (a decoding token has enough
 * synchronisation points already, and its conv step is a few microseconds).
 */
function threadedMambaConvStep({ T, w, jobs }: Pool): WasmKernels['mambaConvStep'] {
  return (xc, state, xz, cw, bias, B, ED, K) => {
    // K multiply-adds a channel, and about 24 flops of SiLU
    if (T === 1 || B < T || B * ED * (2 * K + 24) < MIN_PARALLEL_FLOPS) return w.mambaConvStep(xc, state, xz, cw, bias, B, ED, K);
    const r = splitRange(B, T);
    return jobs((t) => ({
      name: 'mambaConvStep',
      args: [xc + r[t][0] * ED * 4, state + r[t][0] * ED * K * 4, xz + r[t][0] * 2 * ED * 4, cw, bias, r[t][1] - r[t][0], ED, K],
    }));
  };
}

/** Mamba-1's fused decoding step by (stream, channel) pairs: each pair's outputs are its own. */
function threadedMambaScanStep({ T, w, jobs }: Pool): WasmKernels['mambaScanStep'] {
  return (out, delta, h, xc, xdbl, xz, dtW, dtBias, A, D, B, ED, N, R) => {
    // about 8 flops per state element (exp's polynomial included) and 2 per dt_proj weight
    if (T === 1 || B * ED * (8 * N + 2 * R) < MIN_PARALLEL_FLOPS)
      return w.mambaScanStep(out, delta, h, xc, xdbl, xz, dtW, dtBias, A, D, B, ED, N, R);
    const r = splitRange(B * ED, T);
    return jobs((t) => ({
      name: 'mambaScanStepRange',
      args: [out, delta, h, xc, xdbl, xz, dtW, dtBias, A, D, B, ED, N, R, r[t][0], r[t][1]],
    }));
  };
}

/** The scan backward over SCAN_GROUPS channel groups, each with its own dB/dC partials, summed in group order. */
function threadedScanBackward({ T, w, jobs }: Pool, heap: Heap): WasmKernels['scanBackward'] {
  return (dx, ddelta, dA, dB, dC, dD, dh0, dy, x, delta, A, Bm, Cm, D, hck, _work, B, L, ED, N, chunk) => {
    const G = Math.min(SCAN_GROUPS, ED);
    const n = B * L * N;
    const groups = splitRange(ED, G);
    const partBytes = n * 4 * G;
    const dBp = heap.alloc(partBytes),
      dCp = heap.alloc(partBytes); // zero-filled
    const workBytes = (2 * chunk + 1) * N * 4;
    const work = heap.alloc(workBytes * G);
    const args = (g: number): Parameters<WasmKernels['scanBackwardRange']> => [
      dx,
      ddelta,
      dA,
      dBp + g * n * 4,
      dCp + g * n * 4,
      dD,
      dh0,
      dy,
      x,
      delta,
      A,
      Bm,
      Cm,
      D,
      hck,
      work + g * workBytes,
      B,
      L,
      ED,
      N,
      chunk,
      groups[g][0],
      groups[g][1],
    ];
    try {
      const owner = splitRange(G, Math.min(T, G)); // thread t runs groups owner[t]
      if (T === 1 || B * L * ED * N < MIN_PARALLEL_FLOPS) {
        for (let g = 0; g < G; g++) w.scanBackwardRange(...args(g));
      } else {
        // one job per thread may span several groups: hand them out as successive rounds
        const rounds = Math.max(...owner.map(([a, b]) => b - a));
        for (let k = 0; k < rounds; k++) {
          jobs((t) => {
            const g = t < owner.length ? owner[t][0] + k : -1;
            return g < 0 || g >= owner[t][1] ? null : { name: 'scanBackwardRange', args: args(g) };
          });
        }
      }
      const e = splitRange(n, T === 1 || n < MIN_PARALLEL_FLOPS ? 1 : T, 4);
      if (e.length === 1) {
        w.accumulatePartials(dB, dBp, G, n, n);
        w.accumulatePartials(dC, dCp, G, n, n);
      } else {
        jobs((t) => ({ name: 'accumulatePartials', args: [dB + e[t][0] * 4, dBp + e[t][0] * 4, G, e[t][1] - e[t][0], n] }));
        jobs((t) => ({ name: 'accumulatePartials', args: [dC + e[t][0] * 4, dCp + e[t][0] * 4, G, e[t][1] - e[t][0], n] }));
      }
    } finally {
      heap.release(work);
      heap.release(dCp);
      heap.release(dBp);
    }
  };
}

/** Byte offsets of stream b0 in the SSD's batch-major arrays. */
function ssdOffsets(b0: number, L: number, H: number, P: number, G: number, N: number, nC: number) {
  return { x: b0 * L * H * P * 4, dt: b0 * L * H * 4, bc: b0 * L * G * N * 4, h: b0 * H * P * N * 4, ck: b0 * nC * H * P * N * 4 };
}

/** The SSD forward over streams: each thread runs its own streams with its own work buffer (bit for bit one call's). */
function threadedSsdForward({ T, w, jobs }: Pool, heap: Heap): WasmKernels['ssdChunkForward'] {
  return (y, h, hck, x, delta, A, Bm, Cm, D, work, B, L, H, P, G, N, Q) => {
    if (T === 1 || B < 2) return w.ssdChunkForward(y, h, hck, x, delta, A, Bm, Cm, D, work, B, L, H, P, G, N, Q);
    const r = splitRange(B, Math.min(T, B)),
      nC = Math.ceil(L / Q);
    const bytes = ssdWorkSize(Math.max(...r.map(([a, b]) => b - a)), H, P, N, Q) * 4;
    const works = r.map(() => heap.alloc(bytes));
    try {
      jobs((t) => {
        if (t >= r.length || r[t][1] === r[t][0]) return null;
        const o = ssdOffsets(r[t][0], L, H, P, G, N, nC);
        const args: Parameters<WasmKernels['ssdChunkForward']> = [
          y + o.x,
          h + o.h,
          hck === 0 ? 0 : hck + o.ck,
          x + o.x,
          delta + o.dt,
          A,
          Bm + o.bc,
          Cm + o.bc,
          D,
          works[t],
          r[t][1] - r[t][0],
          L,
          H,
          P,
          G,
          N,
          Q,
        ];
        return { name: 'ssdChunkForward', args };
      });
    } finally {
      for (const a of works) heap.release(a);
    }
  };
}

/** The SSD backward over SSD_GROUPS stream groups, each with its own dA/dD partials, summed in group order. */
function threadedSsdBackward({ T, w, jobs }: Pool, heap: Heap): WasmKernels['ssdChunkBackward'] {
  return (dx, ddelta, dA, dB, dC, dD, dh0, dy, x, delta, A, Bm, Cm, D, hck, _work, B, L, H, P, G, N, Q) => {
    const NG = Math.min(SSD_GROUPS, B),
      groups = splitRange(B, NG),
      nC = Math.ceil(L / Q);
    const workBytes = ssdWorkSize(Math.max(...groups.map(([a, b]) => b - a)), H, P, N, Q) * 4;
    const dAp = heap.alloc(NG * H * 4),
      dDp = heap.alloc(NG * H * 4); // zero-filled
    const work = heap.alloc(workBytes * NG);
    const args = (g: number): Parameters<WasmKernels['ssdChunkBackward']> => {
      const o = ssdOffsets(groups[g][0], L, H, P, G, N, nC);
      return [
        dx + o.x,
        ddelta + o.dt,
        dAp + g * H * 4,
        dB + o.bc,
        dC + o.bc,
        dDp + g * H * 4,
        dh0 === 0 ? 0 : dh0 + o.h,
        dy + o.x,
        x + o.x,
        delta + o.dt,
        A,
        Bm + o.bc,
        Cm + o.bc,
        D,
        hck + o.ck,
        work + g * workBytes,
        groups[g][1] - groups[g][0],
        L,
        H,
        P,
        G,
        N,
        Q,
      ];
    };
    try {
      if (T === 1) for (let g = 0; g < NG; g++) w.ssdChunkBackward(...args(g));
      else {
        const owner = splitRange(NG, Math.min(T, NG));
        const rounds = Math.max(...owner.map(([a, b]) => b - a));
        for (let k = 0; k < rounds; k++) {
          jobs((t) => {
            const g = t < owner.length ? owner[t][0] + k : -1;
            return g < 0 || g >= owner[t][1] ? null : { name: 'ssdChunkBackward', args: args(g) };
          });
        }
      }
      w.accumulatePartials(dA, dAp, NG, H, H);
      w.accumulatePartials(dD, dDp, NG, H, H);
    } finally {
      heap.release(work);
      heap.release(dDp);
      heap.release(dAp);
    }
  };
}
