import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../ops/index.js';
import { loadModel } from '../models/checkpoint.js';
import { ByteTokenizer, loadTokenizer } from '../io/tokenizer.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { StoppedError, inputError } from '../io/errors.js';
import { checkOutputFile } from '../io/outputs.js';
import { Rng } from '../io/rng.js';
import { generate } from '../infer/generate.js';
import { startTraining } from '../train/trainer.js';
import type { TrainOptions, TrainResult } from '../train/trainer.js';
import { ENERGY_LOG_COLUMNS, appendEnergyLog, formatJPerToken, startEnergy } from '../energy/index.js';
import type { EnergyReport, EnergySession } from '../energy/index.js';
import { createProgress } from './progress.js';
import type { Progress } from './progress.js';
import { watchStopSignals } from './interrupt.js';
import { writeOut } from './stdout.js';
import type { TrainableModel } from '../models/types.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface ModelOpts { model: string; kernels: 'wasm' | 'ref'; threads: number }

/** --energy-log FILE and --tdp W (train, generate, bench). */
export interface EnergyFlags { energyLog?: string; tdp?: number }

/**
 * Check --energy-log before any work (inputs: what the command reads) and return the flags with
 * its real path (a symbolic link is written through). An existing file must be frugal's CSV.
 */
export function checkEnergyLog(f: EnergyFlags, inputs: readonly (string | null | undefined)[]): EnergyFlags {
  if (!f.energyLog) return f;
  const path = checkOutputFile(f.energyLog, { flag: '--energy-log', inputs, append: true });
  let first = '';
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(8192);
      first = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8').split(/\r?\n/, 1)[0];
    } finally {
      closeSync(fd);
    }
  } catch { /* a new file */ }
  const header = ENERGY_LOG_COLUMNS.join(',');
  if (first.trim() !== '' && first !== header) {
    throw inputError(`--energy-log ${f.energyLog} has other columns than frugal writes (its header is '${first.slice(0, 60)}…'); use a new file`);
  }
  return { ...f, energyLog: path };
}

/** Start the energy meter, telling the user about counters that exist but cannot be read. */
export function meterFor(f: EnergyFlags): EnergySession {
  const m = startEnergy({ tdp: f.tdp });
  for (const n of m.notes) err(`energy: ${n}; figures are estimates`);
  return m;
}

/** Append the run's row to --energy-log when given. */
export function logEnergy(f: EnergyFlags, r: EnergyReport, command: string, tokens: number, seconds: number): void {
  if (f.energyLog) appendEnergyLog(f.energyLog, r, { command, tokens, seconds });
}

/** The model and the folder it was read from (after an interrupted save, the sealed copy beside --model). */
function openModel(o: ModelOpts): { model: TrainableModel; dir: string } {
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  const { model, warnings, dir } = loadModel(e, o.model);
  for (const w of warnings) err(`warning: ${w}`);
  return { model, dir };
}

/**
 * The checkpoint's tokenizer: its tokenizer.json when it has one, else frugal's byte tokenizer
 * (warning when the checkpoint does not say it was trained with bytes). `stopAt` is the end-of-text
 * id generation stops at (tokenizer.json checkpoints only; byte models have none).
 */
function modelTokenizer(model: TrainableModel, dir: string): { tok: Tokenizer; stopAt: number | null } {
  const V = model.config.vocabSize;
  const hf = model.hfConfig();
  const file = loadTokenizer(dir);
  if (file) {
    if (file.vocabSize > V) err(`warning: ${file.file} has ${file.vocabSize} tokens but the model only ${V}; text that uses the extra ids is refused`);
    const eos = hf.eos_token_id;
    return { tok: file, stopAt: typeof eos === 'number' && file.specialIds.has(eos) ? eos : null };
  }
  if (V < 256) throw inputError(`${dir} has a vocabulary of ${V} and no tokenizer.json; pass token ids with 'frugal logits --ids' instead of text`);
  const kind = (hf.frugal as { tokenizer?: unknown } | undefined)?.tokenizer;
  if (kind !== 'byte') err(`warning: ${dir} has no tokenizer.json; using frugal's byte tokenizer (one id per UTF-8 byte). ` +
    'Published Mamba checkpoints use the GPT-NeoX tokenizer: put its tokenizer.json in the model directory');
  return { tok: new ByteTokenizer(), stopAt: null };
}

export interface LogitsOpts extends ModelOpts { ids?: number[]; text?: string; mode: 'parallel' | 'step' }

/** Print {"shape":[L,V],"logits":[...]} for one sequence to stdout. */
export function logitsCommand(o: LogitsOpts): void {
  const { model, dir } = openModel(o);
  if ((o.ids === undefined) === (o.text === undefined)) throw inputError('logits: give exactly one of --ids 3,1,4 or --text "..."');
  const ids = o.ids ? Int32Array.from(o.ids) : modelTokenizer(model, dir).tok.encode(o.text as string);
  const V = model.config.vocabSize, L = ids.length;
  for (let i = 0; i < L; i++) if (ids[i] >= V) throw inputError(`${o.ids ? '--ids' : '--text'}: token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${V})`);
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
  writeOut(JSON.stringify({ shape: [L, V], logits: values }) + '\n');
  err(`logits: ${L} tokens (${o.mode}) in ${sec.toFixed(3)} s, ${(L / sec).toFixed(1)} tok/s, ${formatJPerToken(energy.stop(L))}`);
}

export interface GenerateOpts extends ModelOpts, EnergyFlags {
  prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number;
}

/**
 * The prompt's ids; an empty prompt starts from the config's BOS token, and a model without one
 * needs a prompt (generation must start from some token, and picking one silently would be a guess).
 */
function promptIds(model: TrainableModel, ids: Int32Array, dir: string): Int32Array {
  if (ids.length > 0) return ids;
  const bos = model.hfConfig().bos_token_id;
  if (typeof bos === 'number' && Number.isInteger(bos) && bos >= 0 && bos < model.config.vocabSize) return Int32Array.of(bos);
  throw inputError(`--prompt is empty and ${join(dir, 'config.json')} names no bos_token_id to start from: give a prompt, e.g. --prompt "The "`);
}

/** Stream generated text to stdout as it is made (stopping at once when the reader goes away). */
export function generateCommand(input: GenerateOpts): void {
  const o = { ...input, ...checkEnergyLog(input, [input.model]) };
  const { model, dir } = openModel(o);
  const { tok, stopAt } = modelTokenizer(model, dir);
  const prompt = promptIds(model, tok.encode(o.prompt), dir);
  const bad = prompt.findIndex((id) => id >= model.config.vocabSize);
  if (bad >= 0) throw inputError(`--prompt: token ${prompt[bad]} at position ${bad} is outside the model's vocabulary [0, ${model.config.vocabSize})`);
  const dec = tok.createStreamDecoder();
  const energy = meterFor(o);
  const r = generate(model, prompt, o.maxTokens, { temperature: o.temperature, topK: o.topK, topP: o.topP }, Rng.fromSeed(o.seed),
    (id) => { const s = dec.push(id); if (s) writeOut(s); }, stopAt);
  const n = r.ids.length;
  if (n > 0) writeOut(dec.flush() + '\n');
  const report = energy.stop(r.promptTokens + n);
  err(`generate: prompt ${r.promptTokens} tokens, prefill ${(r.promptTokens / Math.max(r.prefillSeconds, 1e-9)).toFixed(1)} tok/s; ` +
    `${n} tokens at ${(n / Math.max(r.decodeSeconds, 1e-9)).toFixed(1)} tok/s; ${formatJPerToken(report)}`);
  logEnergy(o, report, 'generate', r.promptTokens + n, r.prefillSeconds + r.decodeSeconds);
}

/**
 * Train (or resume), with a live progress bar; ends with a summary line on stderr. Ctrl-C or
 * SIGTERM stop it between steps: the step reached is saved, the terminal restored, and a
 * StoppedError says how to continue.
 */
export async function trainCommand(o: TrainOptions, flags: EnergyFlags = {}): Promise<{ model: TrainableModel; summary: Record<string, number> }> {
  const f = checkEnergyLog(flags, [o.data === 'sotu' ? null : o.data, o.init]);
  const energy = meterFor(f);
  let bar: Progress | null = null;
  // the first step (JIT compilation, first allocations) is warm-up, excluded when more steps follow
  let warmStep = -1;
  const run = startTraining(o, {
    onStep: (s) => {
      if (warmStep < 0 && s.step < s.steps) { warmStep = s.step; energy.markWarm(); }
      energy.poll();
      bar?.update(s.step, { loss: s.loss.toFixed(4), tps: s.tokPerSec.toFixed(0) });
    },
    onEval: (step, bpb) => { if (step < run.options.steps) err(`\nstep ${step}: validation ${bpb.toFixed(3)} bits/byte`); },
    log: (m) => err(m),
  });
  const stop = watchStopSignals();
  let r: TrainResult;
  try {
    bar = createProgress(run.options.steps, 'train');
    while (!run.done()) {
      run.step();
      const signal = await stop.check();
      if (signal === null) continue;
      bar.stop();
      if (run.savedStep !== run.state.step) run.save();
      throw new StoppedError(`stopped at step ${run.state.step}; continue with --resume`, signal);
    }
    r = run.finish();
  } finally {
    bar?.stop();
    stop.dispose();
    run.close();
  }
  const { batch, seqLen } = run.options;
  // tokens of this session only (a resumed run's tokensSeen counts earlier sessions too)
  const tokens = warmStep < 0 ? r.sessionTokens : (r.state.step - warmStep) * batch * seqLen;
  const e = energy.stop(tokens);
  err(`train: ${r.parameters.toLocaleString('en-US')} parameters, ${r.state.step} steps, ${r.trainTokPerSec.toFixed(0)} tok/s, ` +
    `validation ${r.valBpb.toFixed(3)} bits/byte (unigram entropy ${r.unigramBpb.toFixed(3)}), ` +
    `${formatJPerToken(e)}${warmStep < 0 ? '' : ' (after a 1-step warm-up)'}; saved ${o.out}`);
  logEnergy(f, e, 'train', tokens, e.seconds);
  return { model: r.model, summary: { parameters: r.parameters, trainTokPerSec: r.trainTokPerSec, valBpb: r.valBpb, unigramBpb: r.unigramBpb } };
}
