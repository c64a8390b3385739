import { Rng } from '../io/rng.js';
import { startEnergy } from '../energy/index.js';
import type { EnergyKind } from '../energy/index.js';
import type { ModelState, TrainableModel } from '../models/types.js';
import type { LlamaConfig } from '../models/transformer/config.js';
import { argmaxRow } from '../train/scored.js';
import { INDUCTION_CONTENT, inductionSequence } from '../tasks/induction.js';
import { COPY_MARKER, COPY_TOKENS, selectiveCopySequence } from '../tasks/selective-copy.js';
import { END, hanoiScene, observationLength, observe, parserQueries, scoreEpisode } from '../tasks/hanoi.js';
import type { HanoiMethod, TaskName } from '../tasks/registry.js';
import { wilson } from './stats.js';

/**
 * `frugal eval`: score a trained model at several lengths with the recurrent inference paths
 * (chunked prefill, then steps), in batches of independent sequences, with the energy of each
 * length metered. Induction reads the last position's argmax over the content ids; selective
 * copying prefills the noisy body and steps through the 16 markers; Hanoi prefills the observation
 * and decodes greedily until END, then scores the moves (planned from the pegs for the
 * neuro-symbolic method) against the true state.
 */
export interface EvalRow {
  length: number;
  n: number;
  accuracy: number | null;
  ci95: [number, number] | null;
  joules_per_sequence: number | null;
  energy_kind: EnergyKind;
  tok_s: number | null;
  /** Present only when the length was not run: which budget (time or memory) and by how much. */
  out_of_budget?: string;
  /** Sums of a custom scorer's counters over the length's batches (bits, bases, a confusion table). */
  sums?: Record<string, number>;
}

export interface EvalOptions {
  /** A synthetic task, scored by this module; or none, and `run` scores each batch. */
  task?: TaskName;
  /** A custom scorer of B sequences at `length` (the genome tasks). */
  run?: (model: TrainableModel, rng: Rng, B: number, length: number) => BatchScore;
  method: HanoiMethod | null;
  lengths: readonly number[];
  /** Sequences (episodes) per length. */
  n: number | ((length: number) => number);
  seed: number;
  /** performance.now() time by which evaluation must end: lengths predicted to overrun are reported out of budget. */
  deadline?: number;
  /** Largest recurrent state (KV cache) one batch may hold, in bytes (default 1 GiB). */
  maxStateBytes?: number;
  onProgress?: (length: number, doneSequences: number, n: number) => void;
}

/** Tokens per prefill call across a batch: bounds the activations of one call (about 200 MB at d64). */
const PREFILL_TOKENS = 1 << 15;
const DEFAULT_STATE_BYTES = 2 ** 30;

/** Bytes of recurrent state per stream after `length` tokens: the transformer's KV cache grows, Mamba's state does not. */
export function stateBytesPerStream(model: TrainableModel, length: number): number {
  if (model.config.modelType !== 'llama') return 0;
  const c = model.config as LlamaConfig;
  return length * c.nLayer * 2 * c.nKvHead * c.headDim * 4;
}

export function disposeState(s: ModelState): void {
  for (const t of s.tensors.values()) t.dispose();
}

/**
 * Prefill B streams of L tokens (ids stream-major) in chunks; logits (B, V) of the last token.
 * With `read`, chunks also end at every multiple of `stride` tokens, and `read` gets the logits
 * there (and at L) with the tokens read so far.
 */
export function prefillChunked(
  model: TrainableModel,
  ids: Int32Array,
  B: number,
  L: number,
  state: ModelState,
  stride = Number.POSITIVE_INFINITY,
  read?: (logits: Float32Array, end: number) => void,
): Float32Array {
  const C = Math.max(1, Math.floor(PREFILL_TOKENS / B));
  let logits: Float32Array | null = null;
  for (let t0 = 0; t0 < L; ) {
    const next = Math.min(L, (Math.floor(t0 / stride) + 1) * stride),
      c = Math.min(C, next - t0),
      part = new Int32Array(B * c);
    for (let b = 0; b < B; b++) part.set(ids.subarray(b * L + t0, b * L + t0 + c), b * c);
    logits = model.prefill(part, c, state);
    t0 += c;
    if (read && t0 === next) read(logits, t0);
  }
  return logits as Float32Array;
}

export interface BatchScore {
  correct: number;
  trials: number;
  tokens: number;
  /** Further counters, summed over batches into EvalRow.sums. */
  extra?: Record<string, number>;
}

function induction(model: TrainableModel, rng: Rng, B: number, L: number): BatchScore {
  const V = model.config.vocabSize,
    seqs = Array.from({ length: B }, () => inductionSequence(rng, L));
  const ids = new Int32Array(B * L);
  seqs.forEach((s, b) => ids.set(s.ids, b * L));
  const state = model.createState(B);
  try {
    const logits = prefillChunked(model, ids, B, L, state);
    const correct = seqs.reduce((c, s, b) => c + (argmaxRow(logits, b, V, INDUCTION_CONTENT) === s.answer ? 1 : 0), 0);
    return { correct, trials: B, tokens: B * L };
  } finally {
    disposeState(state);
  }
}

function selectiveCopy(model: TrainableModel, rng: Rng, B: number, L: number): BatchScore {
  const V = model.config.vocabSize,
    body = L - COPY_TOKENS,
    seqs = Array.from({ length: B }, () => selectiveCopySequence(rng, L));
  const ids = new Int32Array(B * body);
  seqs.forEach((s, b) => ids.set(s.ids.subarray(0, body), b * body));
  const state = model.createState(B);
  try {
    prefillChunked(model, ids, B, body, state);
    const markers = new Int32Array(B).fill(COPY_MARKER);
    let correct = 0;
    for (let k = 0; k < COPY_TOKENS; k++) {
      const logits = model.step(markers, state);
      seqs.forEach((s, b) => {
        if (argmaxRow(logits, b, V) === s.data[k]) correct++;
      });
    }
    return { correct, trials: B * COPY_TOKENS, tokens: B * L };
  } finally {
    disposeState(state);
  }
}

/** Greedy decoding cap of the end-to-end model: the longest move list of n disks, with as much again to spare. */
export function decodeCap(disks: number): number {
  return 2 ** (disks + 1);
}

/**
 * Episodes of n disks: prefill the observations, then end-to-end: decode greedily (each stream
 * reads its own output back) until END or the cap; neuro-symbolic: step through the queries (the
 * disks the observation names, then SEP) and take the model's token after each.
 */
function hanoi(model: TrainableModel, rng: Rng, B: number, disks: number, method: HanoiMethod): BatchScore {
  const V = model.config.vocabSize,
    Lo = observationLength(disks);
  const scenes = Array.from({ length: B }, () => hanoiScene(rng, disks)),
    obs = scenes.map((s) => observe(rng, s).ids);
  const ids = new Int32Array(B * Lo);
  obs.forEach((o, b) => ids.set(o, b * Lo));
  const queries = method === 'neuro-symbolic' ? obs.map((o) => parserQueries(o)) : null;
  const state = model.createState(B);
  try {
    let logits = prefillChunked(model, ids, B, Lo, state);
    const outputs: number[][] = scenes.map(() => []),
      done = new Array<boolean>(B).fill(false);
    const steps = queries ? queries[0].length : decodeCap(disks),
      next = new Int32Array(B);
    let fed = 0;
    for (let t = 0; t < steps; t++) {
      for (let b = 0; b < B; b++) {
        const tok = argmaxRow(logits, b, V);
        if (queries) {
          if (t > 0) outputs[b].push(tok);
          next[b] = queries[b][t];
          continue;
        }
        next[b] = tok;
        if (!done[b]) {
          outputs[b].push(tok);
          done[b] = tok === END;
        }
      }
      if (!queries && (done.every(Boolean) || t + 1 === steps)) break;
      logits = model.step(next, state);
      fed++;
    }
    if (queries) for (let b = 0; b < B; b++) outputs[b].push(argmaxRow(logits, b, V));
    const correct = scenes.reduce((c, s, b) => c + (scoreEpisode(s, method, outputs[b]).success ? 1 : 0), 0);
    return { correct, trials: B, tokens: B * (Lo + fed) };
  } finally {
    disposeState(state);
  }
}

function runBatch(model: TrainableModel, o: EvalOptions, rng: Rng, B: number, length: number): BatchScore {
  if (o.run) return o.run(model, rng, B, length);
  if (o.task === 'induction') return induction(model, rng, B, length);
  if (o.task === 'selective-copy') return selectiveCopy(model, rng, B, length);
  return hanoi(model, rng, B, length, o.method ?? 'neuro-symbolic');
}

/** An independent stream of sequences for each length, so adding a length never changes another's. */
function lengthRng(seed: number, length: number): Rng {
  return Rng.fromSeed(Number((BigInt(seed) * 1000003n + BigInt(length)) % (1n << 53n)));
}

/** Sequences per batch: large enough to amortise each call, small enough for the state budget. */
function batchSize(model: TrainableModel, task: TaskName | undefined, length: number, n: number, maxStateBytes: number): number {
  const perStream = stateBytesPerStream(model, task === 'hanoi' ? 64 : length);
  const cap = model.config.modelType === 'llama' ? 16 : 64;
  return Math.max(1, Math.min(n, cap, perStream > 0 ? Math.floor(maxStateBytes / perStream) : cap));
}

/** Evaluate one model at every length (in the order given); see EvalOptions for budgets. */
export function evaluateModel(model: TrainableModel, o: EvalOptions): EvalRow[] {
  const rows: EvalRow[] = [];
  const maxState = o.maxStateBytes ?? DEFAULT_STATE_BYTES;
  const done: { length: number; seconds: number; n: number }[] = [];
  let kind: EnergyKind = 'estimated';
  // warm-up outside any meter: the first calls compile code and allocate buffers
  if (o.lengths.length > 0) runBatch(model, o, Rng.fromSeed(o.seed), 2, o.task === 'hanoi' ? o.lengths[0] : Math.min(o.lengths[0], 256));
  for (const length of o.lengths) {
    const n = typeof o.n === 'function' ? o.n(length) : o.n;
    const skip = budgetProblem(model, o, length, n, done, maxState);
    if (skip !== null) {
      rows.push({
        length,
        n: 0,
        accuracy: null,
        ci95: null,
        joules_per_sequence: null,
        energy_kind: kind,
        tok_s: null,
        out_of_budget: skip,
      });
      continue;
    }
    const rng = lengthRng(o.seed, length),
      B = batchSize(model, o.task, length, n, maxState);
    const energy = startEnergy();
    const t0 = performance.now();
    let correct = 0,
      trials = 0,
      tokens = 0,
      sums: Record<string, number> | undefined;
    for (let s0 = 0; s0 < n; s0 += B) {
      const b = Math.min(B, n - s0);
      const r = runBatch(model, o, rng, b, length);
      correct += r.correct;
      trials += r.trials;
      tokens += r.tokens;
      for (const [k, v] of Object.entries(r.extra ?? {})) {
        sums ??= {};
        sums[k] = (sums[k] ?? 0) + v;
      }
      o.onProgress?.(length, s0 + b, n);
    }
    const seconds = (performance.now() - t0) / 1000,
      e = energy.stop(tokens);
    kind = e.kind;
    done.push({ length, seconds, n });
    rows.push({
      length,
      n,
      accuracy: correct / trials,
      ci95: wilson(correct, trials),
      joules_per_sequence: e.joules / n,
      energy_kind: e.kind,
      tok_s: tokens / Math.max(seconds, 1e-9),
      ...(sums ? { sums } : {}),
    });
  }
  return rows;
}

/**
 * Why a length cannot run within the budgets, or null. Time: the last lengths' seconds per
 * sequence, extrapolated with the growth exponent they show (clamped to 1..2; before two points,
 * 1 for Mamba and 2 for attention), must fit before the deadline. Memory: one stream's state.
 */
function budgetProblem(
  model: TrainableModel,
  o: EvalOptions,
  length: number,
  n: number,
  done: readonly { length: number; seconds: number; n: number }[],
  maxState: number,
): string | null {
  const bytes = stateBytesPerStream(model, length);
  if (bytes > maxState)
    return `memory: one stream's KV cache needs ${(bytes / 2 ** 20).toFixed(1)} MiB, over the ${(maxState / 2 ** 20).toFixed(1)} MiB budget`;
  if (o.deadline === undefined || done.length === 0) return null;
  const last = done[done.length - 1],
    prev = done.length > 1 ? done[done.length - 2] : null;
  let k = model.config.modelType === 'llama' ? 2 : 1;
  if (prev && last.length > prev.length) {
    const measured = Math.log(last.seconds / last.n / (prev.seconds / prev.n)) / Math.log(last.length / prev.length);
    if (Number.isFinite(measured)) k = Math.min(2, Math.max(1, measured));
  }
  const need = (last.seconds / last.n) * n * (length / last.length) ** k,
    left = (o.deadline - performance.now()) / 1000;
  return need > left ? `time: about ${need.toFixed(0)} s needed at ${length}, ${Math.max(0, left).toFixed(0)} s left of the budget` : null;
}
