/**
 * Model-level timings of `frugal bench`: batch-1 decode, prefill, many streams, and training.
 * Every loop runs a few untimed warm-up calls first (JIT, first allocations, waking the worker
 * threads) and is then timed over at least a number of calls and a number of seconds.
 */
import { Engine, valueAndGrad } from '../../ops/index.js';
import type { Tensor } from '../../tensor/index.js';
import { newBenchModel, recurrenceFlopsPerToken } from './arch.js';
import type { BenchArch, BenchModel, BenchShape } from './arch.js';
import type { ModelState, SequenceModel } from '../../models/types.js';
import { AdamW } from '../../train/optim.js';
import { Rng } from '../../io/rng.js';
import { timePerCall } from './machine.js';
import { rateSpread } from '../formulas.js';
import type { Spread } from '../formulas.js';
import { BatchDecoder } from '../../infer/batch.js';
import type { WasmKind } from '../../kernels/backend.js';

/** Tokens processed by the timed and warm-up loops of the run (for the closing tokens/s and J/token). */
export class TokenCounter {
  tokens = 0;
}

/** The f32 values of every parameter of a model, drawn once and copied into each fresh model. */
export interface ModelWeights {
  arch: BenchArch;
  shape: BenchShape;
  values: Map<string, Float32Array>;
}

export function makeWeights(arch: BenchArch, shape: BenchShape, seed: number): ModelWeights {
  const e = new Engine({ kernels: 'wasm', threads: 1 });
  try {
    const m = newBenchModel(arch, shape, e).init(Rng.fromSeed(seed));
    const values = new Map<string, Float32Array>();
    for (const [name, t] of m.params) values.set(name, Float32Array.from(t.floats()));
    return { arch, shape, values };
  } finally {
    e.dispose();
  }
}

/**
 * A model with these weights on a new engine of `threads` threads and kernel build `kernels`
 * (dispose its engine when done); `panels` false keeps its weights in the row layout (A/B tools).
 */
export function buildModel(w: ModelWeights, threads: number, kernels: WasmKind = 'wasm', panels = true): BenchModel {
  const e = new Engine({ kernels, threads, panels });
  const m = newBenchModel(w.arch, w.shape, e);
  for (const [name, t] of m.params) t.set(w.values.get(name) as Float32Array);
  m.weightsChanged();
  return m;
}

/** A pseudo-random token stream over the vocabulary (decode speed does not depend on the ids). */
function nextId(id: number, V: number): number {
  return (id * 1103515245 + 12345) % V;
}

function resetState(s: ModelState): void {
  for (const t of s.tensors.values()) t.zero();
  s.position = 0;
}

/** Batch-1 decode tokens/s of each step: ≥ `tokens` steps and ≥ minSeconds after 3 warm-up steps. */
export function decodeRate(m: BenchModel, tokens: number, minSeconds: number, count: TokenCounter): Spread {
  const V = m.config.vocabSize,
    st = m.createState(1),
    ids = new Int32Array(1);
  let id = 1;
  return rateSpread(
    1,
    timePerCall(
      () => {
        ids[0] = id;
        m.step(ids, st);
        id = nextId(id, V);
        count.tokens++;
      },
      minSeconds,
      tokens,
      3,
    ).samples,
  );
}

/**
 * Prefill tokens/s of an L-token prompt from an empty state. The warm-up prefills min(L, 128)
 * tokens; L ≤ 128 is then timed over ≥ minSeconds and ≥ 3 calls, longer prompts once (seconds each).
 */
export function prefillRate(m: BenchModel, L: number, minSeconds: number, count: TokenCounter): Spread {
  const V = m.config.vocabSize,
    st = m.createState(1);
  const ids = new Int32Array(L);
  for (let i = 0, id = 7; i < L; i++, id = nextId(id, V)) ids[i] = id;
  const warmL = Math.min(L, 128);
  resetState(st);
  m.prefill(ids.subarray(0, warmL), warmL, st);
  count.tokens += warmL;
  return rateSpread(
    L,
    timePerCall(
      () => {
        resetState(st);
        m.prefill(ids, L, st);
        count.tokens += L;
      },
      L <= 128 ? minSeconds : 0,
      L <= 128 ? 3 : 1, // three calls at least, so that min and max mean something
      0,
    ).samples,
  );
}

/** The stream id `join` returns: a number or `{ id, logits }`. */
function joinedId(j: number | { id: number }): number {
  return typeof j === 'number' ? j : j.id;
}

/**
 * Aggregate tokens/s of S streams decoding together through BatchDecoder (src/infer/batch.ts):
 * each joins with its own 4-token prompt, then every timed call is one step of all S streams.
 * Any sequence model: `frugal bench serve` runs it on the checkpoint the server serves.
 */
export function streamsRate(
  m: SequenceModel & { readonly config: { readonly vocabSize: number } },
  S: number,
  steps: number,
  minSeconds: number,
  count: TokenCounter,
): Spread {
  const V = m.config.vocabSize;
  const dec = new BatchDecoder(m, S);
  const tokens = new Map<number, number>();
  try {
    for (let s = 0; s < S; s++) tokens.set(joinedId(dec.join(Int32Array.from([1, 2, 3, 4].map((k) => (s * 4 + k) % V)))), (s * 7 + 5) % V);
    count.tokens += 4 * S;
    const r = timePerCall(
      () => {
        const out = dec.step(tokens);
        for (const id of out.keys()) tokens.set(id, nextId(tokens.get(id) ?? 1, V));
        count.tokens += S;
      },
      minSeconds,
      steps,
      2,
    );
    return rateSpread(S, r.samples);
  } finally {
    for (const id of tokens.keys()) dec.leave(id);
    dec.dispose();
  }
}

export interface TrainTiming {
  rate: Spread;
  parameters: number;
  scanFlopsPerToken: number;
}

/**
 * Training tokens/s of a fresh model: one AdamW step (forward, backward, clip, update) per batch of
 * B sequences of L random bytes; ≥ `steps` timed steps and ≥ minSeconds after one warm-up step.
 */
export function trainRate(
  arch: BenchArch,
  shape: BenchShape,
  threads: number,
  B: number,
  L: number,
  steps: number,
  minSeconds: number,
  count: TokenCounter,
  kernels: WasmKind = 'wasm',
): TrainTiming {
  const e = new Engine({ kernels, threads });
  try {
    const { m, step } = trainingStep(e, arch, shape, B, L);
    const r = timePerCall(
      () => {
        step();
        count.tokens += B * L;
      },
      minSeconds,
      steps,
      1,
    );
    return { rate: rateSpread(B * L, r.samples), parameters: m.parameterCount, scanFlopsPerToken: recurrenceFlopsPerToken(m, L) };
  } finally {
    e.dispose();
  }
}

/**
 * The fresh model of trainRate on engine e and its step: one AdamW step (forward, backward, clip,
 * update) on B sequences of L random bytes. `onLoss` runs between the forward and the backward
 * (tools/profile-train.mjs marks the phases with it).
 */
export function trainingStep(
  e: Engine,
  arch: BenchArch,
  shape: BenchShape,
  B: number,
  L: number,
  onLoss: () => void = () => {},
): { m: BenchModel; opt: AdamW; step: () => void } {
  const m = newBenchModel(arch, shape, e, 'bench training model').init(Rng.fromSeed(3));
  const opt = new AdamW(e, m.specs, m.params, { lr: 1e-3 });
  const rng = Rng.fromSeed(4),
    V = m.config.vocabSize;
  const ids = new Int32Array(B * L),
    targets = new Int32Array(B * L);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = rng.int(V);
    targets[i] = rng.int(V);
  }
  const step = () => {
    opt.zeroGrad();
    valueAndGrad(e, (): Tensor => {
      const loss = m.loss(ids, targets, B, L);
      onLoss();
      return loss;
    });
    opt.update(1e-3, 1);
    m.weightsChanged();
  };
  return { m, opt, step };
}
