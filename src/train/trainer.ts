import { Engine, valueAndGrad } from '../ops/index.js';
import type { KernelKind } from '../kernels/backend.js';
import { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { openOutputDir } from '../io/outputs.js';
import type { OutputDir } from '../io/outputs.js';
import { evalWindows, loadCorpus, sampleBatch, splitCorpus, unigramEntropyBits } from '../io/corpus.js';
import type { TokenData } from '../io/corpus.js';
import { loadTokenizer } from '../io/tokenizer.js';
import type { HFTokenizer } from '../io/tokenizer.js';
import { createModel } from '../models/factory.js';
import type { TrainableModel } from '../models/types.js';
import { loadModel, modelFiles, rememberSource } from '../models/checkpoint.js';
import type { Adapter, LoraOptions } from '../models/lora.js';
import { distillBatch, encodeBytes, loadTeacher, loraAdapter } from './refine.js';
import { AdamW, learningRate } from './optim.js';
import { loadOptimizerState, readTrainerState, saveTrainingCheckpoint } from './checkpoint.js';
import type { TrainerState } from './checkpoint.js';

/** Every setting of a training run (the flags of `frugal train`). */
export interface TrainOptions {
  /** Architecture: `'mamba'`, `'mamba2'`, `'mamba3'`, `'hybrid'` or `'transformer'` (the Llama-style baseline). */
  arch: string;
  /** Training text: a file, or `'sotu'` (State of the Union addresses, from npm). */
  data: string;
  /** The checkpoint folder to write. */
  out: string;
  /** Model width D. */
  dModel: number;
  /** Number of layers. */
  layers: number;
  /** State-space models: SSM state size N. */
  dState: number;
  /** Transformer and hybrid: attention heads (default: head size closest to 64). */
  heads?: number;
  /** Mamba-3: MIMO heads with this many ranks (absent: SISO). */
  mimoRank?: number;
  /** Hybrid: comma-separated layer types, one per layer (mamba2, attention, mamba), e.g. `'mamba2,attention,mamba2'`. */
  layerTypes?: string;
  /** Training sequence length L, in tokens. */
  seqLen: number;
  /** Sequences per step B. */
  batch: number;
  /** Total optimiser steps. */
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps. */
  warmup: number;
  /** Final learning rate of the cosine decay. */
  minLr: number;
  /** AdamW decoupled weight decay. */
  weightDecay: number;
  /** Gradient clipping by global norm (0: off). */
  clip: number;
  /** Seed of the initial weights and the data order. */
  seed: number;
  /** Validation every n steps (0: only at the end). */
  evalEvery: number;
  /** Validation windows of `seqLen` tokens. */
  evalWindows: number;
  /** Checkpoint every n steps (0: only at the end). */
  saveEvery: number;
  /** Tail fraction of the corpus held out for validation. */
  valFraction: number;
  /** `'wasm'` (WebAssembly SIMD) or `'ref'` (the plain TypeScript twins). */
  kernels: KernelKind;
  /** Worker threads (any count gives the same numbers bit for bit). */
  threads: number;
  /** Continue the run saved in `out` with every option it was started with. */
  resume: boolean;
  /** Replace an existing checkpoint in `out`; with `resume`, accept options that differ from the saved run's. */
  force?: boolean;
  /** Start from this model folder instead of random weights (null: random). */
  init: string | null;
  /** A new model's tokenizer: a folder with tokenizer.json (its ids are the vocabulary); absent: bytes. */
  tokenizer?: string | null;
  /** With `init`: `'full'` trains every weight (the default), `'lora'` a LoRA adapter on the frozen base. */
  method?: 'full' | 'lora';
  /** The adapter's shape for method `'lora'`. */
  lora?: LoraOptions;
  /** Distillation: the teacher's model folder (same tokenizer); its softmax temperature and the soft loss's weight. */
  teacher?: string | null;
  temperature?: number;
  alpha?: number;
  /**
   * The options given explicitly (the command line's flags, a library call's settings); on resume
   * the others come from the saved run. Without it every option counts as given.
   */
  explicit?: readonly string[];
}

/** One optimiser step, as reported to {@link TrainHooks.onStep}. */
export interface StepReport {
  /** The step just taken (1-based) and the total. */
  step: number;
  /** The total number of steps of the run. */
  steps: number;
  /** Training loss of the step's batch (nats per token). */
  loss: number;
  /** Learning rate used. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Training tokens per second so far in this session. */
  tokPerSec: number;
  /** Seconds since the session's first step started. */
  elapsed: number;
}

/** Callbacks of a training run; each is optional. */
export interface TrainHooks {
  /** After every optimiser step. */
  onStep?: (r: StepReport) => void;
  /** After each validation, with the validation loss in bits per byte. */
  onEval?: (step: number, bpb: number) => void;
  /** After each checkpoint save. */
  onSave?: (step: number) => void;
  /** Progress messages and warnings for the user. */
  log?: (msg: string) => void;
}

export interface TrainResult {
  model: TrainableModel;
  /** The adapter trained (method 'lora'), attached to `model`; null for a full run. */
  adapter: Adapter | null;
  /** Parameters the optimiser updated (the adapter's alone for LoRA). */
  trainable: number;
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

/** Options of the machine, not of the run: never restored on resume, free to differ. */
const MACHINE_OPTIONS = new Set(['out', 'resume', 'force', 'explicit', 'threads']);
/** Restored on resume when not given, but free to change: they change no number of the run. */
const FREE_ON_RESUME = new Set(['saveEvery']);

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
    const ids = w.inputs.subarray(r0 * L, (r0 + rows) * L),
      targets = w.targets.subarray(r0 * L, (r0 + rows) * L);
    nats += model.e.scope(() => model.loss(ids, targets, rows, L).data()[0]) * rows;
  }
  return nats / w.count / Math.LN2 / bytesPerToken;
}

/** The corpus as token ids for a model: raw bytes, or the ids of the checkpoint's tokenizer.json. */
function tokenize(
  tok: HFTokenizer | null,
  train: Uint8Array,
  val: Uint8Array,
  log: (m: string) => void,
): { train: TokenData; val: TokenData; bytesPerToken: number } {
  if (!tok) return { train, val, bytesPerToken: 1 };
  const t0 = performance.now();
  const tt = encodeBytes(tok, train),
    tv = encodeBytes(tok, val);
  log(`tokenised the corpus with ${tok.file}: ${tt.length + tv.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { train: tt, val: tv, bytesPerToken: val.length / Math.max(1, tv.length) };
}

const flagName = (k: string) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/**
 * On --resume every saved option (and --data) is restored, so the continued run is the run that
 * was interrupted. An option given explicitly (`o.explicit`) that differs from the saved value is
 * refused, unless `o.force`, which keeps the new value (--save-every may always change).
 */
function adoptSaved(o: TrainOptions, state: TrainerState, log: (m: string) => void): TrainOptions {
  const out: Record<string, unknown> = { ...o };
  const given = o as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries({ ...state.options, data: state.data.spec })) {
    if (MACHINE_OPTIONS.has(k) || v === undefined) continue;
    const explicit = o.explicit ? o.explicit.includes(k) : k in given;
    if (!explicit || JSON.stringify(given[k]) === JSON.stringify(v)) {
      out[k] = v;
      continue;
    }
    if (FREE_ON_RESUME.has(k)) continue;
    const was = `${flagName(k)} ${String(v)}`,
      now = `${flagName(k)} ${String(given[k])}`;
    if (!o.force) {
      throw inputError(
        `--resume: ${o.out} was trained with ${was}, and ${now} contradicts it; drop ${flagName(k)} to continue ` +
          'the run exactly as it was, or add --force to change it',
      );
    }
    log(`--force: continuing ${o.out} with ${now} instead of ${was}`);
  }
  return out as unknown as TrainOptions;
}

/** A training run in progress: one step at a time, so that a caller can stop it between steps. */
export interface TrainingRun {
  /** The options in force (a resumed run's are the saved ones). */
  readonly options: TrainOptions;
  readonly state: TrainerState;
  /** The step of the checkpoint on disk (-1: none written by this run yet). */
  readonly savedStep: number;
  done(): boolean;
  /** One optimiser step, with its validation and periodic save. */
  step(): void;
  save(): void;
  /** Final validation and save. */
  finish(): TrainResult;
  /** Release the output folder (its lock). Always call it, also after an error. */
  close(): void;
}

/**
 * Check the output and take its lock, then prepare the run (prepareRun: data, model, optimiser,
 * or the saved run to resume) and return it ready to step (Steps).
 */
export function startTraining(input: TrainOptions, hooks: TrainHooks = {}): TrainingRun {
  const log = hooks.log ?? (() => {});
  const out = openOutputDir(
    input.out,
    {
      flag: '--out',
      inputs: [input.data === 'sotu' ? null : input.data, input.init, input.tokenizer, input.teacher],
      force: input.force,
      resume: input.resume,
    },
    (m) => log(`warning: ${m}`),
  );
  try {
    return new Steps(prepareRun(input, out, log), out, hooks);
  } catch (e) {
    out.release();
    throw e;
  }
}

/** Everything a run steps with, loaded or created. */
interface PreparedRun {
  o: TrainOptions;
  e: Engine;
  model: TrainableModel;
  /** The adapter a LoRA run trains (attached to `model`), else null. */
  adapter: Adapter | null;
  /** A distillation run's frozen teacher, else null. */
  teacher: TrainableModel | null;
  opt: AdamW;
  state: TrainerState;
  dataRng: Rng;
  trainData: TokenData;
  val: TokenData;
  bytesPerToken: number;
  unigramBpb: number;
  resuming: boolean;
}

/** Restore a saved run (model, optimiser, data order, options) or create a new one. */
function prepareRun(input: TrainOptions, out: OutputDir, log: (m: string) => void): PreparedRun {
  const dir = out.path;
  const resuming = input.resume && out.state === 'checkpoint';
  if (input.resume && !resuming) log(`--resume: no checkpoint in ${input.out} yet, starting a new run`);
  if (!input.resume && out.state === 'checkpoint') log(`--force: the checkpoint in ${input.out} is replaced at the first save`);
  const saved = resuming ? readTrainerState(dir) : null;
  const o = saved ? adoptSaved(input, saved, log) : input;
  const corpus = loadCorpus(o.data);
  const { train: trainBytes, val: valBytes } = splitCorpus(corpus.bytes, o.valFraction);
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  let model: TrainableModel;
  let state: TrainerState;
  const dataRng = Rng.fromSeed(o.seed + 1);
  if (saved) {
    state = saved;
    if (state.data.bytes !== corpus.bytes.length) {
      const why = `${input.out} was trained on '${state.data.spec}' (${state.data.bytes} bytes), but it now has ${corpus.bytes.length} bytes`;
      if (!o.force) throw inputError(`--resume: ${why}; add --force to continue on the new data`);
      log(`--force: ${why}; continuing on the new data`);
      state.data = { spec: o.data, bytes: corpus.bytes.length };
    }
    model = loadModel(e, o.method === 'lora' ? (o.init as string) : dir).model;
    dataRng.setState(state.dataRng);
    log(`resuming ${input.out} at step ${state.step}`);
  } else {
    model = o.init ? loadModel(e, o.init).model : newModel(o, e);
    state = {
      format: 'frugal-trainer-state/1',
      step: 0,
      dataRng: [],
      data: { spec: o.data, bytes: corpus.bytes.length },
      options: {},
      losses: [],
      valBpb: [],
      tokensSeen: 0,
    };
  }
  // a checkpoint with a tokenizer.json (a published model given to --init) trains on its token ids
  // a LoRA run reads text as its base does; a new model with --tokenizer trains on that file's ids
  const tokDir = o.method === 'lora' ? o.init : resuming ? dir : (o.init ?? o.tokenizer ?? null);
  const tok = tokDir ? loadTokenizer(tokDir) : null;
  if (!tok && model.config.vocabSize < 256)
    throw inputError(`the byte tokenizer needs a vocabulary of at least 256, the model has ${model.config.vocabSize}`);
  if (tok && tok.vocabSize > model.config.vocabSize)
    throw inputError(`${tok.file} has ${tok.vocabSize} ids but the model's vocabulary is ${model.config.vocabSize}`);
  const { train: trainData, val, bytesPerToken } = tokenize(tok, trainBytes, valBytes, log);
  if (o.method !== 'lora' && 'qweights' in model && (model.qweights as Map<string, unknown>).size > 0) {
    throw inputError(
      `${o.init ?? input.out} is quantised: full fine-tuning needs the f32 checkpoint (or train a LoRA adapter on this base with --method lora)`,
    );
  }
  const adapter = o.method === 'lora' ? loraAdapter(o, model, resuming ? dir : null) : null;
  const teacher = o.teacher ? loadTeacher(e, o.teacher, model, tokDir) : null;
  const table = adapter ?? model;
  const opt = new AdamW(e, table.specs, table.params, { lr: o.lr, weightDecay: o.weightDecay });
  if (resuming) loadOptimizerState(dir, opt, state.step);
  if (!saved && o.init)
    log(
      `starting from ${o.init}${adapter ? ` with a LoRA adapter (r ${adapter.options.r}, alpha ${adapter.options.alpha}, ${adapter.modules.size} modules)` : ''}`,
    );
  const unigramBpb = unigramEntropyBits(trainBytes);
  return { o, e, model, adapter, teacher, opt, state, dataRng, trainData, val, bytesPerToken, unigramBpb, resuming };
}

/** A new model of the run's architecture and size: byte-level, or on the ids of --tokenizer's file. */
function newModel(o: TrainOptions, e: Engine): TrainableModel {
  const tok = o.tokenizer ? loadTokenizer(o.tokenizer) : null;
  if (o.tokenizer && !tok) throw inputError(`--tokenizer ${o.tokenizer} has no tokenizer.json (make one with 'frugal tokenizer train')`);
  const vocab = tok ? { vocabSize: tok.vocabSize, tokenizer: 'file' as const, eosTokenId: [...tok.specialIds].at(-1) } : { vocabSize: 256 };
  const size = {
    dModel: o.dModel,
    layers: o.layers,
    dState: o.dState,
    heads: o.heads,
    mimoRank: o.mimoRank,
    layerTypes: o.layerTypes?.split(',').map((t) => t.trim()),
  };
  const model = createModel(o.arch, e, { ...size, ...vocab }, Rng.fromSeed(o.seed));
  if (o.tokenizer) rememberSource(model, o.tokenizer); // its tokenizer files are saved with the model
  return model;
}

/** A prepared run, stepped one optimiser step at a time. */
class Steps implements TrainingRun {
  private readonly t0 = performance.now();
  private tokens = 0;
  private closed = false;
  private saved: number;

  constructor(
    private readonly p: PreparedRun,
    private readonly out: OutputDir,
    private readonly hooks: TrainHooks,
  ) {
    this.saved = p.resuming ? p.state.step : -1;
  }

  get options(): TrainOptions {
    return this.p.o;
  }
  get state(): TrainerState {
    return this.p.state;
  }
  get savedStep(): number {
    return this.saved;
  }
  done(): boolean {
    return this.p.state.step >= this.p.o.steps;
  }

  save(): void {
    const { state, dataRng, o, model, adapter, opt } = this.p;
    state.dataRng = dataRng.getState();
    state.options = { ...o, resume: false, force: false, explicit: undefined };
    saveTrainingCheckpoint(this.out.path, adapter ? adapter.files(model) : modelFiles(model), opt, state);
    this.saved = state.step;
    this.hooks.onSave?.(state.step);
  }

  step(): void {
    const { o, e, model, adapter, teacher, opt, state } = this.p;
    const step = state.step + 1;
    const batch = sampleBatch(this.p.dataRng, this.p.trainData, o.batch, o.seqLen);
    opt.zeroGrad();
    if (adapter) adapter.rng = Rng.fromSeed(o.seed * 1_000_003 + step); // dropout's draws for this step, the same on resume
    const loss = valueAndGrad(e, () =>
      teacher ? distillBatch(e, model, teacher, batch, o) : model.loss(batch.inputs, batch.targets, o.batch, o.seqLen),
    );
    const lr = learningRate(step, o.lr, o.warmup, o.steps, o.minLr);
    const gradNorm = opt.update(lr, o.clip);
    model.weightsChanged();
    state.step = step;
    state.losses.push(loss);
    state.tokensSeen += o.batch * o.seqLen;
    this.tokens += o.batch * o.seqLen;
    const elapsed = (performance.now() - this.t0) / 1000;
    this.hooks.onStep?.({ step, steps: o.steps, loss, lr, gradNorm, tokPerSec: this.tokens / elapsed, elapsed });
    if (o.evalEvery > 0 && step % o.evalEvery === 0 && step < o.steps) {
      const bpb = this.validate();
      state.valBpb.push({ step, bpb });
      this.hooks.onEval?.(step, bpb);
    }
    if (o.saveEvery > 0 && step % o.saveEvery === 0 && step < o.steps) this.save();
  }

  finish(): TrainResult {
    const { model, adapter, e, state } = this.p;
    const trainSeconds = (performance.now() - this.t0) / 1000;
    const bpb = this.validate();
    if (state.valBpb.at(-1)?.step !== state.step) state.valBpb.push({ step: state.step, bpb });
    this.hooks.onEval?.(state.step, bpb);
    this.save();
    return {
      model,
      adapter,
      trainable: adapter ? adapter.parameterCount : model.parameterCount,
      engine: e,
      state,
      parameters: model.parameterCount,
      valBpb: bpb,
      unigramBpb: this.p.unigramBpb,
      trainTokPerSec: this.tokens / Math.max(trainSeconds, 1e-9),
      trainSeconds,
      sessionTokens: this.tokens,
    };
  }

  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.out.release();
    }
  }

  private validate(): number {
    const { model, val, o, bytesPerToken } = this.p;
    return evaluate(model, val, o.seqLen, o.evalWindows, o.batch, bytesPerToken);
  }
}

/** Step `run` to the end and finish it; its output is released whatever happens. */
export function runToEnd<R>(run: { done(): boolean; step(): void; finish(): R; close(): void }): R {
  try {
    while (!run.done()) run.step();
    return run.finish();
  } finally {
    run.close();
  }
}

/** Train (or resume) to the end in one call. */
export function train(input: TrainOptions, hooks: TrainHooks = {}): TrainResult {
  return runToEnd(startTraining(input, hooks));
}
