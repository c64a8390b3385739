import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../ops/index.js';
import { loadModel } from '../models/checkpoint.js';
import { cpuModel, logicalCpus, wattsPerCore } from '../energy/index.js';
import type { EnergyKind } from '../energy/index.js';
import { cpuSample, otherCpuShare } from '../bench/speed/machine.js';
import { repro } from '../tasks/repro.js';
import type { TaskFile, TrainRecord } from '../tasks/repro.js';
import type { TaskArch } from '../tasks/recipes.js';
import type { HanoiMethod, TaskName } from '../tasks/registry.js';
import { evaluateModel } from './evaluate.js';
import type { EvalRow } from './evaluate.js';
import { ratio } from './stats.js';

/**
 * `frugal report synthetic`: the whole study. Trains every model of the plan, evaluates each from
 * its saved directory, and returns the report that synthetic.json holds. The full run shares a time
 * budget among its jobs by weight (time a job leaves unused passes to the next ones): a training
 * job that reaches its share stops early, an evaluation length predicted to overrun is reported
 * out of budget. --quick uses fixed small step counts and short lengths, with no time budget.
 */
export interface StudyModel {
  task: TaskName;
  arch: TaskArch;
  method: HanoiMethod | null;
}

export interface TaskRow {
  task: TaskName;
  arch: TaskArch;
  method: HanoiMethod | null;
  params: number;
  model_dir: string;
  train: TrainRecord;
  eval: EvalRow[];
}

export interface Headline {
  length: number;
  accuracy: { mamba: number; transformer: number };
  joules_per_sequence: { mamba: number; transformer: number };
  /** Transformer joules per sequence ÷ Mamba's. */
  ratio: number;
  energy_kind: EnergyKind;
}

export interface SyntheticReport {
  machine: Record<string, unknown>;
  run: { command: string; quick: boolean; budget_minutes: number | null; seed: number; seconds: number; other_cpu_share: number };
  tasks: TaskRow[];
  headline: Headline | null;
}

/** The plan, in running order (selective copying last: it takes the time the others leave). */
export const STUDY: readonly StudyModel[] = [
  { task: 'induction', arch: 'mamba', method: null },
  { task: 'induction', arch: 'transformer', method: null },
  { task: 'hanoi', arch: 'mamba', method: 'neuro-symbolic' },
  { task: 'hanoi', arch: 'mamba', method: 'end-to-end' },
  { task: 'hanoi', arch: 'transformer', method: 'neuro-symbolic' },
  { task: 'hanoi', arch: 'transformer', method: 'end-to-end' },
  { task: 'selective-copy', arch: 'mamba', method: null },
  { task: 'selective-copy', arch: 'transformer', method: null },
];

/** models/<task>-<arch>[-<method>] */
export function modelDirName(m: StudyModel): string {
  return `models/${m.task}-${m.arch}${m.method ? `-${m.method}` : ''}`;
}

/** Every power of two from 2^lo to 2^hi. */
export function powersOfTwo(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => 2 ** (lo + i));
}

interface EvalPlan {
  lengths: number[];
  n: (length: number) => number;
}

/**
 * Lengths and sequences per length of each evaluation. Long lengths get a fixed number of tokens
 * (2^19 for Mamba; 2^17 for the transformer, whose sequences cost more the longer they are, so that
 * its joules per sequence are measured out to 2^16 within the budget), with at least 8 (Mamba) or 2
 * (transformer) sequences.
 */
export function evalPlan(m: StudyModel, quick: boolean): EvalPlan {
  if (m.task === 'hanoi') return { lengths: [3, 4], n: () => (quick ? 16 : 256) };
  if (m.task === 'selective-copy') return quick ? { lengths: [128], n: () => 8 } : { lengths: [1024, 4096], n: () => 128 };
  if (quick) return { lengths: [64, 256, 1024], n: () => 16 };
  const [tokens, least] = m.arch === 'mamba' ? [2 ** 19, 8] : [2 ** 17, 2];
  return { lengths: powersOfTwo(6, 20), n: (L) => Math.max(least, Math.min(256, Math.floor(tokens / L))) };
}

/**
 * Relative shares of the time budget: [training, evaluation] per model of STUDY, about the minutes
 * each takes on this machine in the default full run (60 minutes), so that within the default budget
 * every model trains its recipe's steps, Mamba is evaluated out to 2^20 tokens and the transformer
 * out to 2^16 or 2^17 (its lengths past that are reported out of budget); selective copying, last,
 * takes what is left.
 */
const WEIGHTS: readonly [number, number][] = [
  [8.5, 4.5],
  [8, 9],
  [1.3, 0.1],
  [4.2, 0.2],
  [0.9, 0.1],
  [4.5, 0.2],
  [8.5, 0.3],
  [8.5, 0.3],
];

export interface StudyOptions {
  out: string;
  quick: boolean;
  budgetMinutes: number;
  threads: number;
  seed: number;
  command: string;
  /** Progress: what runs now, and a fraction of the whole plan done. */
  progress?: (label: string, fraction: number) => void;
  log?: (m: string) => void;
}

/** Run the plan; writes the models under out/models and returns the report (the caller writes the files). */
export function runStudy(o: StudyOptions): SyntheticReport {
  const log = o.log ?? (() => {});
  const t0 = performance.now(),
    c0 = cpuSample();
  const end = o.quick ? undefined : t0 + o.budgetMinutes * 60e3;
  let weightLeft = WEIGHTS.reduce((a, [t, e]) => a + t + e, 0),
    weightDone = 0;
  const total = weightLeft;
  // each job's deadline: its weight's share of the time still left
  const deadline = (w: number) =>
    end === undefined ? undefined : performance.now() + (Math.max(0, end - performance.now()) * w) / weightLeft;
  const rows: TaskRow[] = [];
  STUDY.forEach((m, i) => {
    const [wt, we] = WEIGHTS[i],
      dir = modelDirName(m),
      name = dir.slice('models/'.length);
    mkdirSync(join(o.out, 'models'), { recursive: true });
    const tf: TaskFile = repro({
      task: m.task,
      arch: m.arch,
      method: m.method,
      out: join(o.out, dir),
      quick: o.quick,
      seed: o.seed,
      threads: o.threads,
      deadline: deadline(wt),
      onStep: (s, steps) => o.progress?.(`train ${name} ${s}/${steps}`, (weightDone + (wt * s) / steps) / total),
    });
    if (tf.train.stopped_early) log(`${name}: ${tf.train.stopped_early}`);
    weightLeft -= wt;
    weightDone += wt;
    const plan = evalPlan(m, o.quick),
      e = new Engine({ threads: o.threads });
    try {
      const { model } = loadModel(e, join(o.out, dir));
      const ev = evaluateModel(model, {
        task: m.task,
        method: m.method,
        lengths: plan.lengths,
        n: plan.n,
        seed: o.seed + 1000,
        deadline: deadline(we),
        onProgress: (length, done, n) => o.progress?.(`eval ${name} at ${length} ${done}/${n}`, weightDone / total),
      });
      rows.push({ task: m.task, arch: m.arch, method: m.method, params: tf.params, model_dir: dir, train: pickTrain(tf), eval: ev });
    } finally {
      e.dispose();
    }
    weightLeft -= we;
    weightDone += we;
  });
  const seconds = (performance.now() - t0) / 1000;
  return {
    machine: machineInfo(o.threads),
    run: {
      command: o.command,
      quick: o.quick,
      budget_minutes: o.quick ? null : o.budgetMinutes,
      seed: o.seed,
      seconds,
      other_cpu_share: otherCpuShare(c0, cpuSample()),
    },
    tasks: rows,
    headline: headline(rows),
  };
}

/** The machine a report ran on: CPU, threads, Node, and the watts per core behind estimated energy. */
export function machineInfo(threads: number): Record<string, unknown> {
  return {
    cpu: cpuModel(),
    logical_cpus: logicalCpus(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    threads,
    watts_per_core: wattsPerCore().watts,
    watts_source: wattsPerCore().source,
  };
}

function pickTrain(tf: TaskFile): TrainRecord {
  const { steps, tokens, seconds, joules, energy_kind } = tf.train;
  return { steps, tokens, seconds, joules, energy_kind };
}

/** Induction heads at the longest length both architectures ran: both accuracies and the ratio of joules per sequence. */
export function headline(rows: readonly TaskRow[]): Headline | null {
  const find = (arch: TaskArch) => rows.find((r) => r.task === 'induction' && r.arch === arch);
  const m = find('mamba'),
    t = find('transformer');
  if (!m || !t) return null;
  const ran = (r: TaskRow, L: number) => r.eval.find((x) => x.length === L && x.accuracy !== null);
  const common = m.eval.map((x) => x.length).filter((L) => ran(m, L) && ran(t, L));
  if (common.length === 0) return null;
  const L = Math.max(...common),
    a = ran(m, L) as EvalRow,
    b = ran(t, L) as EvalRow;
  return {
    length: L,
    accuracy: { mamba: a.accuracy as number, transformer: b.accuracy as number },
    joules_per_sequence: { mamba: a.joules_per_sequence as number, transformer: b.joules_per_sequence as number },
    ratio: ratio(b.joules_per_sequence, a.joules_per_sequence) as number,
    energy_kind: a.energy_kind === 'measured' && b.energy_kind === 'measured' ? 'measured' : 'estimated',
  };
}
