import type { F } from './types.js';

/**
 * Kernels of the transformer's KV-cache inference path (prefill in chunks, and `step` as a chunk of
 * one row). Attention over the cache is composed from the matrix kernels so that its two heavy
 * products (Q·Kᵀ and P·V) run on the WebAssembly SIMD matmuls: per stream and head,
 *   S = (Q_h / sqrt(hd)) · K_hᵀ → causalMaxShift → expForward → z = S·1, O = S·V_h → out = O / z.
 * The cache keeps one (capacity, hd) block per layer, stream and kv head, so K_h and V_h are
 * whole tensors the matmuls can read directly. Rows of x are (row, head, hd) in memory.
 */

/** out (rows, hd) = scale · x (…, H, hd)[row0 .. row0+rows, h, :] */
export function gatherHead(out: F, x: F, row0: number, rows: number, H: number, hd: number, h: number, scale: number): void {
  for (let r = 0; r < rows; r++) {
    const src = ((row0 + r) * H + h) * hd,
      dst = r * hd;
    for (let d = 0; d < hd; d++) out[dst + d] = x[src + d] * scale;
  }
}

/** out (…, H, hd)[row0 + r, h, :] = x (rows, hd)[r, :] / z[r]: normalise the softmax rows and scatter back. */
export function scatterHead(out: F, x: F, z: F, row0: number, rows: number, H: number, hd: number, h: number): void {
  for (let r = 0; r < rows; r++) {
    const dst = ((row0 + r) * H + h) * hd,
      src = r * hd,
      inv = 1 / z[r];
    for (let d = 0; d < hd; d++) out[dst + d] = x[src + d] * inv;
  }
}

/** cache (capacity, hd)[pos + r, :] = x (…, H, hd)[row0 + r, h, :]: append a chunk's keys or values. */
export function kvAppend(cache: F, x: F, row0: number, rows: number, H: number, hd: number, h: number, pos: number): void {
  for (let r = 0; r < rows; r++) {
    const src = ((row0 + r) * H + h) * hd,
      dst = (pos + r) * hd;
    for (let d = 0; d < hd; d++) cache[dst + d] = x[src + d];
  }
}

/**
 * The causal mask and the softmax shift, in place on scores s (rows, n): row r sees keys
 * j < valid0 + r (its own position included); those become s − max (so exp never overflows and
 * the largest term is 1), the rest −∞ (exp gives exactly 0).
 */
export function causalMaxShift(s: F, rows: number, n: number, valid0: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n,
      valid = Math.min(n, valid0 + r);
    let m = -Infinity;
    for (let j = 0; j < valid; j++) if (s[o + j] > m) m = s[o + j];
    for (let j = 0; j < valid; j++) s[o + j] -= m;
    for (let j = valid; j < n; j++) s[o + j] = -Infinity;
  }
}

/** out (n) = exp(x): the reference twin of the WebAssembly vector exp (−∞ gives 0). out may alias x. */
export function expForward(out: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
}

/** dst (n) = src (n): carries a cache into a larger block when it grows. */
export function copyInto(dst: F, src: F, n: number): void {
  dst.set(src.subarray(0, n) as ArrayLike<number>);
}
