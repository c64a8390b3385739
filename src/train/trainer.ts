import { existsSync } from 'node:fs';
import { Engine, valueAndGrad } from '../ops/index.js';
import type { KernelKind } from '../kernels/backend.js';
import { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { recoverDir } from '../io/atomic.js';
import { evalWindows, loadCorpus, sampleBatch, splitCorpus, unigramEntropyBits } from '../io/corpus.js';
import type { TokenData } from '../io/corpus.js';
import { loadTokenizer } from '../io/tokenizer.js';
import type { HFTokenizer } from '../io/tokenizer.js';
import { createModel } from '../models/factory.js';
import type { TrainableModel } from '../models/types.js';
import { loadModel } from '../models/checkpoint.js';
import { AdamW, learningRate } from './optim.js';
import { loadOptimizerState, readTrainerState, saveTrainingCheckpoint } from './checkpoint.js';
import type { TrainerState } from './checkpoint.js';

export interface TrainOptions {
  arch: string;            // 'mamba' (see models/factory.ts)
  data: string;            // 'sotu' or a text file
  out: string;             // checkpoint directory
  dModel: number;
  layers: number;
  dState: number;
  heads?: number;          // transformer attention heads (default: head size closest to 64)
  seqLen: number;
  batch: number;
  steps: number;
  lr: number;
  warmup: number;
  minLr: number;
  weightDecay: number;
  clip: number;
  seed: number;
  evalEvery: number;       // 0: only at the end
  evalWindows: number;
  saveEvery: number;       // 0: only at the end
  valFraction: number;
  kernels: KernelKind;
  threads: number;
  resume: boolean;
  init: string | null;     // start from an existing model directory
  /** Options given explicitly on the command line (the rest may be taken from a resumed run). */
  explicit?: readonly string[];
}

export interface StepReport { step: number; steps: number; loss: number; lr: number; gradNorm: number; tokPerSec: number; elapsed: number }
export interface TrainHooks {
  onStep?: (r: StepReport) => void;
  onEval?: (step: number, bpb: number) => void;
  onSave?: (step: number) => void;
  log?: (msg: string) => void;
}

export interface TrainResult {
  model: TrainableModel;
  engine: Engine;
  state: TrainerState;
  parameters: number;
  valBpb: number;
  unigramBpb: number;
  trainTokPerSec: number;
  /** Tokens trained on in this call (a resumed run's state.tokensSeen also counts earlier sessions). */
  sessionTokens: number;
  trainSeconds: number;
}

/** Options that must match when resuming (the rest, like --steps, may change). */
const FIXED_ON_RESUME = ['arch', 'dModel', 'layers', 'dState', 'seqLen', 'batch', 'seed', 'valFraction'] as const;

/**
 * Validation loss in bits per byte over fixed windows of the validation split (no tape).
 * `bytesPerToken` converts per-token loss to per-byte loss: 1 for the byte tokenizer, the
 * validation text's bytes ÷ tokens for a tokenizer.json.
 */
export function evaluate(model: TrainableModel, val: TokenData, L: number, maxWindows: number, B: number, bytesPerToken = 1): number {
  const w = evalWindows(val, L, maxWindows);
  let nats = 0;
  for (let r0 = 0; r0 < w.count; r0 += B) {
    const rows = Math.min(B, w.count - r0);
    const ids = w.inputs.subarray(r0 * L, (r0 + rows) * L), targets = w.targets.subarray(r0 * L, (r0 + rows) * L);
    nats += model.e.scope(() => model.loss(ids, targets, rows, L).data()[0]) * rows;
  }
  return nats / w.count / Math.LN2 / bytesPerToken;
}

/** The corpus as token ids for a model: raw bytes, or the ids of the checkpoint's tokenizer.json. */
function tokenize(tok: HFTokenizer | null, train: Uint8Array, val: Uint8Array, log: (m: string) => void):
  { train: TokenData; val: TokenData; bytesPerToken: number } {
  if (!tok) return { train, val, bytesPerToken: 1 };
  const t0 = performance.now();
  const dec = new TextDecoder();
  // encode in pieces: a tokenizer's cost grows with the length of what it is handed at once
  const enc = (b: Uint8Array) => {
    const parts: Int32Array[] = [];
    const text = dec.decode(b);
    const PIECE = 1 << 16;
    for (let i = 0; i < text.length; i += PIECE) parts.push(tok.encode(text.slice(i, i + PIECE)));
    const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };
  const tt = enc(train), tv = enc(val);
  log(`tokenised the corpus with ${tok.file}: ${tt.length + tv.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { train: tt, val: tv, bytesPerToken: val.length / Math.max(1, tv.length) };
}

/**
 * On --resume, options that shape the run (FIXED_ON_RESUME, and --data) come from the saved run
 * unless given explicitly (`o.explicit`, the flags typed on the command line); an explicit value
 * that differs is an error. Without `o.explicit` (library use) every value must match.
 */
function adoptSaved(o: TrainOptions, state: TrainerState): TrainOptions {
  const out: Record<string, unknown> = { ...o };
  for (const k of [...FIXED_ON_RESUME, 'data'] as const) {
    const saved = k === 'data' ? state.data.spec : state.options[k];
    if (o.explicit && !o.explicit.includes(k)) { if (saved !== undefined) out[k] = saved; continue; }
    if (saved !== o[k]) throw inputError(`--resume: ${o.out} was trained with ${k}=${String(saved)}, not ${String(o[k])}; drop the flag or use the same value`);
  }
  return out as unknown as TrainOptions;
}

/**
 * One training run, new or resumed, to `o.steps` steps. Longer than most functions here on purpose:
 * the order of its parts (finish an interrupted save, adopt the saved options, load the corpus,
 * model, tokenizer and optimiser state, then the step loop with its evaluations and saves) is what
 * makes a resumed run repeat an uninterrupted one bit for bit, and it reads best top to bottom.
 */
export function train(input: TrainOptions, hooks: TrainHooks = {}): TrainResult {
  const log = hooks.log ?? (() => {});
  let o = input;
  let resuming = false;
  if (o.resume) {
    try {
      recoverDir(o.out); // finish or roll back a save that a kill interrupted
      resuming = existsSync(o.out);
    } catch (err) {
      if (existsSync(o.out)) throw err;
      log(`--resume: no checkpoint in ${o.out} yet, starting a new run`);
    }
  }
  const saved = resuming ? readTrainerState(o.out) : null;
  if (saved) o = adoptSaved(o, saved);
  const corpus = loadCorpus(o.data);
  const { train: trainBytes, val: valBytes } = splitCorpus(corpus.bytes, o.valFraction);
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  let model: TrainableModel;
  let state: TrainerState;
  const dataRng = Rng.fromSeed(o.seed + 1);
  if (saved) {
    state = saved;
    if (state.data.bytes !== corpus.bytes.length) {
      throw inputError(`--resume: ${o.out} was trained on '${state.data.spec}' (${state.data.bytes} bytes), but it now has ${corpus.bytes.length} bytes`);
    }
    model = loadModel(e, o.out).model;
    dataRng.setState(state.dataRng);
    log(`resuming ${o.out} at step ${state.step}`);
  } else {
    if (o.init) {
      model = loadModel(e, o.init).model;
      log(`starting from ${o.init}`);
    } else {
      model = createModel(o.arch, e, { dModel: o.dModel, layers: o.layers, dState: o.dState, heads: o.heads, vocabSize: 256 }, Rng.fromSeed(o.seed));
    }
    state = { format: 'frugal-trainer-state/1', step: 0, dataRng: [], data: { spec: o.data, bytes: corpus.bytes.length },
      options: { ...o }, losses: [], valBpb: [], tokensSeen: 0 };
  }
  // a checkpoint with a tokenizer.json (a published model given to --init) trains on its token ids
  const tok = resuming ? loadTokenizer(o.out) : o.init ? loadTokenizer(o.init) : null;
  if (!tok && model.config.vocabSize < 256) throw inputError(`the byte tokenizer needs a vocabulary of at least 256, the model has ${model.config.vocabSize}`);
  if (tok && tok.vocabSize > model.config.vocabSize) throw inputError(`${tok.file} has ${tok.vocabSize} ids but the model's vocabulary is ${model.config.vocabSize}`);
  const { train: trainData, val, bytesPerToken } = tokenize(tok, trainBytes, valBytes, log);
  if ('qweights' in model && (model.qweights as Map<string, unknown>).size > 0) {
    throw inputError(`${o.init ?? o.out} is quantised, and quantised models are for inference only: train the f32 checkpoint, then 'frugal quantize' it`);
  }
  const opt = new AdamW(e, model.specs, model.params, { lr: o.lr, weightDecay: o.weightDecay });
  if (resuming) loadOptimizerState(o.out, opt, state.step);

  const save = () => {
    state.dataRng = dataRng.getState();
    state.options = { ...o, resume: false, explicit: undefined };
    saveTrainingCheckpoint(o.out, model, opt, state);
    hooks.onSave?.(state.step);
  };
  const t0 = performance.now();
  let tokens = 0, lastBpb = NaN;
  while (state.step < o.steps) {
    const step = state.step + 1;
    const batch = sampleBatch(dataRng, trainData, o.batch, o.seqLen);
    opt.zeroGrad();
    const loss = valueAndGrad(e, () => model.loss(batch.inputs, batch.targets, o.batch, o.seqLen));
    const lr = learningRate(step, o.lr, o.warmup, o.steps, o.minLr);
    const gradNorm = opt.update(lr, o.clip);
    model.weightsChanged();
    state.step = step;
    state.losses.push(loss);
    state.tokensSeen += o.batch * o.seqLen;
    tokens += o.batch * o.seqLen;
    const elapsed = (performance.now() - t0) / 1000;
    hooks.onStep?.({ step, steps: o.steps, loss, lr, gradNorm, tokPerSec: tokens / elapsed, elapsed });
    if (o.evalEvery > 0 && step % o.evalEvery === 0 && step < o.steps) {
      lastBpb = evaluate(model, val, o.seqLen, o.evalWindows, o.batch, bytesPerToken);
      state.valBpb.push({ step, bpb: lastBpb });
      hooks.onEval?.(step, lastBpb);
    }
    if (o.saveEvery > 0 && step % o.saveEvery === 0 && step < o.steps) save();
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  lastBpb = evaluate(model, val, o.seqLen, o.evalWindows, o.batch, bytesPerToken);
  if (state.valBpb.at(-1)?.step !== state.step) state.valBpb.push({ step: state.step, bpb: lastBpb });
  hooks.onEval?.(state.step, lastBpb);
  save();
  return {
    model, engine: e, state, parameters: model.parameterCount, valBpb: lastBpb,
    unigramBpb: unigramEntropyBits(trainBytes), trainTokPerSec: tokens / Math.max(trainSeconds, 1e-9), trainSeconds, sessionTokens: tokens,
  };
}
