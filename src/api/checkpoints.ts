import { openOutputDir } from '../io/outputs.js';
import { convertCheckpoint, openConvertOutput } from '../models/convert.js';
import type { ConvertDtype, ConvertTarget } from '../models/convert.js';
import { quantizeToDir } from '../models/quantize-checkpoint.js';
import type { RunOptions } from './model.js';

/** What {@link convert} wrote. */
export interface Converted {
  /** Tensors written. */
  tensors: number;
  /** Bytes written. */
  bytes: number;
}

/** What {@link quantize} made of the weights. */
export interface Quantized {
  /** The weights' bytes as f32. */
  before: number;
  /** The weights' bytes quantised. */
  after: number;
}

/** What {@link convert} reads and writes. */
export interface ConvertSettings {
  /** The checkpoint folder to read (either layout; model.safetensors, shards or pytorch_model.bin). */
  model: string;
  /** The folder to write (`to` hf or original), or the .gguf file (`to` gguf). */
  out: string;
  /** `'hf'` (transformers, the default), `'original'` (state-spaces mamba_ssm) or `'gguf'` (llama.cpp). */
  to?: ConvertTarget;
  /** Tensor type: `'f32'`, `'f16'`, `'q8_0'` or `'q4_0'` (gguf only; q4_0 keeps the embedding/head q8_0); default: as stored (lossless). */
  dtype?: ConvertDtype;
  /** hf: start a new shard past this many bytes (default 5e9, transformers' default). */
  maxShardBytes?: number;
  /** Replace an existing output (a frugal checkpoint, or the .gguf file). */
  force?: boolean;
  /** Warnings and notes for the user. */
  log?: (message: string) => void;
}

/**
 * Convert a Mamba checkpoint between layouts and dtypes without loading it into the engine (so
 * models larger than WebAssembly's 4 GiB convert too): tensors stream one at a time, every value
 * is checked finite, the write is atomic. Returns the number of tensors and bytes written.
 *
 * @throws FrugalError when the output may not be written or the checkpoint cannot be converted
 */
export function convert(settings: ConvertSettings): Converted {
  const log = settings.log ?? (() => {});
  const o = { ...settings, to: settings.to ?? 'hf' };
  const out = openConvertOutput(o, log);
  try {
    return convertCheckpoint({ ...o, out: out.path, log });
  } finally {
    out.release();
  }
}

/** What {@link quantize} reads and writes. */
export interface QuantizeSettings extends RunOptions {
  /** The f32 (or f16/bf16) Mamba checkpoint folder to read. */
  model: string;
  /** The folder to write. */
  out: string;
  /** `'q8'` (8-bit) or `'q4'` (4-bit), blocks of 32 weights with one f32 scale each. */
  to: 'q8' | 'q4';
  /** Replace an existing checkpoint in `out`. */
  force?: boolean;
  /** Warnings for the user. */
  log?: (message: string) => void;
}

/**
 * Write a block-quantised copy of a Mamba checkpoint (its large projections and embedding; norms,
 * biases, A_log, D and the state stay f32), which {@link loadModel} and {@link generate} run.
 * Returns the weights' bytes before (as f32) and after.
 *
 * @throws FrugalError when the output may not be written or the checkpoint is not a Mamba one
 */
export function quantize(settings: QuantizeSettings): Quantized {
  const log = settings.log ?? (() => {});
  const out = openOutputDir(settings.out, { flag: '--out', inputs: [settings.model], force: settings.force }, (m) => log(`warning: ${m}`));
  try {
    const { model, to, kernels = 'wasm', threads = 1 } = settings;
    return quantizeToDir({ model, to, outDir: out.path, kernels, threads }, log);
  } finally {
    out.release();
  }
}
