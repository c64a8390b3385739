import type { KernelKind } from '../kernels/backend.js';
import { InvalidArgumentError } from '@commander-js/extra-typings';
import type { AnyCommand } from './options.js';
import { engineOptions } from './options.js';
import { intArg } from './options.js';
import { Engine } from '../ops/index.js';
import { loadModel } from '../models/checkpoint.js';
import { inputError } from '../io/errors.js';
import { formatJoules } from '../energy/index.js';
import { readTaskFile } from '../tasks/repro.js';
import { TASKS, TASK_NAMES } from '../tasks/registry.js';
import type { TaskName } from '../tasks/registry.js';
import { evaluateModel } from '../report/evaluate.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** `--lengths 64,256,4096`: comma-separated whole numbers. */
export function lengthsArg(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p)))
    throw new InvalidArgumentError(`expected comma-separated whole numbers like 64,256,4096, got '${v}'`);
  return parts.map(Number);
}

/** Default lengths: induction 2^6 .. 2^12, selective copying 1024 and 4096, Hanoi 3 and 4 disks. */
const DEFAULT_LENGTHS: Record<TaskName, number[]> = {
  induction: [64, 128, 256, 512, 1024, 2048, 4096],
  'selective-copy': [1024, 4096],
  hanoi: [3, 4],
};

/**
 * The `eval` command group: one subcommand per task (and later `eval lm`, added the same way by
 * its own module through evalGroup). Each prints a JSON array to stdout.
 */
export function evalGroup(program: AnyCommand): AnyCommand {
  return (
    program.commands.find((c) => c.name() === 'eval') ??
    program.command('eval').description('score a model: the synthetic tasks (accuracy with a 95% interval, joules per sequence, tokens/s)')
  );
}

export function registerEval(program: AnyCommand): void {
  const group = evalGroup(program);
  for (const task of TASK_NAMES) {
    const unit = TASKS[task].lengthUnit;
    engineOptions(
      group
        .command(task)
        .description(
          `score a 'frugal repro ${task}' model; prints [{"length","n","accuracy","ci95","joules_per_sequence","energy_kind","tok_s"}] on stdout`,
        ),
    )
      .requiredOption('--model <dir>', `model directory written by 'frugal repro ${task}'`)
      .option(
        '--lengths <list>',
        `${unit === 'disks' ? 'numbers of disks' : 'sequence lengths'}, comma-separated (default ${DEFAULT_LENGTHS[task].join(',')})`,
        lengthsArg,
      )
      .option('--n <n>', `${task === 'hanoi' ? 'episodes' : 'sequences'} per length`, intArg(1, 1e7), 256)
      .option('--seed <n>', 'seed of the evaluation sequences', intArg(0, 2 ** 32), 1234)
      .action((o: Record<string, unknown>) =>
        evalCommand(task, {
          model: o.model as string,
          lengths: (o.lengths as number[] | undefined) ?? DEFAULT_LENGTHS[task],
          n: o.n as number,
          seed: o.seed as number,
          threads: o.threads as number,
          kernels: o.kernels as KernelKind,
        }),
      );
  }
}

interface EvalCliOptions {
  model: string;
  lengths: number[];
  n: number;
  seed: number;
  threads: number;
  kernels: KernelKind;
}

function evalCommand(task: TaskName, o: EvalCliOptions): void {
  const spec = TASKS[task],
    meta = readTaskFile(o.model);
  if (meta.task !== task)
    throw inputError(`${o.model} was trained for ${meta.task}, not ${task}: run 'frugal eval ${meta.task} --model ${o.model}'`);
  const bad = o.lengths.find((L) => L < spec.minLength || L > spec.maxLength);
  if (bad !== undefined)
    throw inputError(`--lengths: ${bad} is outside ${spec.minLength}..${spec.maxLength} ${spec.lengthUnit} for ${task}`);
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  try {
    const { model, warnings } = loadModel(e, o.model);
    for (const w of warnings) err(`warning: ${w}`);
    const rows = evaluateModel(model, { task, method: meta.method, lengths: o.lengths, n: o.n, seed: o.seed });
    process.stdout.write(JSON.stringify(rows) + '\n');
    for (const r of rows) {
      err(
        `eval ${task}: ${r.length} ${spec.lengthUnit}, n ${r.n}: accuracy ${(100 * (r.accuracy as number)).toFixed(2)}% ` +
          `[${(r.ci95 as number[]).map((x) => (100 * x).toFixed(2)).join(', ')}], ${formatJoules(r.joules_per_sequence as number)} J/sequence (${r.energy_kind}), ${(r.tok_s as number).toFixed(0)} tok/s`,
      );
    }
  } finally {
    e.dispose();
  }
}
