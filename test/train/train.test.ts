import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { AdamW, learningRate } from '../../src/train/optim.js';
import { train } from '../../src/train/trainer.js';
import { trainOptions } from '../helpers/train.js';
import { readTrainerState } from '../../src/train/checkpoint.js';

describe('optimiser and schedule', () => {
  it('learning rate warms up linearly, then decays by a cosine to the floor', () => {
    expect(learningRate(1, 1, 10, 110, 0.1)).toBeCloseTo(0.1, 12);
    expect(learningRate(10, 1, 10, 110, 0.1)).toBeCloseTo(1, 12);
    expect(learningRate(60, 1, 10, 110, 0.1)).toBeCloseTo(0.55, 12);
    expect(learningRate(110, 1, 10, 110, 0.1)).toBeCloseTo(0.1, 12);
  });

  it('AdamW step matches the formula, and skips decay where the table says so', () => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const p = e.persistent([2]).set([1, -2]),
      q = e.persistent([1]).set([3]);
    const specs = [
      { name: 'p', shape: [2], init: { kind: 'zeros' as const }, decay: true },
      { name: 'q', shape: [1], init: { kind: 'zeros' as const }, decay: false },
    ];
    const opt = new AdamW(
      e,
      specs,
      new Map([
        ['p', p],
        ['q', q],
      ]),
      { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5 },
    );
    p.grad!.set([0.5, 0]);
    q.grad!.set([2]);
    opt.update(0.1, 0);
    // step 1: m̂ = g, v̂ = g², update = g/(|g| + eps) + wd·p
    expect(p.floats()[0]).toBeCloseTo(1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.5 * 1), 12);
    expect(p.floats()[1]).toBeCloseTo(-2 - 0.1 * (0 + 0.5 * -2), 12);
    expect(q.floats()[0]).toBeCloseTo(3 - 0.1 * (2 / (2 + 1e-8)), 12);
  });

  it('clipping scales the gradients to the global norm', () => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const p = e.persistent([2]).set([0, 0]);
    const opt = new AdamW(e, [{ name: 'p', shape: [2], init: { kind: 'zeros' }, decay: false }], new Map([['p', p]]));
    p.grad!.set([3, 4]);
    expect(opt.update(0, 1)).toBeCloseTo(5, 12);
    const [a, b] = p.grad!.floats();
    expect(a).toBeCloseTo(0.6, 12);
    expect(b).toBeCloseTo(0.8, 12);
  });
});

describe('training', () => {
  it('a 2-layer model overfits a short repeated sequence (loss < 0.01 nats within 300 steps)', () => {
    const e = new Engine({ kernels: 'wasm' });
    const model = new MambaLM(e, createMambaConfig({ dModel: 32, nLayer: 2, dState: 8, vocabSize: 256 })).init(Rng.fromSeed(1));
    const opt = new AdamW(e, model.specs, model.params, { weightDecay: 0 });
    const text = new TextEncoder().encode('frugal mamba! '.repeat(6));
    const L = 48,
      ids = Int32Array.from(text.subarray(0, L)),
      targets = Int32Array.from(text.subarray(1, L + 1));
    let loss = Infinity,
      step = 0;
    while (step < 300 && loss >= 0.01) {
      step++;
      opt.zeroGrad();
      loss = valueAndGrad(e, () => model.loss(ids, targets, 1, L));
      opt.update(learningRate(step, 1e-2, 10, 300, 1e-3), 1);
      model.weightsChanged();
    }
    expect(loss).toBeLessThan(0.01);
    expect(step).toBeLessThanOrEqual(300);
  });

  it('on the corpus, validation bits per byte fall below the unigram byte entropy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-'));
    try {
      const r = train(trainOptions({ out: join(dir, 'm'), steps: 150, seqLen: 64, batch: 8, dModel: 48, evalWindows: 32 }));
      expect(r.unigramBpb).toBeGreaterThan(4);
      expect(r.valBpb).toBeLessThan(r.unigramBpb);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is seeded and reproducible: same seed, same losses; another seed, other losses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-'));
    try {
      const a = train(trainOptions({ out: join(dir, 'a'), steps: 8 })).state.losses;
      const b = train(trainOptions({ out: join(dir, 'b'), steps: 8 })).state.losses;
      const c = train(trainOptions({ out: join(dir, 'c'), steps: 8, seed: 2 })).state.losses;
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resuming continues the run with the same losses as an uninterrupted one, bit for bit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-'));
    try {
      const full = train(trainOptions({ out: join(dir, 'full'), steps: 12 })).state.losses;
      const stopAt5 = {
        onSave: (step: number) => {
          if (step === 5) throw new Error('interrupted');
        },
      };
      expect(() => train(trainOptions({ out: join(dir, 'part'), steps: 12, saveEvery: 5 }), stopAt5)).toThrow('interrupted');
      expect(readTrainerState(join(dir, 'part')).step).toBe(5);
      const resumed = train(trainOptions({ out: join(dir, 'part'), steps: 12, saveEvery: 5, resume: true })).state.losses;
      expect(resumed).toEqual(full);
      expect(readTrainerState(join(dir, 'part')).step).toBe(12);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('trains on any text file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-'));
    try {
      const file = join(dir, 'tiny.txt');
      writeFileSync(file, 'the quick brown fox jumps over the lazy dog. '.repeat(40));
      const r = train(trainOptions({ data: file, out: join(dir, 'm'), steps: 30, valFraction: 0.2 }));
      expect(r.state.losses.length).toBe(30);
      expect(r.state.losses[29]).toBeLessThan(r.state.losses[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('continuing a published model (train --init)', () => {
  it('trains on the ids of the checkpoint tokenizer.json and keeps it beside the weights', async () => {
    const { existsSync } = await import('node:fs');
    const { loadTokenizer } = await import('../../src/io/tokenizer.js');
    const dir = mkdtempSync(join(tmpdir(), 'frugal-'));
    try {
      const file = join(dir, 'text.txt');
      writeFileSync(file, 'The quick brown fox jumps over the lazy dog. The Congress shall make no law. '.repeat(60));
      const init = 'test/fixtures/interop/hf-tokenizer';
      const logs: string[] = [];
      const r = train(trainOptions({ data: file, out: join(dir, 'm'), init, steps: 6, seqLen: 16, batch: 2, valFraction: 0.2 }), {
        log: (m) => logs.push(m),
      });
      expect(logs.some((l) => /tokenised the corpus/.test(l))).toBe(true);
      expect(existsSync(join(dir, 'm', 'tokenizer.json'))).toBe(true);
      expect(r.model.config.vocabSize).toBe(464);
      // byte ids would be < 256 and the tokenizer's far fewer per byte: the validation figure is per byte either way
      const tok = loadTokenizer(init)!;
      const ids = tok.encode('The quick brown fox');
      expect(ids.length).toBeLessThan('The quick brown fox'.length);
      expect(Number.isFinite(r.valBpb)).toBe(true);
      const resumed = train(
        trainOptions({
          data: file,
          out: join(dir, 'm'),
          init,
          steps: 8,
          seqLen: 16,
          batch: 2,
          valFraction: 0.2,
          resume: true,
          force: true,
        }),
      );
      expect(resumed.state.step).toBe(8);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
