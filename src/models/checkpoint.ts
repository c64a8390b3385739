import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../ops/index.js';
import type { QFormat, QWeight, Tensor } from '../tensor/index.js';
import { QBLOCK } from '../tensor/index.js';
import { inputError } from '../io/errors.js';
import { safetensorsProducer } from '../io/safetensors.js';
import type { SafetensorsFile, StreamTensor } from '../io/safetensors.js';
import { MemorySource } from '../io/bytesource.js';
import { readableDir } from '../io/atomic.js';
import type { FileData, FileProducer } from '../io/atomic.js';
import { openWeights } from '../io/weights.js';
import type { WeightSet } from '../io/weights.js';
import { firstNonFinite, readFloatsInto, readRawInto } from '../io/tensors.js';
import { unpackQ4x4, unpackQ8x4 } from '../kernels/ref/quant4x4.js';
import type { TensorEntry } from '../io/tensors.js';
import { TOKENIZER_FILES } from '../io/tokenizer.js';
import { MambaLM, SCALE_SUFFIX } from './mamba/model.js';
import { packQuantWeights, quantMapFromConfig } from './quant.js';
import { mambaConfigFromJson, mambaParameterCount } from './mamba/config.js';
import { mambaParamSpecs } from './mamba/params.js';
import type { CheckpointLayout } from './mamba/config.js';
import { TransformerLM } from './transformer/model.js';
import { llamaConfigFromHF } from './transformer/config.js';
import { parseJsonLenient, stringifyJson } from '../io/json.js';
import { mamba2ConfigFromHF, mamba2ConfigFromOriginal, mamba2ParameterCount } from './mamba2/config.js';
import { mamba2ParamSpecs } from './mamba2/params.js';
import { Mamba2LM } from './mamba2/model.js';
import { hybridConfigFromHF } from './hybrid/config.js';
import { mamba3ConfigFromHF, mamba3ConfigFromOriginal, mamba3ParameterCount } from './mamba3/config.js';
import { mamba3ParamSpecs } from './mamba3/params.js';
import { Mamba3LM } from './mamba3/model.js';
import { hybridParamSpecs, hybridParameterCount } from './hybrid/params.js';
import { HybridLM } from './hybrid/model.js';
import type { ParamSpec, TrainableModel } from './types.js';
import { rowValues } from '../ops/panels.js';

/**
 * Checkpoint directories as Hugging Face and state-spaces publish them: config.json plus weights
 * in model.safetensors, sharded safetensors with an index, or pytorch_model.bin (see io/weights.ts),
 * in F32, F16 or BF16. Loading indexes the files, checks every name, shape and dtype against
 * config.json, then reads each tensor straight into its parameter in the wasm heap (F16/BF16
 * converted on the way), so memory peaks at the f32 weights. Saving writes transformers' layout:
 * config.json + model.safetensors (F32, HF names, no tied head), streamed from the heap.
 */

export interface LoadedModel {
  model: TrainableModel;
  warnings: string[];
  dir: string;
  layout: CheckpointLayout;
}

/** WebAssembly's 32-bit memory: every parameter and activation lives below this. */
export const WASM_MEMORY_LIMIT = 2 ** 32;
const MAX_CONFIG_BYTES = 16 << 20;

/** The directory each loaded model came from, so that saving it carries its tokenizer along. */
const SOURCE_DIR = new WeakMap<TrainableModel, string>();

/** Record that `model` was read from `dir` (its tokenizer files travel with it when saved). */
export function rememberSource(model: TrainableModel, dir: string): void {
  SOURCE_DIR.set(model, dir);
}

export function readConfigJson(dir: string): unknown {
  const file = join(dir, 'config.json');
  if (!existsSync(dir))
    throw inputError(`model directory ${dir} does not exist (train one with 'frugal train --out ${dir}', or give a checkpoint directory)`);
  if (!statSync(dir).isDirectory()) {
    throw inputError(
      `${dir} is a file, not a model folder: give the folder that holds config.json and the weights${/\.gguf$/i.test(dir) ? ' (frugal reads checkpoint folders, not GGUF files)' : ''}`,
    );
  }
  if (!existsSync(file)) throw inputError(`${file} is missing: a model directory needs config.json and its weights (model.safetensors)`);
  if (statSync(file).size > MAX_CONFIG_BYTES) throw inputError(`${file} is over ${MAX_CONFIG_BYTES} bytes; it is not a model config`);
  try {
    return parseJsonLenient(readFileSync(file, 'utf8')); // transformers writes bare Infinity (time_step_limit)
  } catch (err) {
    throw inputError(`${file} is not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Load a checkpoint directory (either published layout, any weight format) into a new model on `e`.
 * Reading only: a save that a kill interrupted is left for the next writer (readableDir), and
 * `dir` in the result is the folder actually read.
 */
export function loadModel(e: Engine, path: string): LoadedModel {
  const { dir, warnings: found } = readableDir(path);
  const file = join(dir, 'config.json');
  const json = readConfigJson(dir);
  const weights = openWeights(dir);
  try {
    const { model, warnings, layout } = modelFromConfig(e, json, file);
    loadWeights(model, weights, layout);
    warnings.push(...tiedHeadWarnings(model, weights.entries, json, layout, file));
    SOURCE_DIR.set(model, dir);
    return { model, warnings: [...found, ...warnings], dir, layout };
  } finally {
    weights.close();
  }
}

/**
 * Refuse a model whose weights cannot fit in WebAssembly's 4 GiB memory, before allocating any of it.
 * `bytesPer` is 4 for f32 engines (8 for the float64 engines of gradient checks).
 */
export function checkWeightsFit(parameters: number, bytesPer: number, file: string, bytes = parameters * bytesPer): void {
  if (bytes < WASM_MEMORY_LIMIT) return;
  const gib = (x: number) => (x / 2 ** 30).toFixed(2);
  throw inputError(
    `${file}: this model has ${parameters.toLocaleString('en-US')} parameters, ${gib(bytes)} GiB as f${bytesPer * 8}, ` +
      `over the 4 GiB limit of WebAssembly memory (wasm32) that frugal computes in. The way around it is a quantised copy: ` +
      `'frugal quantize --model DIR --to q8 --out DIR-q8' reads one tensor at a time, so it works on this checkpoint, ` +
      'and the q8 (or q4) copy loads in about a quarter (or an eighth) of the memory',
  );
}

/** Bytes a quantised checkpoint occupies in memory: q8 one byte per weight, q4 half, plus f32 block scales. */
function quantBytes(specs: readonly ParamSpec[], quant: ReadonlyMap<string, QFormat>, bytesPer: number): number {
  let n = 0;
  for (const s of specs) {
    // safe to list: the layer count is bounded by the config reader
    const size = s.shape.reduce((a, b) => a * b, 1);
    const f = quant.get(s.name);
    n += f ? size * (f === 'q8' ? 1 : 0.5) + (size / QBLOCK) * 4 : size * bytesPer;
  }
  return n;
}

/**
 * The architecture a config.json describes: its model_type, or for state-spaces' layout (no
 * model_type, d_model) the block its ssm_cfg.layer names (Mamba1 by default).
 */
export function architectureOf(json: unknown): string | undefined {
  const o = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  if (o.model_type !== undefined || o.hidden_size !== undefined || o.d_model === undefined) return o.model_type as string | undefined;
  const layer =
    (typeof o.ssm_cfg === 'object' && o.ssm_cfg !== null ? (o.ssm_cfg as Record<string, unknown>).layer : undefined) ?? 'Mamba1';
  return layer === 'Mamba2' ? 'mamba2' : layer === 'Mamba3' ? 'mamba3' : 'mamba';
}

/** What loading needs of a config.json before any weight is allocated. */
export interface ArchConfig {
  warnings: string[];
  layout: CheckpointLayout;
  /** Parameters, by arithmetic on the shape legend (a forged config is refused before listing anything). */
  parameterCount: number;
  /** The parameter table (lists every layer: call after the count was checked). */
  specs(): ParamSpec[];
  /** An uninitialised model, storing the weights `quant` names block-quantised. */
  build(e: Engine, quant: ReadonlyMap<string, QFormat>): TrainableModel;
}

/** Read config.json as the architecture it names (model_type, or state-spaces' ssm_cfg.layer). */
export function archConfig(json: unknown, file: string): ArchConfig {
  const type = architectureOf(json);
  switch (type) {
    case 'mamba':
    case undefined: {
      const { config, warnings, layout } = mambaConfigFromJson(json, file);
      return {
        warnings,
        layout,
        parameterCount: mambaParameterCount(config),
        specs: () => mambaParamSpecs(config),
        build: (e, q) => new MambaLM(e, config, q),
      };
    }
    case 'mamba2': {
      const o = json as Record<string, unknown>;
      const { config, warnings, layout } = o.model_type === undefined ? mamba2ConfigFromOriginal(o, file) : mamba2ConfigFromHF(o, file);
      return {
        warnings,
        layout,
        parameterCount: mamba2ParameterCount(config),
        specs: () => mamba2ParamSpecs(config),
        build: (e, q) => new Mamba2LM(e, config, q),
      };
    }
    case 'mamba3': {
      const o = json as Record<string, unknown>;
      const { config, warnings, layout } = o.model_type === undefined ? mamba3ConfigFromOriginal(o, file) : mamba3ConfigFromHF(o, file);
      return {
        warnings,
        layout,
        parameterCount: mamba3ParameterCount(config),
        specs: () => mamba3ParamSpecs(config),
        build: (e, q) => new Mamba3LM(e, config, q),
      };
    }
    case 'bamba':
    case 'frugal-hybrid': {
      const { config, warnings } = hybridConfigFromHF(json, file);
      return {
        warnings,
        layout: 'hf',
        parameterCount: hybridParameterCount(config),
        specs: () => hybridParamSpecs(config),
        build: (e, q) => new HybridLM(e, config, q),
      };
    }
    case 'llama': {
      const { config, warnings } = llamaConfigFromHF(json, file);
      return {
        warnings,
        layout: 'hf',
        parameterCount: 0,
        specs: () => [],
        build: (e, q) => {
          if (q.size > 0) throw inputError(`${file}: quantised transformer checkpoints are not supported`);
          return new TransformerLM(e, config);
        },
      };
    }
    default:
      throw inputError(
        `${file}: model_type '${String(type)}' is not supported (supported: mamba, mamba2, mamba3, bamba, frugal-hybrid, llama)`,
      );
  }
}

/**
 * Build an (uninitialised) model of the architecture config.json names, after checking that its
 * weights fit; `quant` (default: config.json's quantization_config) names the weights stored
 * block-quantised.
 */
export function modelFromConfig(
  e: Engine,
  json: unknown,
  file: string,
  quant = quantMapFromConfig(json, file),
): { model: TrainableModel; warnings: string[]; layout: CheckpointLayout } {
  const a = archConfig(json, file);
  const bytesPer = e.dtype === 'f64' ? 8 : 4;
  if (a.parameterCount > 0)
    checkWeightsFit(a.parameterCount, bytesPer, file, quant.size > 0 ? quantBytes(a.specs(), quant, bytesPer) : undefined);
  return { model: a.build(e, quant), warnings: a.warnings, layout: a.layout };
}

/** The stored name of parameter `name` in a checkpoint of `layout` (state-spaces spells one differently). */
export function storedName(name: string, layout: CheckpointLayout): string {
  return layout === 'original' && name === 'backbone.embeddings.weight' ? 'backbone.embedding.weight' : name;
}

/** Where each parameter comes from: one float tensor, or a quantised weight's values and block scales. */
export type WeightSource = { kind: 'float'; entry: TensorEntry } | { kind: 'quant'; format: QFormat; q: TensorEntry; scales: TensorEntry };

/** The block-quantised weights of a model (the state-space models keep them apart from their f32 parameters). */
function quantOf(model: TrainableModel): ReadonlyMap<string, QWeight> {
  return 'qweights' in model ? (model as { qweights: ReadonlyMap<string, QWeight> }).qweights : new Map();
}

/**
 * Match every parameter of `model` to stored tensors, checking names, shapes and dtypes before
 * reading anything. A stored lm_head.weight is ignored when the head is tied to the embedding.
 */
export function planWeights(
  model: TrainableModel,
  entries: Map<string, TensorEntry>,
  file: string,
  layout: CheckpointLayout = 'hf',
): Map<string, WeightSource> {
  const formats = new Map([...quantOf(model)].map(([n, w]) => [n, w.format]));
  return planTensors(model.specs, tiedHead(model), entries, file, layout, formats);
}

/**
 * planWeights for a parameter table without a model (conversion works on files only). A weight
 * named in `quant` is stored as `<name>` (int8 for q8, packed nibbles for q4) and `<name>_scale`
 * (f32, one per block of 32).
 */
export function planTensors(
  specs: readonly ParamSpec[],
  tied: boolean,
  entries: Map<string, TensorEntry>,
  file: string,
  layout: CheckpointLayout,
  quant: ReadonlyMap<string, QFormat> = new Map(),
): Map<string, WeightSource> {
  const plan = new Map<string, WeightSource>();
  const expected = new Set(specs.flatMap((s) => (quant.has(s.name) ? [s.name, s.name + SCALE_SUFFIX] : [storedName(s.name, layout)])));
  for (const name of entries.keys()) {
    if (!expected.has(name) && !(name === 'lm_head.weight' && tied)) {
      throw inputError(
        `${file}: unexpected tensor '${name}' (config.json describes a model without it; is this the config of these weights?)`,
      );
    }
  }
  const get = (name: string, shape: readonly number[], dtypes: readonly string[], what: string): TensorEntry => {
    const info = entries.get(name);
    if (!info) throw inputError(`${file}: tensor '${name}' is missing (config.json implies it, shape [${shape}])`);
    const same = info.shape.length === shape.length && info.shape.every((v, i) => v === shape[i]);
    if (!same) throw inputError(`${info.src.file}: tensor '${name}' has shape [${info.shape}] but config.json implies [${shape}]`);
    const list = dtypes.length > 1 ? `${dtypes.slice(0, -1).join(', ')} or ${dtypes[dtypes.length - 1]}` : dtypes[0];
    if (!dtypes.includes(info.dtype))
      throw inputError(`${info.src.file}: tensor '${name}' has dtype ${info.dtype}; ${what} must be ${list}`);
    return info;
  };
  for (const s of specs) {
    const format = quant.get(s.name);
    if (format) {
      const [N, K] = s.shape;
      plan.set(s.name, {
        kind: 'quant',
        format,
        q: get(s.name, format === 'q8' ? [N, K] : [N, K / 2], [format === 'q8' ? 'I8' : 'U8'], `a ${format} weight`),
        scales: get(s.name + SCALE_SUFFIX, [N, K / QBLOCK], ['F32'], 'block scales'),
      });
      continue;
    }
    plan.set(s.name, { kind: 'float', entry: get(storedName(s.name, layout), s.shape, ['F32', 'F16', 'BF16', 'F64'], 'weights') });
  }
  return plan;
}

/**
 * Copy every parameter from stored tensors (a weight set, or a decoded in-memory safetensors file),
 * checking names, shapes, dtypes and that every value is finite.
 */
export function loadWeights(model: TrainableModel, f: WeightSet | SafetensorsFile, layout: CheckpointLayout = 'hf'): void {
  const { entries, file } = 'entries' in f ? f : { entries: entriesOf(f), file: f.file };
  const plan = planWeights(model, entries, file, layout);
  const finite = (entry: TensorEntry, values: Float32Array | Float64Array) => {
    const bad = firstNonFinite(values);
    if (bad >= 0)
      throw inputError(
        `${entry.src.file}: tensor '${entry.name}' holds ${values[bad]} at index ${bad}; the checkpoint is corrupt or diverged`,
      );
  };
  for (const [name, w] of plan) {
    if (w.kind === 'quant') {
      const qw = quantOf(model).get(name) as QWeight;
      qw.packed = false; // read in the row layout; packQuantWeights below repacks
      const bytes = qw.q.data();
      readRawInto(w.q, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      const scales = qw.scales.floats();
      readFloatsInto(w.scales, scales);
      finite(w.scales, scales);
      continue;
    }
    const t = model.params.get(name) as Tensor;
    t.panels = false; // overwritten in the row layout (inference moves it again: models/panels.ts)
    const values = t.floats(); // a view of the heap: read straight into place
    readFloatsInto(w.entry, values);
    finite(w.entry, values);
  }
  packQuantWeights({ e: model.e, qweights: quantOf(model) });
  model.weightsChanged();
}

function entriesOf(f: SafetensorsFile): Map<string, TensorEntry> {
  const src = new MemorySource(f.bytes, f.file);
  const out = new Map<string, TensorEntry>();
  for (const [name, t] of f.tensors)
    out.set(name, { name, dtype: t.dtype, shape: t.shape, src, offset: f.dataStart + t.begin, byteLength: t.end - t.begin });
  return out;
}

/**
 * A heap tensor as a stream tensor, read from the heap when written (the heap may grow before
 * then), in the row layout: a weight that inference holds in panels at that moment is unpacked
 * into a copy (ops/panels.ts).
 */
function heapStream(name: string, t: Tensor): StreamTensor {
  const dtype = t.dtype === 'i8' ? 'I8' : t.dtype === 'u8' ? 'U8' : 'F32';
  return {
    name,
    dtype,
    shape: [...t.shape],
    write: (emit) => {
      const v = t.panels ? rowValues(t) : t.data();
      if (!(v instanceof Float64Array)) {
        emit(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
        return;
      }
      for (let i = 0; i < v.length; i += 1 << 18) emit(new Uint8Array(Float32Array.from(v.subarray(i, i + (1 << 18))).buffer));
    },
  };
}

/**
 * The parameters of `model` as safetensors stream tensors: F32 with HF names, and for each
 * quantised weight `<name>` (I8 or U8) plus `<name>_scale` (F32).
 */
export function modelStreamTensors(model: TrainableModel): StreamTensor[] {
  const quant = quantOf(model);
  return model.specs.flatMap((s) => {
    const q = quant.get(s.name);
    if (!q) return [heapStream(s.name, model.params.get(s.name) as Tensor)];
    if (q.packed) return rowLayoutStreams(s.name, q);
    return [heapStream(s.name, q.q), heapStream(s.name + SCALE_SUFFIX, q.scales)];
  });
}

/** A packed weight as the checkpoint stores it (the row layout), unpacked once when the first of its two tensors is written. */
function rowLayoutStreams(name: string, w: QWeight): StreamTensor[] {
  const [N, K] = w.shape,
    four = w.format === 'q4';
  let rows: { q: Uint8Array; scales: Float32Array } | null = null;
  const unpacked = () => {
    if (!rows) {
      const q = new Uint8Array(four ? (N * K) / 2 : N * K),
        scales = new Float32Array((N * K) / QBLOCK),
        data = w.q.data();
      if (four) unpackQ4x4(q, scales, data as Uint8Array, w.scales.floats(), N, K);
      else unpackQ8x4(new Int8Array(q.buffer), scales, data as Int8Array, w.scales.floats(), N, K);
      rows = { q, scales };
    }
    return rows;
  };
  return [
    { name, dtype: four ? 'U8' : 'I8', shape: [N, four ? K / 2 : K], write: (emit) => emit(unpacked().q) },
    {
      name: name + SCALE_SUFFIX,
      dtype: 'F32',
      shape: [N, K / QBLOCK],
      write: (emit) => {
        emit(new Uint8Array(unpacked().scales.buffer));
        rows = null; // written last: let the copy go
      },
    },
  ];
}

/** The bytes of the model.safetensors frugal writes for `model` (streamed from the heap when run). */
export function modelWeightsProducer(model: TrainableModel): FileProducer {
  return safetensorsProducer(modelStreamTensors(model), { format: 'pt' }).producer;
}

/**
 * The files of a checkpoint directory (to hand to writeDirAtomic with any training state):
 * config.json, model.safetensors streamed from the heap, and the tokenizer files of the directory
 * the model was loaded from, if any.
 */
export function modelFiles(model: TrainableModel): Record<string, FileData> {
  const files: Record<string, FileData> = {
    'config.json': stringifyJson(model.hfConfig()) + '\n',
    'model.safetensors': modelWeightsProducer(model),
  };
  const source = SOURCE_DIR.get(model);
  if (source !== undefined) {
    for (const name of TOKENIZER_FILES) {
      const p = join(source, name);
      if (existsSync(p)) files[name] = new Uint8Array(readFileSync(p));
    }
  }
  return files;
}

/** Whether the checkpoint's head shares the embedding (a stored lm_head.weight is then redundant). */
function tiedHead(model: TrainableModel): boolean {
  return model.hfConfig().tie_word_embeddings === true;
}

/**
 * A stored lm_head.weight beside a tied head is not loaded: the embedding serves as the head too.
 * That is harmless when the two hold the same values (state-spaces checkpoints store both); when
 * they differ, the model computes something else than the checkpoint's author may have meant, so
 * say so, naming both tensors and which one is used. Call after loadWeights (the embedding is read).
 */
function tiedHeadWarnings(
  model: TrainableModel,
  entries: Map<string, TensorEntry>,
  json: unknown,
  layout: CheckpointLayout,
  file: string,
): string[] {
  const head = entries.get('lm_head.weight');
  const embedName = model.specs.find((s) => /embed/.test(s.name))?.name;
  if (!head || !tiedHead(model) || embedName === undefined) return [];
  const stored = storedName(embedName, layout),
    embed = model.params.get(embedName);
  const shape = embed?.shape ?? [];
  if (embed && head.shape.length === shape.length && head.shape.every((v, i) => v === shape[i])) {
    const values = new Float32Array(head.shape.reduce((a, b) => a * b, 1));
    readFloatsInto(head, values);
    const e = embed.floats();
    let same = true;
    for (let i = 0; i < values.length && same; i++) same = values[i] === e[i];
    if (same) return [];
  }
  const says =
    (json as Record<string, unknown> | null)?.tie_word_embeddings === undefined
      ? 'has no tie_word_embeddings, so the head defaults to tied'
      : 'sets "tie_word_embeddings": true';
  return [
    `${file} ${says}, but the checkpoint's lm_head.weight differs from ${stored}: using ${stored} as both the embedding ` +
      'and the head, and lm_head.weight is not used (set "tie_word_embeddings": false in config.json to use it)',
  ];
}
