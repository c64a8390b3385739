import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { Mamba3LM } from '../../src/models/mamba3/model.js';
import { createMamba3Config } from '../../src/models/mamba3/config.js';
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
