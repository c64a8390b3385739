import { describe, expect, it } from 'vitest';
import { genomicsTargets, per100k, summarize } from '../../src/report/genome-md.js';
import type { GenomeEvalRow, GenomeRun, GenomicsReport } from '../../src/report/genome.js';
import { wilson } from '../../src/report/stats.js';

/** The summary over seeds, the 100k-base figures and the targets, on a hand-made report. */
const row = (length: number, n: number, accuracy: number | null, extra: Partial<GenomeEvalRow> = {}): GenomeEvalRow => ({
  length,
  n,
  accuracy,
  ci95: null,
  joules_per_sequence: accuracy === null ? null : length / 1000,
  energy_kind: 'estimated',
  tok_s: accuracy === null ? null : 50_000,
  ...(accuracy === null ? { out_of_budget: 'time: about 900 s needed at 256000, 10 s left of the budget' } : {}),
  ...extra,
});

const run = (task: GenomeRun['task'], arch: GenomeRun['arch'], seed: number, evalRows: GenomeEvalRow[]): GenomeRun => ({
  task,
  arch,
  seed,
  params: 1000,
  train: { steps: 1, tokens: 1, seconds: 1, joules: 1, energy_kind: 'estimated', energy_method: 'cpu-time', stopped_early: null },
  eval: evalRows,
});

const rep = {
  runs: [
    run('strain', 'mamba', 1, [row(1000, 10, 0.5), row(100_000, 4, 0.75), row(256_000, 4, 1)]),
    run('strain', 'mamba', 2, [row(1000, 10, 0.3), row(100_000, 4, 0.5), row(256_000, 4, 0.75)]),
    run('strain', 'transformer', 1, [row(1000, 10, 0.4), row(100_000, 2, 0.5), row(256_000, 0, null)]),
    run('lm', 'mamba', 1, [row(1000, 8, 0.3, { bits_per_base: 1.9 }), row(4000, 8, 0.3, { bits_per_base: 1.85 })]),
  ],
  data: { markov: { k: 6, test_bits_per_base: 1.93 }, strains: [] },
} as unknown as GenomicsReport;

describe('genomics summary', () => {
  it('averages over seeds, pools the Wilson interval and names why a length did not run', () => {
    const rows = summarize(rep);
    const m1k = rows.find((r) => r.task === 'strain' && r.arch === 'mamba' && r.length === 1000);
    expect(m1k).toMatchObject({ seeds: 2, mean: 0.4, min: 0.3, max: 0.5 });
    expect(m1k?.ci95).toEqual(wilson(8, 20)); // 5 + 3 of 10 + 10
    expect(m1k?.seconds_per_sequence).toBeCloseTo(1000 / 50_000, 12);
    const t256 = rows.find((r) => r.task === 'strain' && r.arch === 'transformer' && r.length === 256_000);
    expect(t256).toMatchObject({ seeds: 0, mean: null, out_of_budget: expect.stringMatching(/^time: about 900 s/) });
    const lm = rows.filter((r) => r.task === 'lm').map((r) => r.mean);
    expect(lm).toEqual([1.9, 1.85]);
  });

  it('time and joules per 100k-base window come from the 100,000-base windows', () => {
    const c = per100k(rep);
    expect(c[0]).toMatchObject({ arch: 'mamba', joules: 100 });
    expect(c[0].seconds).toBeCloseTo(2, 12);
    expect(c[1]).toMatchObject({ arch: 'transformer', joules: 100 });
  });

  it('decides the targets from the numbers', () => {
    const t = genomicsTargets(rep);
    expect(t.map((x) => x.met)).toEqual([true, true, true, true]);
    expect(t[1].measured).toBe('out of budget from 256000 bases');
    expect(t[2].measured).toBe('1.8500 at context 4000 against order-6 Markov 1.9300 bits per base on the whole test part');
    // with the baseline scored on the same bases, the comparison is the paired one
    const paired = structuredClone(rep);
    paired.runs[3].eval[1].markov_bits_per_base = 1.84;
    const tp = genomicsTargets(paired)[2];
    expect(tp.met).toBe(false);
    expect(tp.measured).toBe(
      '1.8500 at context 4000 against order-6 Markov 1.8400 bits per base on the same bases (1.9300 on the whole test part)',
    );
    // Mamba falling at a longer window is not "keeps improving"
    const worse = structuredClone(rep);
    worse.runs[0].eval[2].accuracy = 0.1;
    worse.runs[1].eval[2].accuracy = 0.1;
    expect(genomicsTargets(worse)[0].met).toBe(false);
  });
});
