import type { Rng } from '../io/rng.js';
import type { SequenceModel } from '../models/types.js';
import { sampleToken } from './sample.js';
import type { SamplingOptions } from './sample.js';

export interface GenerateResult {
  ids: number[];
  promptTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

/**
 * Prefill the prompt in one parallel pass, then decode one token at a time from the recurrent
 * state (constant memory per token). `onToken` sees each new id as soon as it is chosen. The
 * prompt holds at least one token (an empty one starts from the BOS token: the caller's choice).
 */
export function generate(
  model: SequenceModel,
  prompt: Int32Array,
  maxTokens: number,
  sampling: SamplingOptions,
  rng: Rng,
  onToken: (id: number) => void = () => {},
  stopAt: number | null = null,
): GenerateResult {
  const state = model.createState(1);
  const t0 = performance.now();
  if (prompt.length === 0) throw new Error('generate: the prompt needs at least one token (start an empty one from the BOS token)');
  let logits = model.prefill(prompt, prompt.length, state);
  const t1 = performance.now();
  const ids: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const id = sampleToken(logits, sampling, rng);
    ids.push(id);
    onToken(id);
    if (stopAt !== null && id === stopAt) break;
    if (i + 1 < maxTokens) logits = model.step(Int32Array.of(id), state);
  }
  const t2 = performance.now();
  return { ids, promptTokens: prompt.length, prefillSeconds: (t1 - t0) / 1000, decodeSeconds: (t2 - t1) / 1000 };
}
