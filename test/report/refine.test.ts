import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { frugal, workspace } from '../helpers/cli.js';
import { refineVerdict } from '../../src/report/refine.js';
import type { RefineEntry } from '../../src/report/refine.js';

const ws = workspace('frugal-report-refine-');

const entry = (name: string, domain: number, general: number, j: number): RefineEntry => ({
  name,
  description: name,
  parameters: 1,
  trained_parameters: 1,
  domain_bits_per_byte: domain,
  general_bits_per_byte: general,
  decode_tok_s: 1,
  j_per_token: j,
  energy_kind: 'estimated',
  train_tokens: 1,
  train_joules: 1,
  train_joules_with_base: 1,
  artefact: '',
  artefact_bytes: 1,
});

describe('frugal report refine', () => {
  it('--quick runs the whole study and writes refine.json, refine.md and the chart', () => {
    const out = join(ws.caseDir(), 'report');
    const r = frugal(['report', 'refine', '--quick', '--out', out, '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const j = JSON.parse(readFileSync(join(out, 'refine.json'), 'utf8'));
    expect(j.format).toBe('frugal-refine/1');
    expect(j.quick).toBe(true);
    expect(j.models.map((m: RefineEntry) => m.name)).toEqual([
      'small-general',
      'large-general',
      'small-lora',
      'small-full',
      'small-distilled',
    ]);
    expect(j.sizes.parameter_ratio).toBeGreaterThanOrEqual(4);
    const by = (n: string) => j.models.find((m: RefineEntry) => m.name === n) as RefineEntry;
    expect(by('large-general').train_tokens).toBeGreaterThanOrEqual(by('small-general').train_tokens);
    expect(by('small-lora').trained_parameters).toBeLessThan(by('small-lora').parameters / 5);
    expect(by('small-lora').artefact_bytes).toBeLessThan(by('small-full').artefact_bytes / 5);
    for (const m of j.models as RefineEntry[]) {
      for (const k of ['domain_bits_per_byte', 'general_bits_per_byte', 'decode_tok_s', 'j_per_token', 'train_joules'] as const) {
        expect(Number.isFinite(m[k]) && m[k] > 0, `${m.name}.${k} = ${m[k]}`).toBe(true);
      }
    }
    expect(j.valid).toBe(by('large-general').general_bits_per_byte < by('small-general').general_bits_per_byte);
    const md = readFileSync(join(out, 'refine.md'), 'utf8');
    expect(md).toContain('| small-lora |');
    expect(md).toContain('](refine.svg)');
    expect(readFileSync(join(out, 'refine.svg'), 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
  });

  it('calls the study void unless the large general model beats the small one, and judges the target', () => {
    const base = [entry('small-general', 2.5, 2.0, 1), entry('large-general', 2.3, 1.9, 4), entry('small-full', 2.2, 1.9, 0.9)];
    expect(refineVerdict(base)).toMatchObject({ valid: true, met: true, best: 'small-full' });
    expect(refineVerdict([base[0], entry('large-general', 2.3, 1.9, 3), base[2]])).toMatchObject({ valid: true, met: false }); // 0.9 / 3 > 1/4
    expect(refineVerdict([base[0], entry('large-general', 2.1, 1.9, 4), base[2]])).toMatchObject({ valid: true, met: false }); // not better on the task
    expect(refineVerdict([base[0], entry('large-general', 2.3, 2.1, 4), base[2]])).toMatchObject({ valid: false, met: false }); // void
  });
});
