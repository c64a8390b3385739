import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import type { KernelKind } from '../../src/kernels/backend.js';
import { expectClose } from '../helpers/compare.js';
import { perturb, randomIds } from '../helpers/models.js';

const KINDS: KernelKind[] = ['wasm', 'ref'];

function makeModel(kernels: KernelKind, seed = 3) {
  const e = new Engine({ kernels });
  const cfg = createMambaConfig({ dModel: 24, nLayer: 2, dState: 8, vocabSize: 50 });
  const model = new MambaLM(e, cfg).init(Rng.fromSeed(seed));
  // perturb D, norms and biases away from their init so every path matters
  const rng = Rng.fromSeed(seed + 100);
  perturb(model, rng, 0.05);
  return { e, model };
}

describe.each(KINDS)('Mamba invariants, %s kernels', (kernels) => {
  it('parallel forward over 80 tokens equals 80 successive steps (zero state)', () => {
    const { e, model } = makeModel(kernels);
    const B = 2,
      L = 80,
      V = model.config.vocabSize;
    const ids = randomIds(1, B * L, V);
    const par = e.scope(() => model.forward(ids, B, L).toFloat64());
    const state = model.createState(B);
    const seq = new Float64Array(B * L * V);
    for (let t = 0; t < L; t++) {
      const logits = model.step(
        Int32Array.from({ length: B }, (_, b) => ids[b * L + t]),
        state,
      );
      for (let b = 0; b < B; b++) seq.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
    }
    expectClose(seq, par, 1e-5, 'steps vs parallel');
  });

  it('steps continue exactly from the state a prefill leaves (including a prefill that continues a prefill)', () => {
    const { e, model } = makeModel(kernels);
    const B = 2,
      L = 70,
      V = model.config.vocabSize;
    const ids = randomIds(2, B * L, V);
    const par = e.scope(() => model.forward(ids, B, L).toFloat64());
    const cols = (t0: number, t1: number) =>
      Int32Array.from({ length: B * (t1 - t0) }, (_, i) => ids[Math.floor(i / (t1 - t0)) * L + t0 + (i % (t1 - t0))]);
    const row = (t: number) => Float64Array.from({ length: B * V }, (_, i) => par[(Math.floor(i / V) * L + t) * V + (i % V)]);
    const state = model.createState(B);
    expectClose(model.prefill(cols(0, 2), 2, state), row(1), 1e-5, 'prefill of 2 (shorter than the conv kernel)');
    expectClose(model.prefill(cols(2, 40), 38, state), row(39), 1e-5, 'second prefill of 38');
    for (let t = 40; t < L; t++) expectClose(model.step(cols(t, t + 1), state), row(t), 1e-5, `step ${t}`);
    expect(state.position).toBe(L);
  });

  it('save -> load reproduces logits bit for bit', () => {
    const { e, model } = makeModel(kernels);
    const dir = join(mkdtempSync(join(tmpdir(), 'frugal-')), 'ckpt');
    try {
      writeDirAtomic(dir, modelFiles(model));
      const e2 = new Engine({ kernels });
      const loaded = loadModel(e2, dir).model;
      const ids = randomIds(3, 33, model.config.vocabSize);
      const a = e.scope(() => Float32Array.from(model.forward(ids, 1, 33).data()));
      const b = e2.scope(() => Float32Array.from(loaded.forward(ids, 1, 33).data()));
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('growing the memory mid-forward and mid-backward changes nothing', () => {
    const run = (growAt: number[]) => {
      const { e, model } = makeModel(kernels);
      for (const p of model.params.values()) p.grad = e.persistent(p.shape);
      const B = 2,
        L = 37,
        V = model.config.vocabSize;
      const ids = randomIds(4, B * L, V),
        targets = randomIds(5, B * L, V);
      let count = 0,
        forwardAllocs = -1;
      const buffers = new Set<ArrayBufferLike>([e.heap.memory.buffer]);
      e.heap.onAlloc = () => {
        count++;
        if (growAt.includes(count)) {
          e.heap.grow(64);
          buffers.add(e.heap.memory.buffer);
        }
      };
      const loss = valueAndGrad(e, () => {
        const l = model.loss(ids, targets, B, L);
        forwardAllocs = count;
        return l;
      });
      const grads = [...model.params.values()].map((p) => Float32Array.from(p.grad!.data()));
      return { loss, grads, count, forwardAllocs, growths: buffers.size - 1 };
    };
    const base = run([]);
    expect(base.forwardAllocs).toBeGreaterThan(10);
    const midForward = Math.floor(base.forwardAllocs / 2);
    const midBackward = Math.floor((base.forwardAllocs + base.count) / 2);
    expect(midBackward).toBeGreaterThan(base.forwardAllocs);
    const grown = run([midForward, midBackward]);
    expect(grown.growths).toBe(2);
    expect(grown.loss).toBe(base.loss);
    grown.grads.forEach((g, i) => expect(Buffer.from(g.buffer).equals(Buffer.from(base.grads[i].buffer))).toBe(true));
  });
});

describe('kernel sets agree on a whole model', () => {
  it('wasm and ref give the same loss and gradients', () => {
    const res = KINDS.map((k) => {
      const { e, model } = makeModel(k);
      for (const p of model.params.values()) p.grad = e.persistent(p.shape);
      const ids = randomIds(6, 2 * 40, 50),
        targets = randomIds(7, 2 * 40, 50);
      const loss = valueAndGrad(e, () => model.loss(ids, targets, 2, 40));
      return { loss, grads: [...model.params.values()].map((p) => p.grad!.toFloat64()) };
    });
    expect(Math.abs(res[0].loss - res[1].loss)).toBeLessThan(1e-5);
    res[0].grads.forEach((g, i) => expectClose(g, res[1].grads[i], 1e-4, `gradient ${i}`));
  });
});
