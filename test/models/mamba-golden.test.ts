import { describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { SCAN_CHUNK } from '../../src/ops/ops.js';
import { expectClose } from '../helpers/compare.js';
import { GOLDEN_SETUPS, golden } from '../helpers/golden.js';

/**
 * The model against golden values written by an independent PyTorch implementation
 * (tools/mamba_reference.py, tools/make_fixtures.py; Mamba-2: tools/mamba2_reference.py,
 * tools/make_mamba2_fixtures.py, in transformers' and state-spaces' layouts): logits in both
 * modes, the loss, the gradient of every parameter, and the recurrent state left after the sequence.
 */
// mamba-tiny-c has L = 48: the checkpointed scan backward (chunks of SCAN_CHUNK = 16) crosses chunk boundaries
const FIXTURES = ['mamba-tiny-a', 'mamba-tiny-b', 'mamba-tiny-c', 'mamba2-tiny-a', 'mamba2-tiny-b'];
const SETUPS = GOLDEN_SETUPS;

describe.each(FIXTURES)('%s against the PyTorch reference', (name) => {
  const gold = golden(name);

  describe.each(SETUPS)('kernels $kernels, $dtype', ({ kernels, dtype, tol }) => {
    const load = () => {
      const e = new Engine({ kernels, dtype });
      return { e, model: loadModel(e, `test/fixtures/${name}`).model };
    };

    it('parallel forward gives the golden logits', () => {
      const { e, model } = load();
      const logits = e.scope(() => model.forward(gold.ids, gold.B, gold.L).toFloat64());
      expectClose(logits, gold.get('logits'), tol, 'logits');
    });

    it('successive steps give the golden step logits and final state', () => {
      const { model } = load();
      const { B, L } = gold,
        V = model.config.vocabSize;
      const state = model.createState(B);
      const out = new Float64Array(B * L * V);
      for (let t = 0; t < L; t++) {
        const ids = Int32Array.from({ length: B }, (_, b) => gold.ids[b * L + t]);
        const logits = model.step(ids, state);
        for (let b = 0; b < B; b++) out.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
      }
      expectClose(out, gold.get('logits_step'), tol, 'step logits');
      for (let i = 0; i < model.config.nLayer; i++) {
        expectClose(state.tensors.get(`conv.${i}`)!.toFloat64(), gold.get(`conv_state.${i}`), tol, `conv_state.${i}`);
        expectClose(state.tensors.get(`ssm.${i}`)!.toFloat64(), gold.get(`ssm_state.${i}`), tol, `ssm_state.${i}`);
      }
    });

    it('prefill then steps continue exactly', () => {
      const { model } = load();
      const { B, L } = gold,
        V = model.config.vocabSize,
        P = 7;
      const state = model.createState(B);
      const first = Int32Array.from({ length: B * P }, (_, i) => gold.ids[Math.floor(i / P) * L + (i % P)]);
      const pre = model.prefill(first, P, state);
      const ref = gold.get('logits');
      const rows = (t: number, src: ArrayLike<number>) =>
        Float64Array.from({ length: B * V }, (_, i) => src[(Math.floor(i / V) * L + t) * V + (i % V)]);
      expectClose(pre, rows(P - 1, ref), tol, 'prefill logits');
      for (let t = P; t < L; t++) {
        const logits = model.step(
          Int32Array.from({ length: B }, (_, b) => gold.ids[b * L + t]),
          state,
        );
        expectClose(logits, rows(t, ref), tol, `step ${t} after prefill`);
      }
    });

    it('loss and the gradient of every parameter match', () => {
      const { e, model } = load();
      for (const t of model.params.values()) t.grad = e.persistent(t.shape);
      const loss = valueAndGrad(e, () => model.loss(gold.ids, gold.targets, gold.B, gold.L));
      expect(Math.abs(loss - gold.get('loss')[0])).toBeLessThan(tol * 10);
      for (const [pname, t] of model.params) {
        const gname = `grad.${pname}`;
        expect(gold.g.tensors.has(gname), `golden has ${gname}`).toBe(true);
        expectClose(t.grad!.toFloat64(), gold.get(gname), tol * 10, gname);
      }
    });
  });
});

describe('the long golden sequence', () => {
  it('mamba-tiny-c spans at least 40 steps: three chunks of the checkpointed scan', () => {
    const { L } = golden('mamba-tiny-c');
    expect(L).toBeGreaterThanOrEqual(40);
    expect(Math.ceil(L / SCAN_CHUNK)).toBeGreaterThanOrEqual(3);
  });
});
