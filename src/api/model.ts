import { Engine } from '../ops/index.js';
import type { KernelKind } from '../kernels/backend.js';
import { loadModel as loadCheckpoint } from '../models/checkpoint.js';
import type { TrainableModel } from '../models/types.js';
import { ByteTokenizer, loadTokenizer } from '../io/tokenizer.js';
import type { HFTokenizer, Tokenizer } from '../io/tokenizer.js';
import { inputError } from '../io/errors.js';
import { Adapter, loadAdapter } from '../models/lora.js';

/** How a model runs: which kernels and how many threads. */
export interface RunOptions {
  /** `'wasm'` (WebAssembly SIMD, the default) or `'ref'` (the plain TypeScript twins: slower, same results within 1e-5). */
  kernels?: KernelKind;
  /** Worker threads for the wasm kernels (default 1: the calling thread only). Every count gives the same numbers bit for bit. */
  threads?: number;
}

/** The tokenizer a model reads and writes text with, and the id that ends a generation. */
export interface TextCodec {
  /** The checkpoint's `tokenizer.json`, or frugal's byte tokenizer (one id per UTF-8 byte). */
  readonly tokenizer: Tokenizer;
  /** The end-of-text id generation stops at (`eos_token_id` of a `tokenizer.json` checkpoint), or null. */
  readonly stopAt: number | null;
  /** What the user should know about the choice (for example: no `tokenizer.json`, the byte tokenizer is used). */
  readonly warnings: readonly string[];
}

/**
 * A checkpoint loaded for inference or further training: the network, the folder it came from and
 * its tokenizer. Call {@link Model.dispose} when done to stop its worker threads (a model with
 * `threads: 1` has none; its memory is freed with the object either way).
 */
export class Model {
  /**
   * The network (Mamba or the transformer baseline) with its parameters in the engine's memory;
   * while it runs inference its projections are held in panels of four rows (`Tensor.panels`,
   * ops/panels.ts), so read weights through a checkpoint writer, not their raw values.
   * @internal For frugal's own layers (the commands, benchmarks); not part of the library's API.
   */
  readonly network: TrainableModel;
  /** The folder actually read (after an interrupted save, the sealed copy beside the path given). */
  readonly dir: string;
  /** What loading found worth saying (unknown config keys, a recovered folder, …). */
  readonly warnings: readonly string[];
  private codec: TextCodec | null = null;
  private readonly adapters = new Map<string, Adapter>();
  private active: string | null = null;

  /** @internal Use {@link loadModel}, or {@link train}'s result. */
  constructor(network: TrainableModel, dir: string, warnings: readonly string[] = [], codec: TextCodec | null = null) {
    this.network = network;
    this.dir = dir;
    this.warnings = warnings;
    this.codec = codec; // given where there is no folder to read tokenizer.json from (a browser)
  }

  /** config.json's `model_type`: `'mamba'`, `'mamba2'`, `'mamba3'`, `'bamba'` or `'frugal-hybrid'`, or `'llama'` (the transformer baseline). */
  get architecture(): string {
    return this.network.config.modelType;
  }
  /** Number of parameters. */
  get parameters(): number {
    return this.network.parameterCount;
  }
  /** Size of the vocabulary: token ids run from 0 to `vocabSize - 1`. */
  get vocabSize(): number {
    return this.network.config.vocabSize;
  }

  /**
   * The model's tokenizer (read once): its `tokenizer.json` when the folder has one, else the byte
   * tokenizer. Throws a FrugalError when neither fits (a vocabulary under 256 ids and no file):
   * such a model takes token ids only.
   */
  text(): TextCodec {
    this.codec ??= modelCodec(this.network, this.dir);
    return this.codec;
  }

  /**
   * Run a LoRA adapter (Hugging Face PEFT layout, from `frugal finetune --method lora`) on this
   * model from now on, or none (`null`). Each adapter is read once: switching between adapters
   * already used never reloads them or the base.
   *
   * @throws FrugalError (`exitCode` 2) when the adapter was trained on another base (its first mismatch is named)
   */
  useAdapter(path: string | null): void {
    let a: Adapter | null = null;
    if (path !== null) {
      a = this.adapters.get(path) ?? loadAdapter(this.network, path);
      this.adapters.set(path, a);
    }
    Adapter.attach(this.network, a);
    this.active = path;
  }

  /** The folder of the adapter in use, or null. */
  get adapter(): string | null {
    return this.active;
  }

  /** Stop the model's worker threads. The model must not be used afterwards. */
  dispose(): void {
    this.network.e.dispose();
  }
}

/**
 * Load a checkpoint folder: Hugging Face (`config.json` + `model.safetensors`, shards, or
 * `pytorch_model.bin`; F32, F16 or BF16) or the original state-spaces layout, Mamba or Llama-style,
 * f32 or quantised by `frugal quantize`. Reading only: nothing on disk changes.
 *
 * @param path the checkpoint folder
 * @param options kernels, threads, and `adapter`: a LoRA adapter folder to run on the model (see {@link Model.useAdapter})
 * @throws FrugalError (`exitCode` 2) when the folder is missing, incomplete or malformed
 */
export function loadModel(path: string, options: RunOptions & { adapter?: string } = {}): Model {
  const e = new Engine({ kernels: options.kernels ?? 'wasm', threads: options.threads ?? 1 });
  try {
    const { model, warnings, dir } = loadCheckpoint(e, path);
    const m = new Model(model, dir, warnings);
    if (options.adapter !== undefined) m.useAdapter(options.adapter);
    return m;
  } catch (err) {
    e.dispose();
    throw err;
  }
}

/**
 * The checkpoint's tokenizer: its tokenizer.json when it has one, else frugal's byte tokenizer
 * (with a warning when the checkpoint does not say it was trained with bytes).
 */
function modelCodec(model: TrainableModel, dir: string): TextCodec {
  return textCodec(model, loadTokenizer(dir), dir);
}

/** The codec of `model` given its tokenizer.json (`file`, or null when `dir` has none). */
export function textCodec(model: TrainableModel, file: HFTokenizer | null, dir: string): TextCodec {
  const V = model.config.vocabSize;
  const hf = model.hfConfig();
  if (file) {
    const warnings =
      file.vocabSize > V
        ? [`${file.file} has ${file.vocabSize} tokens but the model only ${V}; text that uses the extra ids is refused`]
        : [];
    const eos = hf.eos_token_id;
    return { tokenizer: file, stopAt: typeof eos === 'number' && file.specialIds.has(eos) ? eos : null, warnings };
  }
  if (V < 256)
    throw inputError(`${dir} has a vocabulary of ${V} and no tokenizer.json; pass token ids with 'frugal logits --ids' instead of text`);
  const kind = (hf.frugal as { tokenizer?: unknown } | undefined)?.tokenizer;
  const warnings =
    kind === 'byte'
      ? []
      : [
          `${dir} has no tokenizer.json; using frugal's byte tokenizer (one id per UTF-8 byte). ` +
            'Published Mamba checkpoints use the GPT-NeoX tokenizer: put its tokenizer.json in the model directory',
        ];
  return { tokenizer: new ByteTokenizer(), stopAt: null, warnings };
}
