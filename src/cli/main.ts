import { Command, CommanderError } from '@commander-js/extra-typings';
import { FrugalError, StoppedError } from '../io/errors.js';
import { PipeClosed, writeOut } from './stdout.js';
import { registerTrain } from './train.js';
import { registerGenerate } from './generate.js';
import { registerConvert } from './convert.js';
import { registerBench } from './bench.js';
import { registerQuantize } from './quantize.js';
import { registerDemo } from './demo.js';
import { registerRepro } from './repro.js';
import { registerEval } from './eval.js';
import { registerReport } from './report.js';
import { registerWeb } from './web.js';
import { registerTokenizer } from './tokenizer.js';
import { registerFinetune } from './finetune.js';
import { registerMerge } from './merge.js';
import { registerDistill } from './distill.js';
import { registerEvalLm } from './eval-lm.js';
import { registerReportRefine } from './report-refine.js';
import { registerStream } from './stream.js';
import { registerReportStreams } from './report-streams.js';
import { registerReportGenomics } from './report-genome.js';
import { registerServe } from './serve.js';

/**
 * `frugal` command line. stdout carries only the product (generated text, JSON); progress, logs,
 * warnings and the closing summary go to stderr (--help and --version are the product: stdout).
 * Exit codes: 0 ok (also when stdout's reader stops reading), 1 runtime failure, 2 bad input,
 * 128 + n when stopped by signal n (Ctrl-C: 130). Each command registers itself from its own
 * module, built from the option groups in options.ts, over the library API in src/api/.
 */
export function buildProgram(): Command {
  const program = new Command('frugal')
    .description('Efficient sequence models (Mamba) for the edge: train, fine-tune and run on CPU')
    .version('0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeOut, writeErr: (s) => process.stderr.write(s) });
  registerTrain(program);
  registerGenerate(program); // generate and logits
  registerConvert(program);
  registerBench(program); // bench and bench scaling
  registerQuantize(program);
  registerDemo(program);
  registerRepro(program);
  registerEval(program);
  registerReport(program);
  registerWeb(program);
  registerTokenizer(program);
  registerFinetune(program);
  registerMerge(program);
  registerDistill(program);
  registerEvalLm(program); // adds `lm` to an `eval` command
  registerReportRefine(program); // adds `refine` to a `report` command
  registerStream(program);
  registerReportStreams(program); // adds `streams` to a `report` command
  registerReportGenomics(program); // adds `genomics` to it
  registerServe(program);
  return program;
}

/** Write errors on stdout/stderr reported as events (by process.stdout itself, commander, progress bars). */
function quietPipes(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.stderr.write(`frugal: cannot write the output to stdout (${e.code ?? e.message})\n`);
    process.exit(e.code === 'EPIPE' ? 0 : 1);
  });
  process.stderr.on('error', () => {
    /* the log reader has gone: keep working for stdout's */
  });
}

export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const program = buildProgram();
  quietPipes();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, --version and `help CMD` exit 0; usage errors (unknown flag, bad number, no command,
      // `help unknown`) exit 2 with commander's message
      process.exit(e.exitCode === 0 ? 0 : 2);
    }
    if (e instanceof PipeClosed) process.exit(0); // the reader chose to stop: not a failure
    if (e instanceof FrugalError || e instanceof StoppedError) {
      process.stderr.write(`frugal: ${e.message}\n`);
      if (debug) process.stderr.write(`${e.stack}\n`);
      process.exit(e.exitCode);
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`frugal: ${msg}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  }
}
