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
