import type { Rng } from '../io/rng.js';
import { packBatch } from './types.js';
import type { ScoredBatch, Vocabulary } from './types.js';

/**
 * Induction heads (Mamba paper, Table 2). Ids 0–15 are content tokens, 16 the trigger. A sequence
 * of length L is uniformly random content with the trigger once at a uniformly random position
 * p < L − 2, followed by the answer a; the last token is the trigger again, and the target is a,
 * read from the logits at the last position (argmax over the content ids 0–15).
 */
export const INDUCTION_CONTENT = 16;
export const INDUCTION_TRIGGER = 16;
export const INDUCTION_VOCAB = 17;
/** Shortest sequence the layout allows (trigger, answer, final trigger). */
export const INDUCTION_MIN_LENGTH = 3;

export const INDUCTION_NAMES: Vocabulary = [...Array.from({ length: INDUCTION_CONTENT }, (_, i) => `c${i}`), 'TRIG'];

export interface InductionSequence {
  ids: Int32Array;
  trigger: number;
  answer: number;
}

/** One sequence of length L ≥ 3; draws L − 1 content tokens, then p, then a, in that order. */
export function inductionSequence(rng: Rng, L: number): InductionSequence {
  if (!Number.isInteger(L) || L < INDUCTION_MIN_LENGTH)
    throw new RangeError(`induction: length must be at least ${INDUCTION_MIN_LENGTH}, got ${L}`);
  const ids = new Int32Array(L);
  for (let t = 0; t < L - 1; t++) ids[t] = rng.int(INDUCTION_CONTENT);
  const trigger = rng.int(L - 2),
    answer = rng.int(INDUCTION_CONTENT);
  ids[trigger] = INDUCTION_TRIGGER;
  ids[trigger + 1] = answer;
  ids[L - 1] = INDUCTION_TRIGGER;
  return { ids, trigger, answer };
}

/** B sequences of length L, each scored at its last position. */
export function inductionBatch(rng: Rng, B: number, L: number): ScoredBatch {
  return packBatch(
    L,
    Array.from({ length: B }, () => {
      const s = inductionSequence(rng, L);
      return { ids: s.ids, at: [L - 1], targets: [s.answer] };
    }),
  );
}
