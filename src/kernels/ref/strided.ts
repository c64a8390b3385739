import type { F } from './types.js';
import { scanBackward, scanForward } from './scan.js';
import { QK } from './quant.js';

/**
 * Twins of the wasm kernels that worker threads use to compute one block of a larger output
 * (src/kernels/parallel.ts): the same products and scans on sub-ranges, with the row lengths of the
 * full matrices (lda/ldb/ldo, in elements). The arrays passed here start at the block's first
 * element, exactly as the wasm kernels receive offsets.
 */

/** out (M, N; rows ldo apart) = beta·out + a (M, K) @ b (N, K)^T */
export function matmulNTStrided(out: F, a: F, b: F, M: number, N: number, K: number, beta: number, ldo: number): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[j * K + k];
      out[i * ldo + j] = beta === 0 ? s : out[i * ldo + j] + s;
    }
}

/** out (M, N; rows ldo apart) = beta·out + a (M, K; rows lda apart) @ b (K, N; rows ldb apart) */
export function matmulNNStrided(
  out: F,
  a: F,
  b: F,
  M: number,
  N: number,
  K: number,
  beta: number,
  lda: number,
  ldb: number,
  ldo: number,
): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * lda + k] * b[k * ldb + j];
      out[i * ldo + j] = beta === 0 ? s : out[i * ldo + j] + s;
    }
}

/** out (M, N; rows ldo apart) = beta·out + a (K, M; rows lda apart)^T @ b (K, N; rows ldb apart) */
export function matmulTNStrided(
  out: F,
  a: F,
  b: F,
  M: number,
  N: number,
  K: number,
  beta: number,
  lda: number,
  ldb: number,
  ldo: number,
): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[k * lda + i] * b[k * ldb + j];
      out[i * ldo + j] = beta === 0 ? s : out[i * ldo + j] + s;
    }
}

/** dst (n) += Σ_g partials[g·ld …], g in order */
export function accumulatePartials(dst: F, partials: F, G: number, n: number, ld: number): void {
  for (let i = 0; i < n; i++) {
    let s = dst[i];
    for (let g = 0; g < G; g++) s += partials[g * ld + i];
    dst[i] = s;
  }
}

/** scanForward restricted to the (batch, channel) pairs c = b·ED + d in [c0, c1). */
export function scanForwardRange(
  y: F,
  h: F,
  hck: F | null,
  x: F,
  delta: F,
  A: F,
  Bm: F,
  Cm: F,
  D: F,
  B: number,
  L: number,
  ED: number,
  N: number,
  chunk: number,
  c0: number,
  c1: number,
): void {
  // run the full scan on a copy and keep only the pairs in range: a plain statement of the contract
  const Ctor = y.constructor as { new (n: number): F };
  const yy = Ctor === Float64Array ? Float64Array.from(y) : Float32Array.from(y);
  const hh = Ctor === Float64Array ? Float64Array.from(h) : Float32Array.from(h);
  const nChunks = Math.ceil(L / chunk);
  const ck = hck === null ? null : Ctor === Float64Array ? Float64Array.from(hck) : Float32Array.from(hck);
  scanForward(yy, hh, ck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk);
  for (let c = c0; c < c1; c++) {
    const b = Math.floor(c / ED),
      d = c % ED;
    for (let t = 0; t < L; t++) y[(b * L + t) * ED + d] = yy[(b * L + t) * ED + d];
    for (let n = 0; n < N; n++) h[c * N + n] = hh[c * N + n];
    if (hck !== null && ck !== null)
      for (let k = 0; k < nChunks; k++)
        for (let n = 0; n < N; n++) {
          const o = ((b * nChunks + k) * ED + d) * N + n;
          hck[o] = ck[o];
        }
  }
}

/** scanBackward restricted to channels [d0, d1): their dx, ddelta, dA, dD, dh0, and their share of dB, dC. */
export function scanBackwardRange(
  dx: F,
  ddelta: F,
  dA: F,
  dB: F,
  dC: F,
  dD: F,
  dh0: F | null,
  dy: F,
  x: F,
  delta: F,
  A: F,
  Bm: F,
  Cm: F,
  D: F,
  hck: F,
  work: F,
  B: number,
  L: number,
  ED: number,
  N: number,
  chunk: number,
  d0: number,
  d1: number,
): void {
  // zero dy outside the range: the other channels then contribute nothing to dB and dC, and
  // their own outputs are restored afterwards
  const Ctor = dy.constructor as { new (n: number): F };
  const dyr = new Ctor(dy.length);
  for (let i = 0; i < dy.length; i++) {
    const d = i % ED;
    if (d >= d0 && d < d1) dyr[i] = dy[i];
  }
  const keep = [dx, ddelta].map((t) => (Ctor === Float64Array ? Float64Array.from(t) : Float32Array.from(t)));
  const keepA = Ctor === Float64Array ? Float64Array.from(dA) : Float32Array.from(dA);
  const keepD = Ctor === Float64Array ? Float64Array.from(dD) : Float32Array.from(dD);
  scanBackward(dx, ddelta, dA, dB, dC, dD, dh0, dyr, x, delta, A, Bm, Cm, D, hck, work, B, L, ED, N, chunk);
  for (let i = 0; i < dx.length; i++) {
    const d = i % ED;
    if (d < d0 || d >= d1) {
      dx[i] = keep[0][i];
      ddelta[i] = keep[1][i];
    }
  }
  for (let d = 0; d < ED; d++)
    if (d < d0 || d >= d1) {
      dD[d] = keepD[d];
      for (let n = 0; n < N; n++) dA[d * N + n] = keepA[d * N + n];
    }
}

/**
 * out (M, N; rows ldo apart) = Σ_blocks (sw·sx) · dot(i, j, b): the shape both quantised products
 * share, `dot` the exact integer dot of block b of activation row i and weight row j.
 */
function quantProduct(
  out: F,
  sx: F,
  sw: F,
  M: number,
  N: number,
  K: number,
  ldo: number,
  dot: (i: number, j: number, b: number) => number,
): void {
  const nb = K / QK;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let b = 0; b < nb; b++) acc += Math.fround(sw[j * nb + b] * sx[i * nb + b]) * dot(i, j, b);
      out[i * ldo + j] = acc;
    }
}

/** out (M, N; rows ldo apart) = x (M, K) @ W (N, K)^T, q8 weights, q8 activations */
export function matmulQ8Strided(out: F, qx: Int8Array, sx: F, qw: Int8Array, sw: F, M: number, N: number, K: number, ldo: number): void {
  quantProduct(out, sx, sw, M, N, K, ldo, (i, j, b) => {
    let isum = 0;
    for (let k = 0; k < QK; k++) isum += qx[i * K + b * QK + k] * qw[j * K + b * QK + k];
    return isum;
  });
}

/** out (M, N; rows ldo apart) = x (M, K) @ W (N, K)^T, q4 weights (nibbles), q8 activations */
export function matmulQ4Strided(out: F, qx: Int8Array, sx: F, qw: Uint8Array, sw: F, M: number, N: number, K: number, ldo: number): void {
  quantProduct(out, sx, sw, M, N, K, ldo, (i, j, b) => {
    let isum = 0;
    const xo = i * K + b * QK,
      wo = (j * K + b * QK) / 2;
    for (let k = 0; k < QK / 2; k++) isum += qx[xo + k] * ((qw[wo + k] & 15) - 8) + qx[xo + k + QK / 2] * ((qw[wo + k] >> 4) - 8);
    return isum;
  });
}
