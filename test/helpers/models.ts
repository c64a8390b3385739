import { expect } from 'vitest';
import { expectClose } from './compare.js';
import { Rng } from '../../src/io/rng.js';
import { Tape } from '../../src/ops/index.js';
import type { SequenceModel, TrainableModel } from '../../src/models/types.js';
import type { Tensor } from '../../src/tensor/index.js';

/** n token ids in [0, V), seeded. */
export function randomIds(seed: number, n: number, V: number): Int32Array {
  const r = Rng.fromSeed(seed);
  return Int32Array.from({ length: n }, () => r.int(V));
}

/** Add scale·N(0,1) to every parameter, so no path is silenced by its init (D = 1, norms = 1, zero biases). */
export function perturb(model: TrainableModel, rng: Rng, scale: number): void {
  for (const p of model.params.values()) {
    const v = p.floats();
    for (let i = 0; i < v.length; i++) v[i] += scale * rng.normal();
  }
  model.weightsChanged();
}

/**
 * Float64 check of a whole model's loss gradient against fourth-order central differences (step h),
 * `samples` elements per parameter tensor, chosen among those whose gradient is at least 1% of the
 * tensor's largest so round-off cannot dominate. The model's engine must be float64.
 */
export function checkModelGradients(
  model: TrainableModel,
  rng: Rng,
  B: number,
  L: number,
  samples: number,
  tol: number,
  h = 1e-3,
  params: ReadonlyMap<string, Tensor> = model.params,
): void {
  const e = model.e,
    V = model.config.vocabSize;
  for (const p of params.values()) p.grad = e.persistent(p.shape);
  const ids = Int32Array.from({ length: B * L }, () => rng.int(V)),
    targets = Int32Array.from({ length: B * L }, () => rng.int(V));
  const lossAt = () => e.scope(() => model.loss(ids, targets, B, L).data()[0]);
  const tape = new Tape();
  e.tape = tape;
  e.scope(() => {
    const loss = model.loss(ids, targets, B, L);
    e.tape = null;
    tape.backward(e, loss);
  });
  for (const [name, p] of params) {
    const g = p.grad!.toFloat64();
    let scale = 0;
    for (const v of g) scale = Math.max(scale, Math.abs(v));
    expect(scale, `${name} gets a gradient`).toBeGreaterThan(0);
    const big = [...g.keys()].filter((i) => Math.abs(g[i]) >= 0.01 * scale);
    for (let k = 0; k < samples; k++) {
      const i = big[rng.int(big.length)];
      const v = p.floats()[i];
      const at = (d: number) => {
        p.floats()[i] = v + d;
        const f = lossAt();
        p.floats()[i] = v;
        return f;
      };
      const num = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h); // truncation O(h^4)
      const rel = Math.abs(g[i] - num) / Math.max(Math.abs(g[i]), Math.abs(num));
      expect(rel, `${name}[${i}] analytic ${g[i]} numeric ${num}`).toBeLessThanOrEqual(tol);
    }
  }
}

/** Logits of L successive steps of B streams from a fresh state, laid out as forward's (B, L, V); the state is returned too. */
export function stepLogits(model: TrainableModel, ids: Int32Array, B: number, L: number) {
  const V = model.config.vocabSize,
    state = model.createState(B),
    out = new Float64Array(B * L * V);
  for (let t = 0; t < L; t++) {
    const logits = model.step(
      Int32Array.from({ length: B }, (_, b) => ids[b * L + t]),
      state,
    );
    for (let b = 0; b < B; b++) out.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
  }
  return { logits: out, state };
}

/** Assert that L successive steps of B streams give the parallel forward's logits (seeded ids); returns the state after them. */
export function expectStepsMatchForward(model: TrainableModel, B: number, L: number, seed: number, tol = 1e-5) {
  const ids = randomIds(seed, B * L, model.config.vocabSize);
  const par = model.e.scope(() => model.forward(ids, B, L).toFloat64());
  const { logits, state } = stepLogits(model, ids, B, L);
  expectClose(logits, par, tol, 'steps vs parallel');
  return state;
}

/**
 * Logits of a `prompt`-token prompt (ids spread over the vocabulary), then of `steps` greedy
 * steps, concatenated: what a user of the model sees, for bit-for-bit comparisons.
 */
export function greedyLogits(
  m: Pick<SequenceModel, 'createState' | 'prefill' | 'step'>,
  V: number,
  prompt: number,
  steps: number,
): Float32Array {
  const st = m.createState(1);
  const ids = Int32Array.from({ length: prompt }, (_, i) => (i * 7919 + 13) % V);
  const out: number[] = [];
  let last = Float32Array.from(m.prefill(ids, ids.length, st));
  for (let t = 0; t < steps; t++) {
    out.push(...last);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
    last = Float32Array.from(m.step(Int32Array.of(best), st));
  }
  return Float32Array.from(out);
}
