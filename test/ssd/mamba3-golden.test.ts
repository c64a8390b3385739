import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { expectClose } from '../helpers/compare.js';
import { GOLDEN_SETUPS, expectGoldenGradients, golden } from '../helpers/golden.js';
import { stepLogits } from '../helpers/models.js';

/**
 * Mamba-3 in state-spaces' layout (ssm_cfg.layer "Mamba3", pytorch_model.bin, padded vocabulary),
 * SISO (mamba3-tiny) and MIMO with 3 ranks and an untied head (mamba3-mimo-tiny), against the
 * independent float64 PyTorch transcription in tools/mamba3_reference.py, whose parallel logits
 * come from the attention form of the trapezoidal recurrence: logits in both modes, the loss, every
 * gradient, and the state after the sequence.
 */
const CASES = ['mamba3-tiny', 'mamba3-mimo-tiny'].flatMap((fixture) => GOLDEN_SETUPS.map((s) => ({ fixture, ...s })));

describe.each(CASES)('$fixture against the PyTorch reference, kernels $kernels, $dtype', ({ fixture, kernels, dtype, tol }) => {
  const gold = golden(fixture);
  const load = () => {
    const e = new Engine({ kernels, dtype });
    return { e, ...loadModel(e, `test/fixtures/${fixture}`) };
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
      { logits: out, state } = stepLogits(model, gold.ids, B, L);
    expectClose(out, gold.get('logits_step'), tol, 'step logits');
    for (const name of ['angle.0', 'ssm.0', 'kprev.0', 'vprev.0', 'angle.1', 'ssm.1', 'kprev.1', 'vprev.1']) {
      expectClose(state.tensors.get(name)!.toFloat64(), gold.get(name), tol, name);
    }
  });

  it('loss and the gradient of every parameter match', () => {
    const { model } = load();
    expectGoldenGradients(model, gold, tol * 10);
  });
});
