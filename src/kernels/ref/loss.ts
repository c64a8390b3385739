import type { F } from './types.js';

/**
 * Embedding lookup and softmax cross-entropy.
 */

/** out (n, D) <- table (V, D) rows at ids (n) */
export function embeddingForward(out: F, table: F, ids: Int32Array, n: number, D: number): void {
  for (let i = 0; i < n; i++) {
    const r = ids[i] * D;
    for (let j = 0; j < D; j++) out[i * D + j] = table[r + j];
  }
}

/** dtable (V, D) += scatter of dout (n, D) at ids */
export function embeddingBackward(dtable: F, dout: F, ids: Int32Array, n: number, D: number): void {
  for (let i = 0; i < n; i++) {
    const r = ids[i] * D;
    for (let j = 0; j < D; j++) dtable[r + j] += dout[i * D + j];
  }
}

/**
 * Per-row cross-entropy with a max-shifted log-sum-exp (no overflow for any finite logits).
 * losses (rows), lse (rows) <- logits (rows, V), targets (rows)
 */
export function crossEntropyForward(losses: F, lse: F, logits: F, targets: Int32Array, rows: number, V: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > m) m = logits[o + v];
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - m);
    const l = m + Math.log(s);
    lse[r] = l;
    losses[r] = l - logits[o + targets[r]];
  }
}

/** dlogits (rows, V) += dloss[r] · (softmax(logits) − onehot(target)) */
export function crossEntropyBackward(dlogits: F, dloss: F, logits: F, lse: F, targets: Int32Array, rows: number, V: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V,
      g = dloss[r],
      l = lse[r];
    for (let v = 0; v < V; v++) dlogits[o + v] += g * Math.exp(logits[o + v] - l);
    dlogits[o + targets[r]] -= g;
  }
}

/** out (1) = mean of x (n) */
export function meanForward(out: F, x: F, n: number): void {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  out[0] = s / n;
}

/** dx (n) += dout[0] / n */
export function meanBackward(dx: F, dout: F, n: number): void {
  const g = dout[0] / n;
  for (let i = 0; i < n; i++) dx[i] += g;
}

/** log Σ_v exp(x[o + v] / T), stably */
function logSumExpScaled(x: F, o: number, V: number, T: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) if (x[o + v] / T > m) m = x[o + v] / T;
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(x[o + v] / T - m);
  return m + Math.log(s);
}

/**
 * Knowledge distillation (Hinton et al. 2015), per row r of student logits s and teacher logits t
 * (rows, V): losses[r] = alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) · CE(s, target).
 * Saves lseT[r] = logsumexp(s/T) and lse1[r] = logsumexp(s) for the backward.
 */
export function distillForward(
  losses: F,
  lseT: F,
  lse1: F,
  s: F,
  t: F,
  targets: Int32Array,
  rows: number,
  V: number,
  T: number,
  alpha: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V,
      ls = logSumExpScaled(s, o, V, T),
      lt = logSumExpScaled(t, o, V, T),
      l1 = logSumExpScaled(s, o, V, 1);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const logp = t[o + v] / T - lt;
      kl += Math.exp(logp) * (logp - (s[o + v] / T - ls));
    }
    lseT[r] = ls;
    lse1[r] = l1;
    losses[r] = alpha * T * T * kl + (1 - alpha) * (l1 - s[o + targets[r]]);
  }
}

/** ds (rows, V) += dloss[r] · (alpha · T · (softmax(s/T) − softmax(t/T)) + (1 − alpha) · (softmax(s) − onehot(target))) */
export function distillBackward(
  ds: F,
  dloss: F,
  s: F,
  t: F,
  lseT: F,
  lse1: F,
  targets: Int32Array,
  rows: number,
  V: number,
  T: number,
  alpha: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V,
      g = dloss[r],
      lt = logSumExpScaled(t, o, V, T);
    for (let v = 0; v < V; v++) {
      const qT = Math.exp(s[o + v] / T - lseT[r]),
        pT = Math.exp(t[o + v] / T - lt),
        q1 = Math.exp(s[o + v] - lse1[r]);
      ds[o + v] += g * (alpha * T * (qT - pT) + (1 - alpha) * q1);
    }
    ds[o + targets[r]] -= g * (1 - alpha);
  }
}
