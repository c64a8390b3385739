import { DEFINITE } from './nucleotides.js';

/**
 * The order-k Markov baseline of next-base prediction: P(b | the k bases before) from counts on
 * the training bases with add-alpha smoothing,
 *   P(b | ctx) = (count(ctx, b) + alpha) / (count(ctx) + 4·alpha),
 * scored in bits per base over A, C, G, T (positions whose target or context holds an N are
 * skipped, as in the models' scoring). k is chosen on validation bases, never on the test set.
 */
export interface MarkovModel {
  k: number;
  alpha: number;
  /** (4^k, 4) counts: context index (the k bases as a base-4 number, oldest first) by next base. */
  counts: Uint32Array;
}

/** Largest order fitted: 4^10 × 4 counts (16 MB). */
export const MAX_ORDER = 10;

/** Visit every position i ≥ k of `seq` in [from, to) whose k bases before and itself are definite: f(context, base). */
function eachContext(seq: Uint8Array, k: number, from: number, to: number, f: (ctx: number, b: number) => void): void {
  const mask = 4 ** k;
  let ctx = 0,
    valid = 0; // definite bases in a row ending just before i
  const start = Math.max(0, from - k);
  for (let i = start; i < to; i++) {
    const b = seq[i];
    if (b >= DEFINITE) {
      valid = 0;
      ctx = 0;
      continue;
    }
    if (i >= from && valid >= k) f(ctx, b);
    ctx = k === 0 ? 0 : (ctx * 4 + b) % mask;
    valid++;
  }
}

/** Counts of order k over the training sequences. */
export function fitMarkov(train: readonly Uint8Array[], k: number, alpha = 0.5): MarkovModel {
  if (!Number.isInteger(k) || k < 0 || k > MAX_ORDER) throw new RangeError(`Markov order ${k}: use 0 … ${MAX_ORDER}`);
  const counts = new Uint32Array(4 ** k * 4);
  for (const s of train) eachContext(s, k, 0, s.length, (ctx, b) => counts[ctx * 4 + b]++);
  return { k, alpha, counts };
}

/** Total bits and scored bases of `seq` positions [from, to) under the model. */
export function markovBits(m: MarkovModel, seq: Uint8Array, from = 0, to = seq.length): { bits: number; bases: number } {
  let bits = 0,
    bases = 0;
  const { counts, alpha } = m;
  eachContext(seq, m.k, from, to, (ctx, b) => {
    const o = ctx * 4,
      total = counts[o] + counts[o + 1] + counts[o + 2] + counts[o + 3];
    bits -= Math.log2((counts[o + b] + alpha) / (total + 4 * alpha));
    bases++;
  });
  return { bits, bases };
}

export interface OrderChoice {
  k: number;
  /** Validation bits per base of every order tried. */
  validation: { k: number; bits_per_base: number }[];
  model: MarkovModel;
}

/** Fit orders 0 … kmax on `train`, keep the one with the fewest validation bits per base. */
export function chooseOrder(train: readonly Uint8Array[], valid: readonly Uint8Array[], kmax = MAX_ORDER, alpha = 0.5): OrderChoice {
  let best: OrderChoice | null = null;
  const validation: OrderChoice['validation'] = [];
  for (let k = 0; k <= kmax; k++) {
    const model = fitMarkov(train, k, alpha);
    let bits = 0,
      bases = 0;
    for (const v of valid) {
      const r = markovBits(model, v);
      bits += r.bits;
      bases += r.bases;
    }
    const bpb = bits / Math.max(1, bases);
    validation.push({ k, bits_per_base: bpb });
    if (!best || bpb < (best.validation.find((x) => x.k === best?.k)?.bits_per_base ?? Infinity)) best = { k, validation, model };
  }
  return { ...(best as OrderChoice), validation };
}
