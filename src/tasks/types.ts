/**
 * What every synthetic task hands to training and scoring: sequences of token ids and the
 * positions whose logits are read, each with the token it must predict. Only those positions
 * enter the loss (the rest of a sequence is context the model must carry).
 */
export interface ScoredBatch {
  B: number;
  L: number;
  /** (B·L) input ids, stream-major. */
  ids: Int32Array;
  /** (n) flat positions b·L + t whose logits are scored. */
  rows: Int32Array;
  /** (n) the token each scored position must predict. */
  targets: Int32Array;
}

/** Gather a batch from per-sequence parts: sequences of length L, and per sequence the scored positions and targets. */
export function packBatch(L: number, seqs: readonly { ids: Int32Array; at: ArrayLike<number>; targets: ArrayLike<number> }[]): ScoredBatch {
  const B = seqs.length,
    ids = new Int32Array(B * L);
  const n = seqs.reduce((a, s) => a + s.at.length, 0),
    rows = new Int32Array(n),
    targets = new Int32Array(n);
  let k = 0;
  seqs.forEach((s, b) => {
    if (s.ids.length !== L) throw new Error(`packBatch: sequence ${b} has ${s.ids.length} tokens, not ${L}`);
    ids.set(s.ids, b * L);
    for (let i = 0; i < s.at.length; i++, k++) {
      rows[k] = b * L + s.at[i];
      targets[k] = s.targets[i];
    }
  });
  return { B, L, ids, rows, targets };
}

/** Token names, one per id: written as the checkpoint's tokenizer.json so `frugal generate` reads and prints them. */
export type Vocabulary = readonly string[];
