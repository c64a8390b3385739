/**
 * The task heads' losses and their gradients in the head's outputs, one position at a time, in
 * float64: the training loop and the prequential updates of `frugal stream --learn` share them.
 *
 * Gaussian head, outputs (μ, s) with σ = exp(s) (s clamped to ±LOG_SD_LIMIT):
 *   loss = ½ log 2π + s + ½ ((y − μ)/σ)²,   ∂/∂μ = −(y − μ)/σ²,   ∂/∂s = 1 − ((y − μ)/σ)²
 * Softmax head, logits z over K classes, label c:
 *   loss = logsumexp(z) − z_c,   ∂/∂z_k = softmax(z)_k − [k = c]
 */
export const LOG_SD_LIMIT = 7;
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** loss; writes ∂loss/∂outputs into `grad` (scaled by `scale`) when given. */
export function gaussianLoss(mu: number, s: number, y: number, grad?: Float64Array | number[], off = 0, scale = 1): number {
  const sc = Math.max(-LOG_SD_LIMIT, Math.min(LOG_SD_LIMIT, s));
  const sd = Math.exp(sc),
    z = (y - mu) / sd;
  if (grad) {
    grad[off] = (scale * -z) / sd;
    grad[off + 1] = sc === s ? scale * (1 - z * z) : 0;
  }
  return HALF_LOG_2PI + sc + 0.5 * z * z;
}

/** softmax of z[off .. off+K) as float64. */
export function softmax(z: ArrayLike<number>, off: number, K: number): Float64Array {
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, z[off + k]);
  const p = new Float64Array(K);
  let sum = 0;
  for (let k = 0; k < K; k++) {
    p[k] = Math.exp(z[off + k] - m);
    sum += p[k];
  }
  for (let k = 0; k < K; k++) p[k] /= sum;
  return p;
}

/** Cross-entropy of logits z[off .. off+K) against class c; gradient into `grad` when given. */
export function softmaxLoss(
  z: ArrayLike<number>,
  off: number,
  K: number,
  c: number,
  grad?: Float64Array | number[],
  goff = 0,
  scale = 1,
): number {
  const p = softmax(z, off, K);
  if (grad) for (let k = 0; k < K; k++) grad[goff + k] = scale * (p[k] - (k === c ? 1 : 0));
  return -Math.log(Math.max(p[c], 1e-300));
}
