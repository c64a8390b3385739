import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { readConfigJson } from '../models/checkpoint.js';
import { LORA_TARGETS } from '../models/lora.js';
import { readableDir } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import type { TrainOptions } from '../train/trainer.js';
import { SEED_HELP, floatArg, intArg, seedArg } from './args.js';
import { trainCommand } from './commands.js';

const err = (s: string) => process.stderr.write(s + '\n');

function targetList(v: string): string[] {
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0 || new Set(names).size !== names.length) throw new InvalidArgumentError(`expected distinct module names like in_proj,out_proj, got '${v}'`);
  return names;
}

/**
 * The training flags `frugal finetune` and `frugal distill` share with `frugal train` (steps,
 * schedule, batch, evaluation, saving, resume, seed, energy log), with this command's defaults.
 */
export function addTrainerFlags(c: Command, d: { steps: number; lr: string; warmup: number; weightDecay: number }): Command {
  return c
    .option('--seq-len <n>', 'training sequence length L (tokens)', intArg(1, 1 << 20), 128)
    .option('--batch <n>', 'sequences per step B', intArg(1, 65536), 8)
    .option('--steps <n>', 'total optimiser steps', intArg(1, 1e9), d.steps)
    .option('--lr <x>', `peak learning rate (default: ${d.lr})`, floatArg(0, 10))
    .option('--min-lr <x>', 'final learning rate of the cosine decay (default lr/10)', floatArg(0, 10))
    .option('--warmup <n>', 'linear warm-up steps', intArg(0, 1e9), d.warmup)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', floatArg(0, 10), d.weightDecay)
    .option('--clip <x>', 'gradient clipping by global norm (0: off)', floatArg(0, 1e9), 1.0)
    .option('--seed <n>', `random seed (init, data order, dropout), ${SEED_HELP}`, seedArg, 1)
    .option('--eval-every <n>', 'validation every n steps (0: only at the end)', intArg(0, 1e9), 0)
    .option('--eval-windows <n>', 'validation windows of seq-len tokens', intArg(1, 1e9), 64)
    .option('--save-every <n>', 'checkpoint every n steps (0: only at the end)', intArg(0, 1e9), 100)
    .option('--val-fraction <x>', 'tail fraction of the data held out for validation', floatArg(0.0001, 0.5), 0.05)
    .option('--resume', 'continue the run saved in --out with every option it was started with')
    .option('--force', 'replace an existing run in --out; with --resume, accept options that differ from the saved run')
    .option('--energy-log <file>', 'append a CodeCarbon-style CSV row (kWh, W, kg CO2) with joules, J/token, kind and method')
    .option('--tdp <watts>', 'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)', floatArg(0.001, 1e5));
}

/** TrainOptions from the shared trainer flags (`lr` when --lr was not given). */
export function trainerOptions(o: Record<string, unknown>, cmd: Command, lr: number): Omit<TrainOptions, 'arch' | 'data' | 'out' | 'init'> {
  const peak = (o.lr as number | undefined) ?? lr;
  return {
    explicit: Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli'),
    dModel: 0, layers: 0, dState: 0, seqLen: o.seqLen as number, batch: o.batch as number, steps: o.steps as number,
    lr: peak, warmup: o.warmup as number, minLr: (o.minLr as number | undefined) ?? peak / 10,
    weightDecay: o.weightDecay as number, clip: o.clip as number, seed: o.seed as number,
    evalEvery: o.evalEvery as number, evalWindows: o.evalWindows as number, saveEvery: o.saveEvery as number,
    valFraction: o.valFraction as number, kernels: o.kernels as 'wasm' | 'ref', threads: o.threads as number,
    resume: o.resume === true, force: o.force === true,
  };
}

/** The architecture (config.json's model_type) of the model folder `dir`. */
export function modelType(dir: string): string {
  const json = readConfigJson(readableDir(dir).dir) as Record<string, unknown> | null;
  return typeof json?.model_type === 'string' ? json.model_type : 'mamba';
}

/** Register `frugal finetune` (with the common --kernels/--threads options). */
export function registerFinetune(program: Command, common: (c: Command) => Command): void {
  const cmd = common(program.command('finetune').description('refine a model on your text: a LoRA adapter on the frozen base (PEFT layout), or every weight'))
    .requiredOption('--model <dir>', 'base model folder (f32; q8/q4 bases take LoRA)')
    .requiredOption('--data <file|sotu>', "text to refine on: a file, or 'sotu'")
    .requiredOption('--out <dir>', 'output folder: the adapter (lora) or the whole checkpoint (full), plus optimiser state for --resume')
    .addOption(new Option('--method <m>', 'lora: train a low-rank adapter; full: train every weight (as train --init)').choices(['lora', 'full']).default('lora'))
    .option('--rank <r>', 'LoRA rank r', intArg(1, 65536), 8)
    .option('--alpha <a>', 'LoRA alpha: the update is scaled by alpha / r', floatArg(0, 1e6), 16)
    .option('--dropout <p>', "LoRA dropout on the adapter's input while training", floatArg(0, 0.99), 0)
    .option('--targets <list>', `modules to adapt (Mamba: ${LORA_TARGETS.mamba.join(',')}; transformer: ${LORA_TARGETS.llama.join(',')}; default: all of them)`, targetList);
  addTrainerFlags(cmd, { steps: 200, lr: '2e-3 for lora, 3e-4 for full', warmup: 10, weightDecay: 0 })
    .action(async (o: Record<string, unknown>, c: Command) => {
      const lora = o.method === 'lora';
      const loraFlags = ['rank', 'alpha', 'dropout', 'targets'].filter((k) => c.getOptionValueSource(k) === 'cli');
      if (!lora && loraFlags.length > 0) throw inputError(`--${loraFlags[0]} applies to --method lora only`);
      const base = trainerOptions(o, c, lora ? 2e-3 : 3e-4);
      const type = o.resume === true ? null : modelType(o.model as string);
      const targets = (o.targets as string[] | undefined) ?? (type ? [...(LORA_TARGETS[type] ?? [])] : []);
      const opts: TrainOptions = {
        ...base, arch: 'mamba', data: o.data as string, out: o.out as string, init: o.model as string, method: lora ? 'lora' : 'full',
        ...(lora ? { lora: { r: o.rank as number, alpha: o.alpha as number, dropout: o.dropout as number, targets } } : {}),
        explicit: [...(base.explicit ?? []), 'init', 'method', ...(loraFlags.length > 0 ? ['lora'] : [])],
      };
      const { summary } = await trainCommand(opts, { energyLog: o.energyLog as string | undefined, tdp: o.tdp as number | undefined });
      if (lora) err(`finetune: LoRA adapter of ${summary.trainable.toLocaleString('en-US')} parameters (${(100 * summary.trainable / summary.parameters).toFixed(2)}% of the base's ${summary.parameters.toLocaleString('en-US')}), saved in ${o.out as string}`);
    });
}
