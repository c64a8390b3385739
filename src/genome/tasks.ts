import type { Rng } from '../io/rng.js';
import type { ScoredBatch } from '../tasks/types.js';
import { packBatch } from '../tasks/types.js';
import type { MarkovModel } from './markov.js';
import { DEFINITE, reverseComplement } from './nucleotides.js';
import type { Range } from './split.js';
import { windowStart } from './split.js';

/**
 * The four genome tasks as scored batches over one vocabulary: ids 0–4 are the bases (A C G T N),
 * ids from LABEL0 up are answers (a strain, exon or not, motifs same or not). (a) strain
 * classification: the answer is asked at many positions of a window, so a model learns to name the
 * strain from whatever it has read so far; (b) next-base language modelling; (c) exon labelling:
 * the label of base t is asked at position t + EXON_DELAY, so the model sees a little of what
 * follows the base; (d) the motif pair: are the two motifs d bases apart the same?
 */
export const LABEL0 = 5;
/** 5 bases and room for 12 strain labels (two E. coli, five S. aureus, five H. pylori). */
export const GENOME_VOCAB = 17;
export const GENOME_TOKENS = ['A', 'C', 'G', 'T', 'N', ...Array.from({ length: 12 }, (_, i) => `<label${i}>`)];
export const EXON_DELAY = 32;

export interface Sequence {
  ids: Uint8Array;
  train: Range;
  test: Range;
}

function window(seq: Uint8Array, start: number, L: number, rc: boolean): Int32Array {
  const w = Int32Array.from(seq.subarray(start, start + L));
  return rc ? reverseComplement(w) : w;
}

/** The answer is asked every `stride` positions from the first quarter of the window on. */
function askedPositions(L: number, stride: number): number[] {
  const at: number[] = [];
  for (let t = L - 1; t >= Math.floor(L / 4); t -= stride) at.push(t);
  return at;
}

/** (a) B training windows of L bases, each from a random strain; `rcAugment` reverse-complements half of them. */
export function strainBatch(rng: Rng, genomes: readonly Sequence[], B: number, L: number, rcAugment: boolean): ScoredBatch {
  const seqs = Array.from({ length: B }, () => {
    const g = rng.int(genomes.length),
      s = windowStart(rng, genomes[g].train, L);
    if (s === null) throw new Error(`strain ${g}: training part shorter than ${L} bases`);
    const at = askedPositions(L, 16);
    return { ids: window(genomes[g].ids, s, L, rcAugment && rng.int(2) === 1), at, targets: at.map(() => LABEL0 + g) };
  });
  return packBatch(L, seqs);
}

/** (b) B windows of L bases of one genome's training part; every position predicts the next definite base. */
export function lmBatch(rng: Rng, g: Sequence, range: Range, B: number, L: number): ScoredBatch {
  const seqs = Array.from({ length: B }, () => {
    const s = windowStart(rng, range, L + 1);
    if (s === null) throw new Error(`language model: training part shorter than ${L + 1} bases`);
    const at: number[] = [],
      targets: number[] = [];
    for (let t = 0; t < L; t++) {
      const next = g.ids[s + t + 1];
      if (next < DEFINITE) {
        at.push(t);
        targets.push(next);
      }
    }
    return { ids: window(g.ids, s, L, false), at, targets };
  });
  return packBatch(L, seqs);
}

/** (c) B windows of the HLA training part; `exon` (0/1 per base). Half the windows start near an exon (exons are ~5% of bases). */
export function exonBatch(rng: Rng, g: Sequence, exon: Uint8Array, exonStarts: readonly number[], B: number, L: number): ScoredBatch {
  const inTrain = exonStarts.filter((p) => p >= g.train.from + L && p < g.train.to - L);
  const seqs = Array.from({ length: B }, () => {
    let s = windowStart(rng, g.train, L) as number;
    if (inTrain.length > 0 && rng.int(2) === 1) s = inTrain[rng.int(inTrain.length)] - rng.int(L);
    const at: number[] = [],
      targets: number[] = [];
    for (let t = EXON_DELAY; t < L; t++) {
      at.push(t);
      targets.push(LABEL0 + exon[s + t - EXON_DELAY]);
    }
    return { ids: window(g.ids, s, L, false), at, targets };
  });
  return packBatch(L, seqs);
}

/** Bases the motif sequence adds around the distance: 8 before the first motif, the second motif and 8 after it. */
export const MOTIF_LEN = 8;
export const MOTIF_PAD = 8;
export const MOTIFS = ['TATAGCGC', 'GGATCCAT'].map((m) => Uint8Array.from(m, (c) => 'ACGT'.indexOf(c)));

/** Length of a motif-pair sequence whose motifs start d bases apart. */
export function motifLength(d: number): number {
  return MOTIF_PAD + d + MOTIF_LEN + MOTIF_PAD;
}

/** L bases drawn from the order-k background model (its k first bases uniform). */
export function sampleBackground(rng: Rng, m: MarkovModel, L: number): Uint8Array {
  const out = new Uint8Array(L),
    mask = 4 ** m.k;
  let ctx = 0;
  for (let i = 0; i < L; i++) {
    let b: number;
    if (i < m.k) b = rng.int(4);
    else {
      const o = ctx * 4,
        w = [0, 1, 2, 3].map((j) => m.counts[o + j] + m.alpha);
      let u = rng.uniform() * (w[0] + w[1] + w[2] + w[3]);
      b = 0;
      while (b < 3 && u >= w[b]) u -= w[b++];
    }
    out[i] = b;
    ctx = m.k === 0 ? 0 : (ctx * 4 + b) % mask;
  }
  return out;
}

/** (d) One motif-pair sequence: two motifs d bases apart in the background; label 1 when they are the same motif. */
export function motifSequence(rng: Rng, bg: MarkovModel, d: number): { ids: Int32Array; label: number } {
  if (d < MOTIF_LEN) throw new RangeError(`motif distance ${d} is below the motif length ${MOTIF_LEN}`);
  const L = motifLength(d),
    ids = Int32Array.from(sampleBackground(rng, bg, L));
  const a = rng.int(2),
    b = rng.int(2);
  ids.set(MOTIFS[a], MOTIF_PAD);
  ids.set(MOTIFS[b], MOTIF_PAD + d);
  return { ids, label: a === b ? 1 : 0 };
}

/** (d) B sequences at distance d; the answer is asked at the last position. */
export function motifBatch(rng: Rng, bg: MarkovModel, B: number, d: number): ScoredBatch {
  const L = motifLength(d);
  return packBatch(
    L,
    Array.from({ length: B }, () => {
      const s = motifSequence(rng, bg, d);
      return { ids: s.ids, at: [L - 1], targets: [LABEL0 + s.label] };
    }),
  );
}

/** Matthews correlation of a binary confusion table (0 when a margin is empty). */
export function mcc(tp: number, fp: number, tn: number, fn: number): number {
  const den = Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return den === 0 ? 0 : (tp * tn - fp * fn) / den;
}
