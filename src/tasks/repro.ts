import type { KernelKind } from '../kernels/backend.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../ops/index.js';
import { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { writeDirAtomic } from '../io/atomic.js';
import { modelFiles } from '../models/checkpoint.js';
import type { TrainableModel } from '../models/types.js';
import { trainScored } from '../train/scored.js';
import type { CurvePoint, ScoredTrainResult } from '../train/scored.js';
import type { EnergyKind } from '../energy/index.js';
import { buildModel, lengthAt, recipeFor } from './recipes.js';
import type { ReproArch, TaskRecipe } from './recipes.js';
import { HANOI_METHODS, TASKS, TASK_NAMES, taskTokenizer } from './registry.js';
import type { HanoiMethod, TaskName } from './registry.js';

/**
 * `frugal repro`: train one model of the synthetic study and save it as a Hugging Face-style
 * directory (config.json, model.safetensors) that `frugal logits` and `frugal generate` load, plus
 * tokenizer.json (the task's token names) and frugal_task.json (task, recipe, training record and
 * learning curve), which `frugal eval` reads.
 */
export const TASK_FILE = 'frugal_task.json';

export interface TrainRecord {
  steps: number;
  tokens: number;
  seconds: number;
  joules: number;
  energy_kind: EnergyKind;
}

export interface TaskFile {
  format: 'frugal-task/1';
  task: TaskName;
  arch: ReproArch;
  method: HanoiMethod | null;
  params: number;
  seed: number;
  recipe: TaskRecipe;
  train: TrainRecord & { energy_method: string; stopped_early: string | null };
  curve: CurvePoint[];
}

export interface ReproOptions {
  task: TaskName;
  arch: ReproArch;
  method: HanoiMethod | null;
  out: string;
  steps?: number;
  quick?: boolean;
  seed: number;
  threads: number;
  kernels?: KernelKind;
  /** performance.now() time after which training stops early (the report's budget). */
  deadline?: number;
  onStep?: (step: number, steps: number, loss: number, tokens: number) => void;
}

/** What a report records of a scored training run. */
export function trainRecord(r: ScoredTrainResult): TaskFile['train'] {
  return {
    steps: r.steps,
    tokens: r.tokens,
    seconds: r.seconds,
    joules: r.energy.joules,
    energy_kind: r.energy.kind,
    energy_method: r.energy.method,
    stopped_early: r.stoppedEarly,
  };
}

/** Train and save; returns what frugal_task.json records. */
export function repro(o: ReproOptions): TaskFile {
  const recipe = recipeFor(o.task, o.arch, o.method, { steps: o.steps, quick: o.quick });
  const e = new Engine({ kernels: o.kernels ?? 'wasm', threads: o.threads });
  try {
    const model = buildModel(e, recipe, Rng.fromSeed(o.seed));
    const data = Rng.fromSeed(o.seed + 1),
      t = recipe.train,
      spec = TASKS[o.task];
    let len = 0; // a curriculum only moves to longer lengths, even if the budget's plan grows back
    const size = (step: number, planned: number) => {
      if (t.disks !== null) return t.disks;
      len = Math.max(len, lengthAt(t, step, planned));
      return len;
    };
    const r = trainScored(model, t, (step, planned) => spec.batch(data, t.batch, size(step, planned), recipe.method), {
      deadline: o.deadline,
      among: spec.among,
      onStep: (s, loss, tokens) => o.onStep?.(s, t.steps, loss, tokens),
    });
    const file: TaskFile = {
      format: 'frugal-task/1',
      task: o.task,
      arch: o.arch,
      method: recipe.method,
      params: model.parameterCount,
      seed: o.seed,
      recipe,
      train: trainRecord(r),
      curve: r.curve,
    };
    saveTaskModel(o.out, model, file);
    return file;
  } finally {
    e.dispose();
  }
}

/** Write the checkpoint directory atomically (a kill never leaves half a model). */
export function saveTaskModel(dir: string, model: TrainableModel, file: TaskFile): void {
  writeDirAtomic(dir, {
    ...modelFiles(model),
    'tokenizer.json': taskTokenizer(file.task),
    [TASK_FILE]: JSON.stringify(file, null, 1) + '\n',
  });
}

/** frugal_task.json of a model directory, checked enough to trust its task and method. */
export function readTaskFile(dir: string): TaskFile {
  const p = join(dir, TASK_FILE);
  if (!existsSync(p))
    throw inputError(
      `${dir} has no ${TASK_FILE}: it was not made by 'frugal repro' (train one with 'frugal repro <task> --arch mamba --out ${dir}')`,
    );
  let f: TaskFile;
  try {
    f = JSON.parse(readFileSync(p, 'utf8')) as TaskFile;
  } catch (err) {
    throw inputError(`${p} is not valid JSON (${(err as Error).message})`);
  }
  if (f.format !== 'frugal-task/1' || !(TASK_NAMES as readonly string[]).includes(f.task)) {
    throw inputError(`${p}: not a frugal task file (format ${JSON.stringify(f.format)}, task ${JSON.stringify(f.task)})`);
  }
  if (f.task === 'hanoi' && !(HANOI_METHODS as readonly string[]).includes(f.method ?? ''))
    throw inputError(`${p}: unknown Hanoi method ${JSON.stringify(f.method)}`);
  return f;
}
