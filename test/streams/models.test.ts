import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { createStreamModel, headSpecs, shapeCount } from '../../src/models/heads.js';
import type { StreamArch, StreamSpec } from '../../src/models/heads.js';
import type { HiddenBackbone } from '../../src/models/heads.js';
import { fitStreamModel, streamedLoss } from '../../src/streams/fit.js';
import { makeSeries, makeSpec, trainStreamModel } from '../../src/streams/train.js';
import { runSeries } from '../../src/report/streams-eval.js';
import { matchedShapes } from '../../src/report/streams.js';

const spec = (window: number): StreamSpec => ({
  format: 'frugal-stream/1',
  task: 'forecast',
  head: 'gaussian',
  features: ['a', 'b'],
  target: 'a',
  horizon: 1,
  classes: 0,
  norm: { mean: [0, 0], std: [1, 1] },
  target_norm: { mean: 0, std: 1 },
  window,
  median_dt: 1,
  rows: { train: 0, held_out: 0 },
});

function randomInputs(rng: Rng, n: number, D: number): Float32Array {
  return Float32Array.from({ length: n * D }, () => rng.normal());
}

/** Final-norm hidden states of the parallel (taped) pass over L inputs: (L, D). */
function parallel(bb: HiddenBackbone, x: Float32Array, L: number, D: number): Float32Array {
  return bb.e.scope(() => Float32Array.from(bb.hiddenForward(bb.e.fromValues([1, L, D], x)).floats()));
}

describe('continuous inputs on both backbones', () => {
  for (const arch of ['mamba', 'transformer'] as StreamArch[]) {
    it(`${arch}: the one-tick step gives the parallel pass's hidden states`, () => {
      const m = createStreamModel(new Engine(), arch, 16, 2, spec(64), Rng.fromSeed(1));
      const D = 16,
        L = 12,
        x = randomInputs(Rng.fromSeed(2), L, D);
      const want = parallel(m.backbone, x, L, D);
      const st = m.backbone.createState(1, 64);
      for (let t = 0; t < L; t++) {
        const got = m.backbone.hiddenStep(x.subarray(t * D, (t + 1) * D), st);
        for (let d = 0; d < D; d++) expect(got[d]).toBeCloseTo(want[t * D + d], 3);
      }
    });
  }

  it('the transformer on a sliding window sees only the last W ticks', () => {
    const W = 8,
      D = 16,
      n = 21;
    const m = createStreamModel(new Engine(), 'transformer', D, 2, spec(W), Rng.fromSeed(3));
    const x = randomInputs(Rng.fromSeed(4), n, D);
    const st = m.backbone.createState(1, W);
    let last = new Float32Array(0);
    for (let t = 0; t < n; t++) last = m.backbone.hiddenStep(x.subarray(t * D, (t + 1) * D), st, W);
    // rotary attention depends only on distances: the window equals a fresh pass over the last W inputs
    const want = parallel(m.backbone, x.subarray((n - W) * D), W, D);
    for (let d = 0; d < D; d++) expect(last[d]).toBeCloseTo(want[(W - 1) * D + d], 3);
    // and the cache stays W rows: constant memory
    for (const t of st.tensors.values()) expect(t.shape[0]).toBe(Math.max(64, W));
  });

  it('parameter counts: the formula matches the built models, and the matched pair is within 5%', () => {
    for (const arch of ['mamba', 'transformer'] as StreamArch[]) {
      for (const [D, layers] of [
        [16, 1],
        [32, 2],
      ]) {
        const m = createStreamModel(new Engine(), arch, D, layers, spec(16), Rng.fromSeed(1));
        const heads = headSpecs(2, D, 2).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
        expect(m.parameterCount - heads).toBe(shapeCount(arch, D, layers));
      }
    }
    const [a, b] = matchedShapes(32, 2);
    expect(Math.abs(a.parameters - b.parameters) / a.parameters).toBeLessThan(0.05);
  });
});

describe('each task trains end to end on a tiny budget', () => {
  const T = 400;
  const sine = {
    at: Array.from({ length: T }, (_, i) => i),
    columns: new Map<string, (number | null)[]>([
      ['a', Array.from({ length: T }, (_, i) => Math.sin(i / 3))],
      ['cls', Array.from({ length: T }, (_, i) => (Math.sin(i / 3) > 0.5 ? 1 : 0))],
    ]),
  };

  it('forecast (Mamba): the loss falls and the held-out forecast beats a constant', () => {
    const r = fitStreamModel({
      data: sine,
      where: 'sine',
      task: 'forecast',
      target: 'a',
      features: ['a'],
      horizon: 1,
      arch: 'mamba',
      dModel: 16,
      layers: 1,
      window: 24,
      batch: 4,
      steps: 60,
      lr: 1e-2,
      seed: 1,
    });
    expect(r.train.steps).toBe(60);
    const first = r.train.losses[0],
      lastMean = r.train.losses.slice(-10).reduce((a, b) => a + b, 0) / 10;
    expect(lastMean).toBeLessThan(first - 0.3);
    const out = runSeries(r.model, sine);
    const y = sine.columns.get('a') as number[];
    let se = 0,
      n = 0;
    for (let t = r.spec.rows.train; t < T - 1; t++, n++) se += (out.mu[t] - y[t + 1]) ** 2;
    expect(se / n).toBeLessThan(0.5 * 0.5); // the variance of sin is ½
  });

  it('classify (transformer): the loss falls below the trivial rate', () => {
    const r = fitStreamModel({
      data: sine,
      where: 'sine',
      task: 'classify',
      target: 'cls',
      features: ['a'],
      horizon: 1,
      arch: 'transformer',
      dModel: 16,
      layers: 1,
      window: 16,
      batch: 4,
      steps: 40,
      lr: 1e-2,
      seed: 2,
    });
    expect(r.spec.classes).toBe(2);
    const lastMean = r.train.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(lastMean).toBeLessThan(0.4); // the base rate's entropy is about 0.64 nats
  });

  it('early stopping keeps the weights of the best validation score, and validation never trains on its tail', () => {
    const e = new Engine();
    const sp = makeSpec(sine, { task: 'forecast', target: 'a', features: ['a'], horizon: 1, window: 16, where: 'sine' });
    const series = makeSeries(sine, sp);
    const m = createStreamModel(e, 'mamba', 8, 1, sp, Rng.fromSeed(4));
    const tensors = [...m.trainable().params.values()];
    const snap = () => tensors.map((t) => Float32Array.from(t.floats()));
    const at = new Map<number, Float32Array[]>();
    const scores = [3, 1, 2, 5]; // the second validation (step 20) is the best
    let k = 0;
    const r = trainStreamModel(m, series, {
      steps: 40,
      batch: 2,
      lr: 1e-2,
      rng: Rng.fromSeed(5),
      until: 120,
      onStep: (step) => at.set(step, snap()),
      validate: { every: 10, score: () => scores[k++] },
    });
    expect(r.kept_step).toBe(20);
    expect(r.validation?.map((v) => v.step)).toEqual([10, 20, 30, 40]);
    const kept = snap();
    kept.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from((at.get(20) as Float32Array[])[i])));
    expect(kept.some((w, i) => w.some((v, j) => v !== (at.get(40) as Float32Array[])[i][j]))).toBe(true);
    // the streamed validation loss is finite and, from a trained model, below an untrained one's
    const fresh = createStreamModel(new Engine(), 'mamba', 8, 1, sp, Rng.fromSeed(4));
    const trained = fitStreamModel({
      data: sine,
      where: 'sine',
      task: 'forecast',
      target: 'a',
      features: ['a'],
      horizon: 1,
      arch: 'mamba',
      dModel: 8,
      layers: 1,
      window: 16,
      batch: 4,
      steps: 60,
      lr: 1e-2,
      seed: 1,
    });
    const valStart = series.trainEnd - Math.floor(series.trainEnd / 5);
    const lt = streamedLoss(trained.model, sine, valStart, series.trainEnd),
      lf = streamedLoss(fresh, sine, valStart, series.trainEnd);
    expect(Number.isFinite(lt)).toBe(true);
    expect(lt).toBeLessThan(lf);
    expect(trained.train.kept_step).toBeGreaterThan(0);
  });
});
