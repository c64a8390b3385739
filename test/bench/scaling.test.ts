import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PARITY_TOLERANCE, projectNextSeconds, studyPair, summarize } from '../../src/bench/scaling/index.js';
import type { ScalingPoint, ScalingResult } from '../../src/bench/scaling/index.js';
import { parseXml } from './xml.js';

function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Doc {
  command: string;
  results: {
    arch: string;
    parameters: number;
    points: ScalingPoint[];
    stopped: { reason: string; lastContext: number | null; nextContext: number | null; detail: string };
  }[];
  summary: { decodeFlatness: Record<string, number>; stateFlatness: Record<string, number> };
  energy: {
    measured: boolean;
    profiles: { id: string; mac: string; memory: string; joulesPerMac: number; joulesPerByte: number; sources: string }[];
  };
  energyOfRun: { kind: string; jPerToken: number };
}

describe('frugal bench scaling on tiny shapes', () => {
  it('writes valid JSON to stdout and a well-formed log-log SVG with both curves in every panel', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-'));
    try {
      const svg = join(dir, 'scaling.svg'),
        csv = join(dir, 'energy.csv');
      const r = frugal('bench', 'scaling', '--quick', '--threads', '1', '--json', '--svg', svg, '--energy-log', csv);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as Doc;
      expect(doc.results.map((a) => a.arch)).toEqual(['mamba', 'transformer']);
      const [mb, tf] = doc.results;
      expect(Math.abs(mb.parameters - tf.parameters) / mb.parameters).toBeLessThanOrEqual(PARITY_TOLERANCE);
      for (const a of doc.results) {
        expect(a.points.map((p) => p.context)).toEqual([16, 32, 64, 128, 256]);
        expect(a.stopped.reason).toBe('completed');
        for (const p of a.points) {
          expect(p.decodeMsPerToken).toBeGreaterThan(0);
          expect(p.decodeMsPerTokenMin).toBeLessThanOrEqual(p.decodeMsPerToken);
          expect(p.decodeMsPerToken).toBeLessThanOrEqual(p.decodeMsPerTokenMax);
          expect(p.decodeCpuMsPerToken).toBeGreaterThanOrEqual(0);
          expect(p.prefillSeconds).toBeGreaterThan(0);
          expect(Object.keys(p.energy.estimated).sort()).toEqual([
            'analytic:horowitz-45nm',
            'analytic:mobile-npu',
            'analytic:photonic',
            'cpu-time',
          ]);
          for (const v of Object.values(p.energy.estimated)) expect(v).toBeGreaterThan(0);
          if (!doc.energy.measured) expect(p.energy.measured).toBeNull(); // no counters: every figure is an estimate
        }
      }
      // the recurrent state is fixed-size; the KV cache grows with the context
      expect(new Set(mb.points.map((p) => p.stateBytes)).size).toBe(1);
      expect(doc.summary.stateFlatness.mamba).toBe(1);
      // (a new cache holds 64 rows, so 16 and 32 tokens share one size; from 64 on it doubles with the context)
      for (let i = 1; i < tf.points.length; i++) expect(tf.points[i].stateBytes).toBeGreaterThanOrEqual(tf.points[i - 1].stateBytes);
      for (let i = 3; i < tf.points.length; i++) expect(tf.points[i].stateBytes / tf.points[i - 1].stateBytes).toBeGreaterThan(1.8);
      // the analytic transformer estimate grows with the cache it reads; Mamba's does not move
      const an = (a: typeof mb, i: number) => a.points[i].energy.estimated['analytic:horowitz-45nm'];
      expect(an(tf, 4)).toBeGreaterThan(an(tf, 0));
      expect(an(mb, 4)).toBe(an(mb, 0));
      if (!doc.energy.measured) expect(doc.energyOfRun.kind).toBe('estimated');
      expect(r.stderr).toMatch(/bench scaling: \d+ tokens in .* tok\/s, .* J\/token \((estimated|measured)\) by /);
      // every analytic profile is listed with its own memory system and its sources
      expect(doc.energy.profiles.map((p) => `${p.id}: ${p.memory}`)).toEqual([
        'horowitz-45nm: DDR3 DRAM',
        'mobile-npu: LPDDR4 DRAM',
        'photonic: HBM2 DRAM',
      ]);
      for (const p of doc.energy.profiles) expect(p.sources).toMatch(/\d{4}/);
      expect(doc.energy.profiles[1].mac).toMatch(/8-bit/);

      const elements = parseXml(readFileSync(svg, 'utf8'));
      expect(elements[0]).toMatchObject({ name: 'svg', attrs: { xmlns: 'http://www.w3.org/2000/svg' } });
      for (const panel of ['decode', 'memory', 'energy', 'prefill']) {
        for (const arch of ['mamba', 'transformer']) {
          const curve = elements.find((e) => e.attrs.id === `curve-${panel}-${arch}`);
          expect(curve, `curve-${panel}-${arch}`).toBeDefined();
          expect(curve!.name).toBe('path');
          expect(curve!.attrs.d.match(/[ML][\d.]+,[\d.]+/g)).toHaveLength(5); // one vertex per context
        }
      }
      const texts = readFileSync(svg, 'utf8');
      expect(texts).toMatch(/context length \(tokens, log scale\)/);
      expect(texts).toMatch(/ms per token/);
      expect(texts).toMatch(/J per token \(estimated/);

      const rows = readFileSync(csv, 'utf8').trim().split('\n');
      expect(rows).toHaveLength(2);
      expect(rows[1]).toMatch(/,bench scaling,/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops the transformer at the memory budget and says where and why', () => {
    const r = frugal('bench', 'scaling', '--quick', '--threads', '1', '--json', '--max-state-mb', '0.02');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    const [mb, tf] = doc.results;
    expect(mb.stopped.reason).toBe('completed');
    expect(tf.stopped).toMatchObject({ reason: 'memory', lastContext: 64, nextContext: 128 });
    expect(tf.stopped.detail).toMatch(/the state at 128 tokens would hold 34\.8 KiB, over the 20\.5 KiB memory budget/);
    expect(tf.points.map((p) => p.context)).toEqual([16, 32, 64]);
    expect(r.stderr).toMatch(/transformer: .* stopped: memory/);
  });

  it('refuses contexts that are not powers of two, with exit code 2', () => {
    const r = frugal('bench', 'scaling', '--min-context', '300');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--min-context.*power of two/);
    expect(r.stdout).toBe('');
  });
});

describe('scaling study arithmetic', () => {
  it('pairs ~2M-parameter models within 5% of each other', () => {
    const p = studyPair(false);
    expect(p.mambaParams).toBeGreaterThan(1.7e6);
    expect(p.mambaParams).toBeLessThan(2.3e6);
    expect(Math.abs(p.transformerParams - p.mambaParams) / p.mambaParams).toBeLessThanOrEqual(PARITY_TOLERANCE);
    expect(p.transformer.nLayer * 2).toBe(p.mamba.nLayer);
  });

  it('projects the next doubling from a linear + quadratic fit of the prefill times', () => {
    // linear prefill (1 ms per token): the next doubling costs what the last context cost
    expect(
      projectNextSeconds(
        [
          { context: 1024, seconds: 1.024 },
          { context: 2048, seconds: 2.048 },
        ],
        [0, 0],
      ),
    ).toBeCloseTo(2.048, 9);
    // quadratic prefill (T = n²·1e-6): from n to 2n costs 3n²·1e-6
    const q = (n: number) => ({ context: n, seconds: n * n * 1e-6 });
    expect(projectNextSeconds([q(1024), q(2048)], [0, 0])).toBeCloseTo(3 * 2048 * 2048 * 1e-6, 9);
    // mixed, plus decode time growing 2× per doubling
    const m = (n: number) => ({ context: n, seconds: 1e-3 * n + 1e-7 * n * n });
    expect(projectNextSeconds([m(4096), m(8192)], [0.5, 1])).toBeCloseTo(1e-3 * 8192 + 1e-7 * 3 * 8192 * 8192 + 2, 9);
    // one point: linear extrapolation; none: nothing to project
    expect(projectNextSeconds([{ context: 256, seconds: 0.5 }], [0.1])).toBeCloseTo(0.5 + 0.2, 9);
    expect(projectNextSeconds([], [])).toBe(0);
  });

  it('summarises flatness, the crossover context and the J/token ratio', () => {
    const pt = (context: number, ms: number, bytes: number, j: number): ScalingPoint => ({
      context,
      decodeMsPerToken: ms,
      decodeMsPerTokenMin: ms / 2,
      decodeMsPerTokenMax: ms * 3,
      decodeMsPerTokenMean: ms,
      decodeCpuMsPerToken: ms,
      stateBytes: bytes,
      prefillSeconds: 1,
      prefillTokensPerSecond: 1,
      energy: { estimated: { 'cpu-time': j }, measured: null },
    });
    const stop = { reason: 'completed' as const, lastContext: null, nextContext: null, detail: '' };
    const r = {
      results: [
        {
          arch: 'mamba',
          parameters: 1,
          hfConfig: {},
          seconds: 1,
          tokens: 1,
          stopped: stop,
          points: [pt(256, 1.0, 100, 1), pt(512, 1.05, 100, 1), pt(1024, 1.0, 100, 1), pt(65536, 0.98, 100, 1)],
        },
        {
          arch: 'transformer',
          parameters: 1,
          hfConfig: {},
          seconds: 1,
          tokens: 1,
          stopped: stop,
          points: [pt(256, 0.8, 10, 1), pt(512, 1.1, 20, 1), pt(1024, 0.9, 40, 1), pt(65536, 30, 4000, 12)],
        },
      ],
    } as unknown as ScalingResult;
    const s = summarize(r);
    expect(s.decodeFlatness.mamba).toBeCloseTo(1.05 / 0.98, 12); // from the medians, not the single fastest or slowest step
    expect(s.decodeMedians.mamba).toEqual({ min: 0.98, max: 1.05 });
    expect(s.stateFlatness.mamba).toBe(1);
    expect(s.stateGrowth.transformer).toBe(400);
    expect(s.crossoverContext).toBe(65536); // faster at 512 but not at 1024: the last switch counts
    expect(s.jPerTokenRatio).toEqual({ 'cpu-time': 12 });
  });
});
