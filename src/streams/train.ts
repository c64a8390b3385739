import { Tape } from '../ops/index.js';
import type { Tensor } from '../tensor/index.js';
import type { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { AdamW, learningRate } from '../train/optim.js';
import { headOutputs } from '../models/heads.js';
import type { StreamModel, StreamSpec, StreamTask } from '../models/heads.js';
import { gaussianLoss, softmaxLoss } from './loss.js';

/**
 * Training a streaming model: windows of `spec.window` ticks drawn from the training span (the
 * first 80% of the series; the last 20% is held out and never seen), the head's loss at every
 * position with a label, AdamW on the backbone and the heads (the token embedding stays out).
 */

/** Fraction of each series held out at its end (train and test spans never overlap). */
export const HELD_OUT = 0.2;

/** A series ready for a model: normalised features (T, F) row-major and one label per tick (NaN: none). */
export interface Series {
  X: Float32Array;
  labels: Float64Array;
  T: number;
  /** Ticks [0, trainEnd) are the training span. */
  trainEnd: number;
}

export interface SeriesColumns {
  at: number[];
  columns: Map<string, (number | null)[]>;
}

function meanStd(v: readonly (number | null)[], end: number): { mean: number; std: number } {
  let n = 0,
    s = 0,
    s2 = 0;
  for (let i = 0; i < end; i++) {
    const x = v[i];
    if (x === null) continue;
    n++;
    s += x;
    s2 += x * x;
  }
  const mean = n ? s / n : 0;
  const std = n > 1 ? Math.sqrt(Math.max(0, s2 / n - mean * mean)) : 1;
  return { mean, std: std > 1e-12 ? std : 1 };
}

function median(v: number[]): number | null {
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The stream spec of a task on `data` (normalisation over the training span only). */
export function makeSpec(
  data: SeriesColumns,
  o: { task: StreamTask; target: string; features?: string[]; horizon: number; window: number; where: string },
): StreamSpec {
  const names = [...data.columns.keys()];
  const need = (c: string, what: string) => {
    if (!data.columns.has(c)) throw inputError(`${o.where} has no column '${c}' (${what}); its columns: ${names.join(', ')}`);
  };
  need(o.target, '--target');
  const features = o.features ?? names.filter((c) => o.task === 'forecast' || c !== o.target);
  for (const c of features) need(c, '--features');
  if (o.task === 'classify' && features.includes(o.target))
    throw inputError(`--features includes the label column '${o.target}': a classifier may not read its own label`);
  if (features.length === 0) throw inputError(`${o.where}: no feature columns to read (give --features)`);
  const T = data.at.length,
    trainEnd = Math.floor(T * (1 - HELD_OUT));
  if (trainEnd < o.window + o.horizon + 1)
    throw inputError(
      `${o.where} has ${T} rows: its training span (the first 80%) needs more than --seq-len + --horizon = ${o.window + o.horizon} rows`,
    );
  const stats = features.map((c) => meanStd(data.columns.get(c) as (number | null)[], trainEnd));
  const y = data.columns.get(o.target) as (number | null)[];
  let classes = 0;
  if (o.task === 'classify') {
    for (let i = 0; i < T; i++) {
      const v = y[i];
      if (v === null) continue;
      if (!Number.isInteger(v) || v < 0 || v > 1000)
        throw inputError(`${o.where}: --target ${o.target} must hold class numbers 0, 1, 2 … for --task classify (row ${i + 2} has ${v})`);
      classes = Math.max(classes, v + 1);
    }
    classes = Math.max(classes, 2);
  }
  const dts = data.at.slice(1, trainEnd).map((a, i) => a - data.at[i]);
  return {
    format: 'frugal-stream/1',
    task: o.task,
    head: o.task === 'forecast' ? 'gaussian' : 'softmax',
    features,
    target: o.target,
    horizon: o.task === 'forecast' ? o.horizon : 0,
    classes,
    norm: { mean: stats.map((s) => s.mean), std: stats.map((s) => s.std) },
    target_norm: o.task === 'forecast' ? meanStd(y, trainEnd) : null,
    window: o.window,
    median_dt: median(dts.filter((d) => d > 0)),
    rows: { train: trainEnd, held_out: T - trainEnd },
  };
}

/** Features and labels of `data` under `spec` (a label is the target `horizon` ticks ahead, or the tick's class). */
export function makeSeries(data: SeriesColumns, spec: StreamSpec): Series {
  const T = data.at.length,
    F = spec.features.length;
  const X = new Float32Array(T * F);
  spec.features.forEach((c, j) => {
    const col = data.columns.get(c) as (number | null)[];
    for (let t = 0; t < T; t++) {
      const v = col[t];
      X[t * F + j] = v === null ? 0 : (v - spec.norm.mean[j]) / spec.norm.std[j];
    }
  });
  const y = data.columns.get(spec.target) as (number | null)[];
  const labels = new Float64Array(T).fill(Number.NaN);
  const tn = spec.target_norm;
  for (let t = 0; t + spec.horizon < T; t++) {
    const v = y[t + spec.horizon];
    if (v !== null) labels[t] = tn ? (v - tn.mean) / tn.std : v;
  }
  return { X, labels, T, trainEnd: spec.rows.train };
}

export interface TrainRun {
  steps: number;
  batch: number;
  lr: number;
  /** Stop early at this performance.now() time. */
  deadline?: number;
  rng: Rng;
  onStep?: (step: number, loss: number) => void;
  /** Labels at or past this tick are not trained on (a validation tail); default: the training span's end. */
  until?: number;
  /**
   * Early stopping: every `every` steps (and at the last) `score()` is taken (lower is better) and
   * the weights of the best score are the ones kept at the end.
   */
  validate?: { every: number; score: () => number };
}

export interface TrainResult {
  steps: number;
  seconds: number;
  /** Mean loss of each step (nats per labelled position). */
  losses: number[];
  /** Ticks seen in training (steps × batch × window). */
  ticks: number;
  /** With validation: the step whose weights were kept, and each (step, score) taken. */
  kept_step?: number;
  validation?: { step: number; score: number }[];
}

/** Train `m` on the training span of `s` (labels of positions whose target lies in the span only). */
export function trainStreamModel(m: StreamModel, s: Series, r: TrainRun): TrainResult {
  const e = m.e,
    L = m.spec.window,
    F = m.spec.features.length,
    O = headOutputs(m.spec),
    B = r.batch;
  const { specs, params } = m.trainable();
  const opt = new AdamW(e, specs, params, { weightDecay: 0.01 });
  const last = Math.min(r.until ?? s.trainEnd, s.trainEnd) - m.spec.horizon; // labels beyond this would read the held-out span
  if (last - L < 1) throw inputError(`the training span is too short for windows of ${L} ticks`);
  const t0 = performance.now(),
    losses: number[] = [],
    best = new BestWeights([...params.values()]);
  const x = new Float32Array(B * L * F),
    lab = new Float64Array(B * L);
  let step = 0;
  for (; step < r.steps; step++) {
    if (r.deadline !== undefined && step > 0 && performance.now() > r.deadline) break;
    for (let b = 0; b < B; b++) {
      const start = r.rng.int(last - L + 1);
      x.set(s.X.subarray(start * F, (start + L) * F), b * L * F);
      for (let t = 0; t < L; t++) lab[b * L + t] = start + t < last ? s.labels[start + t] : Number.NaN;
    }
    opt.zeroGrad();
    const loss = lossAndGrad(m, x, lab, B, L, F, O);
    opt.update(learningRate(step + 1, r.lr, Math.min(20, Math.floor(r.steps / 10)), r.steps), 1);
    m.backbone.weightsChanged();
    losses.push(loss);
    r.onStep?.(step + 1, loss);
    if (r.validate && ((step + 1) % r.validate.every === 0 || step + 1 === r.steps)) best.take(step + 1, r.validate.score());
  }
  if (r.validate) {
    // a run the deadline stopped between validations is scored at its last step too
    if ((best.scores.at(-1)?.step ?? 0) < step) best.take(step, r.validate.score());
    if (best.step < step) {
      best.restore();
      m.backbone.weightsChanged();
    }
  }
  const res: TrainResult = { steps: step, seconds: (performance.now() - t0) / 1000, losses, ticks: step * B * L };
  return r.validate ? { ...res, kept_step: best.step, validation: best.scores } : res;
}

/** The best weights seen by validation: a copy of every trained tensor at the step of the lowest score. */
class BestWeights {
  step = 0;
  score = Infinity;
  readonly scores: { step: number; score: number }[] = [];
  private copy: Float32Array[] = [];
  private panels: boolean[] = []; // each copy's layout (models/panels.ts): restored with it

  constructor(private readonly tensors: Tensor[]) {}

  take(step: number, score: number): void {
    this.scores.push({ step, score });
    if (!(score < this.score)) return;
    this.step = step;
    this.score = score;
    this.copy = this.tensors.map((t) => Float32Array.from(t.floats()));
    this.panels = this.tensors.map((t) => t.panels);
  }

  restore(): void {
    this.tensors.forEach((t, i) => {
      t.floats().set(this.copy[i]);
      t.panels = this.panels[i];
    });
  }
}

/** Record the forward on a tape, compute the head loss in float64, and back-propagate its gradient. */
function lossAndGrad(m: StreamModel, x: Float32Array, lab: Float64Array, B: number, L: number, F: number, O: number): number {
  const e = m.e,
    tape = new Tape(),
    prev = e.tape;
  e.tape = tape;
  try {
    return e.scope(() => {
      const out = m.forward(e.fromValues([B, L, F], x)); // (B, L, O)
      const v = out.floats(),
        g = new Float64Array(B * L * O);
      let n = 0;
      for (let p = 0; p < B * L; p++) if (!Number.isNaN(lab[p])) n++;
      let sum = 0;
      for (let p = 0; p < B * L; p++) {
        if (Number.isNaN(lab[p])) continue;
        sum +=
          m.spec.head === 'gaussian'
            ? gaussianLoss(v[p * O], v[p * O + 1], lab[p], g, p * O, 1 / n)
            : softmaxLoss(v, p * O, O, lab[p], g, p * O, 1 / n);
      }
      e.tape = null;
      tape.backwardFrom(e, out, g);
      return n ? sum / n : 0;
    });
  } finally {
    e.tape = prev;
  }
}
