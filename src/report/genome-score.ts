import type { Rng } from '../io/rng.js';
import type { TrainableModel } from '../models/types.js';
import type { BatchScore } from './evaluate.js';
import { disposeState, prefillChunked } from './evaluate.js';
import { markovBits } from '../genome/markov.js';
import type { MarkovModel } from '../genome/markov.js';
import { DEFINITE, reverseComplement } from '../genome/nucleotides.js';
import type { Range } from '../genome/split.js';
import { windowStart } from '../genome/split.js';
import { EXON_DELAY, LABEL0, motifLength, motifSequence } from '../genome/tasks.js';
import type { Sequence } from '../genome/tasks.js';

/**
 * Scoring the genome tasks on held-out bases through the inference paths: a window is prefilled
 * in chunks (Mamba's recurrent state stays the same size however long the window; the
 * transformer's KV cache grows with it); the strain answer is pooled along the window, the motif
 * answer read from the last position's logits.
 * Next-base scoring prefills the context and then steps base by base; exon labels come from the
 * parallel forward pass over tiles of the held-out genes.
 */

/** Softmax over K values of each of B rows: row b's values at src[b * stride + offset + j]. */
function softmaxRows(src: ArrayLike<number>, B: number, stride: number, offset: number, K: number): Float64Array {
  const p = new Float64Array(B * K);
  for (let b = 0; b < B; b++) {
    const o = b * stride + offset;
    let mx = -Infinity,
      z = 0;
    for (let j = 0; j < K; j++) mx = Math.max(mx, src[o + j]);
    for (let j = 0; j < K; j++) z += p[b * K + j] = Math.exp(src[o + j] - mx);
    for (let j = 0; j < K; j++) p[b * K + j] /= z;
  }
  return p;
}

/** Softmax over the K answer logits from LABEL0 of each of the B rows of logits (B, V). */
function answerProbs(logits: Float32Array, B: number, V: number, K: number): Float64Array {
  return softmaxRows(logits, B, V, LABEL0, K);
}

/** Each of B windows of L ids (stream-major) reverse-complemented. */
function reverseComplementRows(ids: Int32Array, B: number, L: number): Int32Array {
  const out = new Int32Array(B * L);
  for (let b = 0; b < B; b++) out.set(reverseComplement(ids.subarray(b * L, (b + 1) * L)), b * L);
  return out;
}

function lastLogits(model: TrainableModel, ids: Int32Array, B: number, L: number): Float32Array {
  const state = model.createState(B);
  try {
    return prefillChunked(model, ids, B, L, state);
  } finally {
    disposeState(state);
  }
}

/**
 * Probabilities (B, K) of the K answers after reading each of B windows (ids (B·L)). With `rc`,
 * the mean of the window's and its reverse complement's: the answer is then the same for a
 * window and its reverse complement (reverse-complement invariance of the classifier).
 */
export function classify(model: TrainableModel, ids: Int32Array, B: number, L: number, K: number, rc: boolean): Float64Array {
  const V = model.config.vocabSize,
    p = answerProbs(lastLogits(model, ids, B, L), B, V, K);
  if (!rc) return p;
  const flipped = reverseComplementRows(ids, B, L);
  const q = answerProbs(lastLogits(model, flipped, B, L), B, V, K);
  return p.map((x, i) => (x + q[i]) / 2);
}

function argmax(p: Float64Array, b: number, K: number): number {
  let best = 0;
  for (let j = 1; j < K; j++) if (p[b * K + j] > p[b * K + best]) best = j;
  return best;
}

/** Bases between two readouts of the pooled strain answer. */
export const POOL_STRIDE = 256;

/**
 * Log-probabilities (B, K) of the K answers pooled along each of B windows: the window is prefilled
 * in chunks ending every `stride` bases, and the answer's log-softmax at each chunk's last position
 * (and the window's last) is averaged. A model trained to name the strain from what it has read so
 * far answers from its recent bases; pooling adds up that evidence along the whole window, in
 * constant memory (K running sums beside the recurrent state), so a longer window can only add evidence.
 */
export function pooledLogProbs(
  model: TrainableModel,
  ids: Int32Array,
  B: number,
  L: number,
  K: number,
  stride = POOL_STRIDE,
): Float64Array {
  const V = model.config.vocabSize,
    sum = new Float64Array(B * K);
  let reads = 0;
  const state = model.createState(B);
  try {
    prefillChunked(model, ids, B, L, state, stride, (logits) => {
      const p = answerProbs(logits, B, V, K);
      for (let i = 0; i < B * K; i++) sum[i] += Math.log(Math.max(p[i], 1e-300));
      reads++;
    });
  } finally {
    disposeState(state);
  }
  return sum.map((x) => x / reads);
}

/** Pooled answer probabilities (B, K); with `rc`, the window and its reverse complement pooled together. */
export function classifyPooled(model: TrainableModel, ids: Int32Array, B: number, L: number, K: number, rc: boolean): Float64Array {
  const lp = pooledLogProbs(model, ids, B, L, K);
  if (!rc) return softmaxRows(lp, B, K, 0, K);
  const flipped = reverseComplementRows(ids, B, L);
  const lq = pooledLogProbs(model, flipped, B, L, K);
  return softmaxRows(
    lp.map((x, i) => (x + lq[i]) / 2),
    B,
    K,
    0,
    K,
  );
}

/**
 * (a) B held-out windows of L bases, each from a random strain: which strain? Read pooled along the
 * window (`pooled`, the study's readout) or from the last position alone.
 */
export function strainScorer(genomes: readonly Sequence[], rc: boolean, pooled = true) {
  return (model: TrainableModel, rng: Rng, B: number, L: number): BatchScore => {
    const ids = new Int32Array(B * L),
      labels: number[] = [];
    for (let b = 0; b < B; b++) {
      const g = rng.int(genomes.length),
        s = windowStart(rng, genomes[g].test, L);
      if (s === null) throw new Error(`${L}-base window: strain ${g}'s test part is shorter`);
      ids.set(genomes[g].ids.subarray(s, s + L), b * L);
      labels.push(g);
    }
    const p = (pooled ? classifyPooled : classify)(model, ids, B, L, genomes.length, rc);
    return { correct: labels.filter((g, b) => argmax(p, b, genomes.length) === g).length, trials: B, tokens: B * L * (rc ? 2 : 1) };
  };
}

/** (d) B motif-pair sequences at distance d: same motif or not? */
export function motifScorer(bg: MarkovModel, rc: boolean) {
  return (model: TrainableModel, rng: Rng, B: number, d: number): BatchScore => {
    const L = motifLength(d),
      ids = new Int32Array(B * L),
      labels: number[] = [];
    for (let b = 0; b < B; b++) {
      const s = motifSequence(rng, bg, d);
      ids.set(s.ids, b * L);
      labels.push(s.label);
    }
    const p = classify(model, ids, B, L, 2, rc);
    return { correct: labels.filter((y, b) => argmax(p, b, 2) === y).length, trials: B, tokens: B * L * (rc ? 2 : 1) };
  };
}

/** Bits of the definite base `target` under the softmax of row b's four base logits. */
export function baseBits(logits: Float32Array, b: number, V: number, target: number): number {
  const o = b * V;
  const mx = Math.max(logits[o], logits[o + 1], logits[o + 2], logits[o + 3]);
  const z = Math.exp(logits[o] - mx) + Math.exp(logits[o + 1] - mx) + Math.exp(logits[o + 2] - mx) + Math.exp(logits[o + 3] - mx);
  return -(logits[o + target] - mx - Math.log(z)) / Math.LN2;
}

/**
 * (b) Next-base scoring at context length c: B held-out windows; prefill c bases, then step
 * through `scored` more, scoring each definite base. Sums: bits, bases; with `markov`, also the
 * baseline's bits on the same bases (markov_bits, markov_bases): a few hundred windows sample the
 * test part, so the model is compared with the baseline on the bases it read, not only on the whole.
 */
export function lmScorer(g: Sequence, scored: number, markov?: MarkovModel) {
  return (model: TrainableModel, rng: Rng, B: number, c: number): BatchScore => {
    const V = model.config.vocabSize,
      L = c + scored,
      ids = new Int32Array(B * L);
    let markovBitsSum = 0,
      markovBases = 0;
    for (let b = 0; b < B; b++) {
      const s = windowStart(rng, g.test, L);
      if (s === null) throw new Error(`context ${c}: the test part is shorter than ${L} bases`);
      ids.set(g.ids.subarray(s, s + L), b * L);
      if (markov) {
        const m = markovBits(markov, g.ids, s + c, s + L);
        markovBitsSum += m.bits;
        markovBases += m.bases;
      }
    }
    const state = model.createState(B);
    let bits = 0,
      bases = 0,
      correct = 0;
    try {
      const ctx = new Int32Array(B * c);
      for (let b = 0; b < B; b++) ctx.set(ids.subarray(b * L, b * L + c), b * c);
      let logits = prefillChunked(model, ctx, B, c, state);
      const next = new Int32Array(B);
      for (let t = c; t < L; t++) {
        for (let b = 0; b < B; b++) {
          const y = ids[b * L + t];
          next[b] = y;
          if (y >= DEFINITE) continue;
          bits += baseBits(logits, b, V, y);
          bases++;
          let best = 0;
          for (let j = 1; j < DEFINITE; j++) if (logits[b * V + j] > logits[b * V + best]) best = j;
          if (best === y) correct++;
        }
        if (t + 1 < L) logits = model.step(next, state);
      }
    } finally {
      disposeState(state);
    }
    const extra: Record<string, number> = { bits, bases };
    if (markov) Object.assign(extra, { markov_bits: markovBitsSum, markov_bases: markovBases });
    return { correct, trials: Math.max(1, bases), tokens: B * L, extra };
  };
}

/** Tiles of W bases over a range, each scoring its bases from EXON_DELAY on (the tiles overlap by EXON_DELAY). */
export function exonTiles(r: Range, W: number): number[] {
  const starts: number[] = [];
  for (let s = r.from; s + W <= r.to; s += W - EXON_DELAY) starts.push(s);
  return starts;
}

/** Tiles a forward pass takes at once (bounds its activations). */
const EXON_BATCH = 8;

/**
 * (c) Exon labelling over the held-out genes (exon when P(exon) exceeds `prior`, the share of exon
 * labels in the training batches): `count` tiles of W = `length` bases spread evenly
 * over the test part (all of them when count ≥ their number), taken in order, B per call (each
 * length keeps its own place, so a warm-up at another length takes none). Sums: a confusion table.
 */
export function exonScorer(g: Sequence, exon: Uint8Array, count: (W: number) => number, prior = 0.5) {
  // exon when P(exon) / P(not) beats the training batches' odds: exons are a minority, and a model
  // fitted to that prior rarely puts P(exon) above one half, so argmax would say "not exon" throughout
  const cut = Math.log(prior / (1 - prior));
  const place = new Map<number, number>();
  return (model: TrainableModel, _rng: Rng, B: number, W: number): BatchScore => {
    const V = model.config.vocabSize,
      all = exonTiles(g.test, W),
      n = Math.min(all.length, count(W));
    const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
    const k0 = place.get(W) ?? 0;
    place.set(W, k0 + B);
    const starts = Array.from({ length: B }, (_, b) => all[Math.floor((((k0 + b) % n) * all.length) / n)]);
    for (let b0 = 0; b0 < B; b0 += EXON_BATCH) {
      const part = starts.slice(b0, b0 + EXON_BATCH),
        ids = new Int32Array(part.length * W);
      part.forEach((s, j) => ids.set(g.ids.subarray(s, s + W), j * W));
      const logits = model.e.scope(() => model.forward(ids, part.length, W).floats().slice());
      part.forEach((s, j) => {
        for (let t = EXON_DELAY; t < W; t++) {
          const o = (j * W + t) * V,
            said = logits[o + LABEL0 + 1] - logits[o + LABEL0] > cut ? 1 : 0,
            truth = exon[s + t - EXON_DELAY];
          if (said && truth) c.tp++;
          else if (said) c.fp++;
          else if (truth) c.fn++;
          else c.tn++;
        }
      });
    }
    return { correct: c.tp + c.tn, trials: B * (W - EXON_DELAY), tokens: B * W, extra: c };
  };
}
