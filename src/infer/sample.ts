import type { Rng } from '../io/rng.js';

export interface SamplingOptions {
  temperature: number; // 0: greedy (argmax)
  topK: number; // 0: no limit
  topP: number; // 1: no nucleus cut
}

/** Index of the largest value; ties go to the lowest index. */
export function argmax(logits: ArrayLike<number>, offset = 0, n = logits.length - offset): number {
  let best = 0,
    bv = -Infinity;
  for (let i = 0; i < n; i++)
    if (logits[offset + i] > bv) {
      bv = logits[offset + i];
      best = i;
    }
  return best;
}

/**
 * Draw one token from logits[offset .. offset+n): temperature, then top-k, then top-p (nucleus)
 * over the renormalised distribution. Softmax is max-shifted so any finite logits work.
 * Deterministic for a given rng state.
 */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng, offset = 0, n = logits.length - offset): number {
  if (o.temperature === 0) return argmax(logits, offset, n);
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
  const k = o.topK > 0 ? Math.min(o.topK, n) : n;
  const m = logits[offset + idx[0]];
  const p = new Float64Array(k);
  let z = 0;
  for (let i = 0; i < k; i++) {
    p[i] = Math.exp((logits[offset + idx[i]] - m) / o.temperature);
    z += p[i];
  }
  let keep = k;
  if (o.topP < 1) {
    let c = 0;
    for (let i = 0; i < k; i++) {
      c += p[i] / z;
      if (c >= o.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let zk = 0;
  for (let i = 0; i < keep; i++) zk += p[i];
  let r = rng.uniform() * zk;
  for (let i = 0; i < keep; i++) {
    r -= p[i];
    if (r < 0) return idx[i];
  }
  return idx[keep - 1];
}
