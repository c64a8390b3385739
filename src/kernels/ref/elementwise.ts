import type { F } from './types.js';

/**
 * Elementwise kernels and their gradients. Backward kernels ACCUMULATE into the input gradient
 * (dx += …), the single convention of every backward kernel in frugal: a tensor used twice simply
 * receives two contributions.
 *
 * Numerics (inputs anywhere in [-100, 100] and beyond stay finite):
 * - sigmoid(x) = 1/(1+e^-x) for x ≥ 0 and e^x/(1+e^x) for x < 0, so exp never overflows.
 * - softplus(x) = max(x,0) + log1p(exp(-|x|)); its derivative is sigmoid(x).
 * - silu(x) = x·sigmoid(x); silu'(x) = s + x·s·(1-s).
 */

export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function softplus1(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** out (n) = x + y */
export function add(out: F, x: F, y: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] + y[i];
}

/** out (n) = x ⊙ y */
export function mul(out: F, x: F, y: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] * y[i];
}

/** out (n) = 0 */
export function fillZero(out: F, n: number): void {
  out.fill(0, 0, n);
}

/** dst (n) += src */
export function accumulate(dst: F, src: F, n: number): void {
  for (let i = 0; i < n; i++) dst[i] += src[i];
}

/** dst (n) += x ⊙ y  (the gradient of a product) */
export function mulAccumulate(dst: F, x: F, y: F, n: number): void {
  for (let i = 0; i < n; i++) dst[i] += x[i] * y[i];
}

/** out (n) = silu(x) */
export function siluForward(out: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] * sigmoid(x[i]);
}

/** dx (n) += dout ⊙ silu'(x) */
export function siluBackward(dx: F, dout: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = sigmoid(x[i]);
    dx[i] += dout[i] * (s + x[i] * s * (1 - s));
  }
}

/** out (n) = softplus(x) */
export function softplusForward(out: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = softplus1(x[i]);
}

/** dx (n) += dout ⊙ sigmoid(x) */
export function softplusBackward(dx: F, dout: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) dx[i] += dout[i] * sigmoid(x[i]);
}

/** out (n) = -exp(x)   (A = -exp(A_log)) */
export function negExpForward(out: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = -Math.exp(x[i]);
}

/** dx (n) += dout ⊙ out   (d/dx of -exp(x) is -exp(x) = out) */
export function negExpBackward(dx: F, dout: F, out: F, n: number): void {
  for (let i = 0; i < n; i++) dx[i] += dout[i] * out[i];
}

/** Copy columns [c0, c0+w) of x (rows, C) into out (rows, w): splitting in_proj's output into x and z. */
export function sliceColumns(out: F, x: F, rows: number, C: number, c0: number, w: number): void {
  for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) out[r * w + j] = x[r * C + c0 + j];
}

/** dx (rows, C) columns [c0, c0+w) += dout (rows, w) */
export function sliceColumnsBackward(dx: F, dout: F, rows: number, C: number, c0: number, w: number): void {
  for (let r = 0; r < rows; r++) for (let j = 0; j < w; j++) dx[r * C + c0 + j] += dout[r * w + j];
}

/** out (rows, C) = x (rows, C) + bias (C) broadcast over rows */
export function addBias(out: F, x: F, bias: F, rows: number, C: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) out[r * C + c] = x[r * C + c] + bias[c];
}

/** dbias (C) += column sums of dout (rows, C) */
export function addBiasBackward(dbias: F, dout: F, rows: number, C: number): void {
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += dout[r * C + c];
    dbias[c] += s;
  }
}
