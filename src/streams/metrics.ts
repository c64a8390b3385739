/**
 * The streams study's scores: forecast losses and skill, interval coverage, loss in excess of an
 * oracle, detection scores per tick, per window and per event, and latency percentiles.
 */

export function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length ? s / v.length : Number.NaN;
}

/** Mean and sample standard deviation (0 for a single value). */
export function meanSd(v: readonly number[]): { mean: number; sd: number } {
  const m = mean(v);
  if (v.length < 2) return { mean: m, sd: 0 };
  return { mean: m, sd: Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1)) };
}

export function mse(pred: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += (pred[i] - y[i]) ** 2;
  return s / y.length;
}

/** Mean Gaussian negative log-likelihood (nats) of y under N(mu, variance). */
export function gaussianNll(y: ArrayLike<number>, mu: ArrayLike<number>, variance: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += 0.5 * (Math.log(2 * Math.PI * variance[i]) + (y[i] - mu[i]) ** 2 / variance[i]);
  return s / y.length;
}

/** Skill over a reference: 1 − loss / reference (positive: better than the reference; a loss below zero is a loss). */
export function skill(loss: number, reference: number): number {
  return 1 - loss / reference;
}

/** Loss in excess of the oracle's (same ticks): mean(loss) − mean(oracle). */
export function excessLoss(loss: ArrayLike<number>, oracle: ArrayLike<number>): number {
  return mean(loss) - mean(oracle);
}

/** Fraction of y inside [lo, hi]. */
export function coverage(y: ArrayLike<number>, lo: ArrayLike<number>, hi: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < y.length; i++) if (y[i] >= lo[i] && y[i] <= hi[i]) n++;
  return n / y.length;
}

export interface Detection {
  precision: number;
  recall: number;
  f1: number;
}

function prf(tp: number, fp: number, fn: number): Detection {
  const precision = tp + fp ? tp / (tp + fp) : 0,
    recall = tp + fn ? tp / (tp + fn) : 0;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
}

/** Per-window scores: windows of `w` ticks, a window positive when any tick in it is (w = 1: per tick). */
export function windowF1(flag: readonly boolean[], label: readonly boolean[], w = 1): Detection {
  let tp = 0,
    fp = 0,
    fn = 0;
  for (let s = 0; s < label.length; s += w) {
    let p = false,
      l = false;
    for (let i = s; i < Math.min(s + w, label.length); i++) {
      p ||= flag[i];
      l ||= label[i];
    }
    if (p && l) tp++;
    else if (p) fp++;
    else if (l) fn++;
  }
  return prf(tp, fp, fn);
}

/** Maximal runs of true: [start, end) pairs. */
export function runs(v: readonly boolean[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < v.length; ) {
    if (!v[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < v.length && v[j]) j++;
    out.push([i, j]);
    i = j;
  }
  return out;
}

/**
 * Event-level scores: a labelled event (a run of anomalous ticks) is found when a flag falls in it;
 * a flagged run is a true alarm when it overlaps an event. Recall over events, precision over
 * alarms.
 */
export function eventF1(flag: readonly boolean[], label: readonly boolean[]): Detection {
  const events = runs(label),
    alarms = runs(flag);
  const overlaps = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1];
  const found = events.filter((ev) => alarms.some((al) => overlaps(ev, al))).length;
  const trueAlarms = alarms.filter((al) => events.some((ev) => overlaps(ev, al))).length;
  const precision = alarms.length ? trueAlarms / alarms.length : 0,
    recall = events.length ? found / events.length : 0;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
}

/** The threshold on `score` that maximises per-tick F1 against `label` (the training span's choice). */
export function bestThreshold(score: ArrayLike<number>, label: readonly boolean[]): number {
  const cands = [...new Set(Array.from(score))].sort((a, b) => a - b);
  const step = Math.max(1, Math.floor(cands.length / 400));
  let best = Infinity,
    bestF = -1;
  for (let k = 0; k < cands.length; k += step) {
    const th = cands[k];
    const f = windowF1(
      Array.from(score, (s) => s >= th),
      label,
    ).f1;
    if (f > bestF) {
      bestF = f;
      best = th;
    }
  }
  return best;
}

/** The p-th percentile (0–100) by linear interpolation between order statistics. */
export function percentile(v: ArrayLike<number>, p: number): number {
  const s = Float64Array.from(v).sort();
  if (s.length === 0) return Number.NaN;
  const r = (p / 100) * (s.length - 1),
    lo = Math.floor(r),
    hi = Math.ceil(r);
  return s[lo] + (s[hi] - s[lo]) * (r - lo);
}
