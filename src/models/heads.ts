import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../ops/index.js';
import * as op from '../ops/ops.js';
import type { Tensor } from '../tensor/index.js';
import type { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import type { FileData } from '../io/atomic.js';
import { readSafetensors, readTensorF32, safetensorsProducer } from '../io/safetensors.js';
import { initValues } from './init.js';
import { loadModel, modelFiles } from './checkpoint.js';
import { createModel } from './factory.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from './types.js';

/**
 * Continuous inputs and task heads on the Mamba and transformer backbones: a linear embedding of
 * a real-valued multivariate tick x (F) into the model width, the backbone's blocks and final
 * norm (no token embedding), then a head: Gaussian (mean and log standard deviation of the
 * target, normalised) for forecasting, or class logits for classification. The backbone is saved
 * as an ordinary checkpoint; `stream.json` records the task, the input features and their
 * normalisation, and `stream_heads.safetensors` holds the input embedding and the head.
 */

export const STREAM_SPEC_FILE = 'stream.json';
export const HEADS_FILE = 'stream_heads.safetensors';
export const STREAM_FORMAT = 'frugal-stream/1';

export type StreamTask = 'forecast' | 'classify';
/** Backbones with continuous inputs: Mamba-1 and the Llama-style transformer. */
export const STREAM_ARCHS = ['mamba', 'transformer'] as const;
export type StreamArch = (typeof STREAM_ARCHS)[number];

/** What a streaming model reads and predicts (stream.json). */
export interface StreamSpec {
  format: typeof STREAM_FORMAT;
  task: StreamTask;
  /** gaussian: outputs (mean, log sd) of the normalised target; softmax: one logit per class. */
  head: 'gaussian' | 'softmax';
  /** Input columns, in the order the embedding reads them. */
  features: string[];
  target: string;
  /** Forecast: predict the target this many ticks ahead (classify: 0, the tick's own label). */
  horizon: number;
  /** Classes 0 .. classes−1 (classify), 0 for forecasting. */
  classes: number;
  /** Per-feature mean and standard deviation over the training span. */
  norm: { mean: number[]; std: number[] };
  /** The target's mean and standard deviation over the training span (forecast). */
  target_norm: { mean: number; std: number } | null;
  /** Training window in ticks; the transformer's sliding window when streaming. */
  window: number;
  /** Median interval between ticks in the training data (the time column's unit; ms for dates), or null. */
  median_dt: number | null;
  /** Rows of the training span and of the held-out tail. */
  rows: { train: number; held_out: number };
}

/** A backbone that runs on embedded inputs: the taped pass and the one-tick recurrent step. */
export interface HiddenBackbone extends TrainableModel {
  hiddenForward(h: Tensor): Tensor;
  hiddenStep(x: Float32Array, state: ModelState, window?: number): Float32Array;
}

function isHidden(m: TrainableModel): m is HiddenBackbone {
  return (
    typeof (m as Partial<HiddenBackbone>).hiddenForward === 'function' && typeof (m as Partial<HiddenBackbone>).hiddenStep === 'function'
  );
}

/** Width of the head's output: 2 (mean, log sd) or the number of classes. */
export function headOutputs(spec: StreamSpec): number {
  return spec.head === 'gaussian' ? 2 : spec.classes;
}

/** The parameters of the input embedding and the head, in file order. */
export function headSpecs(F: number, D: number, O: number): ParamSpec[] {
  return [
    { name: 'stream.in.weight', shape: [D, F], init: { kind: 'normal', std: 1 / Math.sqrt(F) }, decay: true },
    { name: 'stream.in.bias', shape: [D], init: { kind: 'zeros' }, decay: false },
    { name: 'stream.head.weight', shape: [O, D], init: { kind: 'normal', std: 0.02 }, decay: true },
    { name: 'stream.head.bias', shape: [O], init: { kind: 'zeros' }, decay: false },
  ];
}

/** Vocabulary of the unused token embedding a backbone still carries (kept tiny). */
const STUB_VOCAB = 8;

export class StreamModel {
  readonly heads: ParamTable = new Map();
  readonly headSpecs: ParamSpec[];
  /** The folder it was loaded from ('' for a model not yet saved). */
  dir = '';

  constructor(
    readonly backbone: HiddenBackbone,
    readonly spec: StreamSpec,
  ) {
    const hf = backbone.hfConfig();
    this.dModel = (hf.hidden_size ?? hf.d_model) as number;
    const e = backbone.e,
      D = this.dModel;
    this.headSpecs = headSpecs(spec.features.length, D, headOutputs(spec));
    for (const s of this.headSpecs) {
      const t = e.persistent(s.shape);
      t.requiresGrad = true;
      this.heads.set(s.name, t);
    }
  }

  get e(): Engine {
    return this.backbone.e;
  }
  /** The backbone's width D (read once: the runtime asks for it every tick). */
  readonly dModel: number;
  get arch(): StreamArch {
    return this.backbone.config.modelType === 'llama' ? 'transformer' : 'mamba';
  }

  /** Parameters that matter for the task: the backbone's without its (unused) token embedding and LM head, plus the heads. */
  get parameterCount(): number {
    let n = 0;
    for (const [name, t] of this.backbone.params) if (!isTokenTable(name)) n += t.size;
    for (const t of this.heads.values()) n += t.size;
    return n;
  }

  /** What the optimiser updates: specs and table (the token embedding stays out). */
  trainable(): { specs: ParamSpec[]; params: ParamTable } {
    const specs = [...this.backbone.specs.filter((s) => !isTokenTable(s.name)), ...this.headSpecs];
    const params: ParamTable = new Map();
    for (const s of specs) params.set(s.name, (this.backbone.params.get(s.name) ?? this.heads.get(s.name)) as Tensor);
    return { specs, params };
  }

  init(rng: Rng): this {
    for (const s of this.headSpecs) initValues((this.heads.get(s.name) as Tensor).floats(), s.shape, s.init, rng);
    return this;
  }

  /** Head outputs (B, L, O) of normalised inputs x (B, L, F), differentiable. */
  forward(x: Tensor): Tensor {
    const e = this.e,
      p = (n: string) => this.heads.get(n) as Tensor;
    const h = op.linear(e, x, p('stream.in.weight'), p('stream.in.bias'), null); // (B, L, D)
    const z = this.backbone.hiddenForward(h); // (B, L, D)
    return op.linear(e, z, p('stream.head.weight'), p('stream.head.bias'), null); // (B, L, O)
  }

  /** The checkpoint folder's files: the backbone's, stream.json and the heads. */
  files(): Record<string, FileData> {
    const tensors = this.headSpecs.map((s) => ({
      name: s.name,
      dtype: 'F32' as const,
      shape: s.shape,
      data: f32(this.heads.get(s.name) as Tensor),
    }));
    return {
      ...modelFiles(this.backbone),
      [STREAM_SPEC_FILE]: JSON.stringify(this.spec, null, 1) + '\n',
      [HEADS_FILE]: safetensorsProducer(
        tensors.map((t) => ({
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
          write: (emit) => emit(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
        })),
        { format: 'pt' },
      ).producer,
    };
  }
}

function f32(t: Tensor): Float32Array {
  const v = t.floats();
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

function isTokenTable(name: string): boolean {
  return name === 'backbone.embeddings.weight' || name === 'model.embed_tokens.weight' || name === 'lm_head.weight';
}

/** A new streaming model: backbone `arch` of width dModel and `layers` layers, heads for `spec`. */
export function createStreamModel(
  e: Engine,
  arch: StreamArch,
  dModel: number,
  layers: number,
  spec: StreamSpec,
  rng: Rng,
  heads?: number,
): StreamModel {
  const bb = createModel(arch, e, { dModel, layers, dState: 16, vocabSize: STUB_VOCAB, ...(heads ? { heads } : {}) }, rng);
  if (!isHidden(bb)) throw inputError(`--arch ${arch} does not take continuous inputs (choose one of: ${STREAM_ARCHS.join(', ')})`);
  return new StreamModel(bb, spec).init(rng);
}

/** Parameter count of a backbone's blocks and final norm (the formulas of the parameter tables, checked in the tests against a built model). */
export function shapeCount(arch: StreamArch, D: number, layers: number): number {
  if (arch === 'mamba') {
    const ED = 2 * D,
      N = 16,
      R = Math.ceil(D / 16),
      K = 4;
    // in_proj, conv (weight, bias), x_proj, dt_proj (weight, bias), A_log, D, out_proj, norm
    return layers * (2 * ED * D + ED * K + ED + (R + 2 * N) * ED + ED * R + ED + ED * N + ED + D * ED + D) + D;
  }
  const F = 32 * Math.ceil((8 * D) / 3 / 32);
  return layers * (4 * D * D + 3 * D * F + 2 * D) + D;
}

/** Load a streaming model folder (written by `frugal train --task`). */
export function loadStreamModel(e: Engine, dir: string): StreamModel {
  const specPath = join(dir, STREAM_SPEC_FILE);
  if (!existsSync(dir))
    throw inputError(
      `model directory ${dir} does not exist (train one with 'frugal train --task forecast --data FILE.csv --target COLUMN --out ${dir}')`,
    );
  if (!existsSync(specPath))
    throw inputError(
      `${dir} has no ${STREAM_SPEC_FILE}: it is not a streaming model (train one with 'frugal train --task forecast --data FILE.csv --target COLUMN')`,
    );
  let spec: StreamSpec;
  try {
    spec = JSON.parse(readFileSync(specPath, 'utf8')) as StreamSpec;
  } catch (err) {
    throw inputError(`${specPath} is not valid JSON (${(err as Error).message})`);
  }
  if (spec.format !== STREAM_FORMAT) throw inputError(`${specPath}: format ${JSON.stringify(spec.format)}, expected "${STREAM_FORMAT}"`);
  const { model } = loadModel(e, dir);
  if (!isHidden(model)) throw inputError(`${dir}: a ${model.config.modelType} backbone does not take continuous inputs`);
  const m = new StreamModel(model, spec);
  m.dir = dir;
  const f = readSafetensors(join(dir, HEADS_FILE));
  for (const s of m.headSpecs) {
    const t = f.tensors.get(s.name);
    if (!t || t.shape.join() !== s.shape.join()) throw inputError(`${dir}/${HEADS_FILE}: tensor ${s.name} is missing or not [${s.shape}]`);
    (m.heads.get(s.name) as Tensor).floats().set(readTensorF32(f, s.name));
  }
  return m;
}

/** SHA-256 (hex) of a file of the model folder (what a stream state records to refuse another model). */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
