/**
 * Converting a state-space checkpoint (`frugal convert`): move it between the layouts people use, without loading it
 * into the engine (so models larger than WebAssembly's 4 GiB convert too):
 *   --to hf        transformers' layout (config.json + model.safetensors, sharded past --max-shard-size)
 *   --to original  state-spaces' layout (mamba_ssm config.json + pytorch_model.bin)
 *   --to gguf      one GGUF file of architecture `mamba` or `mamba2` for llama.cpp (f32, f16, q8_0 or q4_0 tensors)
 * with --dtype f32 | f16 (| q8_0 | q4_0 for gguf). Tensors stream one at a time; every value is checked
 * finite; writes are atomic. Without --dtype, tensors keep their stored type (lossless).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { inputError } from '../io/errors.js';
import { readableDir, recoverDir, removeOwnTempFiles, writeDirAtomic, writeFileAtomic } from '../io/atomic.js';
import { checkOutputFile, openOutputDir } from '../io/outputs.js';
import type { FileData } from '../io/atomic.js';
import { openWeights, shardName } from '../io/weights.js';
import { safetensorsProducer } from '../io/safetensors.js';
import type { SafeDtypeIn, StreamTensor } from '../io/safetensors.js';
import { torchBinProducer } from '../io/torchbin.js';
import { ggufProducer, quantizeQ4_0, quantizeQ8_0 } from '../io/gguf.js';
import type { GgmlType, GgufTensor, GgufValue } from '../io/gguf.js';
import { ggufVocab } from '../io/ggufvocab.js';
import { DTYPE_BYTES, convertRaw, elementCount, firstNonFinite, readFloat32, readRaw } from '../io/tensors.js';
import type { TensorEntry } from '../io/tensors.js';
import { TOKENIZER_FILES } from '../io/tokenizer.js';
import { mambaConfigFromJson, mambaConfigToHF, mambaConfigToOriginal } from './mamba/config.js';
import type { MambaConfig } from './mamba/config.js';
import { mambaParamSpecs } from './mamba/params.js';
import { architectureOf, planTensors, readConfigJson, storedName } from './checkpoint.js';
import type { CheckpointLayout } from './mamba/config.js';
import type { ParamSpec } from './types.js';
import { stringifyJson } from '../io/json.js';
import { mamba2Source, mamba3Source } from './convert-ssm.js';

/** Layouts a checkpoint converts to: transformers (`hf`), state-spaces mamba_ssm (`original`), llama.cpp (`gguf`). */
export type ConvertTarget = 'hf' | 'original' | 'gguf';
/** Tensor types of a conversion (`q8_0`, `q4_0`: GGUF only). */
export type ConvertDtype = 'f32' | 'f16' | 'q8_0' | 'q4_0';

export interface ConvertOpts {
  model: string;
  out: string;
  to: ConvertTarget;
  dtype?: ConvertDtype;
  /** HF output: start a new shard past this many bytes (transformers' default is 5 GB). */
  maxShardBytes?: number;
  log?: (m: string) => void;
  /** Replace an existing output (the command line's --force). */
  force?: boolean;
}

/**
 * A checkpoint as convert sees it: its config.json, the original-layout config it keeps (if any),
 * its stored tensors by HF name, and what differs between architectures: the parameter table,
 * both config.json layouts and the GGUF form.
 */
export interface Source {
  json: Record<string, unknown>;
  original?: Record<string, unknown>;
  plan: Map<string, TensorEntry>;
  tied: boolean;
  toHF(): Record<string, unknown>;
  toOriginal(kept?: Record<string, unknown>): Record<string, unknown>;
  gguf(o: ConvertOpts, log: (m: string) => void): GgufPlan;
}

/** An architecture's GGUF form: why it cannot be written (or null), its key-values, and each tensor's name, shape and values. */
export interface GgufPlan {
  refuse: string | null;
  kv: [string, GgufValue][];
  tensor(hf: string, shape: number[], values: Float32Array): { name: string; shape: number[]; values: Float32Array };
}

/** The parsed config of a checkpoint: its parameter table and layout, and how it writes itself. */
export interface Parsed {
  specs: ParamSpec[];
  tied: boolean;
  layout: CheckpointLayout;
  warnings: string[];
  original?: Record<string, unknown>;
  toHF(): Record<string, unknown>;
  toOriginal(kept?: Record<string, unknown>): Record<string, unknown>;
  gguf(s: Source, o: ConvertOpts, log: (m: string) => void): GgufPlan;
}

/** Mamba-1's side of the conversion. */
function mambaParsed(json: unknown, file: string): Parsed {
  const p = mambaConfigFromJson(json, file),
    c = p.config;
  return {
    specs: mambaParamSpecs(c),
    tied: c.tieWordEmbeddings,
    layout: p.layout,
    warnings: p.warnings,
    original: p.original,
    toHF: () => mambaConfigToHF(c),
    toOriginal: (kept) => mambaConfigToOriginal(c, kept),
    gguf: (_s, o) => mambaGguf(c, o),
  };
}

const TORCH_DTYPE: Record<string, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Refuse option combinations that cannot work, before anything is read or written. */
export function checkRequest(o: ConvertOpts): void {
  if ((o.dtype === 'q8_0' || o.dtype === 'q4_0') && o.to !== 'gguf')
    throw inputError(`--dtype ${o.dtype} is for --to gguf; choose f32 or f16 for --to ${o.to}`);
}

/**
 * Convert a checkpoint directory into `o.out` (a path the caller checked: see the convert command, src/cli/convert.ts);
 * returns the number of tensors and bytes written.
 */
export function convertCheckpoint(input: ConvertOpts): { tensors: number; bytes: number } {
  const log = input.log ?? (() => {});
  checkRequest(input);
  const { dir: model, warnings: found } = readableDir(input.model); // reading only
  for (const w of found) log(`warning: ${w}`);
  const o = { ...input, model };
  const file = join(o.model, 'config.json');
  const json = readConfigJson(o.model);
  const type = architectureOf(json);
  if (type !== undefined && type !== 'mamba' && type !== 'mamba2' && type !== 'mamba3') {
    throw inputError(
      `${file}: convert handles Mamba, Mamba-2 and Mamba-3 checkpoints; model_type '${String(type)}' is not one` +
        (type === 'bamba' ? " (a Bamba hybrid has only transformers' layout, which it is already in)" : ''),
    );
  }
  const parsed = type === 'mamba2' ? mamba2Source(json, file) : type === 'mamba3' ? mamba3Source(json, file) : mambaParsed(json, file);
  for (const w of parsed.warnings) log(`warning: ${w}`);
  const weights = openWeights(o.model);
  try {
    if ((json as Record<string, unknown>).quantization_config !== undefined) {
      throw inputError(`${file}: this is a quantised checkpoint; convert the f32 (or f16) checkpoint it was made from`);
    }
    const plan = new Map(
      [...planTensors(parsed.specs, parsed.tied, weights.entries, weights.file, parsed.layout)].map(([n, w]) => [
        n,
        (w as { entry: TensorEntry }).entry,
      ]),
    );
    const kept = parsed.original ?? keptOriginal(json as Record<string, unknown>);
    const src: Source = {
      json: json as Record<string, unknown>,
      original: kept,
      plan,
      tied: parsed.tied,
      toHF: parsed.toHF,
      toOriginal: parsed.toOriginal,
      gguf: (oo, l) => parsed.gguf(src, oo, l),
    };
    if (o.to === 'gguf') return writeGguf(o, src, log);
    const dtype = (e: TensorEntry): 'F32' | 'F16' | 'BF16' =>
      o.dtype === 'f32' ? 'F32' : o.dtype === 'f16' ? 'F16' : e.dtype === 'F16' || e.dtype === 'BF16' ? e.dtype : 'F32';
    return o.to === 'hf' ? writeHf(o, src, parsed.layout, dtype) : writeOriginal(o, src, dtype);
  } finally {
    weights.close();
  }
}

/** The original-layout config an HF checkpoint converted by frugal keeps in its frugal block. */
function keptOriginal(json: Record<string, unknown>): Record<string, unknown> | undefined {
  const f = json.frugal;
  const k = typeof f === 'object' && f !== null ? (f as Record<string, unknown>).original_config : undefined;
  return typeof k === 'object' && k !== null && !Array.isArray(k) ? (k as Record<string, unknown>) : undefined;
}

/** A tensor's bytes in `to`, after checking every value is finite. */
function tensorBytes(e: TensorEntry, to: 'F32' | 'F16' | 'BF16'): Uint8Array {
  const values = readFloat32(e);
  const bad = firstNonFinite(values);
  if (bad >= 0)
    throw inputError(`${e.src.file}: tensor '${e.name}' holds ${values[bad]} at index ${bad}; the checkpoint is corrupt or diverged`);
  const what = `${e.src.file}: tensor '${e.name}'`;
  if (e.dtype === to) return readRaw(e); // lossless: the stored bytes
  return to === 'F32' ? new Uint8Array(values.buffer) : convertRaw(new Uint8Array(values.buffer), 'F32', to, what);
}

function tokenizerFiles(dir: string): Record<string, FileData> {
  const out: Record<string, FileData> = {};
  for (const n of TOKENIZER_FILES) if (existsSync(join(dir, n))) out[n] = new Uint8Array(readFileSync(join(dir, n)));
  return out;
}

function writeHf(
  o: ConvertOpts,
  s: Source,
  layout: string,
  dtypeOf: (e: TensorEntry) => 'F32' | 'F16' | 'BF16',
): { tensors: number; bytes: number } {
  const items = [...s.plan].map(([name, e]) => {
    const dtype = dtypeOf(e);
    return {
      name,
      dtype,
      bytes: elementCount(e.shape) * (DTYPE_BYTES[dtype] as number),
      stream: {
        name,
        dtype: dtype as SafeDtypeIn,
        shape: e.shape,
        write: (emit: (c: Uint8Array) => void) => emit(tensorBytes(e, dtype)),
      } satisfies StreamTensor,
    };
  });
  const dtypes = new Set(items.map((i) => i.dtype));
  const config: Record<string, unknown> =
    layout === 'hf'
      ? { ...s.json }
      : {
          ...s.toHF(),
          pad_vocab_size_multiple: typeof s.original?.pad_vocab_size_multiple === 'number' ? s.original.pad_vocab_size_multiple : 8,
          frugal: { tokenizer: 'file', original_config: s.original },
        };
  config.torch_dtype = dtypes.size === 1 ? TORCH_DTYPE[[...dtypes][0]] : 'float32';
  const files: Record<string, FileData> = { 'config.json': stringifyJson(config) + '\n', ...tokenizerFiles(o.model) };
  const limit = o.maxShardBytes ?? 5e9;
  const shards: (typeof items)[] = [[]];
  let size = 0;
  for (const it of items) {
    if (size > 0 && size + it.bytes > limit) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(it);
    size += it.bytes;
  }
  let total = 0;
  if (shards.length === 1) {
    const w = safetensorsProducer(
      items.map((i) => i.stream),
      { format: 'pt' },
    );
    files['model.safetensors'] = w.producer;
    total = w.byteLength;
  } else {
    const weightMap: Record<string, string> = {};
    shards.forEach((sh, k) => {
      const name = shardName('model', 'safetensors', k + 1, shards.length);
      const w = safetensorsProducer(
        sh.map((i) => i.stream),
        { format: 'pt' },
      );
      files[name] = w.producer;
      total += w.byteLength;
      for (const i of sh) weightMap[i.name] = name;
    });
    const dataBytes = items.reduce((a, i) => a + i.bytes, 0);
    files['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: dataBytes }, weight_map: weightMap }, null, 2) + '\n';
  }
  writeDirAtomic(o.out, files);
  return { tensors: items.length, bytes: total };
}

function writeOriginal(o: ConvertOpts, s: Source, dtypeOf: (e: TensorEntry) => 'F32' | 'F16' | 'BF16'): { tensors: number; bytes: number } {
  const config = s.toOriginal(s.original);
  const tensors = [...s.plan].map(([name, e]) => {
    const dtype = dtypeOf(e);
    return { name: storedName(name, 'original'), dtype, shape: e.shape, storage: name, data: () => tensorBytes(e, dtype) };
  });
  if (s.tied) {
    // mamba_ssm's state dict lists the tied head too, sharing the embedding's storage
    const emb = tensors.find((t) => t.name === 'backbone.embedding.weight')!;
    tensors.push({ ...emb, name: 'lm_head.weight' });
  }
  let bytes = 0;
  const producer = torchBinProducer(tensors, { archive: 'pytorch_model' });
  writeDirAtomic(o.out, {
    'config.json': stringifyJson(config) + '\n',
    'pytorch_model.bin': (write) =>
      producer((c) => {
        bytes += c.length;
        write(c);
      }),
    ...tokenizerFiles(o.model),
  });
  return { tensors: tensors.length, bytes };
}

/** llama.cpp's names for Mamba tensors (gguf-py tensor_mapping), keyed by HF name without the layer. */
const GGUF_NAMES: Record<string, string> = {
  'norm.weight': 'attn_norm.weight',
  'mixer.in_proj.weight': 'ssm_in.weight',
  'mixer.conv1d.weight': 'ssm_conv1d.weight',
  'mixer.conv1d.bias': 'ssm_conv1d.bias',
  'mixer.x_proj.weight': 'ssm_x.weight',
  'mixer.dt_proj.weight': 'ssm_dt.weight',
  'mixer.dt_proj.bias': 'ssm_dt.bias',
  'mixer.A_log': 'ssm_a',
  'mixer.D': 'ssm_d',
  'mixer.out_proj.weight': 'ssm_out.weight',
};

export function ggufName(hf: string): string {
  if (hf === 'backbone.embeddings.weight') return 'token_embd.weight';
  if (hf === 'backbone.norm_f.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m = /^backbone\.layers\.(\d+)\.(.+)$/.exec(hf);
  const n = m ? GGUF_NAMES[m[2]] : undefined;
  if (!m || !n) throw new Error(`no GGUF name for ${hf}`);
  return `blk.${m[1]}.${n}`;
}

/** Mamba-1's GGUF form (llama.cpp architecture `mamba`). */
function mambaGguf(c: MambaConfig, o: ConvertOpts): GgufPlan {
  const refuse =
    c.dInner !== 2 * c.dModel
      ? `intermediate_size ${c.dInner} is not 2 × hidden_size (llama.cpp supports expand = 2 only)`
      : !c.useConvBias
        ? 'use_conv_bias is false (llama.cpp needs the conv1d bias)'
        : c.useBias
          ? 'use_bias is true (llama.cpp has no in_proj/out_proj bias)'
          : null;
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const kv: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'mamba' }],
    ['general.name', { type: 'string', value: basename(o.model) }],
    ['mamba.context_length', u32(2 ** 20)], // no inherent limit; the value llama.cpp's converter writes
    ['mamba.embedding_length', u32(c.dModel)],
    ['mamba.feed_forward_length', u32(0)],
    ['mamba.attention.head_count', u32(0)],
    ['mamba.block_count', u32(c.nLayer)],
    ['mamba.ssm.conv_kernel', u32(c.dConv)],
    ['mamba.ssm.inner_size', u32(c.dInner)],
    ['mamba.ssm.state_size', u32(c.dState)],
    ['mamba.ssm.time_step_rank', u32(c.dtRank)],
    ['mamba.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.layerNormEpsilon }],
    ['mamba.ssm.dt_b_c_rms', { type: 'bool', value: false }],
  ];
  return {
    refuse,
    kv,
    tensor: (hf, shape, v) => {
      if (hf.endsWith('.A_log')) for (let i = 0; i < v.length; i++) v[i] = -Math.exp(v[i]); // llama.cpp stores A = -exp(A_log)
      return { name: ggufName(hf), shape: hf.endsWith('conv1d.weight') ? [shape[0], shape[2]] : shape, values: v }; // (ED, 1, K) -> (ED, K)
    },
  };
}

/** llama.cpp's llama_ftype of each --dtype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_0. */
const LLAMA_FTYPE: Record<ConvertDtype, number> = { f32: 0, f16: 1, q8_0: 7, q4_0: 2 };

/**
 * A GGUF tensor's type for --dtype `want`. q8_0 follows llama.cpp's converter (rows that are not
 * whole blocks fall back to f16); q4_0 follows `frugal quantize --to q4`: the embedding/head stays
 * q8_0 and rows that are not whole blocks (Mamba's dt_proj, K = dt_rank) stay f32, so that both
 * programs run the same bytes per weight.
 */
function ggufType(want: ConvertDtype, name: string, shape: readonly number[], f32Only: boolean): GgmlType {
  if (f32Only || want === 'f32') return 'F32';
  const blocks = shape[shape.length - 1] % 32 === 0;
  if (want === 'q8_0') return blocks ? 'Q8_0' : 'F16';
  if (want === 'q4_0') return !blocks ? 'F32' : name === 'token_embd.weight' || name === 'output.weight' ? 'Q8_0' : 'Q4_0';
  return 'F16';
}

function writeGguf(o: ConvertOpts, s: Source, log: (m: string) => void): { tensors: number; bytes: number } {
  const g = s.gguf(o, log);
  if (g.refuse) throw inputError(`${join(o.model, 'config.json')}: cannot write a llama.cpp GGUF: ${g.refuse}`);
  const want: ConvertDtype = o.dtype ?? ([...s.plan.values()].some((e) => e.dtype === 'F16' || e.dtype === 'BF16') ? 'f16' : 'f32');
  const tensors: GgufTensor[] = [];
  for (const [hf, e] of s.plan) {
    const probe = g.tensor(hf, [...e.shape], new Float32Array(0)); // name and shape only
    const { name, shape } = probe;
    // llama.cpp keeps 1-D tensors, norms, the conv kernel and names without ".weight" (ssm_a, ssm_d) in F32
    const f32Only = shape.length <= 1 || name.endsWith('_norm.weight') || name.endsWith('ssm_conv1d.weight') || !name.endsWith('.weight');
    const type = ggufType(want, name, shape, f32Only);
    const row = shape[shape.length - 1];
    if ((want === 'q8_0' && type === 'F16') || (want === 'q4_0' && type === 'F32' && !f32Only))
      log(`convert: ${name} rows of ${row} are not a multiple of 32; stored as ${type.toLowerCase()}`);
    tensors.push({
      name,
      shape,
      type,
      data: () => {
        const read = readFloat32(e);
        const bad = firstNonFinite(read);
        if (bad >= 0)
          throw inputError(`${e.src.file}: tensor '${e.name}' holds ${read[bad]} at index ${bad}; the checkpoint is corrupt or diverged`);
        const v = g.tensor(hf, [...e.shape], read).values;
        if (type === 'Q8_0') return quantizeQ8_0(v);
        if (type === 'Q4_0') return quantizeQ4_0(v);
        return type === 'F32'
          ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
          : convertRaw(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 'F32', 'F16', `${e.src.file}: tensor '${e.name}'`);
      },
    });
  }
  const ids = s.toHF();
  const kv: [string, GgufValue][] = [
    ...g.kv,
    ['general.file_type', { type: 'u32', value: LLAMA_FTYPE[want] }],
    ['general.quantization_version', { type: 'u32', value: 2 }],
    ...ggufVocab(
      o.model,
      ids.vocab_size as number,
      { bos: ids.bos_token_id as number, eos: ids.eos_token_id as number, pad: ids.pad_token_id as number },
      log,
    ),
  ];
  let bytes = 0;
  const producer = ggufProducer(kv, tensors);
  writeFileAtomic(o.out, (write) =>
    producer((chunk) => {
      bytes += chunk.length;
      write(chunk);
    }),
  );
  return { tensors: tensors.length, bytes };
}

/** A conversion's checked output (a folder is locked too until `release`); `cleanUp` removes what an interrupted conversion left. */
export interface ConvertOutput {
  path: string;
  release(): void;
  cleanUp(): void;
}

/** Check `o.out` before any work: a .gguf file (--to gguf) or a checkpoint folder, locked. */
export function openConvertOutput(o: ConvertOpts, log: (m: string) => void): ConvertOutput {
  checkRequest(o);
  const check = { flag: '--out', inputs: [o.model], force: o.force };
  if (o.to === 'gguf') {
    const path = checkOutputFile(o.out, check);
    return { path, release: () => {}, cleanUp: () => removeOwnTempFiles(path) };
  }
  const dir = openOutputDir(o.out, check, (m) => log(`warning: ${m}`));
  return { path: dir.path, release: () => dir.release(), cleanUp: () => recoverDir(dir.path) };
}
