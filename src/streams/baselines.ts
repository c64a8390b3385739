/**
 * The naive and classical baselines the streaming models are measured against, all one-step-ahead
 * and causal (a forecast for tick t+1 uses ticks ≤ t only):
 * - persistence: the next value is the last one (for the variance: the last squared return);
 * - EWMA variance (RiskMetrics): σ²_{t+1} = λ σ²_t + (1 − λ) r_t², λ = 0.94;
 * - GARCH(1,1): σ²_{t+1} = ω + α r_t² + β σ²_t, fitted by Gaussian maximum likelihood on the
 *   training span only (Nelder–Mead over a parameterisation that keeps ω > 0, α, β ≥ 0, α + β < 1);
 * - a threshold detector: an anomaly when a feature is more than k EWMA standard deviations from
 *   its EWMA mean, k chosen on the training span.
 */

export interface Garch {
  omega: number;
  alpha: number;
  beta: number;
  /** The demeaning constant (training mean of the returns). */
  mu: number;
}

/**
 * One-step variances of GARCH(1,1): out[t] = σ²_{t+1}, the variance of r[t+1] given r[0..t];
 * σ²_0 = var0 (the training sample variance).
 */
export function garchFilter(g: Garch, r: ArrayLike<number>, var0: number): Float64Array {
  const out = new Float64Array(r.length);
  let s2 = var0;
  for (let t = 0; t < r.length; t++) {
    const e = r[t] - g.mu;
    s2 = g.omega + g.alpha * e * e + g.beta * s2;
    out[t] = s2;
  }
  return out;
}

/** Gaussian log-likelihood of r under GARCH(1,1) from σ²_0 = var0 (r[0] has variance var0). */
export function garchLogLik(g: Garch, r: ArrayLike<number>, var0: number): number {
  let s2 = var0,
    ll = 0;
  for (let t = 0; t < r.length; t++) {
    const e = r[t] - g.mu;
    ll += -0.5 * (Math.log(2 * Math.PI * s2) + (e * e) / s2);
    s2 = g.omega + g.alpha * e * e + g.beta * s2;
  }
  return ll;
}

function meanVar(r: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i];
  const mean = s / r.length;
  let v = 0;
  for (let i = 0; i < r.length; i++) v += (r[i] - mean) ** 2;
  return { mean, variance: v / r.length };
}

/** Minimise f from x0 by Nelder–Mead (standard coefficients), `iters` iterations. */
export function nelderMead(f: (x: number[]) => number, x0: number[], iters = 400, step = 0.5): number[] {
  const n = x0.length;
  let pts = [x0, ...x0.map((_, i) => x0.map((v, j) => (j === i ? v + step : v)))].map((x) => ({ x, v: f(x) }));
  for (let k = 0; k < iters; k++) {
    pts.sort((a, b) => a.v - b.v);
    const c = Array.from({ length: n }, (_, j) => pts.slice(0, n).reduce((s, p) => s + p.x[j], 0) / n);
    const worst = pts[n];
    const at = (t: number) => c.map((cj, j) => cj + t * (worst.x[j] - cj));
    const r = at(-1),
      fr = f(r);
    if (fr < pts[0].v) {
      const ex = at(-2),
        fe = f(ex);
      pts[n] = fe < fr ? { x: ex, v: fe } : { x: r, v: fr };
    } else if (fr < pts[n - 1].v) pts[n] = { x: r, v: fr };
    else {
      const ct = at(0.5),
        fc = f(ct);
      if (fc < worst.v) pts[n] = { x: ct, v: fc };
      else pts = pts.map((p, i) => (i === 0 ? p : ((x) => ({ x, v: f(x) }))(p.x.map((v, j) => pts[0].x[j] + 0.5 * (v - pts[0].x[j])))));
    }
  }
  pts.sort((a, b) => a.v - b.v);
  return pts[0].x;
}

/** (ω, α, β) from unconstrained u: ω = exp(u0)·var, (α, β, 1 − α − β) a softmax of (u1, u2, 0). */
function garchOf(u: number[], variance: number, mu: number): Garch {
  const a = Math.exp(u[1]),
    b = Math.exp(u[2]),
    z = 1 + a + b;
  return { omega: Math.exp(u[0]) * variance, alpha: a / z, beta: b / z, mu };
}

/** GARCH(1,1) fitted by maximum likelihood on `r` (the training span). */
export function fitGarch(r: ArrayLike<number>): Garch {
  const { mean, variance } = meanVar(r);
  // start near typical daily-return fits: α 0.08, β 0.9 (ω then sets the unconditional variance)
  const x0 = [Math.log(0.02), Math.log(0.08 / 0.02), Math.log(0.9 / 0.02)];
  const nll = (u: number[]) => {
    const g = garchOf(u, variance, mean);
    const ll = garchLogLik(g, r, variance);
    return Number.isFinite(ll) ? -ll : Infinity;
  };
  return garchOf(nelderMead(nll, x0, 600), variance, mean);
}

/** EWMA variances: out[t] = σ²_{t+1} from r[0..t], σ²_0 = var0. */
export function ewmaVariance(r: ArrayLike<number>, var0: number, lambda = 0.94, mu = 0): Float64Array {
  const out = new Float64Array(r.length);
  let s2 = var0;
  for (let t = 0; t < r.length; t++) {
    s2 = lambda * s2 + (1 - lambda) * (r[t] - mu) ** 2;
    out[t] = s2;
  }
  return out;
}

/**
 * The threshold detector's score of each tick: the largest over features of |x − m| / s, where
 * m and s² are each feature's EWMA mean and variance before the tick (λ = 0.9).
 */
export function ewmaZScores(cols: readonly (readonly (number | null)[])[], lambda = 0.9): Float64Array {
  const T = cols[0]?.length ?? 0;
  const score = new Float64Array(T);
  for (const c of cols) {
    let m = c[0] ?? 0,
      v = 1;
    for (let t = 0; t < T; t++) {
      const x = c[t];
      if (x === null) continue;
      const z = Math.abs(x - m) / Math.sqrt(Math.max(v, 1e-12));
      if (t > 0) score[t] = Math.max(score[t], z);
      const d = x - m;
      m += (1 - lambda) * d;
      v = lambda * (v + (1 - lambda) * d * d);
    }
  }
  return score;
}
