import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, Tape } from '../../src/ops/index.js';
import * as op from '../../src/ops/ops.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { TransformerLM } from '../../src/models/transformer/model.js';
import { Mamba2LM } from '../../src/models/mamba2/model.js';
import { createMamba2Config } from '../../src/models/mamba2/config.js';
import { Mamba3LM } from '../../src/models/mamba3/model.js';
import { createMamba3Config } from '../../src/models/mamba3/config.js';
import { HybridLM } from '../../src/models/hybrid/model.js';
import { createHybridConfig } from '../../src/models/hybrid/config.js';
import { createLlamaConfig } from '../../src/models/transformer/config.js';
import { Adapter, LORA_TARGETS, loadAdapter, mergeAdapter } from '../../src/models/lora.js';
import { quantizeModel, quantizeTensor } from '../../src/models/quant.js';
import type { TrainableModel } from '../../src/models/types.js';
import type { KernelKind } from '../../src/kernels/backend.js';
import { FrugalError } from '../../src/io/errors.js';
import { expectClose } from '../helpers/compare.js';
import { checkModelGradients, perturb, randomIds } from '../helpers/models.js';

type Make = (e: Engine, seed?: number, dModel?: number, vocab?: number) => TrainableModel;
const mamba: Make = (e, seed = 3, dModel = 32, vocab = 40) => {
  const m = new MambaLM(e, createMambaConfig({ dModel, nLayer: 2, dState: 4, vocabSize: vocab })).init(Rng.fromSeed(seed));
  perturb(m, Rng.fromSeed(seed + 1), 0.05);
  return m;
};
const transformer: Make = (e, seed = 3, dModel = 32, vocab = 40) => {
  const m = new TransformerLM(e, createLlamaConfig({ dModel, nLayer: 2, nHead: 2, vocabSize: vocab })).init(Rng.fromSeed(seed));
  perturb(m, Rng.fromSeed(seed + 1), 0.3);
  return m;
};
const mamba2: Make = (e, seed = 3, dModel = 32, vocab = 40) => {
  const m = new Mamba2LM(e, createMamba2Config({ dModel, nLayer: 2, dState: 8, vocabSize: vocab, headDim: 16 })).init(Rng.fromSeed(seed));
  perturb(m, Rng.fromSeed(seed + 1), 0.05);
  return m;
};
const mamba3Mimo: Make = (e, seed = 3, dModel = 32, vocab = 40) => {
  const c = createMamba3Config({ dModel, nLayer: 2, dState: 8, headDim: 16, isMimo: true, mimoRank: 2, vocabSize: vocab });
  const m = new Mamba3LM(e, c).init(Rng.fromSeed(seed));
  perturb(m, Rng.fromSeed(seed + 1), 0.05);
  return m;
};
const bamba: Make = (e, seed = 3, dModel = 32, vocab = 40) => {
  const c = createHybridConfig({ dModel, layerTypes: ['mamba2', 'attention'], dState: 8, nHead: 2, vocabSize: vocab });
  const m = new HybridLM(e, c).init(Rng.fromSeed(seed));
  perturb(m, Rng.fromSeed(seed + 1), 0.05);
  return m;
};
const ARCHS: [string, Make, string][] = [
  ['mamba', mamba, 'mamba'],
  ['transformer', transformer, 'llama'],
  ['Mamba-2', mamba2, 'mamba2'],
  ['Mamba-3 MIMO', mamba3Mimo, 'mamba3'],
  ['Bamba hybrid (Mamba-2 and attention layers)', bamba, 'bamba'],
];

/** An adapter on every target with B drawn at random too (a fresh adapter's B = 0 changes nothing). */
function randomAdapter(model: TrainableModel, type: string, seed: number, r = 2, alpha = 3, std = 0.3): Adapter {
  const a = new Adapter(model, { r, alpha, dropout: 0, targets: LORA_TARGETS[type] }, 'base').init(Rng.fromSeed(seed));
  const rng = Rng.fromSeed(seed + 7);
  for (const { B } of a.modules.values()) {
    const v = B.data();
    for (let i = 0; i < v.length; i++) v[i] = std * rng.normal();
  }
  return a;
}

const logitsOf = (m: TrainableModel, ids: Int32Array, B: number, L: number) => m.e.scope(() => m.forward(ids, B, L).toFloat64());

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'frugal-lora-'));
}

describe.each(ARCHS)('LoRA on the %s', (_, make, type) => {
  it('a new adapter (B = 0) changes nothing: forward and step bit for bit', () => {
    const e = new Engine({ kernels: 'wasm' });
    const m = make(e),
      ids = randomIds(5, 2 * 9, 40);
    const base = logitsOf(m, ids, 2, 9),
      baseStep = m.step(ids.subarray(0, 2), m.createState(2));
    Adapter.attach(m, new Adapter(m, { r: 2, alpha: 16, dropout: 0, targets: LORA_TARGETS[type] }, 'base').init(Rng.fromSeed(1)));
    expect(m.e.lora.size).toBeGreaterThan(0);
    expect(logitsOf(m, ids, 2, 9)).toEqual(base);
    expect(m.step(ids.subarray(0, 2), m.createState(2))).toEqual(baseStep);
  });

  it('the forward with an adapter equals the forward of the merged weights (float64)', () => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const m = make(e),
      ids = randomIds(6, 2 * 7, 40);
    const base = logitsOf(m, ids, 2, 7);
    const a = randomAdapter(m, type, 11);
    Adapter.attach(m, a);
    const adapted = logitsOf(m, ids, 2, 7);
    expect(Math.max(...adapted.map((v, i) => Math.abs(v - base[i])))).toBeGreaterThan(1e-3); // the adapter matters
    Adapter.attach(m, null);
    mergeAdapter(m, a);
    expectClose(logitsOf(m, ids, 2, 7), adapted, 1e-12, 'merged vs adapter');
  });

  it('decoding with an adapter (prefill, then steps) equals its parallel forward', () => {
    const e = new Engine({ kernels: 'wasm' });
    const m = make(e),
      L = 12,
      ids = randomIds(8, L, 40);
    Adapter.attach(m, randomAdapter(m, type, 12));
    const par = logitsOf(m, ids, 1, L).subarray((L - 1) * 40);
    const st = m.createState(1);
    m.prefill(ids.subarray(0, 5), 5, st);
    let last = new Float32Array();
    for (let t = 5; t < L; t++) last = m.step(ids.subarray(t, t + 1), st);
    expectClose(last, par, 1e-5, 'steps vs parallel');
  });

  it('float64 finite differences of the loss with respect to every A and B (base frozen)', () => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const m = make(e, 4, 16, 13);
    for (const p of m.params.values()) p.requiresGrad = false;
    // a large alpha with a small B: the update stays moderate while every gradient is far above round-off
    const a = randomAdapter(m, type, 13, 1, 40, 0.03);
    Adapter.attach(m, a);
    checkModelGradients(m, Rng.fromSeed(9), 2, 6, 3, 1e-5, 1e-3, a.params); // the tolerance of the whole-model checks in test/ops
    for (const p of m.params.values()) expect(p.grad ?? null).toBeNull(); // nothing flowed into the frozen base
  });

  it('save -> load round trip, and two adapters on one base switched without reloading it', () => {
    const dir = tmp();
    try {
      const e = new Engine({ kernels: 'wasm' });
      const m = make(e),
        ids = randomIds(3, 10, 40);
      const a = randomAdapter(m, type, 21),
        b = randomAdapter(m, type, 22);
      for (const [name, ad] of [
        ['a', a],
        ['b', b],
      ] as const) {
        const d = join(dir, name);
        rmSync(d, { recursive: true, force: true });
        mkdirSync(d, { recursive: true });
        for (const [f, data] of Object.entries(ad.files(m))) writeFileSync(join(d, f), data);
      }
      Adapter.attach(m, a);
      const la = logitsOf(m, ids, 1, 10);
      Adapter.attach(m, b);
      const lb = logitsOf(m, ids, 1, 10);
      const m2 = make(new Engine({ kernels: 'wasm' }));
      const ra = loadAdapter(m2, join(dir, 'a')),
        rb = loadAdapter(m2, join(dir, 'b'));
      for (const [name, t] of a.params) expect(ra.params.get(name)?.data()).toEqual(t.data());
      Adapter.attach(m2, ra);
      expect(logitsOf(m2, ids, 1, 10)).toEqual(la);
      Adapter.attach(m2, rb);
      expect(logitsOf(m2, ids, 1, 10)).toEqual(lb);
      Adapter.attach(m2, ra);
      expect(logitsOf(m2, ids, 1, 10)).toEqual(la);
      Adapter.attach(m2, null);
      expect(logitsOf(m2, ids, 1, 10)).toEqual(logitsOf(make(new Engine({ kernels: 'wasm' })), ids, 1, 10));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an adapter whose base differs, naming the first mismatch', () => {
    const dir = tmp();
    try {
      const e = new Engine({ kernels: 'wasm' });
      const m = make(e);
      for (const [f, data] of Object.entries(randomAdapter(m, type, 31).files(m))) writeFileSync(join(dir, f), data);
      const wider = make(new Engine({ kernels: 'wasm' }), 3, 48);
      expect(() => loadAdapter(wider, dir)).toThrow(
        /tensor 'base_model\.model\.[a-z_.0-9]+\.lora_A\.weight' has shape \[2,32\] but this base implies \[2,48\]/,
      );
      const otherVocab = make(new Engine({ kernels: 'wasm' }), 3, 32, 41);
      expect(() => loadAdapter(otherVocab, dir)).toThrow(/vocabulary of 40, this base has 41/);
      const other = (type === 'mamba' ? transformer : mamba)(new Engine({ kernels: 'wasm' }));
      expect(() => loadAdapter(other, dir)).toThrow(FrugalError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LoRA on a quantised base (QLoRA-style)', () => {
  it.each(['q8', 'q4'] as const)('%s: the taped forward equals decoding, and gradients reach the adapter', (format) => {
    const e = new Engine({ kernels: 'wasm' as KernelKind });
    const m = mamba(e) as MambaLM;
    quantizeModel(m, format);
    for (const p of m.params.values()) p.requiresGrad = false;
    const a = randomAdapter(m, 'mamba', 41);
    Adapter.attach(m, a);
    const L = 9,
      ids = randomIds(2, L, 40);
    const par = logitsOf(m, ids, 1, L).subarray((L - 1) * 40);
    const st = m.createState(1);
    expectClose(m.prefill(ids, L, st), par, 1e-5, 'prefill vs taped forward');
    for (const t of a.params.values()) t.grad = e.persistent(t.shape);
    const tape = new Tape();
    e.tape = tape;
    e.scope(() => {
      const loss = m.loss(ids, randomIds(3, L, 40), 1, L);
      e.tape = null;
      tape.backward(e, loss);
    });
    for (const [name, t] of a.params) expect(Math.max(...t.grad!.data().map(Math.abs)), name).toBeGreaterThan(0);
  });

  it("the frozen quantised product's input gradient is dy times the dequantised weight", () => {
    const e = new Engine({ kernels: 'ref' });
    const m = mamba(e) as MambaLM;
    const rng = Rng.fromSeed(5),
      M = 3,
      N = 4,
      K = 64;
    const wf = e.persistent([N, K]).set(Array.from({ length: N * K }, () => rng.normal()));
    for (const format of ['q8', 'q4'] as const) {
      const qw = quantizeTensor(m, wf, format);
      const deq = e.persistent([N, K]);
      if (format === 'q8') e.k.dequantizeQ8(deq, qw.q, qw.scales, N, K);
      else e.k.dequantizeQ4(deq, qw.q, qw.scales, N, K);
      const x = e.persistent([M, K]).set(Array.from({ length: M * K }, () => rng.normal()));
      x.requiresGrad = true;
      x.grad = e.persistent([M, K]);
      const dy = Array.from({ length: M * N }, () => rng.normal());
      const tape = new Tape();
      e.tape = tape;
      e.scope(() => {
        const y = op.linear(e, x, qw, null);
        e.tape = null;
        tape.backwardFrom(e, y, dy);
      });
      // expected, written out: dx[i, k] = Σ_n dy[i, n] · W[n, k]
      const W = deq.toFloat64(),
        want = new Float64Array(M * K);
      for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) want[i * K + k] += dy[i * N + n] * W[n * K + k];
      expectClose(x.grad.toFloat64(), want, 1e-6, `${format} input gradient`);
    }
  });
});
