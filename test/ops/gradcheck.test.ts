import { describe, expect, it } from 'vitest';
import { Engine, Tape } from '../../src/ops/index.js';
import * as op from '../../src/ops/ops.js';
import { causalAttention, rope, swiglu } from '../../src/ops/attention.js';
import { dtSoftplus, gatedRmsnorm, ropePartial, ssd } from '../../src/ops/ssd.js';
import { mamba3Scan, mimoDown, mimoUp, negHeavyTail, rmsnormRuns, sigmoid } from '../../src/ops/mamba3.js';
import type { Tensor } from '../../src/tensor/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { checkModelGradients, perturb } from '../helpers/models.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';

/**
 * Float64 central finite differences against every op's hand-written gradient rule, and against
 * the whole model's loss. For an op y = f(x…), the scalar probe is S = Σ y ⊙ R with a fixed random
 * R, so every output element contributes. Relative error = |analytic − numeric| / max(|analytic|, |numeric|, 1e-6·scale).
 */
const H = 1e-6;
const TOL = 1e-5;
/** Step for the whole-model check: the loss is O(1), so a larger step keeps round-off (≈ 1e-16·loss/h) far below the tolerance. */
const HM = 1e-3;

function randn(rng: Rng, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => rng.normal() * scale);
}

interface Case {
  name: string;
  inputs: (e: Engine, rng: Rng) => Tensor[]; // differentiable inputs (f64)
  run: (e: Engine, xs: Tensor[]) => Tensor; // the op under test
}

function probe(e: Engine, c: Case, xs: Tensor[], R: number[]): number {
  return e.scope(() => {
    const y = c.run(e, xs).toFloat64();
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * R[i];
    return s;
  });
}

function check(c: Case, maxPerInput = 40): void {
  const e = new Engine({ kernels: 'ref', dtype: 'f64' });
  const rng = Rng.fromSeed(1234);
  const xs = c.inputs(e, rng);
  for (const x of xs) {
    x.requiresGrad = true;
    x.grad = e.persistent(x.shape);
  }
  // analytic
  const tape = new Tape();
  e.tape = tape;
  const R = e.scope(() => {
    const y = c.run(e, xs);
    const r = randn(rng, y.size);
    e.tape = null;
    tape.backwardFrom(e, y, r);
    return r;
  });
  const analytic = xs.map((x) => (x.grad ? x.grad.toFloat64() : new Float64Array(x.size)));
  // numeric, on up to maxPerInput sampled elements of each input
  let worst = 0;
  let scale = 0;
  for (const a of analytic) for (const v of a) scale = Math.max(scale, Math.abs(v));
  xs.forEach((x, xi) => {
    const n = x.size;
    const idx = n <= maxPerInput ? [...Array(n).keys()] : Array.from({ length: maxPerInput }, () => rng.int(n));
    for (const i of idx) {
      const v = x.floats()[i];
      x.floats()[i] = v + H;
      const fp = probe(e, c, xs, R);
      x.floats()[i] = v - H;
      const fm = probe(e, c, xs, R);
      x.floats()[i] = v;
      const num = (fp - fm) / (2 * H),
        an = analytic[xi][i];
      // a difference within the central difference's own rounding (ε·|S|/H) says nothing: an
      // exactly zero gradient (Mamba-3's first angle: only angle differences matter) reads as noise
      if (Math.abs(an - num) <= (8 * Number.EPSILON * Math.max(Math.abs(fp), Math.abs(fm))) / H) continue;
      const rel = Math.abs(an - num) / Math.max(Math.abs(an), Math.abs(num), 1e-6 * scale, 1e-12);
      if (rel > worst) worst = rel;
      expect(rel, `${c.name}: input ${xi}[${i}] analytic ${an} numeric ${num}`).toBeLessThanOrEqual(TOL);
    }
  });
  expect(worst).toBeLessThanOrEqual(TOL);
}

const t = (e: Engine, rng: Rng, shape: number[], scale = 1, offset = 0) =>
  e.persistent(shape).set(
    randn(
      rng,
      shape.reduce((a, b) => a * b, 1),
      scale,
    ).map((v) => v + offset),
  );

const CASES: Case[] = [
  { name: 'linear', inputs: (e, r) => [t(e, r, [2, 3, 5]), t(e, r, [4, 5]), t(e, r, [4])], run: (e, [x, w, b]) => op.linear(e, x, w, b) },
  { name: 'linear without bias', inputs: (e, r) => [t(e, r, [7, 3]), t(e, r, [6, 3])], run: (e, [x, w]) => op.linear(e, x, w, null) },
  // LoRA: the update alone, and a product with its adapter (x, W, b, A, B all checked)
  {
    name: 'lora update (r 2, scale 1.7)',
    inputs: (e, r) => [t(e, r, [2, 3, 5]), t(e, r, [2, 5]), t(e, r, [4, 2])],
    run: (e, [x, A, B]) => op.loraUpdate(e, x, { A, B, scale: 1.7, dropout: 0, draw: null }, 4),
  },
  {
    name: 'linear with a LoRA adapter (r 3)',
    inputs: (e, r) => [t(e, r, [7, 6]), t(e, r, [5, 6]), t(e, r, [5]), t(e, r, [3, 6]), t(e, r, [5, 3])],
    run: (e, [x, w, b, A, B]) => op.linear(e, x, w, b, { A, B, scale: 0.5, dropout: 0, draw: null }),
  },
  { name: 'embedding', inputs: (e, r) => [t(e, r, [9, 4])], run: (e, [w]) => op.embedding(e, w, e.ids([3, 1, 4, 1, 5, 8, 0])) },
  { name: 'rmsnorm', inputs: (e, r) => [t(e, r, [3, 7]), t(e, r, [7], 0.5, 1)], run: (e, [x, w]) => op.rmsnorm(e, x, w, 1e-5) },
  { name: 'rmsnorm with large eps', inputs: (e, r) => [t(e, r, [4, 5], 0.1), t(e, r, [5])], run: (e, [x, w]) => op.rmsnorm(e, x, w, 0.5) },
  { name: 'add', inputs: (e, r) => [t(e, r, [11]), t(e, r, [11])], run: (e, [a, b]) => op.add(e, a, b) },
  { name: 'mul', inputs: (e, r) => [t(e, r, [11]), t(e, r, [11])], run: (e, [a, b]) => op.mul(e, a, b) },
  { name: 'mul of a tensor with itself', inputs: (e, r) => [t(e, r, [6])], run: (e, [a]) => op.mul(e, a, a) },
  { name: 'silu', inputs: (e, r) => [t(e, r, [31], 4)], run: (e, [x]) => op.silu(e, x) },
  { name: 'softplus', inputs: (e, r) => [t(e, r, [31], 4)], run: (e, [x]) => op.softplus(e, x) },
  { name: 'negExp', inputs: (e, r) => [t(e, r, [13])], run: (e, [x]) => op.negExp(e, x) },
  { name: 'sliceLast', inputs: (e, r) => [t(e, r, [3, 10])], run: (e, [x]) => op.sliceLast(e, x, 3, 4) },
  {
    name: 'conv1d',
    inputs: (e, r) => [t(e, r, [2, 9, 3]), t(e, r, [3, 1, 4]), t(e, r, [3])],
    run: (e, [x, w, b]) => op.conv1d(e, x, w, b),
  },
  {
    name: 'conv1d, K > L, no bias',
    inputs: (e, r) => [t(e, r, [1, 2, 5]), t(e, r, [5, 1, 3])],
    run: (e, [x, w]) => op.conv1d(e, x, w, null),
  },
  {
    name: 'selective scan (chunk 4, L 11)',
    inputs: (e, r) => [
      t(e, r, [2, 11, 3]),
      t(e, r, [2, 11, 3], 0.3, 0.5),
      t(e, r, [3, 5], 0.5, -1),
      t(e, r, [2, 11, 5]),
      t(e, r, [2, 11, 5]),
      t(e, r, [3]),
    ],
    run: (e, [x, d, A, Bm, Cm, D]) => op.selectiveScan(e, x, d, A, Bm, Cm, D, 4),
  },
  {
    name: 'selective scan (one chunk)',
    inputs: (e, r) => [
      t(e, r, [1, 6, 2]),
      t(e, r, [1, 6, 2], 0.3, 0.5),
      t(e, r, [2, 3], 0.5, -1),
      t(e, r, [1, 6, 3]),
      t(e, r, [1, 6, 3]),
      t(e, r, [2]),
    ],
    run: (e, [x, d, A, Bm, Cm, D]) => op.selectiveScan(e, x, d, A, Bm, Cm, D, 16),
  },
  { name: 'gatherRows (a row twice)', inputs: (e, r) => [t(e, r, [2, 3, 4])], run: (e, [x]) => op.gatherRows(e, x, e.ids([5, 0, 5, 2])) },
  { name: 'crossEntropy', inputs: (e, r) => [t(e, r, [5, 7], 2)], run: (e, [x]) => op.crossEntropy(e, x, e.ids([0, 6, 3, 3, 1])) },
  {
    name: 'distillation loss (T 2, alpha 0.7)',
    inputs: (e, r) => [t(e, r, [5, 7], 2)],
    run: (e, [x]) => op.distillLoss(e, x, e.persistent([5, 7]).set(randn(Rng.fromSeed(3), 35, 2)), e.ids([0, 6, 3, 3, 1]), 2, 0.7),
  },
  // the transformer baseline's ops (src/ops/attention.ts)
  { name: 'rope (3 heads of 4, from position 5)', inputs: (e, r) => [t(e, r, [2, 6, 12])], run: (e, [x]) => rope(e, x, 3, 50, 5) },
  { name: 'rope (1 head of 6, large theta)', inputs: (e, r) => [t(e, r, [1, 4, 6])], run: (e, [x]) => rope(e, x, 1, 10000) },
  {
    name: 'causal attention, 2 heads',
    inputs: (e, r) => [t(e, r, [2, 7, 8], 1.5), t(e, r, [2, 7, 8], 1.5), t(e, r, [2, 7, 8])],
    run: (e, [q, k, v]) => causalAttention(e, q, k, v, 2, 2),
  },
  {
    name: 'causal attention, grouped queries (4 heads, 2 kv heads), one query head of one token',
    inputs: (e, r) => [t(e, r, [1, 5, 12], 2), t(e, r, [1, 5, 6], 2), t(e, r, [1, 5, 6])],
    run: (e, [q, k, v]) => causalAttention(e, q, k, v, 4, 2),
  },
  {
    name: 'causal attention, L = 1',
    inputs: (e, r) => [t(e, r, [3, 1, 4]), t(e, r, [3, 1, 4]), t(e, r, [3, 1, 4])],
    run: (e, [q, k, v]) => causalAttention(e, q, k, v, 1, 1),
  },
  { name: 'swiglu', inputs: (e, r) => [t(e, r, [23], 4), t(e, r, [23])], run: (e, [g, u]) => swiglu(e, g, u) },
  // Mamba-2 and the hybrids (src/ops/ssd.ts)
  {
    name: 'ropePartial (2 heads of 8, 4 rotated, from position 3)',
    inputs: (e, r) => [t(e, r, [2, 5, 16])],
    run: (e, [x]) => ropePartial(e, x, 2, 4, 100, 3),
  },
  { name: 'ropePartial, all rotated', inputs: (e, r) => [t(e, r, [1, 4, 6])], run: (e, [x]) => ropePartial(e, x, 1, 6, 10000) },
  { name: 'dtSoftplus', inputs: (e, r) => [t(e, r, [2, 5, 3], 2), t(e, r, [3])], run: (e, [dt, b]) => dtSoftplus(e, dt, b, 0, Infinity) },
  {
    name: 'dtSoftplus clamped to [0.3, 1.5]',
    inputs: (e, r) => [t(e, r, [4, 6], 2), t(e, r, [6])],
    run: (e, [dt, b]) => dtSoftplus(e, dt, b, 0.3, 1.5),
  },
  {
    name: 'gatedRmsnorm, 2 groups of 4',
    inputs: (e, r) => [t(e, r, [3, 8]), t(e, r, [3, 8], 2), t(e, r, [8], 0.5, 1)],
    run: (e, [y, z, w]) => gatedRmsnorm(e, y, z, w, 4, 1e-5),
  },
  {
    name: 'gatedRmsnorm, one group, large eps',
    inputs: (e, r) => [t(e, r, [2, 6], 0.1), t(e, r, [2, 6]), t(e, r, [6])],
    run: (e, [y, z, w]) => gatedRmsnorm(e, y, z, w, 6, 0.5),
  },
  {
    name: 'ssd (chunk 4, L 11, 4 heads in 2 groups, initial state)',
    inputs: (e, r) => [
      t(e, r, [2, 11, 8]),
      t(e, r, [2, 11, 4], 0.3, 0.5),
      t(e, r, [4], 0.5, -1),
      t(e, r, [2, 11, 6]),
      t(e, r, [2, 11, 6]),
      t(e, r, [4]),
      t(e, r, [2, 4, 2, 3]),
    ],
    run: (e, [x, d, A, Bm, Cm, D, h0]) => ssd(e, x, d, A, Bm, Cm, D, h0, 4, 2, 4),
  },
  {
    name: 'ssd (one partial chunk, one group per head, zero state)',
    inputs: (e, r) => [
      t(e, r, [1, 6, 6]),
      t(e, r, [1, 6, 2], 0.3, 0.5),
      t(e, r, [2], 0.5, -1),
      t(e, r, [1, 6, 8]),
      t(e, r, [1, 6, 8]),
      t(e, r, [2]),
    ],
    run: (e, [x, d, A, Bm, Cm, D]) => ssd(e, x, d, A, Bm, Cm, D, null, 2, 2, 16),
  },
  {
    name: 'ssd (chunk 1)',
    inputs: (e, r) => [
      t(e, r, [1, 5, 2]),
      t(e, r, [1, 5, 1], 0.3, 0.5),
      t(e, r, [1], 0.5, -1),
      t(e, r, [1, 5, 3]),
      t(e, r, [1, 5, 3]),
      t(e, r, [1]),
      t(e, r, [1, 1, 2, 3]),
    ],
    run: (e, [x, d, A, Bm, Cm, D, h0]) => ssd(e, x, d, A, Bm, Cm, D, h0, 1, 1, 1),
  },
  // Mamba-3 (src/ops/mamba3.ts)
  { name: 'sigmoid', inputs: (e, r) => [t(e, r, [17], 4)], run: (e, [x]) => sigmoid(e, x) },
  {
    name: 'negHeavyTail (both branches; the floor bites at x < −1)',
    inputs: (e, r) => [t(e, r, [23], 2)],
    run: (e, [x]) => negHeavyTail(e, x, 0.5),
  },
  {
    name: 'rmsnormRuns (2 groups of 3 per row)',
    inputs: (e, r) => [t(e, r, [2, 3, 6]), t(e, r, [3], 0.5, 1)],
    run: (e, [x, w]) => rmsnormRuns(e, x, w, 1e-5),
  },
  {
    name: 'mamba3Scan (chunk 3, L 8, 4 heads in 2 groups, 2 of 3 pairs turned)',
    inputs: (e, r) => [
      t(e, r, [2, 8, 8]),
      t(e, r, [2, 8, 4], 0.3, -0.5),
      t(e, r, [2, 8, 4], 0.2, 0.5),
      t(e, r, [2, 8, 4]),
      t(e, r, [2, 8, 12]),
      t(e, r, [2, 8, 12]),
      t(e, r, [4, 6], 0.5, 1),
      t(e, r, [4, 6], 0.5, 1),
      t(e, r, [2, 8, 2]),
      t(e, r, [4]),
    ],
    run: (e, [x, a, d, tr, Bn, Cn, Bb, Cb, ang, D]) => mamba3Scan(e, x, a, d, sigmoid(e, tr), Bn, Cn, Bb, Cb, ang, D, 4, 2, 3),
  },
  {
    name: 'mamba3Scan (one chunk, one head, odd state)',
    inputs: (e, r) => [
      t(e, r, [1, 5, 3]),
      t(e, r, [1, 5, 1], 0.3, -0.5),
      t(e, r, [1, 5, 1], 0.2, 0.5),
      t(e, r, [1, 5, 1], 0.3, 0.5),
      t(e, r, [1, 5, 5]),
      t(e, r, [1, 5, 5]),
      t(e, r, [1, 5]),
      t(e, r, [1, 5]),
      t(e, r, [1, 5, 2]),
      t(e, r, [1]),
    ],
    run: (e, [x, a, d, tr, Bn, Cn, Bb, Cb, ang, D]) => mamba3Scan(e, x, a, d, tr, Bn, Cn, Bb, Cb, ang, D, 1, 1, 16),
  },
  {
    // x (B 2, L 7, H 2 · R 3 · P 2), B and C (B, L, R 3 · G 2 · N 6), biases (H · R · N): 2 of 3 pairs turned, (i, i + 3)
    name: 'mamba3Scan MIMO (3 ranks, half-split turns, chunk 3, L 7, 2 heads in 2 groups)',
    inputs: (e, r) => [
      t(e, r, [2, 7, 12]),
      t(e, r, [2, 7, 2], 0.3, -0.5),
      t(e, r, [2, 7, 2], 0.2, 0.5),
      t(e, r, [2, 7, 2], 0.3, 0.5),
      t(e, r, [2, 7, 36]),
      t(e, r, [2, 7, 36]),
      t(e, r, [36], 0.5, 1),
      t(e, r, [36], 0.5, 1),
      t(e, r, [2, 7, 2]),
      t(e, r, [2]),
    ],
    run: (e, [x, a, d, tr, Bn, Cn, Bb, Cb, ang, D]) => mamba3Scan(e, x, a, d, tr, Bn, Cn, Bb, Cb, ang, D, 2, 2, 3, 3, true),
  },
  {
    name: 'mimoUp (3 heads, 2 ranks, 4 channels)',
    inputs: (e, r) => [t(e, r, [2, 5, 12]), t(e, r, [3, 2, 4])],
    run: (e, [x, w]) => mimoUp(e, x, w),
  },
  {
    name: 'mimoDown (3 heads, 2 ranks, 4 channels)',
    inputs: (e, r) => [t(e, r, [2, 5, 24]), t(e, r, [3, 2, 4])],
    run: (e, [o, w]) => mimoDown(e, o, w),
  },
  { name: 'swiglu of a tensor with itself', inputs: (e, r) => [t(e, r, [9], 3)], run: (e, [g]) => swiglu(e, g, g) },
];

describe('float64 finite-difference gradient checks, op by op', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_, c) => check(c));

  it('covers every op in the gradient table', async () => {
    const { GRAD_RULES } = await import('../../src/ops/grads.js');
    const names = new Set(Object.keys(GRAD_RULES));
    // linearQuant's rule is checked against the f32 product's in test/models/lora.test.ts: its forward
    // quantises x to q8, so finite differences of it are steps, not slopes
    const covered = new Set([
      'linear',
      'linearQuant',
      'lora',
      'distill',
      'embedding',
      'rmsnorm',
      'add',
      'mul',
      'silu',
      'softplus',
      'negExp',
      'sliceLast',
      'conv1d',
      'scan',
      'crossEntropy',
      'rope',
      'attention',
      'swiglu',
      'dtSoftplus',
      'gatedRmsnorm',
      'ssd',
      'ropePartial',
      'sigmoid',
      'negHeavyTail',
      'mamba3Scan',
      'mimoUp',
      'mimoDown',
    ]);
    expect([...names].sort()).toEqual([...covered].sort());
  });
});

describe('float64 finite-difference gradient check of a whole 2-layer Mamba LM', () => {
  it.each([
    ['tied head, no projection bias', { useBias: false, tieWordEmbeddings: true }],
    ['untied head, projection biases', { useBias: true, tieWordEmbeddings: false }],
  ] as const)('%s: loss w.r.t. every parameter tensor (sampled elements)', (_, extra) => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const cfg = createMambaConfig({ dModel: 8, nLayer: 2, dState: 4, dConv: 3, vocabSize: 11, ...extra });
    const rng = Rng.fromSeed(7);
    const model = new MambaLM(e, cfg).init(rng);
    perturb(model, rng, 0.2);
    checkModelGradients(model, rng, 2, 9, 6, TOL, HM);
  });
});
