import { describe, expect, it } from 'vitest';
import { Engine, Tape } from '../../src/ops/index.js';
import * as op from '../../src/ops/ops.js';

describe('distillation loss', () => {
  it('matches a case worked by hand, value and gradient', () => {
    // student logits [0, 0]; teacher [2 ln 3, 0] at T = 2 -> p = (3/4, 1/4), q = (1/2, 1/2); target 0; alpha 1/4
    //   KL(p ‖ q) = 3/4 ln(3/2) + 1/4 ln(1/2);  CE = ln 2
    //   loss = 1/4 · 2² · KL + 3/4 · ln 2
    //   d/ds = 1/4 · 2 · (q − p) + 3/4 · (softmax(s) − onehot(0)) = 1/2 · (−1/4, 1/4) + 3/4 · (−1/2, 1/2) = (−1/2, 1/2)
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const s = e.persistent([1, 2]).set([0, 0]);
    s.requiresGrad = true;
    s.grad = e.persistent([1, 2]);
    const t = e.persistent([1, 2]).set([2 * Math.log(3), 0]);
    const tape = new Tape();
    e.tape = tape;
    const value = e.scope(() => {
      const loss = op.distillLoss(e, s, t, e.ids([0]), 2, 0.25);
      e.tape = null;
      tape.backward(e, loss);
      return loss.data()[0];
    });
    expect(value).toBeCloseTo(0.25 * 4 * (0.75 * Math.log(1.5) + 0.25 * Math.log(0.5)) + 0.75 * Math.log(2), 12);
    expect(Array.from(s.grad.data())).toEqual([expect.closeTo(-0.5, 12), expect.closeTo(0.5, 12)]);
  });

  it('alpha 0 is the next-token cross-entropy; equal distributions add no soft loss', () => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const s = e.persistent([2, 3]).set([1, -2, 0.5, 0, 3, -1]);
    const targets = e.ids([2, 1]);
    const ce = e.scope(() => op.crossEntropy(e, s, targets).data()[0]);
    expect(e.scope(() => op.distillLoss(e, s, e.persistent([2, 3]).set([9, 9, 9, 0, 0, 0]), targets, 3, 0).data()[0])).toBeCloseTo(ce, 12);
    expect(e.scope(() => op.distillLoss(e, s, s, targets, 3, 1).data()[0])).toBeCloseTo(0, 12);
  });
});
