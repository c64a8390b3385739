#!/usr/bin/env node
/**
 * Rewrite the README's measured sections from the committed JSON documents:
 *   npm run build && node tools/render_readme.mjs
 * The speed section comes from docs/bench.json (`frugal bench --json`), the scaling section from
 * docs/scaling.json (`frugal bench scaling --json`), the synthetic study's from
 * docs/synthetic/synthetic.json (`frugal report synthetic --out docs/synthetic`); tests fail when
 * the README and the JSON disagree.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCALING_MARKERS, SPEED_MARKERS, readmeScalingSection, readmeSpeedSection, replaceBetween } from '../dist/bench/readme.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const read = (p) => readFileSync(join(root, p), 'utf8');
let text = read('README.md');
text = replaceBetween(text, SPEED_MARKERS, readmeSpeedSection(JSON.parse(read('docs/bench.json'))));
text = replaceBetween(text, SCALING_MARKERS, readmeScalingSection(JSON.parse(read('docs/scaling.json'))));
const { SYNTHETIC_MARKERS, readmeSyntheticSection } = await import('../dist/report/markdown.js');
if (existsSync(join(root, 'docs/synthetic/synthetic.json')))
  text = replaceBetween(text, SYNTHETIC_MARKERS, readmeSyntheticSection(JSON.parse(read('docs/synthetic/synthetic.json'))));
const tmp = join(root, `README.md.tmp-${process.pid}`);
writeFileSync(tmp, text);
renameSync(tmp, join(root, 'README.md'));
process.stderr.write('README.md: speed, scaling and synthetic-study sections rendered from their committed JSON\n');
