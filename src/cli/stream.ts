import { createReadStream, existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { Engine } from '../ops/index.js';
import { StoppedError, inputError } from '../io/errors.js';
import { STREAM_ARCHS, loadStreamModel } from '../models/heads.js';
import type { StreamArch, StreamTask } from '../models/heads.js';
import { readCsvFile } from '../streams/data.js';
import { fitStreamModel } from '../streams/fit.js';
import type { TickFormat } from '../streams/parse.js';
import { OVERFLOW_POLICIES } from '../streams/queue.js';
import { runStream } from '../streams/loop.js';
import type { OverflowPolicy } from '../streams/queue.js';
import { StreamRunner } from '../streams/runtime.js';
import { debugOption, floatArg, intArg } from './options.js';
import type { AnyCommand } from './options.js';
import { writeOut } from './stdout.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** `frugal train --task …`: the options commander gave (only those given, plus out, threads, force, horizon). */
export interface StreamTrainFlags {
  task: string;
  data?: string;
  target?: string;
  features?: string;
  horizon: number;
  arch?: string;
  dModel?: number;
  layers?: number;
  heads?: number;
  seqLen?: number;
  batch?: number;
  steps?: number;
  lr?: number;
  seed?: number;
  out: string;
  threads: number;
  force: boolean;
}

/** Streaming models are small: these replace the text defaults of `frugal train` when --task is given. */
export const STREAM_TRAIN_DEFAULTS = { dModel: 32, layers: 2, seqLen: 64, batch: 8, steps: 200, lr: 3e-3 } as const;

export function streamTrainCommand(f: StreamTrainFlags): void {
  if (f.task !== 'forecast' && f.task !== 'classify') throw inputError(`--task '${f.task}' is not a task: choose forecast or classify`);
  if (f.data === undefined || f.data === 'sotu')
    throw inputError('--task needs --data FILE.csv (a header row with t, time or date, then numeric columns)');
  if (f.target === undefined) throw inputError('--task needs --target COLUMN (the column to forecast, or the class label)');
  const arch = f.arch ?? 'mamba';
  if (!(STREAM_ARCHS as readonly string[]).includes(arch))
    throw inputError(`--task takes --arch ${STREAM_ARCHS.join(' or ')}, not ${arch}`);
  const D = STREAM_TRAIN_DEFAULTS;
  const steps = f.steps ?? D.steps;
  let last = 0;
  const r = fitStreamModel({
    data: readCsvFile(f.data),
    where: f.data,
    task: f.task as StreamTask,
    target: f.target,
    features: f.features?.split(',').map((s) => s.trim()),
    horizon: f.horizon,
    arch: arch as StreamArch,
    dModel: f.dModel ?? D.dModel,
    layers: f.layers ?? D.layers,
    heads: f.heads,
    window: f.seqLen ?? D.seqLen,
    batch: f.batch ?? D.batch,
    steps,
    lr: f.lr ?? D.lr,
    seed: f.seed ?? 1,
    threads: f.threads,
    out: f.out,
    force: f.force,
    onStep: (s, loss) => {
      if (s === steps || performance.now() - last > 2000) {
        last = performance.now();
        err(`train ${f.task}: step ${s}/${steps}, loss ${loss.toFixed(4)}`);
      }
    },
  });
  const tail = r.train.losses.slice(-10);
  err(
    `train: ${r.model.parameterCount.toLocaleString('en-US')} parameters (${arch}, ${f.task}), ${r.train.steps} steps in ${r.train.seconds.toFixed(1)} s, ` +
      `final loss ${(tail.reduce((a, b) => a + b, 0) / tail.length).toFixed(4)} nats; features ${r.spec.features.join(',')}; ` +
      `trained on the first ${r.spec.rows.train} rows (${r.spec.rows.held_out} held out); saved ${f.out}`,
  );
}

export const BAD_LINE_POLICIES = ['skip', 'fatal'] as const;

interface StreamFlags {
  model: string;
  input: string;
  format?: string;
  state?: string;
  saveEvery: number;
  learn?: boolean;
  lr: number;
  labelDelay: number;
  queue: number;
  overflow: string;
  onBadLine: string;
  queueDepth?: boolean;
}

/** `frugal stream`: one JSON line per tick on stdout, as ticks arrive. */
export function registerStream(program: AnyCommand): void {
  debugOption(
    program
      .command('stream')
      .description('run a streaming model over ticks as they arrive (CSV or JSON Lines); one JSON line per tick on stdout'),
  )
    .requiredOption('--model <dir>', "a streaming model folder (from 'frugal train --task …')")
    .option('--input <file|->', 'ticks to read: a file, or - for stdin', '-')
    .option('--format <csv|jsonl>', 'input format (default: jsonl for a .jsonl file, else csv)')
    .option('--state <file>', 'stream state: restored when the file exists, written every --save-every ticks, at the end and on SIGTERM')
    .option('--save-every <n>', 'write --state every n ticks (0: only at the end and on a signal)', intArg(0, 1e12), 1000)
    .option('--learn', 'prequential: after each label arrives, one SGD step of the head (the backbone stays frozen)')
    .option('--lr <x>', 'SGD learning rate of the head with --learn', floatArg(0, 10), 1e-3)
    .option(
      '--label-delay <n>',
      'classify: ticks before a tick’s label is known (forecast labels come --horizon ticks later)',
      intArg(0, 1e9),
      0,
    )
    .option('--queue <n>', 'ticks waiting between the input and the model, at most', intArg(1, 1e9), 1024)
    .option('--overflow <policy>', `when the queue is full: ${OVERFLOW_POLICIES.join(', ')}`, 'block')
    .option('--on-bad-line <policy>', 'a malformed line: skip (reported on stderr) or fatal (exit 2)', 'skip')
    .option('--queue-depth', 'add the queue depth when each tick was taken ("queue") to its line')
    .action(async (o: StreamFlags) => {
      await streamCommand(o);
    });
}

function formatOf(o: StreamFlags): TickFormat {
  const f = o.format ?? (/\.jsonl$/i.test(o.input) ? 'jsonl' : 'csv');
  if (f !== 'csv' && f !== 'jsonl') throw inputError(`--format '${f}' is not a format: choose csv or jsonl`);
  return f;
}

async function streamCommand(o: StreamFlags): Promise<void> {
  if (!(OVERFLOW_POLICIES as readonly string[]).includes(o.overflow))
    throw inputError(`--overflow '${o.overflow}' is not a policy: choose ${OVERFLOW_POLICIES.join(', ')}`);
  if (!(BAD_LINE_POLICIES as readonly string[]).includes(o.onBadLine))
    throw inputError(`--on-bad-line '${o.onBadLine}': choose skip or fatal`);
  const format = formatOf(o);
  if (o.input !== '-' && !existsSync(o.input)) throw inputError(`--input ${o.input} does not exist`);
  const model = loadStreamModel(new Engine(), o.model);
  const runner = new StreamRunner(model, { learn: o.learn === true, lr: o.lr, labelDelay: o.labelDelay });
  const resumed = o.state !== undefined && existsSync(o.state);
  if (resumed) runner.restore(o.state as string);
  const input: Readable = o.input === '-' ? process.stdin : createReadStream(o.input);
  const r = await runStream(runner, input, {
    format,
    queue: o.queue,
    overflow: o.overflow as OverflowPolicy,
    fatalBadLines: o.onBadLine === 'fatal',
    queueDepth: o.queueDepth === true,
    resumed,
    save: o.state === undefined ? null : () => runner.save(o.state as string),
    saveEvery: o.saveEvery,
    where: o.input === '-' ? 'stdin' : o.input,
    emit: (line) => writeOut(line + '\n'),
    log: err,
  });
  const q = r.queue;
  err(
    `stream: ${r.ticks} ticks (${runner.ticks} in all) in ${r.seconds.toFixed(2)} s, ${((1e6 * r.seconds) / Math.max(1, r.ticks)).toFixed(0)} µs/tick; ` +
      `skipped ${r.duplicates} duplicate, ${r.outOfOrder} out-of-order${r.replayed ? `, ${r.replayed} already processed` : ''}, ${r.badLines} malformed; ${r.gaps} gaps; ` +
      `queue max ${q.maxDepth}/${o.queue} (${o.overflow}: ${q.dropped} dropped, ${q.coalesced} coalesced)` +
      (runner.scored ? `; ${runner.scored} scored, mean loss ${(runner.lossSum / runner.scored).toFixed(4)} nats` : '') +
      (o.state ? `; state ${o.state}` : ''),
  );
  if (r.signal)
    throw new StoppedError(
      `stopped by ${r.signal} after tick ${runner.ticks - 1}; the state is in ${o.state ?? '(no --state given)'}`,
      r.signal,
    );
}
