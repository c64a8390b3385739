import type { F } from './types.js';

/**
 * f32 weights in panels of four rows, the layout inference products read on the wasm kernels
 * (assembly/matmul.ts explains why): a weight b (N, K), N and K multiples of 4, becomes N/4
 * panels of 4K floats; element (n, k) of b sits at panelIndex(n, k, K). Panel p starts where row
 * 4p starts in the row layout, so a block of columns starting at a multiple of 4 is the same
 * offset in both. Checkpoints and training always use the row layout.
 */
function panelIndex(n: number, k: number, K: number): number {
  return (n >> 2) * 4 * K + (k >> 2) * 16 + (n & 3) * 4 + (k & 3);
}

/** out (panels) ← b (N, K) in the row layout. */
export function packPanels4(out: F, b: F, N: number, K: number): void {
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[panelIndex(n, k, K)] = b[n * K + k];
}

/** out (N, K) in the row layout ← bp (panels). */
export function unpackPanels4(out: F, bp: F, N: number, K: number): void {
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[n * K + k] = bp[panelIndex(n, k, K)];
}

/** out (M, N; rows ldo apart) = beta·out + a (M, K) @ b (N, K)ᵀ with b in panels. */
export function matmulNTP4Strided(out: F, a: F, bp: F, M: number, N: number, K: number, beta: number, ldo: number): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * bp[panelIndex(j, k, K)];
      out[i * ldo + j] = beta === 0 ? s : out[i * ldo + j] + s;
    }
}

/** out (M, N) = beta·out + a (M, K) @ b (N, K)ᵀ with b in panels. */
export function matmulNTP4(out: F, a: F, bp: F, M: number, N: number, K: number, beta: number): void {
  matmulNTP4Strided(out, a, bp, M, N, K, beta, N);
}

/** out (n, D) ← rows ids (n) of a table (V, D) held in panels (the tied embedding and head). */
export function embeddingP4(out: F, table: F, ids: Int32Array, n: number, D: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) out[i * D + j] = table[panelIndex(ids[i], j, D)];
}
