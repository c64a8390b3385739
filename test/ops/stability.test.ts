import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import type { Tensor } from '../../src/tensor/index.js';

/**
 * softplus, SiLU, exp and their gradients stay finite and accurate for inputs in [-100, 100], in
 * every kernel set; the scan stays finite when Δ·A is hugely negative; cross-entropy with extreme
 * logits stays finite. Accuracy is judged against float64 formulas evaluated here.
 */
const SETUPS = [
  { kernels: 'wasm' as const, dtype: 'f32' as const, rel: 2e-6 },
  { kernels: 'ref' as const, dtype: 'f32' as const, rel: 2e-6 },
  { kernels: 'ref' as const, dtype: 'f64' as const, rel: 1e-13 },
];
const xs = Array.from({ length: 2001 }, (_, i) => -100 + i * 0.1);
const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
// float64 ground truth (log1p/expm1 forms are exact to a few ulp in double precision)
const TRUTH = {
  silu: (x: number) => x * sig(x),
  dsilu: (x: number) => sig(x) * (1 + x * (1 - sig(x))),
  softplus: (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
  dsoftplus: sig,
};

function expectAccurate(got: ArrayLike<number>, truth: (x: number) => number, rel: number, what: string, inputs: ArrayLike<number>): void {
  // inputs are the values as stored (float32-rounded where the kernels are f32)
  for (let i = 0; i < inputs.length; i++) {
    const t = truth(inputs[i]);
    expect(Number.isFinite(got[i]), `${what}(${inputs[i]}) = ${got[i]}`).toBe(true);
    // below float32's normal range only the absolute error is meaningful
    expect(Math.abs(got[i] - t), `${what}(${inputs[i]}) = ${got[i]}, truth ${t}`).toBeLessThanOrEqual(rel * Math.abs(t) + 1e-37);
  }
}

describe.each(SETUPS)('numerical stability, $kernels kernels in $dtype', ({ kernels, dtype, rel }) => {
  const e = new Engine({ kernels, dtype });
  const n = xs.length;
  const x = e.persistent([n]).set(xs);
  const ones = e.persistent([n]).set(xs.map(() => 1));
  const fresh = (): Tensor => e.persistent([n]);

  it('silu and its gradient', () => {
    const y = fresh();
    e.k.siluForward(y, x, n);
    expectAccurate(y.toFloat64(), TRUTH.silu, rel, 'silu', x.toFloat64());
    const g = fresh();
    e.k.siluBackward(g, ones, x, n);
    expectAccurate(g.toFloat64(), TRUTH.dsilu, rel, "silu'", x.toFloat64());
  });

  it('softplus and its gradient', () => {
    const y = fresh();
    e.k.softplusForward(y, x, n);
    expectAccurate(y.toFloat64(), TRUTH.softplus, rel, 'softplus', x.toFloat64());
    const g = fresh();
    e.k.softplusBackward(g, ones, x, n);
    expectAccurate(g.toFloat64(), TRUTH.dsoftplus, rel, "softplus'", x.toFloat64());
  });

  it('-exp(x) and its gradient (up to the largest finite float32 exponent)', () => {
    const lim = dtype === 'f32' ? 88 : 100;
    const ins = xs.filter((v) => v <= lim);
    const xi = e.persistent([ins.length]).set(ins),
      y = e.persistent([ins.length]),
      g = e.persistent([ins.length]);
    e.k.negExpForward(y, xi, ins.length);
    expectAccurate(y.toFloat64(), (v) => -Math.exp(v), rel, '-exp', xi.toFloat64());
    e.k.negExpBackward(g, e.persistent([ins.length]).set(ins.map(() => 1)), y, ins.length);
    expectAccurate(g.toFloat64(), (v) => -Math.exp(v), rel, "(-exp)'", xi.toFloat64());
  });

  it('the scan stays finite when Δ·A reaches -1e4, forward and backward', () => {
    const B = 1,
      L = 5,
      ED = 2,
      N = 4;
    const xv = e.persistent([B, L, ED]).set([1, -2, 3, 100, -100, 5, 0.5, 1, 2, 3]);
    const delta = e.persistent([B, L, ED]).set([100, 1e-4, 50, 100, 0.001, 100, 20, 3, 100, 100]);
    const A = e.persistent([ED, N]).set([-100, -1, -50, -0.01, -100, -100, -1e-3, -20]);
    const Bm = e.persistent([B, L, N]).set(Array.from({ length: L * N }, (_, i) => ((i * 7) % 5) - 2));
    const Cm = e.persistent([B, L, N]).set(Array.from({ length: L * N }, (_, i) => ((i * 3) % 7) - 3));
    const D = e.persistent([ED]).set([1, -1]);
    const y = e.persistent([B, L, ED]),
      h = e.persistent([B, ED, N]),
      hck = e.persistent([B, 2, ED, N]);
    e.k.scanForward(y, h, hck, xv, delta, A, Bm, Cm, D, B, L, ED, N, 4);
    for (const v of y.toFloat64()) expect(Number.isFinite(v)).toBe(true);
    const grads = [[B, L, ED], [B, L, ED], [ED, N], [B, L, N], [B, L, N], [ED]].map((s) => e.persistent(s));
    const dy = e.persistent([B, L, ED]).set(Array.from({ length: L * ED }, () => 1));
    e.k.scanBackward(
      grads[0],
      grads[1],
      grads[2],
      grads[3],
      grads[4],
      grads[5],
      null,
      dy,
      xv,
      delta,
      A,
      Bm,
      Cm,
      D,
      hck,
      e.persistent([5, N]),
      B,
      L,
      ED,
      N,
      4,
    );
    for (const g of grads) for (const v of g.toFloat64()) expect(Number.isFinite(v)).toBe(true);
  });

  it('cross-entropy with logits of ±100 is finite and exact', () => {
    const V = 5,
      rows = 2;
    const logits = e.persistent([rows, V]).set([100, -100, 0, 99, -50, -100, -100, -100, -100, 100]);
    const targets = e.persistent([rows], 'i32').set([3, 0]);
    const losses = e.persistent([rows]),
      lse = e.persistent([rows]);
    e.k.crossEntropyForward(losses, lse, logits, targets, rows, V);
    const l = losses.toFloat64();
    expect(l[0]).toBeCloseTo(1 + Math.log1p(Math.exp(-1)), 5);
    expect(l[1]).toBeCloseTo(200, 3);
  });
});
