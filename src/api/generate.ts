import { join } from 'node:path';
import { Rng } from '../io/rng.js';
import { checkTokenIds } from '../io/tokenids.js';
import { inputError } from '../io/errors.js';
import { generate as generateIds } from '../infer/generate.js';
import { startEnergy } from '../energy/index.js';
import type { EnergyReport } from '../energy/index.js';
import type { Model } from './model.js';

/** Energy metering: frugal measures where the machine has counters and estimates otherwise. */
export interface EnergyOptions {
  /** CPU package power in watts for the CPU-time estimate (default: from a table of CPUs, else 10 W per core). */
  tdp?: number;
}

/** Sampling and streaming options of {@link generate}; every field is optional. */
export interface GenerateOptions extends EnergyOptions {
  /** Tokens to generate (default 200). */
  maxTokens?: number;
  /** Sampling temperature; 0 is greedy (default 0.8). */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 is all (default 0). */
  topK?: number;
  /** Nucleus sampling mass; 1 is off (default 1). */
  topP?: number;
  /** Sampling seed, 0 … 2^53 − 1 (default 1): same seed, same model, same text. */
  seed?: number;
  /** Receives the text as it is decoded (never half a UTF-8 character). */
  onText?: (piece: string) => void;
  /** Receives each new token id as soon as it is chosen. */
  onToken?: (id: number) => void;
  /** Receives notes for the user (energy counters that exist but cannot be read). */
  log?: (message: string) => void;
}

/** What {@link generate} made and what it cost. */
export interface Generation {
  /** The generated text (without the prompt). */
  text: string;
  /** The generated token ids. */
  ids: number[];
  /** Tokens in the prompt. */
  promptTokens: number;
  /** Seconds spent reading the prompt (one parallel pass). */
  prefillSeconds: number;
  /** Seconds spent generating, token by token. */
  decodeSeconds: number;
  /** Generated tokens per second of decoding. */
  tokensPerSecond: number;
  /**
   * Energy of the whole call, prompt and generated tokens together: `jPerToken`, `joules`, and
   * `kind` (`'measured'` by hardware counters, or `'estimated'` where the machine has none).
   */
  energy: EnergyReport;
}

/** Ids of `input`, checked against the model's vocabulary (`what` names it in errors). */
export function tokenIds(model: Model, input: string | ArrayLike<number>, what: string): Int32Array {
  const ids = typeof input === 'string' ? model.text().tokenizer.encode(input) : Int32Array.from(input);
  checkTokenIds(ids, model.vocabSize, what);
  return ids;
}

/**
 * The prompt's ids; an empty prompt starts from the config's BOS token, and a model without one
 * needs a prompt (generation must start from some token, and picking one silently would be a guess).
 */
export function startIds(model: Model, ids: Int32Array): Int32Array {
  if (ids.length > 0) return ids;
  const bos = model.network.hfConfig().bos_token_id;
  if (typeof bos === 'number' && Number.isInteger(bos) && bos >= 0 && bos < model.vocabSize) return Int32Array.of(bos);
  throw inputError(
    `the prompt is empty and ${join(model.dir, 'config.json')} names no bos_token_id to start from: give a prompt, e.g. --prompt "The "`,
  );
}

/**
 * Continue `prompt` (text, or token ids; empty: from the config's BOS token): the prompt is read in one parallel pass, then tokens
 * are sampled one at a time from the recurrent state (or KV cache) and streamed to `onText`.
 * Stops after `maxTokens`, or at the tokenizer's end-of-text token.
 *
 * @throws FrugalError when the prompt holds ids outside the vocabulary, or text the model has no tokenizer for
 */
export function generate(model: Model, prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Generation {
  const ids = startIds(model, tokenIds(model, prompt, 'prompt'));
  const { tokenizer, stopAt } = typeof prompt === 'string' || options.onText ? model.text() : { tokenizer: null, stopAt: null };
  const dec = tokenizer?.createStreamDecoder();
  const energy = startEnergy({ tdp: options.tdp });
  for (const n of energy.notes) options.log?.(`energy: ${n}; figures are estimates`);
  let text = '';
  const emit = (s: string) => {
    if (s) {
      text += s;
      options.onText?.(s);
    }
  };
  const r = generateIds(
    model.network,
    ids,
    options.maxTokens ?? 200,
    { temperature: options.temperature ?? 0.8, topK: options.topK ?? 0, topP: options.topP ?? 1 },
    Rng.fromSeed(options.seed ?? 1),
    (id) => {
      options.onToken?.(id);
      if (dec) emit(dec.push(id));
    },
    stopAt,
  );
  if (dec) emit(dec.flush());
  const report = energy.stop(r.promptTokens + r.ids.length);
  return { ...r, text, tokensPerSecond: r.ids.length / Math.max(r.decodeSeconds, 1e-9), energy: report };
}

/** Logits of one sequence: `values` holds `shape[0]` rows (tokens) of `shape[1]` (the vocabulary). */
export interface Logits {
  /** [tokens, vocabulary size]. */
  shape: [number, number];
  /** The logits, row by row (token by token). */
  values: Float32Array;
  /** Seconds of the computation. */
  seconds: number;
  /** Its energy; `kind` says measured or estimated. */
  energy: EnergyReport;
}

/**
 * The logits of every position of one sequence, from the parallel forward (`'parallel'`, the
 * default) or successive recurrent steps (`'step'`); both give the same numbers within 1e-5.
 */
export function logits(model: Model, input: string | ArrayLike<number>, options: { mode?: 'parallel' | 'step' } = {}): Logits {
  const ids = tokenIds(model, input, typeof input === 'string' ? 'text' : 'ids');
  const net = model.network,
    V = model.vocabSize,
    L = ids.length;
  if (L === 0) throw inputError('logits: need at least one token');
  const energy = startEnergy();
  const t0 = performance.now();
  let values: Float32Array;
  if ((options.mode ?? 'parallel') === 'parallel') {
    values = net.e.scope(() => Float32Array.from(net.forward(ids, 1, L).data()));
  } else {
    values = new Float32Array(L * V);
    const state = net.createState(1);
    for (let t = 0; t < L; t++) values.set(net.step(ids.subarray(t, t + 1), state), t * V);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { shape: [L, V], values, seconds, energy: energy.stop(L) };
}
