import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseXml } from '../bench/xml.js';

/**
 * `frugal report synthetic --quick` end to end, as a user runs it: the files it writes, the JSON
 * shape, every JSON row in the markdown with the same numbers, one series per architecture in each
 * chart, and models that `frugal logits` loads.
 */
function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir = '';
let run: ReturnType<typeof frugal>;
let rep: {
  machine: Record<string, unknown>;
  tasks: {
    task: string;
    arch: string;
    method: string | null;
    params: number;
    model_dir: string;
    train: Record<string, number | string>;
    eval: Record<string, unknown>[];
  }[];
  headline: {
    length: number;
    accuracy: Record<string, number>;
    joules_per_sequence: Record<string, number>;
    ratio: number;
    energy_kind: string;
  } | null;
};
let md = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-report-'));
  run = frugal('report', 'synthetic', '--out', dir, '--quick', '--threads', '2');
  if (run.code === 0) {
    rep = JSON.parse(readFileSync(join(dir, 'synthetic.json'), 'utf8'));
    md = readFileSync(join(dir, 'synthetic.md'), 'utf8');
  }
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The markdown table row whose first two cells are `name` and `length`, as its cells. */
function mdRow(name: string, length: string): string[] {
  const line = md.split('\n').find((l) => l.startsWith(`| ${name} | ${length} |`));
  expect(line, `a row for ${name} at ${length}`).toBeDefined();
  return (line as string)
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}
const pct = (s: string) => Number(s.replace('%', '')) / 100;
const name = (t: { task: string; arch: string; method: string | null }) => `${t.task} ${t.arch}${t.method ? ` ${t.method}` : ''}`;

describe('frugal report synthetic --quick', () => {
  it('exits 0, writes nothing on stdout, and writes the report files', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    for (const f of [
      'synthetic.json',
      'synthetic.md',
      'induction-accuracy.svg',
      'induction-joules.svg',
      'hanoi-success.svg',
      'selective-copy-curve.svg',
    ]) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
  });

  it('synthetic.json has the documented shape, one row per task, arch and method, model_dir relative', () => {
    expect(rep.tasks.map(name).sort()).toEqual([
      'hanoi mamba end-to-end',
      'hanoi mamba neuro-symbolic',
      'hanoi transformer end-to-end',
      'hanoi transformer neuro-symbolic',
      'induction mamba',
      'induction transformer',
      'selective-copy mamba',
      'selective-copy transformer',
    ]);
    for (const t of rep.tasks) {
      expect(Object.keys(t).sort()).toEqual(['arch', 'eval', 'method', 'model_dir', 'params', 'task', 'train']);
      expect(Object.keys(t.train).sort()).toEqual(['energy_kind', 'joules', 'seconds', 'steps', 'tokens']);
      expect(t.model_dir).toBe(`models/${t.task}-${t.arch}${t.method ? `-${t.method}` : ''}`);
      expect(existsSync(join(dir, t.model_dir, 'config.json'))).toBe(true);
      for (const e of t.eval) {
        expect(Object.keys(e).sort()).toEqual(['accuracy', 'ci95', 'energy_kind', 'joules_per_sequence', 'length', 'n', 'tok_s']);
      }
    }
    const h = rep.headline as NonNullable<typeof rep.headline>;
    expect(Object.keys(h).sort()).toEqual(['accuracy', 'energy_kind', 'joules_per_sequence', 'length', 'ratio']);
    expect(h.ratio).toBeCloseTo(h.joules_per_sequence.transformer / h.joules_per_sequence.mamba, 10);
    expect(h.length).toBe(1024); // the longest quick length, run by both
  });

  it('every training and evaluation row of synthetic.json is in synthetic.md with the same numbers', () => {
    for (const t of rep.tasks) {
      const trainRow = md.split('\n').find((l) => l.startsWith(`| ${name(t)} | ${t.params} |`));
      expect(trainRow, `training row of ${name(t)}`).toBeDefined();
      const c = (trainRow as string)
        .split('|')
        .slice(1, -1)
        .map((x) => x.trim());
      expect(Number(c[2])).toBe(t.train.steps);
      expect(Number(c[3])).toBe(t.train.tokens);
      expect(Math.abs(Number(c[4]) - (t.train.seconds as number))).toBeLessThanOrEqual(0.05 + 1e-9);
      expect(Math.abs(Number(c[5]) / (t.train.joules as number) - 1)).toBeLessThan(6e-4);
      for (const e of t.eval) {
        const L = e.length as number;
        const cells = mdRow(name(t), t.task === 'hanoi' ? `${L} disks` : `2^${Math.log2(L)}`);
        expect(Number(cells[2])).toBe(e.n);
        expect(Math.abs(pct(cells[3]) - (e.accuracy as number))).toBeLessThanOrEqual(5e-5 + 1e-12);
        const [lo, hi] = cells[4]
          .replace(/[[\]]/g, '')
          .split(',')
          .map((s) => pct(s.trim()));
        const ci = e.ci95 as number[];
        expect(Math.abs(lo - ci[0])).toBeLessThanOrEqual(5e-5 + 1e-12);
        expect(Math.abs(hi - ci[1])).toBeLessThanOrEqual(5e-5 + 1e-12);
        expect(Math.abs(Number(cells[5]) / (e.joules_per_sequence as number) - 1)).toBeLessThan(6e-4);
        expect(Math.abs(Number(cells[6]) - (e.tok_s as number))).toBeLessThanOrEqual(0.5);
      }
    }
  });

  it('each chart parses as XML and has exactly one series per architecture', () => {
    for (const f of [
      'induction-accuracy.svg',
      'induction-joules.svg',
      'induction-curve.svg',
      'selective-copy-curve.svg',
      'hanoi-success.svg',
    ]) {
      const els = parseXml(readFileSync(join(dir, f), 'utf8'));
      expect(els[0].name, f).toBe('svg');
      const series = els.filter((x) => x.name === 'g' && x.attrs.class === 'series').map((x) => x.attrs['data-arch']);
      expect(series.sort(), f).toEqual(['mamba', 'transformer']);
    }
  });

  it('the saved models load in frugal logits and eval', () => {
    const l = frugal('logits', '--model', join(dir, 'models/induction-transformer'), '--ids', '1,2,16,5,16', '--threads', '1');
    expect(l.code, l.stderr).toBe(0);
    expect(JSON.parse(l.stdout).shape).toEqual([5, 17]);
    const g = frugal(
      'generate',
      '--model',
      join(dir, 'models/hanoi-mamba-neuro-symbolic'),
      '--prompt',
      'D1 P2 X3 SEP',
      '--max-tokens',
      '4',
      '--temperature',
      '0',
      '--threads',
      '1',
    );
    expect(g.code, g.stderr).toBe(0);
    expect(
      g.stdout
        .trim()
        .split(/\s+/)
        .every((w) => /^(D[1-6]|P[1-3]|X\d+|SEP|M\d\d)?$/.test(w)),
    ).toBe(true);
  });
});
