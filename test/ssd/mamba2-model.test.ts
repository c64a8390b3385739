import { describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { Mamba2LM } from '../../src/models/mamba2/model.js';
import { createMamba2Config } from '../../src/models/mamba2/config.js';
import type { Mamba2Options } from '../../src/models/mamba2/config.js';
import type { KernelKind } from '../../src/kernels/backend.js';
import { expectClose } from '../helpers/compare.js';
import { checkModelGradients, expectStepsMatchForward, perturb, randomIds } from '../helpers/models.js';

const KINDS: KernelKind[] = ['wasm', 'ref'];
const SMALL: Mamba2Options = { dModel: 16, nLayer: 2, dState: 8, headDim: 8, nGroups: 2, chunkSize: 8, vocabSize: 40 };

function makeModel(kernels: KernelKind, extra: Partial<Mamba2Options> = {}, seed = 3) {
  const e = new Engine({ kernels });
  const model = new Mamba2LM(e, createMamba2Config({ ...SMALL, ...extra })).init(Rng.fromSeed(seed));
  perturb(model, Rng.fromSeed(seed + 100), 0.05);
  return { e, model };
}

describe.each(KINDS)('Mamba-2 invariants, %s kernels', (kernels) => {
  it('parallel forward over 30 tokens (chunks of 8) equals 30 successive steps', () => {
    const { model } = makeModel(kernels);
    const state = expectStepsMatchForward(model, 2, 30, 1);
    expect(state.position).toBe(30);
  });

  it('steps continue exactly from the state prefills leave (a prefill shorter than the conv, then one spanning chunks)', () => {
    const { e, model } = makeModel(kernels);
    const B = 2,
      L = 40,
      V = model.config.vocabSize;
    const ids = randomIds(2, B * L, V);
    const par = e.scope(() => model.forward(ids, B, L).toFloat64());
    const cols = (t0: number, t1: number) =>
      Int32Array.from({ length: B * (t1 - t0) }, (_, i) => ids[Math.floor(i / (t1 - t0)) * L + t0 + (i % (t1 - t0))]);
    const row = (t: number) => Float64Array.from({ length: B * V }, (_, i) => par[(Math.floor(i / V) * L + t) * V + (i % V)]);
    const state = model.createState(B);
    expectClose(model.prefill(cols(0, 2), 2, state), row(1), 1e-5, 'prefill of 2');
    expectClose(model.prefill(cols(2, 23), 21, state), row(22), 1e-5, 'second prefill of 21');
    for (let t = 23; t < L; t++) expectClose(model.step(cols(t, t + 1), state), row(t), 1e-5, `step ${t}`);
  });
});

describe('float64 finite-difference gradient check of a whole 2-layer Mamba-2 LM', () => {
  it.each([
    ['tied head, 2 groups, no projection bias', {}],
    [
      'untied head, projection biases, one group, no conv bias, a clamped Δ',
      { tieWordEmbeddings: false, useBias: true, nGroups: 1, useConvBias: false, timeStepLimit: [0.05, 3] as [number, number] },
    ],
  ] as const)('%s: loss w.r.t. every parameter tensor (sampled elements)', (_, extra) => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const cfg = createMamba2Config({
      dModel: 8,
      nLayer: 2,
      dState: 4,
      headDim: 4,
      nGroups: 2,
      dConv: 3,
      chunkSize: 4,
      vocabSize: 11,
      ...extra,
    });
    const rng = Rng.fromSeed(7);
    const model = new Mamba2LM(e, cfg).init(rng);
    perturb(model, rng, 0.2);
    checkModelGradients(model, rng, 2, 9, 4, 1e-5, 1e-3);
  });
});

describe('Mamba-2 on worker threads', () => {
  it('every thread count gives the single-thread loss, gradients and prefill bit for bit', () => {
    const run = (threads: number) => {
      const e = new Engine({ kernels: 'wasm', threads });
      try {
        const model = new Mamba2LM(e, createMamba2Config({ ...SMALL, dModel: 32, headDim: 16 })).init(Rng.fromSeed(9));
        for (const p of model.params.values()) p.grad = e.persistent(p.shape);
        const B = 5,
          L = 37,
          ids = randomIds(4, B * L, 40),
          targets = randomIds(5, B * L, 40);
        const loss = valueAndGrad(e, () => model.loss(ids, targets, B, L));
        const grads = [...model.params.values()].map((p) => Buffer.from(Float32Array.from(p.grad!.data()).buffer));
        const logits = Buffer.from(model.prefill(ids, L, model.createState(B)).buffer);
        return { loss, grads, logits };
      } finally {
        e.dispose();
      }
    };
    const one = run(1),
      two = run(2);
    expect(two.loss).toBe(one.loss);
    two.grads.forEach((g, i) => expect(g.equals(one.grads[i]), `gradient ${i}`).toBe(true));
    expect(two.logits.equals(one.logits)).toBe(true);
  });
});
