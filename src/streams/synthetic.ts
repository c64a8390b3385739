import type { Rng } from '../io/rng.js';
import type { SeriesColumns } from './train.js';

/**
 * Synthetic markets whose generating process is known, so each has an oracle: the true
 * one-step-ahead mean and variance (or expected count), against which a model's loss in excess
 * is measured. Returns are ×100 (percent) like the real series.
 *
 * - regime-switching GBM: log returns N(μ_k − σ_k²/2, σ_k²) in a calm and a volatile regime that
 *   switch with probability p per tick; the oracle knows the regime and mixes the next one's
 *   variance (and mean) by the switching probability.
 * - GARCH(1,1) with Poisson jumps: σ²_{t+1} = ω + α r_t² + β σ²_t, and with probability λ a jump
 *   N(0, J²) added; oracle variance σ²_{t+1} + λ J².
 * - Hawkes order arrivals (discrete time): N_t ~ Poisson(λ_t), λ_t = μ + a · E_t with
 *   E_t = b · E_{t−1} + N_{t−1}; the oracle's forecast of N_t is λ_t.
 */
export interface Synthetic {
  data: SeriesColumns;
  /** Oracle mean and variance of the target at tick t+1 given ticks ≤ t (index t), aligned with the series. */
  oracleMean: Float64Array;
  oracleVar: Float64Array;
  /** The true log-density of the value at t+1 given ticks ≤ t (a mixture where jumps or regime switches make it one). */
  oracleLogDensity: (t: number, y: number) => number;
}

/** log N(y; m, v) */
export function logNormal(y: number, m: number, v: number): number {
  return -0.5 * (Math.log(2 * Math.PI * v) + ((y - m) * (y - m)) / v);
}

/** log of a two-component Gaussian mixture w·N(m1, v1) + (1 − w)·N(m2, v2). */
function logMix(y: number, w: number, m1: number, v1: number, m2: number, v2: number): number {
  const a = Math.log(w) + logNormal(y, m1, v1),
    b = Math.log(1 - w) + logNormal(y, m2, v2);
  const hi = Math.max(a, b);
  return hi + Math.log(Math.exp(a - hi) + Math.exp(b - hi));
}

/** Poisson sample (inversion; fine for the small rates used here). */
function poisson(rng: Rng, lambda: number): number {
  const L = Math.exp(-lambda);
  let k = 0,
    p = 1;
  do {
    k++;
    p *= rng.uniform();
  } while (p > L && k < 1000);
  return k - 1;
}

export function regimeGbm(rng: Rng, T: number): Synthetic {
  const sig = [1, 3],
    mu = [0.05, -0.1],
    pSwitch = 0.02;
  const r: number[] = [],
    om = new Float64Array(T),
    ov = new Float64Array(T);
  let k = 0;
  const regime = new Int8Array(T);
  const m = (j: number) => mu[j] - (sig[j] * sig[j]) / 200; // percent log returns: σ²/2 in % units
  for (let t = 0; t < T; t++) {
    r.push(m(k) + sig[k] * rng.normal());
    // the oracle for t+1 knows the regime at t: stay with 1 − p, switch with p (mixture mean and variance)
    const o = 1 - k,
      m1 = (1 - pSwitch) * m(k) + pSwitch * m(o);
    om[t] = m1;
    ov[t] = (1 - pSwitch) * (sig[k] ** 2 + m(k) ** 2) + pSwitch * (sig[o] ** 2 + m(o) ** 2) - m1 * m1;
    regime[t] = k;
    if (rng.uniform() < pSwitch) k = o;
  }
  const oracleLogDensity = (t: number, y: number) => {
    const j = regime[t];
    return logMix(y, 1 - pSwitch, m(j), sig[j] ** 2, m(1 - j), sig[1 - j] ** 2);
  };
  return { data: { at: r.map((_, i) => i), columns: new Map([['ret', r]]) }, oracleMean: om, oracleVar: ov, oracleLogDensity };
}

export function garchJumps(rng: Rng, T: number, g = { omega: 0.05, alpha: 0.1, beta: 0.85 }, jump = { lambda: 0.02, sd: 4 }): Synthetic {
  const r: number[] = [],
    om = new Float64Array(T),
    ov = new Float64Array(T);
  let s2 = g.omega / (1 - g.alpha - g.beta);
  for (let t = 0; t < T; t++) {
    let x = Math.sqrt(s2) * rng.normal();
    if (rng.uniform() < jump.lambda) x += jump.sd * rng.normal();
    r.push(x);
    s2 = g.omega + g.alpha * x * x + g.beta * s2;
    om[t] = 0;
    ov[t] = s2 + jump.lambda * jump.sd * jump.sd;
  }
  const J2 = jump.sd * jump.sd;
  const oracleLogDensity = (t: number, y: number) =>
    logMix(y, 1 - jump.lambda, 0, ov[t] - jump.lambda * J2, 0, ov[t] - jump.lambda * J2 + J2);
  return { data: { at: r.map((_, i) => i), columns: new Map([['ret', r]]) }, oracleMean: om, oracleVar: ov, oracleLogDensity };
}

export function hawkesCounts(rng: Rng, T: number, p = { mu: 1, a: 0.3, b: 0.6 }): Synthetic {
  const n: number[] = [],
    om = new Float64Array(T),
    ov = new Float64Array(T);
  let E = 0,
    lam = p.mu;
  for (let t = 0; t < T; t++) {
    const c = poisson(rng, lam);
    n.push(c);
    E = p.b * E + c;
    lam = p.mu + p.a * E;
    om[t] = lam; // the count at t+1 is Poisson(λ_{t+1}): mean = variance = λ
    ov[t] = lam;
  }
  // counts are compared as densities of a Gaussian with the true mean and variance (the models' heads are Gaussian too)
  const oracleLogDensity = (t: number, y: number) => logNormal(y, om[t], ov[t]);
  return { data: { at: n.map((_, i) => i), columns: new Map([['count', n]]) }, oracleMean: om, oracleVar: ov, oracleLogDensity };
}

/** Feed faults injected into a list of CSV rows (time first): duplicated, dropped (gaps) and swapped (out of order) ticks. */
export function injectFaults(rng: Rng, rows: string[], rate: number): { rows: string[]; duplicates: number; gaps: number; swaps: number } {
  const out: string[] = [];
  let duplicates = 0,
    gaps = 0,
    swaps = 0;
  for (let i = 0; i < rows.length; i++) {
    const u = rng.uniform();
    if (u < rate && out.length > 0) {
      gaps++; // this tick never arrives
      continue;
    }
    if (u >= 2 * rate && u < 3 * rate && i + 1 < rows.length) {
      out.push(rows[i + 1], rows[i]); // the next tick arrives first: this one comes out of order
      i++;
      swaps++;
      continue;
    }
    out.push(rows[i]);
    if (u < 2 * rate) {
      out.push(rows[i]); // sent twice
      duplicates++;
    }
  }
  return { rows: out, duplicates, gaps, swaps };
}
