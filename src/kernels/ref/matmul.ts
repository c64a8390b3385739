import type { F } from './types.js';

/**
 * Reference matrix products. Row-major; `beta` is 0 (overwrite) or 1 (accumulate into out).
 * Sums run over k in increasing order in a local accumulator, one output at a time.
 */

/** out (M,N) = beta·out + a (M,K) @ b (N,K)^T  — a linear layer: x @ W^T. */
export function matmulNT(out: F, a: F, b: F, M: number, N: number, K: number, beta: number): void {
  for (let i = 0; i < M; i++) {
    const ai = i * K;
    for (let j = 0; j < N; j++) {
      const bj = j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ai + k] * b[bj + k];
      out[i * N + j] = beta === 0 ? s : out[i * N + j] + s;
    }
  }
}

/** out (M,N) = beta·out + a (M,K) @ b (K,N)  — input gradient of a linear layer: dy @ W. */
export function matmulNN(out: F, a: F, b: F, M: number, N: number, K: number, beta: number): void {
  for (let i = 0; i < M; i++) {
    const ai = i * K;
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ai + k] * b[k * N + j];
      out[i * N + j] = beta === 0 ? s : out[i * N + j] + s;
    }
  }
}

/** out (M,N) = beta·out + a (K,M)^T @ b (K,N)  — weight gradient of a linear layer: dy^T @ x. */
export function matmulTN(out: F, a: F, b: F, M: number, N: number, K: number, beta: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[k * M + i] * b[k * N + j];
      out[i * N + j] = beta === 0 ? s : out[i * N + j] + s;
    }
  }
}

/**
 * out (cols, ldo) ← x (rows, cols)ᵀ in columns [0, rows) of each row (ldo ≥ rows): a weight laid
 * out for the NN product, its rows padded so that they do not lie a multiple of 4 KiB apart.
 */
export function transpose(out: F, x: F, rows: number, cols: number, ldo: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * ldo + r] = x[r * cols + c];
}

/** out (rows, ldo) ← x (rows, cols) in columns [0, cols) of each row (ldo ≥ cols), the rest untouched: an operand copied with padded rows. */
export function padRows(out: F, x: F, rows: number, cols: number, ldo: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * ldo + c] = x[r * cols + c];
}
