import { Engine } from '../ops/index.js';
import { loadModel } from '../models/checkpoint.js';
import { ByteTokenizer } from '../io/tokenizer.js';
import { inputError } from '../io/errors.js';
import { Rng } from '../io/rng.js';
import { generate } from '../infer/generate.js';
import { train } from '../train/trainer.js';
import type { TrainOptions } from '../train/trainer.js';
import { startEnergy, formatJPerToken } from '../energy/index.js';
import { createProgress } from './progress.js';
import type { TrainableModel } from '../models/types.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface ModelOpts { model: string; kernels: 'wasm' | 'ref'; threads: number }

function openModel(o: ModelOpts): TrainableModel {
  const e = new Engine({ kernels: o.kernels });
  const { model, warnings } = loadModel(e, o.model);
  for (const w of warnings) err(`warning: ${w}`);
  return model;
}

function byteTokenizer(model: TrainableModel, dir: string): ByteTokenizer {
  if (model.config.vocabSize < 256) throw inputError(`${dir} has a vocabulary of ${model.config.vocabSize} and no tokenizer.json; pass token ids with 'frugal logits --ids' instead of text`);
  return new ByteTokenizer();
}

export interface LogitsOpts extends ModelOpts { ids?: number[]; text?: string; mode: 'parallel' | 'step' }

/** Print {"shape":[L,V],"logits":[...]} for one sequence to stdout. */
export function logitsCommand(o: LogitsOpts): void {
  const model = openModel(o);
  if ((o.ids === undefined) === (o.text === undefined)) throw inputError('logits: give exactly one of --ids 3,1,4 or --text "..."');
  const ids = o.ids ? Int32Array.from(o.ids) : byteTokenizer(model, o.model).encode(o.text as string);
  const V = model.config.vocabSize, L = ids.length;
  for (let i = 0; i < L; i++) if (ids[i] >= V) throw inputError(`--ids: token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${V})`);
  if (L === 0) throw inputError('logits: need at least one token');
  const energy = startEnergy();
  const t0 = performance.now();
  let out: Float32Array;
  if (o.mode === 'parallel') {
    out = model.e.scope(() => Float32Array.from(model.forward(ids, 1, L).data()));
  } else {
    out = new Float32Array(L * V);
    const state = model.createState(1);
    for (let t = 0; t < L; t++) out.set(model.step(ids.subarray(t, t + 1), state), t * V);
  }
  const sec = (performance.now() - t0) / 1000;
  const values = Array.from(out, (v) => Number.isFinite(v) ? v : null);
  process.stdout.write(JSON.stringify({ shape: [L, V], logits: values }) + '\n');
  err(`logits: ${L} tokens (${o.mode}) in ${sec.toFixed(3)} s, ${(L / sec).toFixed(1)} tok/s, ${formatJPerToken(energy.stop(), L)}`);
}

export interface GenerateOpts extends ModelOpts {
  prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number;
}

/** Stream generated text to stdout as it is made. */
export function generateCommand(o: GenerateOpts): void {
  const model = openModel(o);
  const tok = byteTokenizer(model, o.model);
  const prompt = tok.encode(o.prompt);
  const dec = tok.createStreamDecoder();
  const energy = startEnergy();
  const r = generate(model, prompt, o.maxTokens, { temperature: o.temperature, topK: o.topK, topP: o.topP }, Rng.fromSeed(o.seed),
    (id) => { const s = dec.push(id); if (s) process.stdout.write(s); });
  process.stdout.write(dec.flush() + '\n');
  const n = r.ids.length;
  err(`generate: prompt ${r.promptTokens} tokens, prefill ${(r.promptTokens / Math.max(r.prefillSeconds, 1e-9)).toFixed(1)} tok/s; ` +
    `${n} tokens at ${(n / Math.max(r.decodeSeconds, 1e-9)).toFixed(1)} tok/s; ${formatJPerToken(energy.stop(), r.promptTokens + n)}`);
}

/** Train (or resume), with a live progress bar; ends with a summary line on stderr. */
export function trainCommand(o: TrainOptions): { model: TrainableModel; summary: Record<string, number> } {
  const energy = startEnergy();
  const bar = createProgress(o.steps, 'train');
  const r = train(o, {
    onStep: (s) => bar.update(s.step, { loss: s.loss.toFixed(4), tps: s.tokPerSec.toFixed(0) }),
    onEval: (step, bpb) => { if (step < o.steps) err(`\nstep ${step}: validation ${bpb.toFixed(3)} bits/byte`); },
    log: (m) => err(m),
  });
  bar.stop();
  const tokens = r.state.tokensSeen;
  const e = energy.stop();
  err(`train: ${r.parameters.toLocaleString('en-US')} parameters, ${r.state.step} steps, ${r.trainTokPerSec.toFixed(0)} tok/s, ` +
    `validation ${r.valBpb.toFixed(3)} bits/byte (unigram entropy ${r.unigramBpb.toFixed(3)}), ` +
    `${formatJPerToken(e, tokens)}; saved ${o.out}`);
  return { model: r.model, summary: { parameters: r.parameters, trainTokPerSec: r.trainTokPerSec, valBpb: r.valBpb, unigramBpb: r.unigramBpb } };
}
