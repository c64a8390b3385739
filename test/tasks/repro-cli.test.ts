import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A tiny `frugal repro` of each task, then `frugal eval` on what it saved, as a user runs them; and their input errors. */
function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stderr.trim().split('\n') };
}

const dir = mkdtempSync(join(tmpdir(), 'frugal-repro-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectUsageError(r: ReturnType<typeof frugal>, mention: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.lines.length, `one line: ${r.stderr}`).toBe(1);
  expect(r.stderr).toMatch(mention);
  expect(r.stdout).toBe('');
}

describe.each([
  ['induction', ['--arch', 'mamba', '--steps', '3'], '16,32', 17],
  ['selective-copy', ['--arch', 'transformer', '--steps', '2'], '40', 18],
  ['hanoi', ['--arch', 'mamba', '--method', 'end-to-end', '--steps', '2'], '3,4', 33],
  ['hanoi', ['--arch', 'transformer', '--method', 'neuro-symbolic', '--steps', '2'], '3', 33],
  ['induction', ['--arch', 'mamba2', '--steps', '2'], '16,32', 17],
  ['hanoi', ['--arch', 'mamba3', '--method', 'neuro-symbolic', '--steps', '2'], '3', 33],
])('frugal repro %s %s', (task, flags, lengths, vocab) => {
  const out = join(dir, `${task}-${flags.join('')}`);
  it('trains, saves a checkpoint that logits reads, and eval prints one row per length', () => {
    const r = frugal('repro', task, ...flags, '--out', out, '--threads', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'frugal_task.json'])
      expect(existsSync(join(out, f)), f).toBe(true);
    const meta = JSON.parse(readFileSync(join(out, 'frugal_task.json'), 'utf8'));
    expect(meta.task).toBe(task);
    expect(meta.train.steps).toBe(Number(flags[flags.length - 1]));
    const l = frugal('logits', '--model', out, '--ids', '0,1,2', '--threads', '1');
    expect(JSON.parse(l.stdout).shape).toEqual([3, vocab]);
    const e = frugal('eval', task, '--model', out, '--lengths', lengths, '--n', '4', '--threads', '1');
    expect(e.code, e.stderr).toBe(0);
    const rows = JSON.parse(e.stdout) as Record<string, unknown>[];
    expect(rows.map((x) => x.length)).toEqual(lengths.split(',').map(Number));
    for (const x of rows) {
      expect(Object.keys(x).sort()).toEqual(['accuracy', 'ci95', 'energy_kind', 'joules_per_sequence', 'length', 'n', 'tok_s']);
      const [lo, hi] = x.ci95 as number[],
        acc = x.accuracy as number;
      expect(x.n).toBe(4);
      expect(lo <= acc && acc <= hi && lo >= 0 && hi <= 1).toBe(true);
      expect(x.joules_per_sequence as number).toBeGreaterThan(0);
      expect(['measured', 'estimated']).toContain(x.energy_kind);
      expect(x.tok_s as number).toBeGreaterThan(0);
    }
  });
});

describe('repro and eval input errors', () => {
  it('an unknown task, --method on a task without methods, and a missing --out exit 2 with one line', () => {
    expectUsageError(frugal('repro', 'sorting', '--out', join(dir, 'x')), /sorting/);
    expectUsageError(frugal('repro', 'induction', '--method', 'end-to-end', '--out', join(dir, 'y')), /--method/);
    expectUsageError(frugal('repro', 'induction'), /--out/);
  });

  it('eval refuses a model trained for another task, a length the task cannot have, and a folder without a task file', () => {
    const ind = join(dir, 'induction---archmamba--steps3');
    expectUsageError(frugal('eval', 'hanoi', '--model', ind), /induction/);
    expectUsageError(frugal('eval', 'induction', '--model', ind, '--lengths', '2'), /--lengths/);
    expectUsageError(frugal('eval', 'induction', '--model', ind, '--lengths', '64,x'), /--lengths/);
    expectUsageError(frugal('eval', 'induction', '--model', 'test/fixtures/mamba-tiny-a'), /frugal_task\.json/);
  });
});
