import { basename } from 'node:path';
import { generate } from '../api/generate.js';
import { formatJoules } from '../energy/index.js';
import type { Model } from '../api/model.js';
import type { Generation } from '../api/generate.js';
import { loadModel } from '../api/model.js';
import type { GenerateFlags } from './generate.js';

/** One model's decoding of a prompt: its size, tokens/s and J/token (measured or estimated). */
export interface DecodeCost {
  name: string;
  parameters: number;
  tokS: number;
  jPerToken: number;
  kind: string;
}

export function decodeCost(model: Model, g: Generation): DecodeCost {
  return {
    name: basename(model.dir),
    parameters: model.parameters,
    tokS: g.tokensPerSecond,
    jPerToken: g.energy.jPerToken,
    kind: g.energy.kind,
  };
}

/** Decode the same prompt with the model in `dir` (its text discarded), with the same sampling settings. */
export function decodeCostOf(dir: string, o: GenerateFlags): DecodeCost {
  const model = loadModel(dir, { kernels: o.kernels, threads: o.threads });
  try {
    return decodeCost(model, generate(model, o.prompt, { ...o }));
  } finally {
    model.dispose();
  }
}

/** The one line `generate --compare` prints on stderr: both models on the same prompt and settings. */
export function compareLine(a: DecodeCost, b: DecodeCost): string {
  const one = (c: DecodeCost) =>
    `${c.name} (${(c.parameters / 1e6).toFixed(2)}M parameters) ${c.tokS.toFixed(1)} tok/s, ${formatJoules(c.jPerToken)} J/token (${c.kind})`;
  return (
    `compare, same prompt and sampling: ${one(a)} | ${one(b)} | ${b.name} takes ${(a.tokS / Math.max(b.tokS, 1e-9)).toFixed(2)}x the time ` +
    `per token and ${(b.jPerToken / a.jPerToken).toFixed(2)}x the energy per token of ${a.name}`
  );
}
