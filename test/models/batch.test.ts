import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { HybridLM } from '../../src/models/hybrid/model.js';
import { createHybridConfig } from '../../src/models/hybrid/config.js';
import { TransformerLM } from '../../src/models/transformer/model.js';
import { createLlamaConfig } from '../../src/models/transformer/config.js';
import type { SequenceModel } from '../../src/models/types.js';
import { quantizeModel } from '../../src/models/quant.js';
import { BatchDecoder } from '../../src/infer/batch.js';
import { argmax } from '../../src/infer/sample.js';

/** A copy of an array's own bytes (a stream's logits are a view of the step's rows). */
const bytes = (a: Float32Array) => Buffer.from(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/** Streams joining and leaving a batch get, bit for bit, what each gets decoding alone. */
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});

function engine(threads: number): Engine {
  const e = new Engine({ kernels: 'wasm', threads });
  engines.push(e);
  return e;
}

function model(threads: number, quant: 'q8' | null) {
  const m = new MambaLM(engine(threads), createMambaConfig({ dModel: 64, nLayer: 2, dState: 16, vocabSize: 80 })).init(Rng.fromSeed(12));
  if (quant) quantizeModel(m, quant);
  return m;
}

/** Greedy continuation of a prompt, decoding alone: the logits bytes of every step. */
function alone(m: SequenceModel, prompt: Int32Array, steps: number): Buffer[] {
  const s = m.createState(1);
  let logits = m.prefill(prompt, prompt.length, s);
  const out = [bytes(logits)];
  for (let i = 0; i < steps; i++) {
    logits = m.step(Int32Array.of(argmax(logits)), s);
    out.push(bytes(logits));
  }
  for (const t of s.tensors.values()) t.dispose();
  return out;
}

/**
 * Greedy decoding of every prompt through one BatchDecoder of `capacity` streams, each planned as
 * [prompt index, join step, steps to run] (a finished stream leaves before the step's joins);
 * expects each stream's logits bytes, step by step, to equal decoding alone.
 */
function expectBatchedAsAlone(m: SequenceModel, capacity: number, prompts: Int32Array[], plan: number[][], T: number): void {
  const dec = new BatchDecoder(m, capacity);
  const got = new Map<number, Buffer[]>(),
    ids = new Map<number, number>(),
    last = new Map<number, Float32Array>();
  for (let t = 0; t < T; t++) {
    for (const [k, , n] of plan)
      if (ids.has(k) && got.get(k)?.length === n + 1) {
        dec.leave(ids.get(k) as number);
        ids.delete(k);
      }
    for (const [k, join] of plan) {
      if (join !== t) continue;
      const j = dec.join(prompts[k]);
      ids.set(k, j.id);
      last.set(k, j.logits);
      got.set(k, [bytes(j.logits)]);
    }
    expect(dec.active.length).toBeLessThanOrEqual(capacity);
    if (dec.active.length === 0) continue;
    const tokens = new Map<number, number>();
    for (const [k, id] of ids) tokens.set(id, argmax(last.get(k) as Float32Array));
    const out = dec.step(tokens);
    for (const [k, id] of ids) {
      const l = out.get(id) as Float32Array;
      last.set(k, l);
      got.get(k)?.push(bytes(l));
    }
  }
  for (const [k, , n] of plan) {
    const ref = alone(m, prompts[k], n);
    const g = (got.get(k) as Buffer[]).slice(0, n + 1);
    expect(g.length).toBe(n + 1);
    g.forEach((b, i) => expect(b.equals(ref[i]), `stream ${k}, step ${i}`).toBe(true));
  }
  dec.dispose();
}

describe.each([
  [1, null],
  [2, null],
  [2, 'q8'],
] as const)('batched decoding, %i thread(s), %s weights', (threads, quant) => {
  it('each stream gets bit for bit what it gets alone while others join and leave', () => {
    const prompts = [[1, 2, 3], [7, 7], [40, 41, 42, 43, 44], [5], [60, 61, 62, 63]].map((p) => Int32Array.from(p));
    const plan = [
      // [stream index, join step, steps to run]
      [0, 0, 9],
      [1, 0, 4],
      [2, 2, 8],
      [3, 3, 3],
      [4, 5, 6],
    ];
    expectBatchedAsAlone(model(threads, quant), 4, prompts, plan, 14);
  });
});

/** Models with attention: each stream's KV cache and rotary position are its own, so streams of different lengths step together. */
const withAttention: [string, (e: Engine) => SequenceModel][] = [
  [
    'hybrid',
    (e) =>
      new HybridLM(
        e,
        createHybridConfig({
          dModel: 32,
          layerTypes: ['mamba2', 'attention', 'mamba2', 'attention'],
          vocabSize: 50,
          dState: 8,
          nHead: 4,
          nKvHead: 2,
          intermediateSize: 48,
          mamba2: { headDim: 8, nGroups: 1, chunkSize: 8 },
        }),
      ).init(Rng.fromSeed(5)),
  ],
  [
    'transformer',
    (e) => new TransformerLM(e, createLlamaConfig({ dModel: 32, nLayer: 2, nHead: 4, nKvHead: 2, vocabSize: 50 })).init(Rng.fromSeed(6)),
  ],
];

describe.each(withAttention)('batched decoding with a KV cache: %s', (_, build) => {
  it.each([1, 2])('three streams of different lengths, one leaving and another joining, match decoding alone (%i threads)', (threads) => {
    // prompts of 2, 70 (past a new cache's 64 rows) and 5 tokens decode together; the fourth takes the first's row
    const prompts = [[1, 2], Array.from({ length: 70 }, (_, i) => (7 * i + 3) % 50), [40, 41, 42, 43, 44], [9, 8, 7, 6, 5, 4, 3, 2, 1]].map(
      (p) => Int32Array.from(p),
    );
    const plan = [
      [0, 0, 3],
      [1, 0, 8],
      [2, 0, 7],
      [3, 4, 5],
    ];
    expectBatchedAsAlone(build(engine(threads)), 3, prompts, plan, 12);
  });
});

const everyState: [string, (e: Engine) => SequenceModel][] = [['mamba', () => model(1, null)], ...withAttention];

describe.each(everyState)('BatchDecoder rowState and join from a state: %s', (_, build) => {
  it('a stream copied out of a batch (its KV cache too) and joined again continues bit for bit as decoding alone', () => {
    const m = build(engine(1));
    const prompt = Int32Array.of(3, 14, 15, 9, 26);
    const want = alone(m, prompt, 12);
    const dec = new BatchDecoder(m, 3);
    dec.join(Int32Array.of(7, 7, 7)); // a neighbour in row 0
    const a = dec.join(prompt);
    let logits = a.logits;
    const got = [bytes(logits)];
    for (let i = 0; i < 5; i++) {
      const tok = argmax(logits);
      const out = dec.step(new Map(dec.active.map((id) => [id, id === a.id ? tok : 1])));
      logits = out.get(a.id) as Float32Array;
      got.push(bytes(logits));
    }
    const saved = dec.rowState(a.id);
    dec.leave(a.id);
    const pending = argmax(logits); // the next token is fed as the continuation's one-token prompt
    const b = dec.join(Int32Array.of(pending), saved);
    logits = b.logits;
    got.push(bytes(logits));
    for (let i = 0; i < 6; i++) {
      const tok = argmax(logits);
      logits = dec.step(new Map(dec.active.map((id) => [id, id === b.id ? tok : 1]))).get(b.id) as Float32Array;
      got.push(bytes(logits));
    }
    expect(got.length).toBe(want.length);
    got.forEach((g, i) => expect(g.equals(want[i]), `step ${i}`).toBe(true));
    dec.dispose();
  });
});
