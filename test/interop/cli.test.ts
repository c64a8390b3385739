import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { expectClose } from '../helpers/compare.js';
import { fixture, golden } from './fixtures.js';

/** Published checkpoints through the CLI a user runs: tokenizers, logits, generate, convert, exit codes. */
function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const tmp = mkdtempSync(join(tmpdir(), 'frugal-icli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the checkpoint tokenizer in the CLI', () => {
  const text = (JSON.parse(readFileSync(join(fixture('hf-tokenizer'), 'tokenizer-cases.json'), 'utf8')) as { text: string }).text;
  const gold = golden('hf-tokenizer');

  it.each(['parallel', 'step'])('logits --text tokenises with tokenizer.json (--mode %s)', (mode) => {
    const r = frugal('logits', '--model', fixture('hf-tokenizer'), '--text', text, '--mode', mode);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { shape: number[]; logits: number[] };
    expect(out.shape).toEqual([gold.L, 464]);
    expectClose(out.logits, gold.logits, 1e-4, `${mode} logits of the tokenised text`);
  });

  it('generate --prompt streams reproducible text and ends with the summary line', () => {
    const args = ['generate', '--model', fixture('hf-tokenizer'), '--prompt', 'The state', '--max-tokens', '12', '--seed', '4'];
    const a = frugal(...args),
      b = frugal(...args);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stderr).toMatch(/generate: prompt 2 tokens.*J\/token/);
  });

  it('a checkpoint with a small vocabulary and no tokenizer.json asks for ids (exit 2)', () => {
    const r = frugal('generate', '--model', fixture('orig-bin-tied'), '--prompt', 'hi');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has a vocabulary of 40 and no tokenizer\.json/);
  });
});

describe('published layouts through the CLI', () => {
  it.each(['parallel', 'step'])('logits on a state-spaces pytorch_model.bin (--mode %s)', (mode) => {
    const g = golden('orig-bin-tied');
    const ids = Array.from(g.ids.subarray(0, g.L));
    const r = frugal('logits', '--model', fixture('orig-bin-tied'), '--ids', ids.join(','), '--mode', mode);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { shape: number[]; logits: number[] };
    expect(out.shape).toEqual([g.L, 40]);
    expectClose(out.logits, g.logits.subarray(0, g.L * 40), 1e-4, mode);
  });

  it('convert writes only to --out and reports on stderr', () => {
    const out = join(tmp, 'hf');
    const r = frugal('convert', '--model', fixture('orig-bin-tied'), '--out', out, '--to', 'hf', '--dtype', 'f16');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/convert: .* -> .* \(hf, f16\): 22 tensors, .* MiB\/s.* J \((estimated|measured)\)/);
    const g = frugal('convert', '--model', out, '--out', join(tmp, 'm.gguf'), '--to', 'gguf', '--dtype', 'q8_0');
    expect(g.code, g.stderr).toBe(0);
    expect(readFileSync(join(tmp, 'm.gguf')).subarray(0, 4).toString()).toBe('GGUF');
  });

  it('convert refuses bad requests with exit 2 and one line', () => {
    for (const args of [
      ['--model', fixture('orig-bin-f16-untied'), '--out', join(tmp, 'x.gguf'), '--to', 'gguf'],
      ['--model', fixture('hf-bf16-untied'), '--out', join(tmp, 'y'), '--max-shard-size', 'lots'],
      ['--model', join(tmp, 'nowhere'), '--out', join(tmp, 'z')],
      ['--model', fixture('frugal-trained'), '--out', join(tmp, 'q.gguf'), '--to', 'gguf', '--dtype', 'q5'],
      ['--model', fixture('frugal-trained'), '--out', join(tmp, 'q'), '--to', 'hf', '--dtype', 'q4_0'],
    ]) {
      const r = frugal('convert', ...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it("a checkpoint over WebAssembly's 4 GiB is refused with exit 2, naming the limit and the way around it", () => {
    const d = join(tmp, 'mamba-2.8b-shaped');
    mkdirSync(d);
    writeFileSync(
      join(d, 'config.json'),
      JSON.stringify({ model_type: 'mamba', hidden_size: 2560, num_hidden_layers: 64, vocab_size: 50280, use_bias: false }),
    );
    writeFileSync(join(d, 'model.safetensors'), encodeSafetensors([]));
    const r = frugal('logits', '--model', d, '--ids', '1,2');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/over the 4 GiB limit of WebAssembly memory.*frugal quantize/);
  });
});
