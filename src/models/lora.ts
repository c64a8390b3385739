import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor, Weight } from '../tensor/index.js';
import { isQuant } from '../tensor/index.js';
import type { LoraPair } from '../ops/ops.js';
import { inputError } from '../io/errors.js';
import { decodeSafetensors, encodeSafetensors, readTensorF64 } from '../io/safetensors.js';
import { readableDir } from '../io/atomic.js';
import type { Rng } from '../io/rng.js';
import type { ParamSpec, ParamTable, TrainableModel } from './types.js';
import { toRows } from '../ops/panels.js';

/**
 * LoRA adapters (Hu et al. 2021) in the Hugging Face PEFT layout. An adapter adds to each target
 * weight W (out, in) the low-rank update (lora_alpha / r) · B A, A (r, in), B (out, r); the base
 * stays frozen and is never copied. Files (what PEFT's `save_pretrained` writes for LoRA):
 *
 * - `adapter_config.json`: peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, bias
 *   "none", task_type "CAUSAL_LM", fan_in_fan_out false, base_model_name_or_path;
 * - `adapter_model.safetensors`: `base_model.model.<module path>.lora_A.weight` [r, in] and
 *   `….lora_B.weight` [out, r], F32; frugal's own checks of the base (architecture, vocabulary)
 *   ride in the safetensors metadata, which PEFT ignores.
 *
 * A model runs an adapter unmerged (ops.linear / linearInto add the update), so several adapters
 * can be loaded on one base and switched by `attach` without reloading it, on f32 and q8/q4 bases.
 */

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';

/** The modules LoRA may target, per architecture (config.json's model_type), in table order. */
const ATTENTION = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export const LORA_TARGETS: Readonly<Record<string, readonly string[]>> = {
  mamba: ['in_proj', 'x_proj', 'dt_proj', 'out_proj'],
  mamba2: ['in_proj', 'out_proj'],
  mamba3: ['in_proj', 'out_proj'],
  llama: ATTENTION,
  // hybrids: the projections of whichever layer types they hold
  bamba: ['in_proj', 'x_proj', 'dt_proj', 'out_proj', ...ATTENTION],
  'frugal-hybrid': ['in_proj', 'x_proj', 'dt_proj', 'out_proj', ...ATTENTION],
};

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  targets: readonly string[];
}

/** adapter_config.json as PEFT writes it (the keys frugal reads and writes). */
export interface AdapterConfigJson {
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[];
  bias: 'none';
  task_type: 'CAUSAL_LM';
  fan_in_fan_out: false;
  base_model_name_or_path: string;
  [key: string]: unknown;
}

/** The modules of `model` a target list selects: module path -> its weight's shape [out, in]. */
export function targetModules(model: TrainableModel, targets: readonly string[], where = '--targets'): Map<string, [number, number]> {
  const type = model.config.modelType,
    allowed = LORA_TARGETS[type] ?? [];
  for (const t of targets) {
    if (!allowed.includes(t)) {
      throw inputError(`${where}: '${t}' is not a module LoRA can adapt in a ${type} model (choose from ${allowed.join(',')})`);
    }
  }
  const out = new Map<string, [number, number]>();
  for (const s of model.specs) {
    const m = /^(.*\.([a-z_]+))\.weight$/.exec(s.name);
    if (m && targets.includes(m[2]) && s.shape.length === 2) out.set(m[1], [s.shape[0], s.shape[1]]);
  }
  return out;
}

/** The weight (f32 or quantised) of module `path` in `model`, or undefined. */
function weightOf(model: TrainableModel, path: string): Weight | undefined {
  const name = `${path}.weight`;
  const q = (model as { qweights?: ReadonlyMap<string, Weight> }).qweights?.get(name);
  return q ?? model.params.get(name);
}

/** A LoRA adapter on one model's engine: its A and B tensors (trainable) and config. */
export class Adapter {
  readonly options: LoraOptions;
  readonly base: string;
  /** module path -> { A (r, in), B (out, r) } */
  readonly modules: Map<string, { A: Tensor; B: Tensor }>;
  /** The PEFT tensor names and shapes: what AdamW and the checkpoint iterate over. */
  readonly specs: readonly ParamSpec[];
  readonly params: ParamTable;
  /** Dropout's random numbers while training (set per step by the trainer). */
  rng: Rng | null = null;

  constructor(model: TrainableModel, options: LoraOptions, base: string, where = '--targets') {
    this.options = options;
    this.base = base;
    this.modules = new Map();
    const specs: ParamSpec[] = [];
    this.params = new Map();
    for (const [path, [out, inp]] of targetModules(model, options.targets, where)) {
      if (options.r > Math.min(out, inp)) {
        throw inputError(
          `${where === '--targets' ? '--rank' : `${where}: r`} ${options.r} is larger than the matrix ${path}.weight [${out}, ${inp}] allows (at most ${Math.min(out, inp)}); choose a smaller --rank or drop that target`,
        );
      }
      const A = model.e.persistent([options.r, inp]),
        B = model.e.persistent([out, options.r]);
      A.requiresGrad = true;
      B.requiresGrad = true;
      this.modules.set(path, { A, B });
      for (const [n, t] of [
        [`${PREFIX}${path}.lora_A.weight`, A],
        [`${PREFIX}${path}.lora_B.weight`, B],
      ] as const) {
        specs.push({ name: n, shape: [...t.shape], init: { kind: 'zeros' }, decay: true });
        this.params.set(n, t);
      }
    }
    if (this.modules.size === 0) throw inputError(`${where} ${options.targets.join(',')} selects no weight of this model`);
    this.specs = Object.freeze(specs);
  }

  get scale(): number {
    return this.options.alpha / this.options.r;
  }

  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** PEFT's initialisation: A ~ U(±1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), B = 0, so the adapter starts as a no-op. */
  init(rng: Rng): this {
    for (const { A, B } of this.modules.values()) {
      const bound = 1 / Math.sqrt(A.shape[1]),
        a = A.data();
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.uniform() - 1) * bound;
      B.data().fill(0);
    }
    return this;
  }

  /** Make this adapter the one `model` runs (replacing any other); null detaches every adapter. */
  static attach(model: TrainableModel, adapter: Adapter | null): void {
    model.e.lora.clear();
    if (adapter) {
      for (const [path, { A, B }] of adapter.modules) {
        const w = weightOf(model, path) as Weight;
        const draw = () => {
          if (!adapter.rng) throw new Error("LoRA dropout needs the adapter's rng set");
          return adapter.rng.uniform();
        };
        const pair: LoraPair = { A, B, scale: adapter.scale, dropout: adapter.options.dropout, draw };
        model.e.lora.set(w, pair);
      }
    }
    model.weightsChanged();
  }

  configJson(): AdapterConfigJson {
    return {
      peft_type: 'LORA',
      r: this.options.r,
      lora_alpha: this.options.alpha,
      lora_dropout: this.options.dropout,
      target_modules: [...this.options.targets],
      bias: 'none',
      task_type: 'CAUSAL_LM',
      fan_in_fan_out: false,
      base_model_name_or_path: this.base,
      inference_mode: true,
      init_lora_weights: true,
      use_rslora: false,
      modules_to_save: null,
      layers_to_transform: null,
      revision: null,
    };
  }

  /** The adapter's two files (PEFT layout). */
  files(model: TrainableModel): Record<string, Uint8Array | string> {
    const tensors = [...this.params].map(([name, t]) => ({
      name,
      dtype: 'F32' as const,
      shape: [...t.shape],
      data: Float32Array.from(t.data()),
    }));
    const meta = { format: 'pt', frugal_model_type: model.config.modelType, frugal_vocab_size: String(model.config.vocabSize) };
    return { [ADAPTER_CONFIG]: JSON.stringify(this.configJson(), null, 2) + '\n', [ADAPTER_WEIGHTS]: encodeSafetensors(tensors, meta) };
  }
}

function readAdapterConfig(dir: string): AdapterConfigJson {
  const file = join(dir, ADAPTER_CONFIG);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw inputError(`--adapter ${dir} is not a folder (give the folder 'frugal finetune --method lora' wrote)`);
  if (!existsSync(file)) throw inputError(`${file} is missing: an adapter folder holds ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}`);
  return parseAdapterConfig(readFileSync(file, 'utf8'), file);
}

/** adapter_config.json's text, checked for what frugal runs (`file` names it in messages). */
export function parseAdapterConfig(text: string, file: string): AdapterConfigJson {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw inputError(`${file} is not valid JSON (${(e as Error).message})`);
  }
  if (c.peft_type !== 'LORA') throw inputError(`${file}: peft_type is ${JSON.stringify(c.peft_type)}; frugal runs LoRA adapters ("LORA")`);
  if (!Number.isInteger(c.r) || (c.r as number) < 1) throw inputError(`${file}: r must be a positive whole number`);
  if (typeof c.lora_alpha !== 'number' || !Number.isFinite(c.lora_alpha)) throw inputError(`${file}: lora_alpha must be a number`);
  if (c.fan_in_fan_out === true) throw inputError(`${file}: fan_in_fan_out adapters (GPT-2 Conv1D layouts) are not supported`);
  if (c.use_rslora === true || c.use_dora === true)
    throw inputError(`${file}: ${c.use_dora ? 'DoRA' : 'rsLoRA'} adapters are not supported`);
  if (c.bias !== undefined && c.bias !== 'none')
    throw inputError(`${file}: bias "${String(c.bias)}" adapters are not supported (only "none")`);
  const targets = Array.isArray(c.target_modules)
    ? (c.target_modules as string[])
    : typeof c.target_modules === 'string'
      ? [c.target_modules]
      : null;
  if (!targets?.every((t) => typeof t === 'string')) throw inputError(`${file}: target_modules must be a list of module names`);
  return { ...c, target_modules: targets } as AdapterConfigJson;
}

/**
 * Load the adapter in `path` for `model` (not attached). Every tensor must name a module of this
 * base with the shapes its weight implies; the first mismatch (architecture, vocabulary, a module
 * the base lacks, a shape, a missing tensor) is refused by name.
 */
export function loadAdapter(model: TrainableModel, path: string): Adapter {
  const { dir } = readableDir(path);
  const c = readAdapterConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(file)) throw inputError(`${file} is missing: an adapter folder holds ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS}`);
  return adapterFromBytes(model, c, new Uint8Array(readFileSync(file)), file, join(dir, ADAPTER_CONFIG));
}

/**
 * The adapter of config `c` (from {@link parseAdapterConfig}) whose weights are `bytes` (the
 * safetensors file `file`), checked against `model` as {@link loadAdapter} checks a folder.
 */
export function adapterFromBytes(
  model: TrainableModel,
  c: AdapterConfigJson,
  bytes: Uint8Array,
  file: string,
  configFile: string,
): Adapter {
  const f = decodeSafetensors(bytes, file);
  const type = f.metadata.frugal_model_type,
    vocab = f.metadata.frugal_vocab_size;
  if (type !== undefined && type !== model.config.modelType)
    throw inputError(`${file} was trained on a ${type} model, not this ${model.config.modelType} base`);
  if (vocab !== undefined && Number(vocab) !== model.config.vocabSize) {
    throw inputError(`${file} was trained on a base with a vocabulary of ${vocab}, this base has ${model.config.vocabSize}`);
  }
  const known = new Set(model.specs.map((s) => s.name.replace(/\.weight$/, '')));
  for (const name of f.tensors.keys()) {
    const m = /^base_model\.model\.(.+)\.lora_[AB]\.weight$/.exec(name);
    if (!m) throw inputError(`${file}: tensor '${name}' is not a LoRA weight (base_model.model.<module>.lora_A.weight / .lora_B.weight)`);
    if (!known.has(m[1])) throw inputError(`${file}: tensor '${name}' adapts module '${m[1]}', which this base does not have`);
  }
  const options = { r: c.r, alpha: c.lora_alpha, dropout: Number(c.lora_dropout ?? 0), targets: c.target_modules };
  const adapter = new Adapter(model, options, c.base_model_name_or_path ?? '', configFile);
  for (const name of f.tensors.keys()) {
    if (!adapter.params.has(name))
      throw inputError(`${file}: tensor '${name}' is for a module outside target_modules (${c.target_modules.join(',')})`);
  }
  for (const [name, t] of adapter.params) {
    const info = f.tensors.get(name);
    if (!info) throw inputError(`${file}: tensor '${name}' is missing (target_modules and r imply it, shape [${t.shape}])`);
    if (info.shape.length !== 2 || info.shape[0] !== t.shape[0] || info.shape[1] !== t.shape[1]) {
      throw inputError(`${file}: tensor '${name}' has shape [${info.shape}] but this base implies [${t.shape}]`);
    }
    t.set(readTensorF64(f, name));
  }
  return adapter;
}

/** Write W + scale · B A into each adapted f32 weight of `model` (the base becomes the merged model). */
export function mergeAdapter(model: TrainableModel, adapter: Adapter): void {
  const e = model.e;
  for (const [path, { A, B }] of adapter.modules) {
    const w = weightOf(model, path) as Weight;
    if (isQuant(w)) throw inputError(`${path}.weight is quantised: merge the adapter into the f32 base, then 'frugal quantize' the result`);
    toRows(w); // the update is added in the row layout
    e.scope(() => {
      const [out, inp] = w.shape,
        r = A.shape[0];
      const delta = e.zeros([out, inp]);
      e.k.matmulNN(delta, B, A, out, inp, r, 0); // (out, in) = B (out, r) A (r, in)
      e.k.scaleInPlace(delta, adapter.scale, out * inp);
      e.k.accumulate(w, delta, out * inp);
    });
  }
  model.weightsChanged();
}
