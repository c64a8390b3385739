import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Tape } from '../../src/ops/index.js';
import * as op from '../../src/ops/ops.js';
import { loadModel } from '../../src/models/checkpoint.js';
import type { MambaLM } from '../../src/models/mamba/model.js';
import { packQuantWeights, quantizeModel, quantizeTensor } from '../../src/models/quant.js';
import { modelSha256 } from '../../src/models/state.js';
import { unpackQ4x4, unpackQ8x4 } from '../../src/kernels/ref/quant4x4.js';
import type { QWeight } from '../../src/tensor/index.js';
import { Rng } from '../../src/io/rng.js';
import { greedyLogits } from '../helpers/models.js';

/**
 * q8 and q4 projections repacked at load (groups of four rows, src/kernels/ref/quant4x4.ts) on
 * the committed trained model (test/fixtures/mamba-d256-l4): which weights are packed, and that
 * packing changes nothing a user can see — the logits of a prompt and of greedy decoding, at 1 and
 * 2 threads, are the bits of the same model with its weights left in the row layout; the weights'
 * hash (what state files check) and therefore the checkpoint bytes are the row layout's; the
 * gradient through a packed weight (adapters on a quantised base) equals the row layout's.
 */
const DIR = 'test/fixtures/mamba-d256-l4';
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});

function engine(threads: number, kernels: 'wasm' | 'wasm-relaxed' | 'ref' = 'wasm'): Engine {
  const e = new Engine({ kernels, threads });
  engines.push(e);
  return e;
}

/** The model quantised, its projections packed, or (`rows`) put back in the row layout. */
function quantModel(format: 'q8' | 'q4', threads: number, rows: boolean): MambaLM {
  const m = loadModel(engine(threads), DIR).model as MambaLM;
  quantizeModel(m, format);
  if (rows)
    for (const w of m.qweights.values()) {
      if (!w.packed) continue;
      const [N, K] = w.shape;
      const s = new Float32Array((N * K) / 32);
      if (w.format === 'q4') {
        const q = new Uint8Array((N * K) / 2);
        unpackQ4x4(q, s, w.q.data() as Uint8Array, w.scales.floats(), N, K);
        w.q.data().set(q);
      } else {
        const q = new Int8Array(N * K);
        unpackQ8x4(q, s, w.q.data() as Int8Array, w.scales.floats(), N, K);
        w.q.data().set(q);
      }
      w.scales.data().set(s);
      w.packed = false;
    }
  return m;
}

/** Logits of a 37-token prompt, then of 12 greedy steps, concatenated. */
const logits = (m: MambaLM) => greedyLogits(m, m.config.vocabSize, 37, 12);

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

describe.each(['q4', 'q8'] as const)('%s projections repacked in groups of four rows', (format) => {
  it('packs exactly the quantised projections with rows a multiple of 4, on the default build only', () => {
    const m = quantModel(format, 1, false);
    const packed = [...m.qweights].filter(([, w]) => w.packed).map(([n]) => n);
    expect(packed.length).toBeGreaterThan(0);
    for (const [name, w] of m.qweights) {
      const projection = /\.(in_proj|x_proj|out_proj|dt_proj)\.weight$/.test(name);
      expect(w.packed === true, name).toBe(projection && w.shape[0] % 4 === 0);
    }
    for (const kernels of ['wasm-relaxed', 'ref'] as const) {
      const r = loadModel(engine(1, kernels), DIR).model as MambaLM;
      quantizeModel(r, format);
      expect(
        [...r.qweights.values()].some((w) => w.packed),
        kernels,
      ).toBe(false);
    }
  });

  it('prompt and greedy decoding give the row layout bits at 1 and 2 threads', () => {
    const want = logits(quantModel(format, 1, true));
    for (const threads of [1, 2]) expect(same(logits(quantModel(format, threads, false)), want), `${threads} thread(s)`).toBe(true);
    expect(same(logits(quantModel(format, 2, true)), want), 'row layout, 2 threads').toBe(true);
  });

  it("the weights' hash is the row layout's (checkpoints are written unpacked)", () => {
    expect(modelSha256(quantModel(format, 1, false))).toBe(modelSha256(quantModel(format, 1, true)));
  });

  it('packing twice is a no-op; a gradient through a packed weight is the row layout one', () => {
    const e = engine(2);
    const r = Rng.fromSeed(3);
    const [N, K, M] = [64, 96, 9];
    const f32 = e.persistent([N, K]).set(Array.from({ length: N * K }, () => r.normal()));
    const w = quantizeTensor({ e }, f32, format);
    const rowsW = quantizeTensor({ e }, f32, format);
    const name = 'backbone.layers.0.mixer.in_proj.weight';
    packQuantWeights({ e, qweights: new Map([[name, w]]) });
    const once = Uint8Array.from(w.q.data());
    packQuantWeights({ e, qweights: new Map([[name, w]]) });
    expect(w.packed).toBe(true);
    expect(Uint8Array.from(w.q.data())).toEqual(once);
    const grad = (weight: QWeight) => {
      const x = e.persistent([M, K]).set(Array.from({ length: M * K }, (_, i) => Math.sin(i)));
      x.requiresGrad = true;
      x.grad = e.persistent(x.shape);
      const tape = new Tape();
      e.tape = tape;
      return e.scope(() => {
        const y = op.linear(e, x, weight, null, null);
        e.tape = null;
        tape.backwardFrom(
          e,
          y,
          Array.from({ length: M * N }, (_, i) => Math.cos(i)),
        );
        return { y: Float32Array.from(y.floats()), dx: Float32Array.from(x.grad!.floats()) };
      });
    };
    const a = grad(w),
      b = grad(rowsW);
    expect(same(a.y, b.y)).toBe(true);
    expect(same(a.dx, b.dx)).toBe(true);
  });
});
