import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { between } from '../../src/bench/readme.js';
import { SYNTHETIC_MARKERS, readmeSyntheticSection } from '../../src/report/markdown.js';
import type { SyntheticReport } from '../../src/report/synthetic.js';

/**
 * The README quotes the committed synthetic study: its section is what tools/render_readme.mjs
 * renders from docs/synthetic/synthetic.json, which must be a full default run with every model
 * of the study in it.
 */
describe('README synthetic-study section', () => {
  const rep = JSON.parse(readFileSync('docs/synthetic/synthetic.json', 'utf8')) as SyntheticReport;

  it('is rendered from docs/synthetic/synthetic.json', () => {
    expect(between(readFileSync('README.md', 'utf8'), SYNTHETIC_MARKERS)).toBe(readmeSyntheticSection(rep).trim());
  });

  it('the committed report is a full default run with a headline and eight models, each saved', () => {
    expect(rep.run.quick).toBe(false);
    expect(rep.run.command).toBe('frugal report synthetic --out docs/synthetic');
    expect(rep.headline).not.toBeNull();
    expect(rep.tasks).toHaveLength(8);
    for (const t of rep.tasks) expect(readFileSync(`docs/synthetic/${t.model_dir}/frugal_task.json`, 'utf8').length).toBeGreaterThan(0);
  });
});
