import { loadCorpus } from '../io/corpus.js';
import { inputError } from '../io/errors.js';
import { HFTokenizer } from '../io/tokenizer.js';
import { startEnergy } from '../energy/index.js';
import { evaluate } from '../train/trainer.js';
import { encodeBytes } from '../train/refine.js';
import type { TrainableModel } from '../models/types.js';
import type { RunOptions } from '../api/model.js';
import { openModel } from './generate.js';
import { writeOut } from './stdout.js';
import { engineOptions, floatArg, intArg, modelOption } from './options.js';
import type { AnyCommand } from './options.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface EvalLmOpts extends RunOptions {
  model: string;
  adapter?: string;
  data: string;
  valFraction: number;
  seqLen: number;
  batch: number;
  maxWindows: number;
  tdp?: number;
}

/** What `frugal eval lm` prints (the keys are a contract). */
export interface EvalLmResult {
  bits_per_byte: number;
  tokens: number;
  tok_s: number;
  joules: number;
  energy_kind: string;
}

/**
 * Bits per byte of `model` on `bytes`: the text as the model's ids, cut into back-to-back windows of
 * `seqLen` tokens (at most `maxWindows`, spread evenly, when > 0), each token predicted from the
 * ones before it in its window; nats per token over bytes per token of the text.
 */
export function scoreText(
  model: TrainableModel,
  tok: HFTokenizer | null,
  bytes: Uint8Array,
  seqLen: number,
  batch: number,
  maxWindows: number,
): { bitsPerByte: number; tokens: number } {
  const ids = tok ? encodeBytes(tok, bytes) : bytes;
  if (ids.length < seqLen + 1)
    throw inputError(
      `the text has ${ids.length} tokens, fewer than one window of --seq-len ${seqLen} needs (${seqLen + 1}); use a smaller --seq-len`,
    );
  const tiles = Math.floor((ids.length - 1) / seqLen),
    windows = maxWindows > 0 ? Math.min(maxWindows, tiles) : tiles;
  const bpb = evaluate(model, ids, seqLen, windows, batch, bytes.length / ids.length);
  return { bitsPerByte: bpb, tokens: windows * seqLen };
}

/** `frugal eval lm`: print {"bits_per_byte","tokens","tok_s","joules","energy_kind"} for a model (and adapter) on a text. */
export function evalLmCommand(o: EvalLmOpts): EvalLmResult {
  const model = openModel(o);
  try {
    for (const w of model.text().warnings) err(`warning: ${w}`);
    const tok = model.text().tokenizer;
    const corpus = loadCorpus(o.data);
    const bytes = corpus.bytes.subarray(o.valFraction >= 1 ? 0 : corpus.bytes.length - Math.round(corpus.bytes.length * o.valFraction));
    const energy = startEnergy({ tdp: o.tdp });
    const t0 = performance.now();
    const { bitsPerByte, tokens } = scoreText(
      model.network,
      tok instanceof HFTokenizer ? tok : null,
      bytes,
      o.seqLen,
      o.batch,
      o.maxWindows,
    );
    const seconds = (performance.now() - t0) / 1000;
    const report = energy.stop(tokens);
    const r: EvalLmResult = {
      bits_per_byte: bitsPerByte,
      tokens,
      tok_s: tokens / Math.max(seconds, 1e-9),
      joules: report.joules,
      energy_kind: report.kind,
    };
    writeOut(JSON.stringify(r) + '\n');
    err(
      `eval lm: ${o.model}${o.adapter ? ` + ${o.adapter}` : ''} on ${bytes.length} bytes of ${corpus.name}: ${bitsPerByte.toFixed(4)} bits/byte ` +
        `over ${tokens} tokens, ${r.tok_s.toFixed(0)} tok/s (tokenising and scoring), ${report.joules.toFixed(3)} J (${report.kind}, ${report.method})`,
    );
    return r;
  } finally {
    model.dispose();
  }
}

/** Add `lm` to an `eval` command (the one `frugal eval` has, or a new one). */
export function addEvalLm(evalCmd: AnyCommand): void {
  modelOption(
    engineOptions(evalCmd.command('lm').description('bits per byte of a language model (and adapter) on a text, as JSON on stdout')),
    'model folder',
  )
    .option('--adapter <dir>', "a LoRA adapter folder (PEFT layout, from 'frugal finetune') to run on the model")
    .requiredOption('--data <file|sotu>', "the text to score: a file, or 'sotu'")
    .option(
      '--val-fraction <x>',
      'score only the last fraction x of the text (what `frugal train --val-fraction x` held out); 1: all of it',
      floatArg(0.0001, 1),
      1,
    )
    .option('--seq-len <n>', 'tokens per window (each window starts without context)', intArg(1, 1 << 20), 128)
    .option('--batch <n>', 'windows per forward pass', intArg(1, 65536), 8)
    .option('--max-windows <n>', 'score at most n windows, spread over the text (0: every window)', intArg(0, 1e9), 0)
    .option(
      '--tdp <watts>',
      'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)',
      floatArg(0.001, 1e5),
    )
    .action((o) => {
      evalLmCommand(o);
    });
}

/** Register `frugal eval lm`, adding to the program's `eval` command if it has one. */
export function registerEvalLm(program: AnyCommand): void {
  const existing = program.commands.find((c) => c.name() === 'eval') as AnyCommand | undefined;
  addEvalLm(existing ?? program.command('eval').description('evaluations: `eval lm` scores a language model on a text'));
}
