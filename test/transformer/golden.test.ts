import { describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { TransformerLM } from '../../src/models/transformer/model.js';
import { kvNames } from '../../src/models/transformer/runner.js';
import { expectClose } from '../helpers/compare.js';
import { GOLDEN_SETUPS, golden } from '../helpers/golden.js';

/**
 * The transformer baseline against golden values written by an independent PyTorch implementation
 * (tools/llama_reference.py, tools/llama_make_fixtures.py) from checkpoints in the Hugging Face
 * Llama layout: logits of the parallel forward, of successive KV-cache steps and of a prefill, the
 * keys and values left in the cache, the loss and the gradient of every parameter.
 */
const FIXTURES = ['llama-tiny-a', 'llama-tiny-b'];
const SETUPS = GOLDEN_SETUPS;

describe.each(FIXTURES)('%s against the PyTorch reference', (name) => {
  const gold = golden(name);
  describe.each(SETUPS)('kernels $kernels, $dtype', ({ kernels, dtype, tol }) => {
    const load = () => {
      const e = new Engine({ kernels, dtype });
      const model = loadModel(e, `test/fixtures/${name}`).model;
      expect(model).toBeInstanceOf(TransformerLM);
      return { e, model: model as TransformerLM };
    };
    const row = (t: number, V: number, src: ArrayLike<number>) =>
      Float64Array.from({ length: gold.B * V }, (_, i) => src[(Math.floor(i / V) * gold.L + t) * V + (i % V)]);

    it('parallel forward gives the golden logits', () => {
      const { e, model } = load();
      const logits = e.scope(() => model.forward(gold.ids, gold.B, gold.L).toFloat64());
      expectClose(logits, gold.get('logits'), tol, 'logits');
    });

    it('successive KV-cache steps give the golden step logits and the golden keys and values', () => {
      const { model } = load();
      const { B, L } = gold,
        V = model.config.vocabSize,
        { nKvHead: Hkv, headDim: hd } = model.config;
      const state = model.createState(B);
      const out = new Float64Array(B * L * V);
      for (let t = 0; t < L; t++) {
        const logits = model.step(
          Int32Array.from({ length: B }, (_, b) => gold.ids[b * L + t]),
          state,
        );
        for (let b = 0; b < B; b++) out.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
      }
      expectClose(out, gold.get('logits_step'), tol, 'step logits');
      expect(state.position).toBe(L);
      for (let i = 0; i < model.config.nLayer; i++) {
        // golden caches are (B, Hkv, L, hd); frugal keeps one (capacity, hd) block per stream and kv head
        const [gk, gv] = [gold.get(`key_cache.${i}`), gold.get(`value_cache.${i}`)];
        for (let b = 0; b < B; b++) {
          for (let g = 0; g < Hkv; g++) {
            const [kn, vn] = kvNames(i, b, g),
              at = (b * Hkv + g) * L * hd;
            expectClose(
              state.tensors
                .get(kn)!
                .toFloat64()
                .subarray(0, L * hd),
              gk.subarray(at, at + L * hd),
              tol,
              `${kn}`,
            );
            expectClose(
              state.tensors
                .get(vn)!
                .toFloat64()
                .subarray(0, L * hd),
              gv.subarray(at, at + L * hd),
              tol,
              `${vn}`,
            );
          }
        }
      }
    });

    it('a prefill, a second prefill and then steps continue exactly', () => {
      const { model } = load();
      const { B, L } = gold,
        V = model.config.vocabSize,
        ref = gold.get('logits');
      const cols = (t0: number, t1: number) =>
        Int32Array.from({ length: B * (t1 - t0) }, (_, i) => gold.ids[Math.floor(i / (t1 - t0)) * L + t0 + (i % (t1 - t0))]);
      const state = model.createState(B);
      expectClose(model.prefill(cols(0, 4), 4, state), row(3, V, ref), tol, 'first prefill');
      expectClose(model.prefill(cols(4, 9), 5, state), row(8, V, ref), tol, 'second prefill');
      for (let t = 9; t < L; t++) expectClose(model.step(cols(t, t + 1), state), row(t, V, ref), tol, `step ${t}`);
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
