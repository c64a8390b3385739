import { existsSync } from 'node:fs';
import { Engine } from '../ops/index.js';
import { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { writeDirAtomic } from '../io/atomic.js';
import { createStreamModel } from '../models/heads.js';
import type { StreamArch, StreamModel, StreamSpec, StreamTask } from '../models/heads.js';
import { makeSeries, makeSpec, trainStreamModel } from './train.js';
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
  const train = trainStreamModel(model, series, { steps: o.steps, batch: o.batch, lr: o.lr, deadline: o.deadline, rng, onStep: o.onStep });
  if (o.out !== undefined) {
    writeDirAtomic(o.out, model.files());
    model.dir = o.out;
  }
  return { model, spec, series, train };
}
