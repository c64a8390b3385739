import { describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { expectClose } from '../helpers/compare.js';
import { GOLDEN_SETUPS, golden } from '../helpers/golden.js';

/**
 * Mamba-3 (SISO) in state-spaces' layout (ssm_cfg.layer "Mamba3", pytorch_model.bin, padded
 * vocabulary) against the independent float64 PyTorch transcription in tools/mamba3_reference.py,
 * whose parallel logits come from the attention form of the trapezoidal recurrence: logits in both
 * modes, the loss, every gradient, and the state after the sequence.
 */
const gold = golden('mamba3-tiny');

describe.each(GOLDEN_SETUPS)('mamba3-tiny against the PyTorch reference, kernels $kernels, $dtype', ({ kernels, dtype, tol }) => {
  const load = () => {
    const e = new Engine({ kernels, dtype });
    return { e, ...loadModel(e, 'test/fixtures/mamba3-tiny') };
  };

  it('parallel forward gives the golden logits', () => {
    const { e, model, layout } = load();
    expect(layout).toBe('original');
    expectClose(
      e.scope(() => model.forward(gold.ids, gold.B, gold.L).toFloat64()),
      gold.get('logits'),
      tol,
      'logits',
    );
  });

  it('successive steps give the golden step logits and the final state', () => {
    const { model } = load();
    const { B, L } = gold,
      V = model.config.vocabSize,
      state = model.createState(B),
      out = new Float64Array(B * L * V);
    for (let t = 0; t < L; t++) {
      const logits = model.step(
        Int32Array.from({ length: B }, (_, b) => gold.ids[b * L + t]),
        state,
      );
      for (let b = 0; b < B; b++) out.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
    }
    expectClose(out, gold.get('logits_step'), tol, 'step logits');
    for (const name of ['angle.0', 'ssm.0', 'kprev.0', 'vprev.0', 'angle.1', 'ssm.1', 'kprev.1', 'vprev.1']) {
      expectClose(state.tensors.get(name)!.toFloat64(), gold.get(name), tol, name);
    }
  });

  it('loss and the gradient of every parameter match', () => {
    const { e, model } = load();
    for (const t of model.params.values()) t.grad = e.persistent(t.shape);
    const loss = valueAndGrad(e, () => model.loss(gold.ids, gold.targets, gold.B, gold.L));
    expect(Math.abs(loss - gold.get('loss')[0])).toBeLessThan(tol * 10);
    for (const [name, t] of model.params) expectClose(t.grad!.toFloat64(), gold.get(`grad.${name}`), tol * 10, `grad.${name}`);
  });
});
