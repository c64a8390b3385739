import { basename } from 'node:path';
import { Rng } from '../io/rng.js';
import { checkTokenIds } from '../io/tokenids.js';
import { generate } from '../infer/generate.js';
import { formatJoules } from '../energy/index.js';
import type { TrainableModel } from '../models/types.js';
import { meterFor, modelTokenizer, openModel } from './commands.js';
import type { GenerateOpts } from './commands.js';

/** One model's decoding on a prompt: tokens, tokens/s and J/token (measured or estimated). */
export interface DecodeCost { name: string; parameters: number; tokens: number; tokS: number; jPerToken: number; kind: string }

/** Decode `o.maxTokens` tokens from the prompt on the model in `dir` (its output discarded), timed and metered. */
export function decodeCostOf(dir: string, o: GenerateOpts): DecodeCost {
  const { model, dir: read } = openModel({ ...o, model: dir, adapter: undefined });
  try {
    return measure(model, read, o);
  } finally {
    model.e.dispose();
  }
}

function measure(model: TrainableModel, dir: string, o: GenerateOpts): DecodeCost {
  const { tok, stopAt } = modelTokenizer(model, dir);
  const prompt = tok.encode(o.prompt);
  checkTokenIds(prompt, model.config.vocabSize, '--prompt');
  const energy = meterFor(o);
  const r = generate(model, prompt, o.maxTokens, { temperature: o.temperature, topK: o.topK, topP: o.topP }, Rng.fromSeed(o.seed), () => {}, stopAt);
  const rep = energy.stop(r.promptTokens + r.ids.length);
  return { name: basename(dir), parameters: model.parameterCount, tokens: r.ids.length, tokS: r.ids.length / Math.max(r.decodeSeconds, 1e-9), jPerToken: rep.jPerToken, kind: rep.kind };
}

/** The one line `generate --compare` prints on stderr: both models on the same prompt and settings. */
export function compareLine(a: DecodeCost, b: DecodeCost): string {
  const one = (c: DecodeCost) => `${c.name} (${(c.parameters / 1e6).toFixed(2)}M parameters) ${c.tokS.toFixed(1)} tok/s, ${formatJoules(c.jPerToken)} J/token (${c.kind})`;
  return `compare, same prompt and sampling: ${one(a)} | ${one(b)} | ${b.name} takes ${(a.tokS / Math.max(b.tokS, 1e-9)).toFixed(2)}x the time per token and ` +
    `${(b.jPerToken / a.jPerToken).toFixed(2)}x the energy per token of ${a.name}`;
}
