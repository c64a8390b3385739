import type { F } from './types.js';
import { matmulQ4Strided, matmulQ8Strided } from './strided.js';

/**
 * Block quantisation, after llama.cpp's q8_0 and q4_0 (blocks of QK = 32 values along K, one scale
 * per block; frugal keeps the scale in f32 rather than f16).
 * - q8: d = max|x| / 127, q = round(x · (1/d)) in [-127, 127] (half away from zero; 1/d and the
 *   product rounded to f32, so the wasm kernels quantise identically).
 * - q4: d = m / -8 where m is the value of largest magnitude (sign kept), q = min(15, floor(x/d + 8.5))
 *   stored as nibbles: byte j of a block holds element j (low nibble) and element j + 16 (high
 *   nibble), value = (nibble − 8)·d — llama.cpp's layout, so GGUF export is a copy.
 * Products with quantised weights quantise the activations to q8 per block as well and sum the
 * integer products of each block exactly, then scale: out = Σ_blocks (d_w·d_x)·Σ_k q_w·q_x.
 */
export const QK = 32;

/** Round half away from zero (C's roundf, as llama.cpp quantises), clamped to the int8 range. */
function roundAway(v: number): number {
  const r = Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
  return Math.max(-127, Math.min(127, r));
}

/** q (rows, K) int8, scales (rows, K/QK) <- x (rows, K); K a multiple of QK. */
export function quantizeQ8(q: Int8Array, scales: F, x: F, rows: number, K: number): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = r * K + b * QK;
      let amax = 0;
      for (let i = 0; i < QK; i++) amax = Math.max(amax, Math.abs(x[o + i]));
      const d = Math.fround(amax / 127),
        id = d !== 0 ? Math.fround(1 / d) : 0;
      scales[r * nb + b] = d;
      for (let i = 0; i < QK; i++) q[o + i] = roundAway(Math.fround(x[o + i] * id));
    }
  }
}

/** q (rows, K/2) packed nibbles, scales (rows, K/QK) <- x (rows, K) */
export function quantizeQ4(q: Uint8Array, scales: F, x: F, rows: number, K: number): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = r * K + b * QK;
      let amax = 0,
        m = 0;
      for (let i = 0; i < QK; i++)
        if (Math.abs(x[o + i]) > amax) {
          amax = Math.abs(x[o + i]);
          m = x[o + i];
        }
      const d = Math.fround(m / -8),
        id = d !== 0 ? Math.fround(1 / d) : 0;
      scales[r * nb + b] = d;
      const qo = (r * K + b * QK) / 2;
      for (let j = 0; j < QK / 2; j++) {
        const lo = Math.min(15, Math.floor(Math.fround(x[o + j] * id) + 8.5));
        const hi = Math.min(15, Math.floor(Math.fround(x[o + j + QK / 2] * id) + 8.5));
        q[qo + j] = lo | (hi << 4);
      }
    }
  }
}

/** out (rows, K) <- q8 values and scales */
export function dequantizeQ8(out: F, q: Int8Array, scales: F, rows: number, K: number): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) for (let k = 0; k < K; k++) out[r * K + k] = q[r * K + k] * scales[r * nb + Math.floor(k / QK)];
}

/** out (rows, K) <- q4 nibbles and scales */
export function dequantizeQ4(out: F, q: Uint8Array, scales: F, rows: number, K: number): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const d = scales[r * nb + b],
        qo = (r * K + b * QK) / 2,
        o = r * K + b * QK;
      for (let j = 0; j < QK / 2; j++) {
        out[o + j] = ((q[qo + j] & 15) - 8) * d;
        out[o + j + QK / 2] = ((q[qo + j] >> 4) - 8) * d;
      }
    }
  }
}

/**
 * out (M, N) = x (M, K) @ W (N, K)^T with W in q8 and x already quantised to q8 (qx, sx).
 * Per output: acc = Σ_b (d_w[j,b]·d_x[b])·isum_b, isum_b the exact integer dot of block b.
 */
export function matmulQ8(out: F, qx: Int8Array, sx: F, qw: Int8Array, sw: F, M: number, N: number, K: number): void {
  matmulQ8Strided(out, qx, sx, qw, sw, M, N, K, N);
}

/** out (M, N) = x (M, K) @ W (N, K)^T with W in q4 (nibbles) and x quantised to q8 (qx, sx). */
export function matmulQ4(out: F, qx: Int8Array, sx: F, qw: Uint8Array, sw: F, M: number, N: number, K: number): void {
  matmulQ4Strided(out, qx, sx, qw, sw, M, N, K, N);
}

/** out (n, D) <- rows ids (n) of a q8 table (V, D) */
export function embeddingQ8(out: F, q: Int8Array, scales: F, ids: Int32Array, n: number, D: number): void {
  const nb = D / QK;
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    for (let k = 0; k < D; k++) out[i * D + k] = q[r * D + k] * scales[r * nb + Math.floor(k / QK)];
  }
}

/** out (n, D) <- rows ids (n) of a q4 table (V, D) */
export function embeddingQ4(out: F, q: Uint8Array, scales: F, ids: Int32Array, n: number, D: number): void {
  const nb = D / QK;
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    for (let b = 0; b < nb; b++) {
      const d = scales[r * nb + b],
        qo = (r * D + b * QK) / 2,
        o = i * D + b * QK;
      for (let j = 0; j < QK / 2; j++) {
        out[o + j] = ((q[qo + j] & 15) - 8) * d;
        out[o + j + QK / 2] = ((q[qo + j] >> 4) - 8) * d;
      }
    }
  }
}
