import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectOneLineError, frugal } from '../helpers/cli.js';
import { writeToyGenomes } from '../helpers/genomes.js';
import { parseXml } from '../bench/xml.js';
import { HLA, STRAINS } from '../../src/genome/sources.js';
import { fmt } from '../../src/report/markdown.js';

/**
 * `frugal report genomics --quick` end to end on a toy genome tree (the real genomes come from
 * Debian packages; the suite's own genomes are made here): every task trains a few steps and is
 * evaluated for both architectures, the files and the JSON shape, the markdown against the JSON,
 * one series per architecture in each chart, and the one-line errors of a missing genome.
 */
let root = '',
  out = '';
let rep: {
  format: string;
  run: { quick: boolean; seeds: number[]; command: string };
  data: {
    packages: Record<string, string>;
    strains: unknown[];
    hla: { bases: number; exons: number };
    markov: { k: number; test_bits_per_base: number };
  };
  models: { params: Record<string, number> };
  runs: { task: string; arch: string; seed: number; params: number; train: { steps: number }; eval: Record<string, unknown>[] }[];
  summary: { task: string; arch: string; length: number; mean: number | null }[];
  per_100k: { arch: string; seconds: number | null }[];
  targets: { target: string; met: boolean | null }[];
};
let md = '';

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'frugal-genomics-'));
  writeToyGenomes(join(root, 'usr'));
  out = join(root, 'report');
  const r = frugal(['report', 'genomics', '--quick', '--out', out, '--genomes', join(root, 'usr'), '--threads', '1'], { timeout: 120_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('');
  rep = JSON.parse(readFileSync(join(out, 'genomics.json'), 'utf8'));
  md = readFileSync(join(out, 'genomics.md'), 'utf8');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('frugal report genomics --quick', () => {
  it('writes genomics.json, genomics.md and the charts', () => {
    for (const f of ['genomics.json', 'genomics.md', 'strain-accuracy.svg', 'lm-bits.svg', 'motif-accuracy.svg', 'window-joules.svg'])
      expect(existsSync(join(out, f)), f).toBe(true);
    expect(rep.format).toBe('frugal-genomics/1');
    expect(rep.run.quick).toBe(true);
    expect(rep.run.command).toContain('frugal report genomics --out');
    expect(rep.data.packages['emboss-test']).toMatch(/^not used \(genomes read from /);
    expect(rep.data.strains).toHaveLength(STRAINS.length);
  });

  it('trains every task for both architectures at matched parameter counts and evaluates each', () => {
    expect(rep.runs.map((r) => `${r.task} ${r.arch}`)).toEqual([
      'strain mamba',
      'strain transformer',
      'lm mamba',
      'lm transformer',
      'exon mamba',
      'exon transformer',
      'motif mamba',
      'motif transformer',
    ]);
    const { mamba, transformer } = rep.models.params;
    expect(Math.abs(mamba - transformer) / mamba).toBeLessThan(0.05);
    for (const r of rep.runs) {
      expect(r.train.steps, `${r.task} ${r.arch}`).toBe(3);
      expect(r.eval.length).toBeGreaterThan(0);
      for (const e of r.eval) {
        expect(e.accuracy as number).toBeGreaterThanOrEqual(0);
        expect(e.accuracy as number).toBeLessThanOrEqual(1);
        if (r.task === 'lm') {
          expect(e.bits_per_base as number).toBeGreaterThan(1);
          expect(e.bits_per_base as number).toBeLessThan(4);
          // the baseline scored on the same bases
          expect(e.markov_bits_per_base as number).toBeGreaterThan(1);
          expect(e.markov_bits_per_base as number).toBeLessThan(4);
        }
        if (r.task === 'exon') expect(Math.abs(e.mcc as number)).toBeLessThanOrEqual(1);
      }
    }
    expect(rep.data.markov.test_bits_per_base).toBeGreaterThan(1);
  });

  it('genomics.md shows every summary figure, the targets and the 100k-base row', () => {
    for (const s of rep.summary) {
      if (s.mean === null) continue;
      const v = s.task === 'lm' || s.task === 'exon' ? s.mean.toFixed(4) : fmt.pct(s.mean);
      expect(md, `${s.task} ${s.arch} ${s.length}`).toContain(`| ${s.arch} | ${s.length} | 1 | ${v} |`);
    }
    expect(rep.targets).toHaveLength(4);
    expect(md).toContain('## Time and joules per 100k-base window');
    expect(rep.per_100k.every((c) => c.seconds === null)).toBe(true); // --quick has no 100k window
    expect(md).toMatch(/\*\*Energy is (estimated|measured)\*\*/);
  });

  it('each chart has one series per architecture', () => {
    for (const f of ['strain-accuracy.svg', 'lm-bits.svg', 'motif-accuracy.svg', 'window-joules.svg']) {
      const series = parseXml(readFileSync(join(out, f), 'utf8'))
        .filter((n) => n.attrs.class === 'series')
        .map((n) => n.attrs['data-arch']);
      expect(series, f).toEqual(['mamba', 'transformer']);
    }
  });

  it('a missing genome is a one-line error naming the Debian package, exit 2', () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    expectOneLineError(
      frugal(['report', 'genomics', '--quick', '--out', join(root, 'r1'), '--genomes', empty]),
      2,
      /genome file .*MG1655-K12\.fasta\.gz not found: install the Debian package ragout-examples/,
    );
    rmSync(join(root, 'usr', HLA.path));
    expectOneLineError(
      frugal(['report', 'genomics', '--quick', '--out', join(root, 'r2'), '--genomes', join(root, 'usr')]),
      2,
      /gbpri1\.seq not found: install the Debian package emboss-test/,
    );
    expect(existsSync(join(root, 'r2', 'genomics.json'))).toBe(false);
  });
});
