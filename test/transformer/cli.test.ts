import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectClose } from '../helpers/compare.js';

function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('frugal train --arch transformer, then generate and logits from the Llama-layout checkpoint', () => {
  it('trains, saves LlamaConfig + HF names, generates reproducibly, logs energy rows, and serves both logits modes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-tf-cli-'));
    try {
      const out = join(dir, 'model'),
        csv = join(dir, 'emissions.csv');
      const t = frugal(
        'train',
        '--arch',
        'transformer',
        '--d-model',
        '32',
        '--layers',
        '2',
        '--heads',
        '2',
        '--steps',
        '6',
        '--seq-len',
        '32',
        '--batch',
        '2',
        '--eval-windows',
        '2',
        '--out',
        out,
        '--energy-log',
        csv,
        '--tdp',
        '40',
      );
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout).toBe('');
      expect(t.stderr).toMatch(/tok\/s.*bits\/byte.*J\/token \((estimated|measured)\) by \S+ \(after a 1-step warm-up\)/);
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      expect(config).toMatchObject({
        model_type: 'llama',
        architectures: ['LlamaForCausalLM'],
        hidden_size: 32,
        num_attention_heads: 2,
        num_hidden_layers: 2,
        tie_word_embeddings: true,
        vocab_size: 256,
      });
      const g = ['generate', '--model', out, '--prompt', 'The ', '--max-tokens', '12', '--temperature', '0', '--energy-log', csv];
      const g1 = frugal(...g),
        g2 = frugal(...g);
      expect(g1.code, g1.stderr).toBe(0);
      expect(g1.stdout).toBe(g2.stdout);
      expect(g1.stderr).toMatch(/tok\/s.*J\/token \((estimated|measured)\)/);
      const rows = readFileSync(csv, 'utf8').trim().split('\n');
      expect(rows).toHaveLength(4); // header, train, generate, generate
      expect(rows[1]).toMatch(/,train,/);
      expect(rows[2]).toMatch(/,generate,/);
      const ids = '72,101,108,108,111,32,119,111,114,108,100';
      const par = frugal('logits', '--model', out, '--ids', ids, '--mode', 'parallel');
      const step = frugal('logits', '--model', out, '--ids', ids, '--mode', 'step');
      expect(par.code, par.stderr).toBe(0);
      const a = JSON.parse(par.stdout) as { shape: number[]; logits: number[] },
        b = JSON.parse(step.stdout) as { logits: number[] };
      expect(a.shape).toEqual([11, 256]);
      expectClose(b.logits, a.logits, 1e-5, 'step vs parallel logits');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses heads that do not divide the width, with exit code 2', () => {
    const r = frugal('train', '--arch', 'transformer', '--d-model', '30', '--heads', '4', '--steps', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not divisible by 4 heads/);
  });
});
