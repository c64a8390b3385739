import { describe, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { kvNames } from '../../src/models/transformer/runner.js';
import { expectClose } from '../helpers/compare.js';
import { GOLDEN_SETUPS, expectGoldenGradients, golden } from '../helpers/golden.js';
import { stepLogits } from '../helpers/models.js';

/**
 * A Bamba-layout hybrid (transformers' BambaForCausalLM names and config keys: Mamba-2 layers 0
 * and 2, grouped-query attention with partial rotary embeddings at layer 1) against golden values
 * from the independent PyTorch transcription in tools/hybrid_reference.py: logits in both modes,
 * the loss, every gradient, and the state after the sequence (conv windows, SSM states, KV cache).
 */
const gold = golden('bamba-tiny');

describe.each(GOLDEN_SETUPS)('bamba-tiny against the PyTorch reference, kernels $kernels, $dtype', ({ kernels, dtype, tol }) => {
  const load = () => {
    const e = new Engine({ kernels, dtype });
    return { e, model: loadModel(e, 'test/fixtures/bamba-tiny').model };
  };

  it('parallel forward gives the golden logits', () => {
    const { e, model } = load();
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
    for (const i of [0, 2]) {
      expectClose(state.tensors.get(`conv.${i}`)!.toFloat64(), gold.get(`conv_state.${i}`), tol, `conv_state.${i}`);
      expectClose(state.tensors.get(`ssm.${i}`)!.toFloat64(), gold.get(`ssm_state.${i}`), tol, `ssm_state.${i}`);
    }
    // golden k.1 / v.1 are (B, L, Hkv = 1, hd); frugal keeps one (capacity, hd) cache per stream and kv head
    const hd = 8;
    for (const [which, at] of [
      ['k', 0],
      ['v', 1],
    ] as const) {
      const want = gold.get(`${which}.1`),
        got = new Float64Array(want.length);
      for (let b = 0; b < B; b++)
        got.set(
          state.tensors
            .get(kvNames(1, b, 0)[at])!
            .toFloat64()
            .subarray(0, L * hd),
          b * L * hd,
        );
      expectClose(got, want, tol, `${which} cache`);
    }
  });

  it('loss and the gradient of every parameter match', () => {
    const { model } = load();
    expectGoldenGradients(model, gold, tol * 10);
  });
});
