import { describe, expect, it } from 'vitest';
import { Engine, Tape, checkRuleGrads, valueAndGrad } from '../../src/ops/index.js';
import * as op from '../../src/ops/ops.js';

/** The tape's check of what each gradient rule returns: one gradient per input, the right buffers. */
describe('tape', () => {
  const e = new Engine({ kernels: 'ref' });
  const a = e.persistent([3]).set([1, 2, 3]),
    b = e.persistent([3]).set([4, 5, 6]);
  a.requiresGrad = true;
  a.grad = e.persistent([3]);

  it('records a node per op with the op name, inputs and sizes', () => {
    const tape = new Tape();
    e.tape = tape;
    try {
      e.scope(() => op.mul(e, a, b));
    } finally {
      e.tape = null;
    }
    expect(tape.nodes).toHaveLength(1);
    const [n] = tape.nodes;
    expect(n.op).toBe('mul');
    expect(n.inputs).toEqual([a, b]);
    expect(n.attrs).toEqual({ n: 3 });
  });

  it('runs the rules: d(Σ a⊙b)/da = b', () => {
    a.grad!.zero();
    const loss = valueAndGrad(e, () => {
      const p = op.mul(e, a, b); // (3)
      const s = op.linear(e, op.add(e, p, p), e.fromValues([1, 3], [0.5, 0.5, 0.5]), null);
      return s; // (1) = Σ a⊙b
    });
    expect(loss).toBeCloseTo(32, 5);
    expect(Array.from(a.grad!.data())).toEqual([4, 5, 6]);
  });

  it('refuses a rule that returns the wrong number of gradients or the wrong buffers', () => {
    const out = e.persistent([3]);
    const node = { op: 'add', out, inputs: [a, b], saved: [], attrs: { n: 3 } } as const;
    expect(() => checkRuleGrads(node, [a.grad])).toThrow(/'add' returned 1 gradients for 2 inputs/);
    expect(() => checkRuleGrads(node, [a.grad, null, null])).toThrow(/returned 3 gradients for 2 inputs/);
    expect(() => checkRuleGrads(node, [null, null])).toThrow(/input 0 needs its gradient buffer/);
    expect(() => checkRuleGrads(node, [a.grad, a.grad])).toThrow(/input 1 needs no gradient/);
    expect(() => checkRuleGrads(node, [a.grad, null])).not.toThrow();
  });
});
