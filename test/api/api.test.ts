import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FrugalError,
  TRAIN_DEFAULTS,
  TokenIdError,
  convert,
  generate,
  loadModel,
  logits,
  quantize,
  train,
  trainOptions,
} from '../../src/index.js';
import { readTrainerState } from '../../src/train/checkpoint.js';
import { frugal } from '../helpers/cli.js';
import { relErr } from '../helpers/compare.js';

const MODEL = 'test/fixtures/mamba-d256-l4';

describe('library API', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'frugal-api-')));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('generate streams the same text as `frugal generate` with the same options, and reports speed and energy', () => {
    const model = loadModel(MODEL);
    const pieces: string[] = [];
    const ids: number[] = [];
    const out = generate(model, 'The Congress', {
      maxTokens: 40,
      temperature: 0.8,
      topK: 20,
      seed: 5,
      onText: (s) => pieces.push(s),
      onToken: (id) => ids.push(id),
    });
    model.dispose();
    expect(out.ids).toEqual(ids);
    expect(out.ids.length).toBe(40);
    expect(pieces.join('')).toBe(out.text);
    expect(out.promptTokens).toBe('The Congress'.length);
    expect(out.tokensPerSecond).toBeGreaterThan(0);
    expect(out.energy.tokens).toBe(40 + out.promptTokens);
    expect(['measured', 'estimated']).toContain(out.energy.kind);
    const cli = frugal([
      'generate',
      '--model',
      MODEL,
      '--prompt',
      'The Congress',
      '--max-tokens',
      '40',
      '--top-k',
      '20',
      '--seed',
      '5',
      '--threads',
      '1',
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toBe(out.text + '\n');
  });

  it('logits equal `frugal logits` (parallel), and successive steps agree with the parallel forward', () => {
    const model = loadModel(MODEL, { kernels: 'wasm', threads: 2 });
    const ids = [84, 104, 101, 32, 67, 111];
    const par = logits(model, ids);
    const step = logits(model, ids, { mode: 'step' });
    model.dispose();
    expect(par.shape).toEqual([6, 256]);
    expect(relErr(step.values, par.values)).toBeLessThan(1e-5);
    const cli = frugal(['logits', '--model', MODEL, '--ids', ids.join(','), '--threads', '1']);
    expect(cli.code, cli.stderr).toBe(0);
    const doc = JSON.parse(cli.stdout) as { shape: number[]; logits: number[] };
    expect(doc.shape).toEqual(par.shape);
    expect(Float32Array.from(doc.logits)).toEqual(par.values); // threads give the same numbers bit for bit
  });

  it('refuses ids outside the vocabulary with a typed input error', () => {
    const model = loadModel(MODEL, { kernels: 'ref' });
    expect(() => generate(model, [3, 256], { maxTokens: 1 })).toThrow(TokenIdError);
    try {
      logits(model, [-1]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FrugalError);
      expect((e as FrugalError).exitCode).toBe(2);
      expect((e as Error).message).toMatch(/ids: token id -1 at position 0 is outside the model's vocabulary \[0, 256\)/);
    }
    model.dispose();
    expect(() => loadModel(join(root, 'missing'))).toThrow(/does not exist/);
  });

  it('trainOptions fills the defaults, minLr from lr, and counts only the settings given as explicit', () => {
    const o = trainOptions({ out: 'x', lr: 1e-3, steps: undefined });
    expect(o.minLr).toBe(1e-4);
    expect(o.dModel).toBe(TRAIN_DEFAULTS.dModel);
    expect(o.steps).toBe(TRAIN_DEFAULTS.steps);
    expect(o.explicit).toEqual(['out', 'lr']);
    expect(trainOptions({ out: 'x', minLr: 0 }).minLr).toBe(0);
  });

  it('train saves a model that generate can use; resuming restores every setting not given', () => {
    const corpus = join(root, 'corpus.txt');
    writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog. '.repeat(80));
    const out = join(root, 'run');
    const steps: number[] = [];
    const small = { data: corpus, out, dModel: 16, layers: 1, dState: 4, seqLen: 16, batch: 2, evalWindows: 2, seed: 3 };
    const first = train({ ...small, steps: 3 }, { onStep: (s) => steps.push(s.step) });
    expect(steps).toEqual([1, 2, 3]);
    expect(first.steps).toBe(3);
    expect(first.warmUpExcluded).toBe(true);
    expect(first.tokens).toBe(2 * 2 * 16); // steps 2 and 3: the first is warm-up
    expect(first.energy.tokens).toBe(first.tokens);
    expect(Number.isFinite(first.valBpb)).toBe(true);
    expect(generate(first.model, 'the ', { maxTokens: 5 }).ids.length).toBe(5);
    first.model.dispose();
    // a longer schedule contradicts the saved run: refused, unless forced
    expect(() => train({ out, resume: true, steps: 5 })).toThrow(/--resume: .* was trained with --steps 3, and --steps 5 contradicts it/);
    // the shape, data and seed, not given, come from the saved run
    const second = train({ out, resume: true, steps: 5, force: true });
    expect(second.steps).toBe(5);
    expect(second.parameters).toBe(first.parameters);
    second.model.dispose();
    const saved = readTrainerState(out);
    expect(saved.options.dModel).toBe(16);
    expect(saved.options.seed).toBe(3);
    expect(saved.losses.length).toBe(5);
  });

  it('quantize and convert write the same files as `frugal quantize` and `frugal convert`, and refuse to overwrite', () => {
    const q = quantize({ model: MODEL, out: join(root, 'q8'), to: 'q8' });
    expect(q.after).toBeLessThan(q.before / 3);
    expect(frugal(['quantize', '--model', MODEL, '--to', 'q8', '--out', join(root, 'q8-cli'), '--threads', '1']).code).toBe(0);
    expect(readFileSync(join(root, 'q8', 'model.safetensors')).equals(readFileSync(join(root, 'q8-cli', 'model.safetensors')))).toBe(true);
    const c = convert({ model: MODEL, out: join(root, 'm.gguf'), to: 'gguf', dtype: 'q8_0' });
    expect(c.tensors).toBeGreaterThan(10);
    expect(frugal(['convert', '--model', MODEL, '--out', join(root, 'm-cli.gguf'), '--to', 'gguf', '--dtype', 'q8_0']).code).toBe(0);
    expect(readFileSync(join(root, 'm.gguf')).equals(readFileSync(join(root, 'm-cli.gguf')))).toBe(true);
    expect(() => convert({ model: MODEL, out: join(root, 'm.gguf'), to: 'gguf' })).toThrow(/--out .*m\.gguf/);
    expect(() => quantize({ model: MODEL, out: join(root, 'q8'), to: 'q4' })).toThrow(FrugalError);
  });
});
