/**
 * frugal in a browser: the same engine, WebAssembly SIMD kernels, models, tokenizers and sampling
 * as in Node, with no Node built-in. What differs is only where bytes come from: the kernels module
 * is fetched (or given as bytes) instead of read from build/, and a model is a set of files in
 * memory (config.json, model.safetensors, optional tokenizer.json) instead of a folder.
 *
 * ```ts
 * import { initKernels, loadModelFiles, TokenStream } from 'frugal/browser';
 * await initKernels('/kernels.wasm');
 * const model = await loadModelFiles({ 'config.json': cfg, 'model.safetensors': weights });
 * const s = new TokenStream(model, 'The Congress', { maxTokens: 50, temperature: 0 });
 * for (let t = s.next(); t; t = s.next()) console.log(t.text);
 * ```
 *
 * @packageDocumentation
 */
import { Engine } from '../ops/index.js';
import { useWasmModule } from '../kernels/wasm/index.js';
import { modelFromConfig, loadWeights } from '../models/checkpoint.js';
import { memoryWeights } from '../io/weights.js';
import { parseJsonLenient } from '../io/json.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, Adapter, adapterFromBytes, parseAdapterConfig } from '../models/lora.js';
import { HFTokenizer } from '../io/tokenizer.js';
import { inputError } from '../io/errors.js';
import { Model, textCodec } from '../api/model.js';
import { startIds, tokenIds } from '../api/generate.js';
import { Rng } from '../io/rng.js';
import { sampleToken } from '../infer/sample.js';
import type { SamplingOptions } from '../infer/sample.js';
import type { ModelState } from '../models/types.js';
import type { StreamDecoder } from '../io/tokenizer.js';
import { threadsStarted, useWebWorkerThreads } from './threads.js';
import { poolStatsSince } from '../kernels/threads.js';
import type { PoolStats } from '../kernels/threads.js';

export { Model } from '../api/model.js';
export type { TextCodec } from '../api/model.js';
export { FrugalError } from '../io/errors.js';
export { ByteTokenizer, HFTokenizer } from '../io/tokenizer.js';
export type { StreamDecoder, Tokenizer } from '../io/tokenizer.js';
export { Rng } from '../io/rng.js';
export { decodeState, encodeState, stateIdentity } from './state.js';
export type { StateIdentity } from './state.js';
export { argmax, sampleToken } from '../infer/sample.js';
export type { SamplingOptions } from '../infer/sample.js';

/** Compile the kernels module (build/kernels.wasm, the build Node uses by default) from a URL or its bytes. */
export async function initKernels(source: string | URL | BufferSource): Promise<void> {
  let module: WebAssembly.Module;
  if (typeof source === 'string' || source instanceof URL) {
    const res = await fetch(source);
    if (!res.ok) throw new Error(`cannot fetch the kernels module ${String(source)} (HTTP ${res.status})`);
    module = await WebAssembly.compile(await res.arrayBuffer());
  } else module = await WebAssembly.compile(source);
  useWasmModule(module);
}

/**
 * A model's files by name: `config.json`, `model.safetensors` (or `model.safetensors.index.json`
 * and its shards), optionally `tokenizer.json` and `tokenizer_config.json`, and optionally a LoRA
 * adapter's `adapter_config.json` and `adapter_model.safetensors`.
 */
export type ModelFiles = Readonly<Record<string, Uint8Array>>;

function jsonFile(files: ModelFiles, name: string, where: string): unknown {
  const b = files[name];
  if (b === undefined) return undefined;
  try {
    return parseJsonLenient(new TextDecoder().decode(b)); // transformers writes bare Infinity
  } catch (e) {
    throw inputError(`${where}/${name} is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Load a model from its files (an HF-style folder held in memory; `where` names it in messages):
 * f32, F16 or BF16 weights, or q8/q4 ones from `frugal quantize`, in one file or shards, and the
 * LoRA adapter among the files, attached, when there is one. Runs the WebAssembly SIMD kernels,
 * on the calling thread or on `threads` threads (the calling one included: needs a cross-origin
 * isolated page, and a Worker as the calling thread); call {@link initKernels} first. Every
 * thread count gives the same numbers, bit for bit, as Node.
 *
 * @throws FrugalError for a missing, wrong or broken file, naming it
 */
export async function loadModelFiles(files: ModelFiles, where = 'model', threads = 1): Promise<Model> {
  const json = jsonFile(files, 'config.json', where);
  if (json === undefined) throw inputError(`${where} has no config.json: a model needs config.json and model.safetensors`);
  const weights = memoryWeights(files, where);
  if (threads > 1) useWebWorkerThreads();
  const e = new Engine({ kernels: 'wasm', threads });
  try {
    await threadsStarted();
    const { model, warnings, layout } = modelFromConfig(e, json, `${where}/config.json`);
    loadWeights(model, weights, layout);
    const adapterConfig = files[ADAPTER_CONFIG];
    if (adapterConfig !== undefined) {
      const a = files[ADAPTER_WEIGHTS];
      if (a === undefined) throw inputError(`${where} has ${ADAPTER_CONFIG} but no ${ADAPTER_WEIGHTS}: an adapter needs both`);
      const c = parseAdapterConfig(new TextDecoder().decode(adapterConfig), `${where}/${ADAPTER_CONFIG}`);
      Adapter.attach(model, adapterFromBytes(model, c, a, `${where}/${ADAPTER_WEIGHTS}`, `${where}/${ADAPTER_CONFIG}`));
    }
    const tj = jsonFile(files, 'tokenizer.json', where);
    const tok = tj === undefined ? null : new HFTokenizer(tj, jsonFile(files, 'tokenizer_config.json', where), `${where}/tokenizer.json`);
    const m = new Model(model, where, warnings);
    return new Model(model, where, warnings, textCodec(m.network, tok, where));
  } catch (err) {
    e.dispose();
    throw err;
  }
}

/** Sampling and length of a {@link TokenStream} (defaults as `frugal generate`'s). */
export interface StreamOptions extends Partial<SamplingOptions> {
  maxTokens?: number;
  seed?: number;
  /** Continue this state (a conversation so far) instead of starting a new one; it is advanced in place. */
  state?: ModelState;
}

/**
 * A generation taken one token at a time, so that a caller can yield between tokens (to stream,
 * or to hear a stop): the same prefill, sampling and steps as `frugal generate`, hence the same
 * tokens for the same model, prompt, seed and thread count.
 */
export class TokenStream {
  readonly promptTokens: number;
  /** Bytes of recurrent state (or KV cache) this generation holds. */
  readonly stateBytes: number;
  /** The recurrent state (or KV cache) after the tokens so far: keep it to continue the conversation. */
  readonly state: ModelState;
  /** Seconds the prompt's parallel pass took (the prefill alone, as `generate` times it: not the tokenizer). */
  readonly prefillSeconds: number;
  /** What the prefill asked of the kernel threads (parallel calls, the caller's wait at their joins, worker sleeps). */
  readonly prefillPool: PoolStats;
  private readonly poolAfterPrefill: PoolStats;
  private readonly dec: StreamDecoder;
  private readonly rng: Rng;
  private readonly sampling: SamplingOptions;
  private readonly stopAt: number | null;
  private readonly max: number;
  private logits: Float32Array;
  private made = 0;
  private ended = false;
  private last: number | null = null;

  constructor(
    private readonly model: Model,
    prompt: string,
    o: StreamOptions = {},
  ) {
    const ids = startIds(model, tokenIds(model, prompt, 'prompt'));
    const { tokenizer, stopAt } = model.text();
    this.dec = tokenizer.createStreamDecoder();
    this.stopAt = stopAt;
    this.rng = Rng.fromSeed(o.seed ?? 1);
    this.sampling = { temperature: o.temperature ?? 0.8, topK: o.topK ?? 0, topP: o.topP ?? 1 };
    this.max = o.maxTokens ?? 200;
    this.promptTokens = ids.length;
    this.state = o.state ?? model.network.createState(1);
    this.stateBytes = stateBytes(this.state);
    const k = model.network.e.k,
      p0 = k.poolStats(),
      t0 = performance.now();
    this.logits = model.network.prefill(ids, ids.length, this.state);
    this.prefillSeconds = (performance.now() - t0) / 1000;
    this.poolAfterPrefill = k.poolStats();
    this.prefillPool = poolStatsSince(p0, this.poolAfterPrefill);
  }

  /** What the tokens since the prefill asked of the kernel threads (read it before {@link settle}). */
  decodePool(): PoolStats {
    return poolStatsSince(this.poolAfterPrefill, this.model.network.e.k.poolStats());
  }

  /** The next token and the text it completes (may be empty mid-character), or null at the end. */
  next(): { id: number; text: string } | null {
    if (this.ended || this.made >= this.max) {
      this.ended = true;
      return null;
    }
    const id = sampleToken(this.logits, this.sampling, this.rng);
    this.made++;
    if ((this.stopAt !== null && id === this.stopAt) || this.made >= this.max) this.ended = true;
    else this.logits = this.model.network.step(Int32Array.of(id), this.state);
    this.last = id;
    return { id, text: this.dec.push(id) + (this.ended ? this.dec.flush() : '') };
  }

  /**
   * Feed the last token into the state when the generation ended on it (Node's generate skips
   * that step, as nothing follows): then {@link state} holds the whole conversation, to continue.
   */
  settle(): void {
    if (this.ended && this.last !== null) this.model.network.step(Int32Array.of(this.last), this.state);
    this.last = null;
  }
}

/** Bytes of every tensor a state holds. */
function stateBytes(state: ModelState): number {
  let n = 0;
  for (const t of state.tensors.values()) n += t.byteLength;
  return n;
}
