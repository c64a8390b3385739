import type { Engine } from '../ops/index.js';
import type { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { createMambaConfig, mambaParameterCount } from '../models/mamba/config.js';
import { MambaLM } from '../models/mamba/model.js';
import { createModel } from '../models/factory.js';
import { createLlamaConfig } from '../models/transformer/config.js';
import type { LlamaConfig } from '../models/transformer/config.js';
import { llamaParamSpecs } from '../models/transformer/params.js';
import { TransformerLM } from '../models/transformer/model.js';
import type { TrainableModel } from '../models/types.js';
import type { ScoredRecipe } from '../train/scored.js';
import { hanoiTrainLength } from './hanoi.js';
import { TASKS } from './registry.js';
import type { HanoiMethod, TaskName } from './registry.js';

/**
 * Training recipes of the synthetic study: model shape and optimiser settings per task, arch and
 * (for Hanoi) method. The transformer gets the Mamba's width and depth, and the SwiGLU width that
 * brings its parameter count closest to the Mamba's; same steps, batch, optimiser and data.
 */
export const ARCHS = ['mamba', 'transformer'] as const;
export type TaskArch = (typeof ARCHS)[number];
/**
 * What `frugal repro` also trains: Mamba-2 and Mamba-3 (SISO) blocks of the same width, depth and
 * d_state on the Mamba recipe (the study itself compares Mamba-1 with the transformer).
 */
export const REPRO_ARCHS = [...ARCHS, 'mamba2', 'mamba3'] as const;
export type ReproArch = (typeof REPRO_ARCHS)[number];

export interface ModelShape {
  dModel: number;
  layers: number;
  dState: number;
}

export interface TaskRecipe {
  task: TaskName;
  arch: ReproArch;
  method: HanoiMethod | null;
  model: ModelShape;
  train: ScoredRecipe & {
    /** Training length in tokens (every sequence of a batch has it). */
    seqLen: number;
    /** Hanoi: disks per training scene. */
    disks: number | null;
    /**
     * A length curriculum, or null: the first phases train at shorter lengths (steps each, in
     * order), the last phase at `seqLen`. Absent from recipes made before curricula existed.
     */
    curriculum?: { seqLen: number; steps: number }[] | null;
  };
}

/**
 * The training length of step `step` (from 0) of a recipe: its curriculum phase's, else seqLen.
 * When a time budget allows only `planned` of the recipe's steps, the phases shrink alike.
 */
export function lengthAt(t: TaskRecipe['train'], step: number, planned = t.steps): number {
  const f = Math.min(1, planned / t.steps);
  let end = 0;
  for (const p of t.curriculum ?? []) {
    end += p.steps * f;
    if (step < end) return p.seqLen;
  }
  return t.seqLen;
}

interface Base {
  model: ModelShape;
  steps: number;
  quickSteps: number;
  batch: number;
  seqLen: number;
  quickSeqLen: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  disks: number | null;
  /** Steps of the final decay (warmup-stable-decay); absent: cosine over the whole run. */
  decaySteps?: number;
  /** Shorter lengths first: [length, fraction of the steps] per phase before the last (full runs only). */
  curriculum?: [number, number][];
}

const d64: ModelShape = { dModel: 64, layers: 2, dState: 16 };
const HANOI_DISKS_TRAIN = 3;

/**
 * The default recipes (the full study) and their --quick step counts (the test suite's). Why these
 * values (measured on this machine, numbers in docs/synthetic/NOTES.md): induction heads at a
 * constant 3e-3 without weight decay jump from chance to solved after about 1,200 steps, where
 * 1e-3 was still at chance after 5,800; a final decay of the learning rate then makes the
 * solution hold at longer lengths (2^14: 90.6% -> 98.4% in a run continued 1,000 steps); 6,000
 * steps with the last 3,000 decaying held 100% at 2^15 and 93.8% at 2^16, where 3,000 steps held
 * 81% and 9,000 steps 80% at 2^16 (more steps alone do not carry it further).
 * Selective copying at 1024 tokens and 3e-3 stayed on its plateau (loss ln 16) for 900 steps; at 64
 * tokens and 1e-2 it leaves the plateau after about 250 steps and the skill carries over to longer
 * sequences, hence a length curriculum (64, then 256, then the last ninth at 1024); 1,800 steps
 * copied 67.6% at 1,024, 4,500 steps 99.0%.
 * Hanoi: a 24-wide parser reads as well as a 32-wide one (95.3% / 77.7% on 3 / 4 disks) and a
 * 16-wide one does not (35%); the end-to-end model is 35x the parser (128 wide, 4 layers), the
 * ratio that decides their inference energies, since both read the same observation.
 */
function base(task: TaskName, method: HanoiMethod | null): Base {
  switch (task) {
    case 'induction':
      return {
        model: d64,
        steps: 6000,
        quickSteps: 12,
        batch: 8,
        seqLen: 256,
        quickSeqLen: 256,
        lr: 3e-3,
        minLr: 3e-5,
        weightDecay: 0,
        disks: null,
        decaySteps: 3000,
      };
    case 'selective-copy':
      return {
        model: d64,
        steps: 4500,
        quickSteps: 8,
        batch: 16,
        seqLen: 1024,
        quickSeqLen: 128,
        lr: 1e-2,
        minLr: 1e-4,
        weightDecay: 0,
        disks: null,
        decaySteps: 400,
        curriculum: [
          [64, 2 / 3],
          [256, 2 / 9],
        ],
      };
    case 'hanoi': {
      const L = hanoiTrainLength(HANOI_DISKS_TRAIN);
      // the end-to-end planner gets the larger model (it has to plan, not only read)
      const model = method === 'end-to-end' ? { dModel: 128, layers: 4, dState: 16 } : { dModel: 24, layers: 2, dState: 16 };
      return {
        model,
        steps: 3000,
        quickSteps: 12,
        batch: 16,
        seqLen: L,
        quickSeqLen: L,
        lr: 3e-3,
        minLr: 3e-4,
        weightDecay: 0.1,
        disks: HANOI_DISKS_TRAIN,
      };
    }
  }
}

export interface RecipeOptions {
  steps?: number;
  quick?: boolean;
}

/** The recipe of one model of the study; `steps` overrides the step count. */
export function recipeFor(task: TaskName, arch: ReproArch, method: HanoiMethod | null, o: RecipeOptions = {}): TaskRecipe {
  if (task !== 'hanoi' && method !== null) throw inputError(`--method applies to the hanoi task only, not ${task}`);
  const m = task === 'hanoi' ? (method ?? 'neuro-symbolic') : null;
  const b = base(task, m);
  const steps = o.steps ?? (o.quick ? b.quickSteps : b.steps);
  return {
    task,
    arch,
    method: m,
    model: b.model,
    train: {
      steps,
      batch: b.batch,
      seqLen: o.quick ? b.quickSeqLen : b.seqLen,
      disks: b.disks,
      lr: b.lr,
      warmup: Math.min(100, Math.ceil(steps / 10)),
      minLr: b.minLr,
      weightDecay: b.weightDecay,
      clip: 1,
      ...(b.decaySteps !== undefined ? { decaySteps: b.decaySteps } : {}),
      curriculum: o.quick || !b.curriculum ? null : b.curriculum.map(([seqLen, f]) => ({ seqLen, steps: Math.round(f * steps) })),
    },
  };
}

/** A vocabulary and its end id: what the model configs take from a task. */
export interface VocabSpec {
  vocabSize: number;
  eos: number | null;
}

function mambaConfig(s: ModelShape, t: VocabSpec) {
  return createMambaConfig({
    dModel: s.dModel,
    nLayer: s.layers,
    dState: s.dState,
    vocabSize: t.vocabSize,
    tokenizer: 'file',
    eosTokenId: t.eos ?? 0,
  });
}

function llamaConfig(s: ModelShape, t: VocabSpec, intermediateSize: number): LlamaConfig {
  return createLlamaConfig({
    dModel: s.dModel,
    nLayer: s.layers,
    intermediateSize,
    vocabSize: t.vocabSize,
    tokenizer: 'file',
    eosTokenId: t.eos,
  });
}

function llamaParameters(c: LlamaConfig): number {
  return llamaParamSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** The SwiGLU width whose transformer (same width and depth) has the parameter count closest to the Mamba's. */
export function matchedIntermediate(s: ModelShape, task: TaskName | VocabSpec): number {
  const t = typeof task === 'string' ? TASKS[task] : task;
  const target = mambaParameterCount(mambaConfig(s, t));
  const at = (f: number) => llamaParameters(llamaConfig(s, t, f));
  const perUnit = at(2) - at(1);
  const f = Math.max(1, Math.round((target - at(1)) / perUnit) + 1);
  return [f - 1, f, f + 1].filter((x) => x >= 1).reduce((best, x) => (Math.abs(at(x) - target) < Math.abs(at(best) - target) ? x : best));
}

/** A fresh Mamba or transformer (matched parameter count) of shape s over vocabulary t. */
export function buildPair(e: Engine, arch: TaskArch, s: ModelShape, t: VocabSpec, rng: Rng): TrainableModel {
  if (arch === 'mamba') return new MambaLM(e, mambaConfig(s, t)).init(rng);
  return new TransformerLM(e, llamaConfig(s, t, matchedIntermediate(s, t))).init(rng);
}

/** A freshly initialised model for a recipe. */
export function buildModel(e: Engine, r: TaskRecipe, rng: Rng): TrainableModel {
  const t = TASKS[r.task];
  if (r.arch === 'mamba' || r.arch === 'transformer') return buildPair(e, r.arch, r.model, t, rng);
  const size = { dModel: r.model.dModel, layers: r.model.layers, dState: r.model.dState, vocabSize: t.vocabSize };
  return createModel(r.arch, e, { ...size, tokenizer: 'file', eosTokenId: t.eos ?? 0 }, rng);
}
