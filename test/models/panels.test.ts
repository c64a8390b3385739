import { afterAll, describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { loadModel, loadWeights, modelWeightsProducer } from '../../src/models/checkpoint.js';
import { sha256Of } from '../../src/io/statefile.js';
import { Rng } from '../../src/io/rng.js';
import { quantizeModel } from '../../src/models/quant.js';
import { modelSha256 } from '../../src/models/state.js';
import { panelWeights } from '../../src/models/panels.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { existsSync, readFileSync } from 'node:fs';
import type { TrainableModel, SequenceModel } from '../../src/models/types.js';
import type { QuantisableModel } from '../../src/models/quant.js';
import { greedyLogits } from '../helpers/models.js';

/**
 * f32 weights held in panels of four rows for inference (src/models/panels.ts), on committed
 * models of every family: which weights inference moves, and that the move changes nothing a
 * user can see — a prompt's and greedy decoding's logits are the bits of the same model on an
 * engine that keeps the row layout (`panels: false`), at 1 and 2 threads; the weights' hash and
 * checkpoint bytes are the row layout's; a training step after inference computes the gradients
 * of a model that never ran inference, and leaves its weights in rows; quantising after
 * inference gives the same q8 bytes; reloading weights into a model in panels reads them as rows.
 */
const MODELS = [
  'test/fixtures/mamba-d256-l4',
  'test/fixtures/llama-d64-l2',
  'test/fixtures/bamba-tiny',
  'test/fixtures/mamba2-tiny-a',
  'test/fixtures/mamba3-tiny',
];
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
type Lm = TrainableModel &
  SequenceModel & { loss(ids: Int32Array, targets: Int32Array, B: number, L: number): import('../../src/tensor/index.js').Tensor };

function load(dir: string, threads = 1, panels = true): Lm {
  const e = new Engine({ kernels: 'wasm', threads, panels });
  engines.push(e);
  return loadModel(e, dir).model as unknown as Lm;
}

const vocab = (m: Lm) => (m as unknown as { config: { vocabSize: number } }).config.vocabSize;

/** Logits of a 23-token prompt, then of 6 greedy steps, concatenated, as bytes. */
const logits = (m: Lm): Buffer => Buffer.from(greedyLogits(m, vocab(m), 23, 6).buffer);

function grads(m: Lm): Buffer[] {
  const V = vocab(m);
  const ids = Int32Array.from({ length: 2 * 17 }, (_, i) => (i * 31 + 5) % V),
    tg = Int32Array.from({ length: 2 * 17 }, (_, i) => (i * 17 + 3) % V);
  for (const p of m.params.values()) p.grad = m.e.persistent(p.shape);
  valueAndGrad(m.e, () => m.loss(ids, tg, 2, 17));
  return [...m.params.values()].map((p) => Buffer.from(Float32Array.from(p.grad!.floats()).buffer));
}

describe.each(MODELS)('%s: weights in panels for inference', (dir) => {
  it('inference moves the projections and the token table, nothing else', () => {
    const m = load(dir);
    expect([...m.params.values()].some((t) => t.panels)).toBe(false);
    logits(m);
    const moved = new Set(panelWeights(m));
    expect(moved.size).toBeGreaterThan(0);
    for (const [name, t] of m.params) {
      const want =
        /(in_proj|x_proj|out_proj|[qkvo]_proj|gate_proj|up_proj|down_proj)\.weight$|(embeddings|embed_tokens)\.weight$|^lm_head\.weight$/.test(
          name,
        ) &&
        t.shape.length === 2 &&
        t.shape[0] % 4 === 0 &&
        t.shape[1] % 4 === 0;
      expect(t.panels, name).toBe(want);
      expect(moved.has(t), name).toBe(want);
    }
  });

  it('prompt and greedy logits are the row layout bits at 1 and 2 threads', () => {
    const want = logits(load(dir, 1, false));
    for (const threads of [1, 2]) expect(logits(load(dir, threads)).equals(want), `${threads} thread(s)`).toBe(true);
  });

  it("the weights' hash after inference is the row layout's", () => {
    const m = load(dir);
    logits(m);
    expect(modelSha256(m)).toBe(modelSha256(load(dir, 1, false)));
  });

  it('training after inference: the gradients of a fresh model, the weights back in rows', () => {
    const m = load(dir);
    logits(m);
    const g = grads(m);
    const want = grads(load(dir, 1, false));
    g.forEach((b, i) => expect(b.equals(want[i]), `gradient ${i}`).toBe(true));
    expect([...m.params.values()].filter((t) => t.panels).length).toBe(0);
    // and inference again moves them back, with the same logits
    expect(logits(m).equals(logits(load(dir, 1, false)))).toBe(true);
  });
});

describe.each(MODELS.filter((d) => existsSync(`${d}/model.safetensors`)))('%s: reloading weights', (dir) => {
  it('into a model in panels reads them as rows', () => {
    const m = load(dir);
    logits(m);
    const file = `${dir}/model.safetensors`;
    loadWeights(m, decodeSafetensors(readFileSync(file), file));
    expect([...m.params.values()].some((t) => t.panels)).toBe(false);
    expect(logits(m).equals(logits(load(dir, 1, false)))).toBe(true);
  });
});

describe('weights drawn or written around inference', () => {
  it('init after inference draws rows: the logits of a fresh model with the same draw', () => {
    for (const dir of [MODELS[0], MODELS[1]]) {
      const a = load(dir) as Lm & { init(r: Rng): unknown },
        b = load(dir, 1, false) as Lm & { init(r: Rng): unknown };
      logits(a);
      a.init(Rng.fromSeed(5));
      b.init(Rng.fromSeed(5));
      expect(logits(a).equals(logits(b)), dir).toBe(true);
    }
  });

  it('a weights producer made before inference and written after it writes rows', () => {
    const dir = MODELS[0];
    const m = load(dir);
    const producer = modelWeightsProducer(m);
    logits(m);
    expect([...m.params.values()].some((t) => t.panels)).toBe(true);
    expect(sha256Of(producer)).toBe(modelSha256(load(dir, 1, false)));
  });
});

describe('quantising after inference', () => {
  it('gives the q8 bytes of quantising a fresh model', () => {
    const dir = MODELS[0];
    const a = load(dir);
    logits(a);
    quantizeModel(a as unknown as QuantisableModel, 'q8');
    const b = load(dir, 1, false);
    quantizeModel(b as unknown as QuantisableModel, 'q8');
    const qa = (a as unknown as QuantisableModel).qweights,
      qb = (b as unknown as QuantisableModel).qweights;
    expect(qa.size).toBeGreaterThan(0);
    for (const [name, w] of qa) {
      expect(Buffer.from(w.q.data()).equals(Buffer.from((qb.get(name) as typeof w).q.data())), name).toBe(true);
    }
    expect(logits(a).equals(logits(b))).toBe(true);
  });
});
