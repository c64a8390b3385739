import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SCALING_MARKERS, SPEED_MARKERS, between, readmeScalingSection, readmeSpeedSection } from '../../src/bench/readme.js';

/**
 * The README's measured sections are what tools/render_readme.mjs renders from the committed
 * docs/bench.json and docs/scaling.json: a figure edited by hand, or a JSON regenerated without
 * re-rendering, fails here.
 */
const readme = readFileSync('README.md', 'utf8');
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

describe('README figures come from the committed JSON', () => {
  it('the speed section is rendered from docs/bench.json', () => {
    expect(between(readme, SPEED_MARKERS)).toBe(readmeSpeedSection(json('docs/bench.json')).trim());
  });

  it('the scaling section is rendered from docs/scaling.json', () => {
    expect(between(readme, SCALING_MARKERS)).toBe(readmeScalingSection(json('docs/scaling.json')).trim());
  });

  it('docs/bench.json is a full run on this kind of machine, with the peers it names', () => {
    const d = json('docs/bench.json');
    expect(d.mode).toBe('full');
    expect(d.machine.isa.length).toBeGreaterThan(0);
    expect(d.machine.cpu_peak.detected.length).toBeGreaterThan(0);
    expect(typeof d.machine.v8).toBe('string');
    for (const p of d.peers) expect(p.rounds).toBeGreaterThanOrEqual(1);
  });
});
