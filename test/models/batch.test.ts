import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { quantizeModel } from '../../src/models/quant.js';
import { BatchDecoder } from '../../src/infer/batch.js';
import { argmax } from '../../src/infer/sample.js';

/** Streams joining and leaving a batch get, bit for bit, what each gets decoding alone. */
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});

function model(threads: number, quant: 'q8' | null) {
  const e = new Engine({ kernels: 'wasm', threads });
  engines.push(e);
  const m = new MambaLM(e, createMambaConfig({ dModel: 64, nLayer: 2, dState: 16, vocabSize: 80 })).init(Rng.fromSeed(12));
  if (quant) quantizeModel(m, quant);
  return m;
}

/** Greedy continuation of a prompt, decoding alone: the logits bytes of every step. */
function alone(m: MambaLM, prompt: Int32Array, steps: number): Buffer[] {
  const s = m.createState(1);
  let logits = m.prefill(prompt, prompt.length, s);
  const out = [Buffer.from(logits.buffer.slice(0))];
  for (let i = 0; i < steps; i++) {
    logits = m.step(Int32Array.of(argmax(logits)), s);
    out.push(Buffer.from(logits.buffer.slice(0)));
  }
  return out;
}

describe.each([
  [1, null],
  [2, null],
  [2, 'q8'],
] as const)('batched decoding, %i thread(s), %s weights', (threads, quant) => {
  it('each stream gets bit for bit what it gets alone while others join and leave', () => {
    const m = model(threads, quant);
    const prompts = [[1, 2, 3], [7, 7], [40, 41, 42, 43, 44], [5], [60, 61, 62, 63]].map((p) => Int32Array.from(p));
    const plan = [
      // [stream index, join step, steps to run]
      [0, 0, 9],
      [1, 0, 4],
      [2, 2, 8],
      [3, 3, 3],
      [4, 5, 6],
    ];
    const dec = new BatchDecoder(m, 4);
    const got = new Map<number, Buffer[]>(),
      ids = new Map<number, number>(),
      last = new Map<number, Float32Array>();
    for (let t = 0; t < 14; t++) {
      for (const [k, join] of plan) {
        if (join === t) {
          const j = dec.join(prompts[k]);
          ids.set(k, j.id);
          last.set(k, j.logits);
          got.set(k, [Buffer.from(j.logits.buffer.slice(0))]);
        }
      }
      for (const [k, join, n] of plan)
        if (ids.has(k) && got.get(k)!.length === n + 1 && join <= t) {
          dec.leave(ids.get(k)!);
          ids.delete(k);
        }
      if (dec.active.length === 0) continue;
      const tokens = new Map<number, number>();
      for (const [k, id] of ids) tokens.set(id, argmax(last.get(k)!));
      const out = dec.step(tokens);
      for (const [k, id] of ids) {
        const l = out.get(id)!;
        last.set(k, l);
        got.get(k)!.push(Buffer.from(l.buffer.slice(0)));
      }
    }
    expect(dec.active.length).toBeLessThanOrEqual(4);
    for (const [k, , n] of plan) {
      const ref = alone(m, prompts[k], n);
      const g = got.get(k)!.slice(0, n + 1);
      expect(g.length).toBe(n + 1);
      g.forEach((b, i) => expect(b.equals(ref[i]), `stream ${k}, step ${i}`).toBe(true));
    }
  });
});
