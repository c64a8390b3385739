#!/usr/bin/env node
/**
 * The headline ratios of several `frugal bench --json` documents side by side: every peer ratio
 * (frugal ÷ llama.cpp or PyTorch, by measure, precision and threads) in each run, their max ÷ min,
 * and whether that stays within 10% (the steadiness target: each headline ratio within 10% across
 * three consecutive runs).
 *
 *   node tools/bench-runs.mjs run1.json run2.json run3.json > runs.md
 *
 * Prints a Markdown table to stdout and a one-line summary to stderr.
 */
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
if (files.length < 2) {
  console.error('bench-runs: give two or more frugal bench --json files, e.g. node tools/bench-runs.mjs a.json b.json c.json');
  process.exit(2);
}
const docs = files.map((f) => {
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    console.error(`bench-runs: ${f}: not a readable JSON document (${e.message}); write one with frugal bench --json > ${f}`);
    process.exit(2);
  }
});
const key = (p) => `${p.name}|${p.measure}|${p.precision}|${p.threads}`;
const keys = [...new Set(docs.flatMap((d) => (d.peers ?? []).map(key)))];
const rows = [];
let steady = 0;
for (const k of keys) {
  const ratios = docs.map((d) => (d.peers ?? []).find((p) => key(p) === k)?.ratio);
  const got = ratios.filter((r) => Number.isFinite(r));
  const spread = got.length === ratios.length ? Math.max(...got) / Math.min(...got) : Number.NaN;
  const ok = spread <= 1.1;
  if (ok) steady++;
  const [name, measure, precision, threads] = k.split('|');
  rows.push(
    `| ${name} | ${measure} | ${precision} | ${threads} | ${ratios.map((r) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–')).join(' | ')} | ${Number.isFinite(spread) ? spread.toFixed(2) : '–'} | ${ok ? 'yes' : '**no**'} |`,
  );
}
const head = `| peer | measure | precision | threads | ${files.map((_, i) => `run ${i + 1}`).join(' | ')} | max/min | within 10% |`;
const rule = `|---|---|---|---|${files.map(() => '---').join('|')}|---|---|`;
console.log([head, rule, ...rows].join('\n'));
console.error(`bench-runs: ${steady} of ${keys.length} ratios within 10% across ${files.length} runs`);
