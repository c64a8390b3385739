import { describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { Mamba3LM } from '../../src/models/mamba3/model.js';
import { createMamba3Config, mamba3ConfigFromOriginal, mamba3ParameterCount } from '../../src/models/mamba3/config.js';
import type { Mamba3Options } from '../../src/models/mamba3/config.js';
import type { KernelKind } from '../../src/kernels/backend.js';
import { expectClose } from '../helpers/compare.js';
import { checkModelGradients, expectStepsMatchForward, perturb, randomIds } from '../helpers/models.js';

const SMALL: Mamba3Options = { dModel: 16, nLayer: 2, dState: 8, headDim: 8, nGroups: 2, vocabSize: 40 };
const MIMO: Mamba3Options = { ...SMALL, isMimo: true, mimoRank: 2 };

function makeModel(kernels: KernelKind, seed = 3, opts = SMALL) {
  const e = new Engine({ kernels });
  const model = new Mamba3LM(e, createMamba3Config(opts)).init(Rng.fromSeed(seed));
  perturb(model, Rng.fromSeed(seed + 100), 0.05);
  return { e, model };
}

const SETUPS = (['wasm', 'ref'] as KernelKind[]).flatMap((kernels) => [
  { kernels, kind: 'SISO', opts: SMALL },
  { kernels, kind: 'MIMO rank 2', opts: MIMO },
]);

describe.each(SETUPS)('Mamba-3 $kind invariants, $kernels kernels', ({ kernels, opts }) => {
  it('parallel forward over 40 tokens equals 40 successive steps', () => {
    const { model } = makeModel(kernels, 3, opts);
    expectStepsMatchForward(model, 2, 40, 1);
  });

  it('steps continue from the state prefills leave', () => {
    const { e, model } = makeModel(kernels, 3, opts);
    const L = 36,
      V = 40,
      ids = randomIds(2, L, V);
    const par = e.scope(() => model.forward(ids, 1, L).toFloat64());
    const row = (t: number) => par.subarray(t * V, (t + 1) * V),
      state = model.createState(1);
    expectClose(model.prefill(ids.subarray(0, 1), 1, state), row(0), 1e-5, 'prefill of 1');
    expectClose(model.prefill(ids.subarray(1, 20), 19, state), row(19), 1e-5, 'prefill of 19');
    for (let t = 20; t < L; t++) expectClose(model.step(ids.subarray(t, t + 1), state), row(t), 1e-5, `step ${t}`);
    expect([...model.savedStateShapes(1).keys()].slice(0, 4)).toEqual(['angle.0', 'ssm.0', 'kprev.0', 'vprev.0']);
  });
});

describe.each([
  ['SISO', SMALL],
  ['MIMO rank 2', MIMO],
  ['MIMO rank 3, odd head size, every state channel turned', { ...MIMO, mimoRank: 3, headDim: 5, dModel: 10, ropeFraction: 1 }],
] as [string, Mamba3Options][])('Mamba-3 %s: wasm and ref kernels agree on a whole model', (_name, opts) => {
  // f32 on both sides; the wasm scan sums the state in lanes of four and takes exp/tanh/sin/cos from
  // f32 polynomials, and the projections' GEMMs sum in another order: 1e-5 of the largest logit
  // covers that over 2 layers and 30 tokens (a wrong turn, rank or layout errs by far more)
  it('gives the same logits over 2 sequences of 30 tokens and the same logits on decoding', () => {
    const ids = randomIds(4, 2 * 30, 40);
    const runs = (['wasm', 'ref'] as KernelKind[]).map((k) => {
      const { e, model } = makeModel(k, 5, opts);
      expect(e.k.wasmKernels.includes('mamba3MimoScanForward')).toBe(k === 'wasm');
      const full = e.scope(() => model.forward(ids, 2, 30).toFloat64()),
        state = model.createState(1);
      model.prefill(ids.subarray(0, 29), 29, state);
      return { full, step: Float64Array.from(model.step(ids.subarray(29, 30), state)) };
    });
    expectClose(runs[0].full, runs[1].full, 1e-5, 'forward logits, wasm vs ref');
    expectClose(runs[0].step, runs[1].step, 1e-5, 'decoded logits, wasm vs ref');
  });

  it('gives the same loss and gradients (the backward reads the wasm forward checkpoints)', () => {
    const ids = randomIds(6, 2 * 20, 40),
      targets = randomIds(7, 2 * 20, 40);
    const runs = (['wasm', 'ref'] as KernelKind[]).map((k) => {
      const { e, model } = makeModel(k, 5, opts);
      for (const p of model.params.values()) p.grad = e.persistent(p.shape);
      const loss = valueAndGrad(e, () => model.loss(ids, targets, 2, 20));
      return { loss, grads: [...model.params.entries()].map(([n, p]) => [n, p.grad!.toFloat64()] as const) };
    });
    expect(Math.abs(runs[0].loss - runs[1].loss)).toBeLessThan(1e-5);
    // gradients are differences of f32 sums: 1e-4 of the largest, as the Mamba-1 whole-model check
    runs[0].grads.forEach(([n, g], i) => expectClose(g, runs[1].grads[i][1], 1e-4, `gradient of ${n}`));
  });
});

describe('float64 finite-difference gradient check of a whole 2-layer Mamba-3 LM', () => {
  it.each([
    ['tied head, 2 groups', {}],
    ['untied head, one group, every state channel turned', { tieWordEmbeddings: false, nGroups: 1, ropeFraction: 1 }],
    ['MIMO rank 3, 2 groups', { isMimo: true, mimoRank: 3 }],
    ['MIMO rank 2, untied head, every state channel turned', { isMimo: true, mimoRank: 2, tieWordEmbeddings: false, ropeFraction: 1 }],
  ] as const)('%s: loss w.r.t. every parameter tensor (sampled elements)', (_, extra) => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const cfg = createMamba3Config({ dModel: 8, nLayer: 2, dState: 6, headDim: 4, nGroups: 2, vocabSize: 11, ...extra });
    const rng = Rng.fromSeed(7);
    const model = new Mamba3LM(e, cfg).init(rng);
    perturb(model, rng, 0.2);
    checkModelGradients(model, rng, 2, 9, 3, 1e-5, 1e-3);
  });
});

describe('Mamba-3 MIMO configuration', () => {
  it('counts the rank-shaped biases and mimo_x/z/o as the parameter table has them', () => {
    const e = new Engine({ kernels: 'ref' });
    for (const o of [SMALL, MIMO, { ...MIMO, mimoRank: 3, tieWordEmbeddings: false }]) {
      const m = new Mamba3LM(e, createMamba3Config(o));
      let n = 0;
      for (const t of m.params.values()) n += t.size;
      expect(mamba3ParameterCount(m.config)).toBe(n);
    }
    // (H 4, R 2, P 8) for each of mimo_x, mimo_z, mimo_o; B_bias and C_bias (H 4, R 2, N 8)
    const mimo = new Mamba3LM(e, createMamba3Config(MIMO));
    expect(mimo.params.get('backbone.layers.0.mixer.mimo_o')!.shape).toEqual([4, 2, 8]);
    expect(mimo.params.get('backbone.layers.1.mixer.B_bias')!.shape).toEqual([4, 2, 8]);
    e.dispose();
  });

  it('reads is_mimo and mimo_rank (default 4) from ssm_cfg, and refuses what it cannot run', () => {
    const base = { d_model: 16, n_layer: 1, vocab_size: 40, ssm_cfg: { layer: 'Mamba3', d_state: 8, headdim: 8 } };
    const read = (ssm: Record<string, unknown>) =>
      mamba3ConfigFromOriginal({ ...base, ssm_cfg: { ...base.ssm_cfg, ...ssm } }, 'c.json').config;
    expect(read({ is_mimo: true })).toMatchObject({ isMimo: true, mimoRank: 4 });
    expect(read({ mimo_rank: 4 })).toMatchObject({ isMimo: false, mimoRank: 1 }); // the reference ignores the rank without is_mimo
    expect(() => read({ is_mimo: true, d_state: 7 })).toThrow(/MIMO needs an even state size, got 7/);
    expect(() => read({ is_mimo: true, is_outproj_norm: true })).toThrow(/is_outproj_norm true .* is not supported/);
    expect(() => createMamba3Config({ ...SMALL, mimoRank: 2 })).toThrow(/mimo_rank 2 needs is_mimo true/);
  });
});
