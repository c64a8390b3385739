import type { StreamModel } from '../models/heads.js';
import { StreamRunner } from '../streams/runtime.js';
import type { SeriesColumns } from '../streams/train.js';
import { ewmaVariance, ewmaZScores, fitGarch, garchFilter } from '../streams/baselines.js';
import type { Garch } from '../streams/baselines.js';
import { bestThreshold, coverage, eventF1, gaussianNll, mean, mse, windowF1 } from '../streams/metrics.js';
import type { Detection } from '../streams/metrics.js';

/**
 * Scoring one trained streaming model on its series, run tick by tick through the same runtime as
 * `frugal stream` (the state warms over the training span; only held-out ticks are scored), and
 * the baselines on the same ticks. Forecasts: the next value's mean (squared error) and its
 * Gaussian density (negative log-likelihood, nats), against persistence, the training mean, EWMA
 * and a GARCH(1,1) fitted on the training span, and the oracle where the series is synthetic.
 */

/** Z for a two-sided 90% Gaussian interval. */
const Z90 = 1.6448536269514722;

/** Per-tick outputs of a model over a whole series: mean and sd (forecast) or P(class 1) (classify). */
export function runSeries(model: StreamModel, data: SeriesColumns): { mu: Float64Array; sd: Float64Array; p1: Float64Array } {
  const T = data.at.length,
    r = new StreamRunner(model, { learn: false, lr: 0, labelDelay: 0 });
  const mu = new Float64Array(T),
    sd = new Float64Array(T),
    p1 = new Float64Array(T);
  const names = [...data.columns.keys()];
  const cols = names.map((n) => data.columns.get(n) as (number | null)[]);
  for (let t = 0; t < T; t++) {
    const values: Record<string, number | null> = {};
    names.forEach((n, j) => {
      values[n] = cols[j][t];
    });
    const o = r.tick(t, values);
    if (Array.isArray(o.pred)) p1[t] = o.pred[1];
    else {
      mu[t] = o.pred;
      sd[t] = o.sd as number;
    }
  }
  return { mu, sd, p1 };
}

/** A synthetic series' oracle: the true one-step mean and variance, and the true log-density (its NLL). */
export interface Oracle {
  mean: Float64Array;
  variance: Float64Array;
  logDensity: (t: number, y: number) => number;
}

export interface ForecastScores {
  mse: number;
  nll: number;
  coverage90: number | null;
}

export interface ForecastBaselines {
  /** r̂_{t+1} = r_t; variance r_t² (floored). */
  persistence: ForecastScores;
  /** The training mean and variance, constant. */
  train_mean: ForecastScores;
  ewma: ForecastScores;
  garch: ForecastScores & { fit: Garch };
  oracle: ForecastScores | null;
}

/** The held-out ticks t whose next value exists: [trainEnd, T − 1). */
function heldOut(T: number, trainEnd: number): number[] {
  return Array.from({ length: Math.max(0, T - 1 - trainEnd) }, (_, k) => trainEnd + k);
}

function scores(idx: number[], y: Float64Array, mu: ArrayLike<number>, variance: ArrayLike<number>): ForecastScores {
  const Y = idx.map((t) => y[t + 1]),
    M = idx.map((t) => mu[t]),
    V = idx.map((t) => Math.max(variance[t], 1e-12));
  const half = V.map((v) => Z90 * Math.sqrt(v));
  return {
    mse: mse(M, Y),
    nll: gaussianNll(Y, M, V),
    coverage90: coverage(
      Y,
      M.map((m, i) => m - half[i]),
      M.map((m, i) => m + half[i]),
    ),
  };
}

/** The baselines of a one-column forecast (target = that column one tick ahead). */
export function forecastBaselines(y: Float64Array, trainEnd: number, oracle: Oracle | null): ForecastBaselines {
  const T = y.length,
    idx = heldOut(T, trainEnd);
  const train = y.subarray(0, trainEnd);
  const m = mean(train),
    v = mean(Array.from(train, (x) => (x - m) ** 2));
  const fit = fitGarch(train);
  const gv = garchFilter(fit, y, v),
    ev = ewmaVariance(y, v, 0.94, m);
  const constant = (c: number) => new Float64Array(T).fill(c);
  const persistVar = Float64Array.from(y, (x) => Math.max((x - m) ** 2, 0.01 * v));
  return {
    persistence: scores(idx, y, y, persistVar),
    train_mean: scores(idx, y, constant(m), constant(v)),
    ewma: scores(idx, y, constant(m), ev),
    garch: { ...scores(idx, y, constant(m), gv), fit },
    oracle: oracle ? { ...scores(idx, y, oracle.mean, oracle.variance), nll: -mean(idx.map((t) => oracle.logDensity(t, y[t + 1]))) } : null,
  };
}

/** A model's forecast scores on the held-out ticks. */
export function forecastScores(out: { mu: Float64Array; sd: Float64Array }, y: Float64Array, trainEnd: number): ForecastScores {
  return scores(
    heldOut(y.length, trainEnd),
    y,
    out.mu,
    Array.from(out.sd, (s) => s * s),
  );
}

export interface DetectionScores {
  threshold: number;
  tick: Detection;
  /** Windows of 10 ticks. */
  window: Detection;
  event: Detection;
}

function detection(score: ArrayLike<number>, label: boolean[], trainEnd: number): DetectionScores {
  const th = bestThreshold(Array.from(score).slice(0, trainEnd), label.slice(0, trainEnd));
  const flag = Array.from(score, (s) => s >= th).slice(trainEnd),
    lab = label.slice(trainEnd);
  return { threshold: th, tick: windowF1(flag, lab), window: windowF1(flag, lab, 10), event: eventF1(flag, lab) };
}

/** Anomaly scores of a model's P(anomaly), the threshold chosen on the training span (best per-tick F1). */
export function modelDetection(p1: Float64Array, label: boolean[], trainEnd: number): DetectionScores {
  return detection(p1, label, trainEnd);
}

/** The threshold baseline: EWMA z-scores of the feature columns, the threshold chosen on the training span. */
export function thresholdDetection(features: (number | null)[][], label: boolean[], trainEnd: number): DetectionScores {
  return detection(ewmaZScores(features), label, trainEnd);
}
