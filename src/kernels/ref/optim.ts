import type { F } from './types.js';

/**
 * AdamW (Loshchilov & Hutter 2019) with decoupled weight decay:
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
 *   p −= lr · ( (m / bc1) / (sqrt(v / bc2) + eps) + wd · p )
 * bc1 = 1 − β1^t and bc2 = 1 − β2^t are the bias corrections for step t (passed in).
 * p, g, m, v (n)
 */
export function adamwStep(
  p: F,
  g: F,
  m: F,
  v: F,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  wd: number,
  bc1: number,
  bc2: number,
): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + (1 - beta1) * gi;
    const vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps) + wd * p[i]);
  }
}

/** Sum of squares of g (n), accumulated in float64 (for global-norm gradient clipping). */
export function sumSquares(g: F, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += g[i] * g[i];
  return s;
}

/** x (n) *= s */
export function scaleInPlace(x: F, s: number, n: number): void {
  for (let i = 0; i < n; i++) x[i] *= s;
}
