import type { KernelKind } from '../kernels/backend.js';
import { Argument, Option } from '@commander-js/extra-typings';
import type { AnyCommand } from './options.js';
import { engineOptions } from './options.js';
import { openOutputDir } from '../io/outputs.js';
import { intArg } from './options.js';
import { createProgress } from './progress.js';
import { repro } from '../tasks/repro.js';
import { REPRO_ARCHS, recipeFor } from '../tasks/recipes.js';
import type { ReproArch } from '../tasks/recipes.js';
import { HANOI_METHODS, TASK_NAMES } from '../tasks/registry.js';
import type { HanoiMethod, TaskName } from '../tasks/registry.js';
import { formatJoules } from '../energy/index.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** `frugal repro <task>`: train one model of the synthetic study and save its checkpoint directory. */
export function registerRepro(program: AnyCommand): void {
  engineOptions(
    program
      .command('repro')
      .description('train one model of the synthetic study (Mamba paper tasks, Tower of Hanoi) and save it for logits, generate and eval'),
  )
    .addArgument(new Argument('<task>', 'induction, selective-copy or hanoi').choices(TASK_NAMES))
    .addOption(
      new Option(
        '--arch <name>',
        'mamba, the transformer baseline of the same parameter count, or a Mamba-2 / Mamba-3 block of the same shape',
      )
        .choices(REPRO_ARCHS)
        .default('mamba'),
    )
    .addOption(
      new Option(
        '--method <name>',
        'hanoi: neuro-symbolic (the model reads the scene, a planner moves; default) or end-to-end (the model emits the moves)',
      ).choices(HANOI_METHODS),
    )
    .requiredOption('--out <dir>', 'checkpoint directory (config.json, model.safetensors, tokenizer.json, frugal_task.json)')
    .option('--steps <n>', "optimiser steps (default: the study's recipe)", intArg(1, 1e9))
    .option('--seed <n>', 'seed of the initialisation (the data use seed + 1)', intArg(0, 2 ** 32), 1)
    .option('--quick', "the test suite's small step count")
    .option('--force', 'replace the checkpoint already in --out')
    .action((task: TaskName, o: Record<string, unknown>) => {
      // checked and locked before any work: never replaces a folder frugal did not write
      const outDir = openOutputDir(o.out as string, { flag: '--out', force: o.force === true }, (m) => err(`warning: ${m}`));
      try {
        const method = (o.method as HanoiMethod | undefined) ?? null,
          arch = o.arch as ReproArch;
        const steps = o.steps as number | undefined,
          quick = o.quick === true;
        const bar = createProgress(recipeFor(task, arch, method, { steps, quick }).train.steps, `repro ${task}`);
        const t0 = performance.now();
        const f = repro({
          task,
          arch,
          method,
          out: o.out as string,
          steps,
          quick,
          seed: o.seed as number,
          threads: o.threads as number,
          kernels: o.kernels as KernelKind,
          onStep: (s, _, loss, tokens) =>
            bar.update(s, { loss: loss.toFixed(4), tps: (tokens / ((performance.now() - t0) / 1000)).toFixed(0) }),
        });
        bar.stop();
        const last = f.curve.at(-1);
        err(
          `repro: ${task} ${f.arch}${f.method ? ` ${f.method}` : ''}, ${f.params.toLocaleString('en-US')} parameters, ${f.train.steps} steps, ` +
            `${f.train.tokens} tokens in ${f.train.seconds.toFixed(1)} s, ${formatJoules(f.train.joules)} J (${f.train.energy_kind}); ` +
            `accuracy on the last training batches ${last ? (100 * last.accuracy).toFixed(1) : '-'}%; saved ${String(o.out)}`,
        );
      } finally {
        outDir.release();
      }
    });
}
