import type { Rng } from '../io/rng.js';
import { packBatch } from './types.js';
import type { ScoredBatch, Vocabulary } from './types.js';

/**
 * Selective copying (Mamba paper, Table 1). A sequence of length L holds 16 data tokens (ids 1–16)
 * at uniformly random distinct positions among noise tokens (id 0) in its first L − 16 positions,
 * followed by 16 marker tokens (id 17). The target at the k-th marker position is the k-th data
 * token (in order of position); accuracy is the fraction of data tokens copied exactly.
 */
export const COPY_NOISE = 0;
export const COPY_DATA_IDS = 16; // data tokens are ids 1..16
export const COPY_MARKER = 17;
export const COPY_VOCAB = 18;
/** Data tokens per sequence, and marker tokens at its end. */
export const COPY_TOKENS = 16;
/** Shortest sequence: the 16 data tokens with no noise between them, then the markers. */
export const COPY_MIN_LENGTH = 2 * COPY_TOKENS;

export const COPY_NAMES: Vocabulary = ['_', ...Array.from({ length: COPY_DATA_IDS }, (_, i) => `d${i + 1}`), 'MARK'];

export interface CopySequence {
  ids: Int32Array;
  positions: Int32Array;
  data: Int32Array;
}

/** One sequence of length L ≥ 32: positions first (ascending), then the data tokens in order. */
export function selectiveCopySequence(rng: Rng, L: number): CopySequence {
  if (!Number.isInteger(L) || L < COPY_MIN_LENGTH)
    throw new RangeError(`selective copying: length must be at least ${COPY_MIN_LENGTH}, got ${L}`);
  const body = L - COPY_TOKENS;
  const chosen = new Set<number>();
  // rejection sampling: at most 16 of ≥ 16 slots, a handful of redraws on average except at the shortest lengths
  while (chosen.size < COPY_TOKENS) chosen.add(rng.int(body));
  const positions = Int32Array.from([...chosen].sort((a, b) => a - b));
  const data = Int32Array.from({ length: COPY_TOKENS }, () => 1 + rng.int(COPY_DATA_IDS));
  const ids = new Int32Array(L); // noise (0) everywhere first
  positions.forEach((p, k) => {
    ids[p] = data[k];
  });
  ids.fill(COPY_MARKER, body);
  return { ids, positions, data };
}

/** B sequences of length L, each scored at its 16 marker positions. */
export function selectiveCopyBatch(rng: Rng, B: number, L: number): ScoredBatch {
  const at = Array.from({ length: COPY_TOKENS }, (_, k) => L - COPY_TOKENS + k);
  return packBatch(
    L,
    Array.from({ length: B }, () => {
      const s = selectiveCopySequence(rng, L);
      return { ids: s.ids, at, targets: s.data };
    }),
  );
}
