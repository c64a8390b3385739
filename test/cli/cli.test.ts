import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, readTensorF64 } from '../../src/io/safetensors.js';
import { expectClose } from '../helpers/compare.js';

/** The CLI as a user runs it: exit codes, one-line errors on stderr, only the product on stdout. */
function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stderr.trim().split('\n') };
}

function expectUsageError(r: ReturnType<typeof frugal>, mention: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.lines.length, `one line: ${r.stderr}`).toBe(1);
  expect(r.stderr).toMatch(mention);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stdout).toBe('');
}

describe('frugal CLI errors', () => {
  it('an unknown flag exits 2 with a one-line message naming it', () => {
    expectUsageError(frugal('train', '--bogus-flag', '1'), /--bogus-flag/);
  });
  it('a non-numeric value exits 2 naming the flag', () => {
    expectUsageError(frugal('train', '--steps', 'abc'), /--steps/);
    expectUsageError(frugal('generate', '--model', 'x', '--temperature', 'hot'), /--temperature/);
  });
  it('a missing model directory exits 2 naming it', () => {
    expectUsageError(frugal('generate', '--model', '/nonexistent/model', '--prompt', 'hi'), /\/nonexistent\/model/);
  });
  it('a missing data file exits 2 naming it', () => {
    expectUsageError(frugal('train', '--data', '/nonexistent/corpus.txt', '--steps', '1'), /\/nonexistent\/corpus\.txt/);
  });
  it('token ids outside the vocabulary exit 2', () => {
    expectUsageError(frugal('logits', '--model', 'test/fixtures/mamba-tiny-a', '--ids', '3,1,99'), /99/);
    expectUsageError(frugal('logits', '--model', 'test/fixtures/mamba-tiny-a', '--ids', '3,x'), /--ids/);
  });
  it('a broken config.json exits 2 naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-cli-'));
    try {
      cpSync('test/fixtures/mamba-tiny-a', join(dir, 'm'), { recursive: true });
      writeFileSync(join(dir, 'm', 'config.json'), '{ not json');
      expectUsageError(frugal('logits', '--model', join(dir, 'm'), '--ids', '1,2'), /config\.json/);
      writeFileSync(
        join(dir, 'm', 'config.json'),
        JSON.stringify({ model_type: 'mamba', hidden_size: 16, num_hidden_layers: 3, vocab_size: 37, time_step_rank: 'auto' }),
      );
      expectUsageError(frugal('logits', '--model', join(dir, 'm'), '--ids', '1,2'), /model\.safetensors.*(missing|shape)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('an impossible configuration exits 2', () => {
    expectUsageError(frugal('train', '--d-model', '0'), /--d-model/);
  });
  it('--help exits 0 and prints to stdout (it is what was asked for)', () => {
    const r = frugal('train', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--seq-len/);
    expect(r.stderr).toBe('');
  });
});

describe('frugal logits (the external correctness contract)', () => {
  const gold = decodeSafetensors(new Uint8Array(readFileSync('test/fixtures/mamba-tiny-a/golden.safetensors')), 'golden');
  const ids = Array.from(readTensorF64(gold, 'ids').subarray(0, 13));
  const ref = readTensorF64(gold, 'logits').subarray(0, 13 * 37);
  it.each(['parallel', 'step'])('--mode %s prints {"shape":[L,V],"logits":[...]} matching the PyTorch reference', (mode) => {
    const r = frugal('logits', '--model', 'test/fixtures/mamba-tiny-a', '--ids', ids.join(','), '--mode', mode);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { shape: number[]; logits: number[] };
    expect(out.shape).toEqual([13, 37]);
    expectClose(out.logits, ref, 1e-4, `${mode} logits`);
    expect(r.stderr).toMatch(/tok\/s.*J\/token \((measured|estimated)\)/);
  });
});

describe('frugal train and generate', () => {
  it('trains, saves an HF directory, and generates reproducibly to stdout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-cli-'));
    try {
      const out = join(dir, 'model');
      mkdirSync(dir, { recursive: true });
      const t = frugal('train', '--steps', '15', '--d-model', '32', '--seq-len', '32', '--batch', '4', '--out', out, '--eval-windows', '4');
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout).toBe('');
      expect(t.stderr).toMatch(/tok\/s.*bits\/byte.*J\/token \((estimated|measured)\)/);
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      expect(config.model_type).toBe('mamba');
      expect(config.hidden_size).toBe(32);
      const g1 = frugal('generate', '--model', out, '--prompt', 'The ', '--max-tokens', '20', '--temperature', '0');
      const g2 = frugal('generate', '--model', out, '--prompt', 'The ', '--max-tokens', '20', '--temperature', '0');
      expect(g1.code, g1.stderr).toBe(0);
      expect(g1.stdout).toBe(g2.stdout);
      expect(Buffer.byteLength(g1.stdout.replace(/\n$/, ''))).toBeGreaterThan(0);
      expect(g1.stderr).toMatch(/tok\/s.*J\/token/);
      const s1 = frugal('generate', '--model', out, '--max-tokens', '20', '--seed', '5', '--top-k', '10', '--top-p', '0.9');
      const s2 = frugal('generate', '--model', out, '--max-tokens', '20', '--seed', '5', '--top-k', '10', '--top-p', '0.9');
      expect(s1.stdout).toBe(s2.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
