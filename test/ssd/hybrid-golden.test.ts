import { describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { kvNames } from '../../src/models/transformer/runner.js';
import { expectClose } from '../helpers/compare.js';
import { GOLDEN_SETUPS, golden } from '../helpers/golden.js';

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
    const { e, model } = load();
    for (const t of model.params.values()) t.grad = e.persistent(t.shape);
    const loss = valueAndGrad(e, () => model.loss(gold.ids, gold.targets, gold.B, gold.L));
    expect(Math.abs(loss - gold.get('loss')[0])).toBeLessThan(tol * 10);
    for (const [name, t] of model.params) expectClose(t.grad!.toFloat64(), gold.get(`grad.${name}`), tol * 10, `grad.${name}`);
    expect(model.params.size).toBe([...gold.g.tensors.keys()].filter((k) => k.startsWith('grad.')).length);
  });
});
