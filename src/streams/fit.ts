import { existsSync } from 'node:fs';
import { Engine } from '../ops/index.js';
import { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { writeDirAtomic } from '../io/atomic.js';
import { createStreamModel } from '../models/heads.js';
import type { StreamArch, StreamModel, StreamSpec, StreamTask } from '../models/heads.js';
import { makeSeries, makeSpec, trainStreamModel } from './train.js';
import { StreamRunner } from './runtime.js';
import type { Series, SeriesColumns, TrainResult } from './train.js';

/** Everything `frugal train --task` needs: the data, the task, the shape and the schedule. */
export interface FitOptions {
  data: SeriesColumns;
  where: string;
  task: StreamTask;
  target: string;
  features?: string[];
  horizon: number;
  arch: StreamArch;
  dModel: number;
  layers: number;
  heads?: number;
  window: number;
  batch: number;
  steps: number;
  lr: number;
  seed: number;
  deadline?: number;
  threads?: number;
  out?: string;
  force?: boolean;
  onStep?: (step: number, loss: number) => void;
}

export interface Fitted {
  model: StreamModel;
  spec: StreamSpec;
  series: Series;
  train: TrainResult;
}

/** The validation tail is 1/VALIDATION_SHARE of the training span; it is scored every VALIDATE_EVERY steps. */
export const VALIDATION_SHARE = 5;
export const VALIDATE_EVERY = 50;

/**
 * Mean loss (nats per labelled tick, normalised units) of the model streamed tick by tick through
 * ticks [0, end) as `frugal stream` runs it, over the predictions of ticks [from, end) whose label
 * lies before `end`: the validation score of early stopping.
 */
export function streamedLoss(model: StreamModel, data: SeriesColumns, from: number, end: number): number {
  const r = new StreamRunner(model, { learn: false, lr: 0, labelDelay: 0 });
  const names = [...data.columns.keys()],
    cols = names.map((n) => data.columns.get(n) as (number | null)[]);
  let sum = 0,
    n = 0;
  try {
    for (let t = 0; t < end; t++) {
      const values: Record<string, number | null> = {};
      names.forEach((c, j) => {
        values[c] = cols[j][t];
      });
      const line = r.tick(t, values);
      if (typeof line.scored === 'number' && line.scored >= from && typeof line.loss === 'number') {
        sum += line.loss;
        n++;
      }
    }
  } finally {
    r.dispose();
  }
  return n ? sum / n : Number.POSITIVE_INFINITY;
}

/** Build, train and (with `out`) save a streaming model; the folder is written atomically at the end. */
export function fitStreamModel(o: FitOptions): Fitted {
  if (o.out !== undefined && existsSync(o.out) && !o.force) throw inputError(`--out ${o.out} already exists; pass --force to replace it`);
  if (!(o.horizon >= 1)) throw inputError(`--horizon must be at least 1, got ${o.horizon}`);
  const spec = makeSpec(o.data, {
    task: o.task,
    target: o.target,
    features: o.features,
    horizon: o.horizon,
    window: o.window,
    where: o.where,
  });
  const series = makeSeries(o.data, spec);
  const e = new Engine({ threads: o.threads ?? 1 });
  const rng = Rng.fromSeed(o.seed);
  const model = createStreamModel(e, o.arch, o.dModel, o.layers, spec, rng, o.heads);
  // early stopping: the last fifth of the training span is held out of the windows and scored by streaming
  const valStart = series.trainEnd - Math.floor(series.trainEnd / VALIDATION_SHARE);
  const train = trainStreamModel(model, series, {
    steps: o.steps,
    batch: o.batch,
    lr: o.lr,
    deadline: o.deadline,
    rng,
    onStep: o.onStep,
    until: valStart,
    validate: { every: VALIDATE_EVERY, score: () => streamedLoss(model, o.data, valStart, series.trainEnd) },
  });
  if (o.out !== undefined) {
    writeDirAtomic(o.out, model.files());
    model.dir = o.out;
  }
  return { model, spec, series, train };
}
