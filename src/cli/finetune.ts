import type { KernelKind } from '../kernels/backend.js';
// commander's plain types: the extra typings' inferred type of this many options takes the type
// checker minutes; the actions read their values through explicit interfaces (RunFlags, …)
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { readConfigJson } from '../models/checkpoint.js';
import { LORA_TARGETS } from '../models/lora.js';
import { readableDir } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import type { TrainSettings } from '../api/train.js';
import { trainCommand } from './train.js';
import { DEFAULT_THREADS, KERNELS_HELP, SEED_HELP, floatArg, intArg, kernelsArg, seedArg } from './options.js';
import type { AnyCommand } from './options.js';

const err = (s: string) => process.stderr.write(s + '\n');

function targetList(v: string): string[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0 || new Set(names).size !== names.length)
    throw new InvalidArgumentError(`expected distinct module names like in_proj,out_proj, got '${v}'`);
  return names;
}

/** This command's defaults of the schedule flags (they differ from `frugal train`'s). */
export interface ScheduleDefaults {
  steps: number;
  warmup: number;
  weightDecay: number;
  lrHelp: string;
}

/**
 * The run flags `finetune` and `distill` share with `frugal train`: batch and schedule, evaluation,
 * saving, --resume, --seed, --force and the energy flags. --lr has no commander default: each
 * command picks its own by method.
 */
export function runOptions(c: Command, d: ScheduleDefaults): Command {
  return c
    .option('--seq-len <n>', 'training sequence length L (tokens)', intArg(1, 1 << 20), 128)
    .option('--batch <n>', 'sequences per step B', intArg(1, 65536), 8)
    .option('--steps <n>', 'total optimiser steps', intArg(1, 1e9), d.steps)
    .option('--lr <x>', `peak learning rate (default: ${d.lrHelp})`, floatArg(0, 10))
    .option('--min-lr <x>', 'final learning rate of the cosine decay (default lr/10)', floatArg(0, 10))
    .option('--warmup <n>', 'linear warm-up steps', intArg(0, 1e9), d.warmup)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', floatArg(0, 10), d.weightDecay)
    .option('--clip <x>', 'gradient clipping by global norm (0: off)', floatArg(0, 1e9), 1.0)
    .option('--seed <n>', `random seed (new weights, data order, dropout), ${SEED_HELP}`, seedArg, 1)
    .option('--eval-every <n>', 'validation every n steps (0: only at the end)', intArg(0, 1e9), 0)
    .option('--eval-windows <n>', 'validation windows of seq-len tokens', intArg(1, 1e9), 64)
    .option('--save-every <n>', 'checkpoint every n steps (0: only at the end)', intArg(0, 1e9), 100)
    .option('--val-fraction <x>', 'tail fraction of the data held out for validation', floatArg(0.0001, 0.5), 0.05)
    .option('--resume', 'continue the run saved in --out with every option it was started with')
    .option('--force', 'replace an existing run in --out; with --resume, accept options that differ from the saved run')
    .option('--energy-log <file>', 'append a CodeCarbon-style CSV row (kWh, W, kg CO2) with joules, J/token, kind and method')
    .option(
      '--tdp <watts>',
      'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)',
      floatArg(0.001, 1e5),
    );
}

/** --kernels, --threads and --debug (as options.ts's engineOptions), on a plain commander command. */
export function engineFlags(c: Command): Command {
  return c
    .addOption(new Option('--kernels <kind>', KERNELS_HELP).default('wasm').argParser(kernelsArg))
    .addOption(new Option('--threads <n>', 'worker threads').default(DEFAULT_THREADS).argParser(intArg(1, 256)))
    .option('--debug', 'print stack traces on errors');
}

/** The architecture (config.json's model_type) of the model folder `dir`. */
export function modelType(dir: string): string {
  const json = readConfigJson(readableDir(dir).dir) as Record<string, unknown> | null;
  return typeof json?.model_type === 'string' ? json.model_type : 'mamba';
}

/** The values of the shared run flags (what runOptions adds, with engineOptions'). */
export interface RunFlags {
  out: string;
  threads: number;
  kernels: KernelKind;
  steps: number;
  warmup: number;
  weightDecay: number;
  lr?: number;
  energyLog?: string;
  tdp?: number;
  [flag: string]: unknown;
}

/** The run settings of the shared flags: the flags given, over this command's defaults (so --resume restores the rest). */
export function runSettings(
  o: RunFlags,
  c: { getOptionValueSource(key: string): string | undefined },
  defaults: Partial<TrainSettings>,
): TrainSettings {
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o))
    if (c.getOptionValueSource(k) === 'cli' && !['debug', 'energyLog', 'tdp'].includes(k)) given[k] = v;
  return { ...defaults, ...(given as Partial<TrainSettings>), out: o.out, threads: o.threads };
}

interface FinetuneFlags extends RunFlags {
  model: string;
  data: string;
  method: 'lora' | 'full';
  rank: number;
  alpha: number;
  dropout: number;
  targets?: string[];
}

/** `frugal finetune`: the run's settings from its flags, then the trainer; a LoRA run ends with the adapter's size. */
async function finetuneCommand(o: FinetuneFlags, c: { getOptionValueSource(key: string): string | undefined }): Promise<void> {
  const lora = o.method === 'lora';
  const loraFlags = ['rank', 'alpha', 'dropout', 'targets'].filter((k) => c.getOptionValueSource(k) === 'cli');
  if (!lora && loraFlags.length > 0) throw inputError(`--${loraFlags[0]} applies to --method lora only`);
  const targets = o.targets ?? [...(LORA_TARGETS[modelType(o.model)] ?? [])];
  const { model: _m, method: _x, rank: _r, alpha: _a, dropout: _d, targets: _t, ...rest } = o;
  const settings = runSettings(rest, c, { steps: o.steps, warmup: o.warmup, weightDecay: o.weightDecay, lr: lora ? 2e-3 : 3e-4 });
  const lo = lora ? { lora: { r: o.rank, alpha: o.alpha, dropout: o.dropout, targets } } : {};
  const r = await trainCommand({ ...settings, data: o.data, init: o.model, method: o.method, ...lo }, o);
  if (!lora) return;
  err(
    `finetune: a LoRA adapter of ${r.trainable.toLocaleString('en-US')} parameters (${((100 * r.trainable) / r.parameters).toFixed(2)}% ` +
      `of the base's ${r.parameters.toLocaleString('en-US')}), saved in ${o.out}`,
  );
}

export function registerFinetune(program: AnyCommand): void {
  const cmd = engineFlags((program as unknown as Command).command('finetune'))
    .description('refine a model on your text: a LoRA adapter on the frozen base (PEFT layout), or every weight')
    .requiredOption('--model <dir>', 'base model folder (f32; q8/q4 bases take LoRA)')
    .requiredOption('--data <file|sotu>', "text to refine on: a file, or 'sotu'")
    .requiredOption('--out <dir>', 'output folder: the adapter (lora) or a whole checkpoint (full), plus optimiser state for --resume')
    .addOption(
      new Option('--method <m>', 'lora: train a low-rank adapter; full: train every weight (as train --init)')
        .choices(['lora', 'full'])
        .default('lora'),
    )
    .option('--rank <r>', 'LoRA rank r', intArg(1, 65536), 8)
    .option('--alpha <a>', 'LoRA alpha: the update is scaled by alpha / r', floatArg(0, 1e6), 16)
    .option('--dropout <p>', "LoRA dropout on the adapter's input while training", floatArg(0, 0.99), 0)
    .option(
      '--targets <list>',
      `modules to adapt (Mamba: ${LORA_TARGETS.mamba.join(',')}; Mamba-2, Mamba-3: ${LORA_TARGETS.mamba2.join(',')}; transformer: ${LORA_TARGETS.llama.join(',')}; hybrids: those of their layers; default: all of them)`,
      targetList,
    );
  runOptions(cmd, { steps: 200, warmup: 10, weightDecay: 0, lrHelp: '2e-3 for lora, 3e-4 for full' }).action(
    (o: FinetuneFlags, c: Command) => finetuneCommand(o, c),
  );
}
