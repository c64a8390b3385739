import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseXml } from '../bench/xml.js';
import { frugal } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import type { ForecastModelRow, StreamsReport } from '../../src/report/streams.js';
import type { ForecastBaselines } from '../../src/report/streams-eval.js';

/**
 * `frugal report streams --quick` end to end: the files, the JSON shape, baselines beside every
 * model, both architectures at (nearly) equal parameter counts, the latency rows and their numbers
 * in the markdown, and a forecasting model that `frugal stream` loads.
 */
let dir = '';
let run: CliResult;
let rep: StreamsReport;
let md = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-streams-'));
  run = frugal(['report', 'streams', '--out', dir, '--quick'], { timeout: 300_000 });
  if (run.code === 0) {
    rep = JSON.parse(readFileSync(join(dir, 'streams.json'), 'utf8'));
    md = readFileSync(join(dir, 'streams.md'), 'utf8');
  }
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('frugal report streams --quick', () => {
  it('writes streams.json, streams.md, the charts and the models, and nothing on stdout', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    for (const f of ['streams.json', 'streams.md', 'streams-memory.svg', 'streams-skill.svg'])
      expect(existsSync(join(dir, f)), f).toBe(true);
    const models = readdirSync(join(dir, 'models'));
    expect(models.filter((m) => m.includes('forecast')).length).toBe(4);
    for (const f of ['streams-memory.svg', 'streams-skill.svg']) {
      const els = parseXml(readFileSync(join(dir, f), 'utf8'));
      expect(els[0].name).toBe('svg');
      const series = els.filter((x) => x.name === 'g' && x.attrs.class === 'series').map((x) => x.attrs['data-arch']);
      expect(series.sort(), f).toEqual(['mamba', 'transformer']);
    }
  });

  it('shows both architectures at equal parameter counts and the baselines beside them', () => {
    expect(rep.format).toBe('frugal-streams/1');
    const [m, t] = rep.shapes;
    expect(Math.abs(m.parameters - t.parameters) / m.parameters).toBeLessThan(0.1);
    for (const s of rep.series) {
      expect(new Set(s.models.map((x) => x.arch))).toEqual(new Set(['mamba', 'transformer']));
      if (s.kind === 'forecast') {
        const b = s.baselines as ForecastBaselines;
        for (const k of ['persistence', 'train_mean', 'ewma', 'garch'] as const) expect(Number.isFinite(b[k].nll), k).toBe(true);
        for (const x of s.models as ForecastModelRow[]) {
          // the skill is the arithmetic of the two MSEs, whatever its sign
          expect(x.skill_vs_persistence).toBeCloseTo(1 - x.mse / b.persistence.mse, 10);
          expect(x.nll_minus_garch).toBeCloseTo(x.nll - b.garch.nll, 10);
        }
        expect(md).toContain(`| persistence | ${b.persistence.mse.toFixed(4)} |`);
      }
    }
    expect(rep.series.find((s) => s.series === 'synthetic-garch-jumps')?.baselines).toHaveProperty('oracle.nll');
    expect(md).toContain('threshold on EWMA z-scores');
  });

  it('finds the feed faults injected into a synthetic stream', () => {
    const f = rep.faults;
    expect(f.detected.duplicate).toBe(f.injected.duplicates);
    expect(f.detected.out_of_order).toBe(f.injected.swapped);
    expect(f.detected.gap).toBeLessThanOrEqual(f.injected.dropped + f.injected.swapped);
    expect(f.detected.gap).toBeGreaterThan(0.9 * (f.injected.dropped + f.injected.swapped));
    expect(md).toContain(`${f.detected.duplicate} duplicates and ${f.detected.out_of_order} out-of-order ticks skipped`);
  });

  it('measures per-tick latency and memory for both, and labels energy as estimated', () => {
    expect(rep.latency.map((l) => [l.arch, l.window])).toEqual([
      ['mamba', null],
      ['transformer', 32],
    ]);
    for (const l of rep.latency) {
      expect(l.ticks).toBe(2000);
      expect(l.p99_us).toBeGreaterThanOrEqual(l.p50_us);
      expect(l.energy_kind).toBe('estimated');
      expect(l.memory.length).toBeGreaterThan(5);
      expect(md).toContain(`| ${l.p50_us.toFixed(1)} | ${l.p99_us.toFixed(1)} |`);
    }
    expect(md).toMatch(/Energy is \*\*estimated\*\*/);
  });

  it('keeps models that frugal stream loads, and renders again from the JSON with NOTES.md', () => {
    const model = join(dir, 'models', 'forecast-sp500-mamba-seed1');
    const input = join(dir, 'ticks.csv');
    writeFileSync(input, 't,ret\n0,0.5\n1,-0.2\n2,0.1\n');
    const r = frugal(['stream', '--model', model, '--input', input]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).i),
    ).toEqual([0, 1, 2]);
    writeFileSync(join(dir, 'NOTES.md'), 'A note from the run.\n');
    rmSync(input);
    const again = frugal(['report', 'streams', '--out', dir, '--render-only']);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(join(dir, 'streams.md'), 'utf8')).toContain('## Notes\n\nA note from the run.');
  });
});
