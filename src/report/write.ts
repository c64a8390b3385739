import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { readTaskFile } from '../tasks/repro.js';
import type { CurvePoint } from '../train/scored.js';
import type { TaskRecipe } from '../tasks/recipes.js';
import { ARCHS } from '../tasks/recipes.js';
import { chartSvg } from './charts.js';
import type { Chart, Series } from './charts.js';
import { renderMarkdown } from './markdown.js';
import type { SyntheticReport, TaskRow } from './synthetic.js';

/**
 * The files of a synthetic report: synthetic.json (the contract), synthetic.md, and the SVG charts,
 * each written atomically. Learning curves and recipes come from each model's frugal_task.json;
 * NOTES.md in the folder, when present, becomes the report's Notes section.
 */
export const REPORT_JSON = 'synthetic.json';
export const REPORT_MD = 'synthetic.md';
export const NOTES_FILE = 'NOTES.md';

export interface ChartFile {
  file: string;
  caption: string;
  chart: Chart;
}

const byArch = (rows: readonly TaskRow[], task: string, point: (r: TaskRow) => Series['points'], line = true): Series[] =>
  ARCHS.map((arch) => ({ arch, label: arch, line, points: rows.filter((r) => r.task === task && r.arch === arch).flatMap(point) }));

/** The charts of a report: accuracy and joules against length, learning curves, Hanoi success against joules. */
export function reportCharts(rep: SyntheticReport, curves: ReadonlyMap<string, CurvePoint[]>): ChartFile[] {
  const ran = (r: TaskRow) => r.eval.filter((e) => e.accuracy !== null);
  const curve = (r: TaskRow) => (curves.get(r.model_dir) ?? []).map((p) => ({ x: p.tokens, y: p.accuracy }));
  // lengths not run are named under the chart, never silently missing
  const skipped = rep.tasks
    .filter((r) => r.task === 'induction')
    .flatMap((r) => {
      const first = r.eval.find((e) => e.accuracy === null);
      return first ? [`${r.arch} from 2^${Math.log2(first.length)} (${(first.out_of_budget ?? '').split(':')[0]})`] : [];
    });
  const note = skipped.length ? `out of budget: ${skipped.join('; ')}` : undefined;
  const charts: ChartFile[] = [
    {
      file: 'induction-accuracy.svg',
      caption: 'Induction heads: accuracy against sequence length (trained at 256 tokens)',
      chart: {
        title: 'Induction heads: accuracy against length',
        x: { label: 'sequence length (tokens, log scale)', scale: 'log2' },
        y: { label: 'accuracy', scale: 'linear', min: 0, max: 1 },
        refs: [{ y: 1 / 16, label: 'chance (1/16)' }],
        series: byArch(rep.tasks, 'induction', (r) => ran(r).map((e) => ({ x: e.length, y: e.accuracy as number }))),
        note,
      },
    },
    {
      file: 'induction-joules.svg',
      caption: 'Induction heads: joules per sequence against length (estimated)',
      chart: {
        title: 'Induction heads: energy per sequence',
        x: { label: 'sequence length (tokens, log scale)', scale: 'log2' },
        y: { label: `joules per sequence (${rep.headline?.energy_kind ?? 'estimated'})`, scale: 'log10' },
        series: byArch(rep.tasks, 'induction', (r) => ran(r).map((e) => ({ x: e.length, y: e.joules_per_sequence as number }))),
        note,
      },
    },
    {
      file: 'induction-curve.svg',
      caption: 'Induction heads: accuracy on each training batch against training tokens (learning curve)',
      chart: {
        title: 'Induction heads: learning curve',
        x: { label: 'training tokens', scale: 'linear' },
        y: { label: 'accuracy on training batches', scale: 'linear', min: 0, max: 1 },
        refs: [{ y: 1 / 16, label: 'chance' }],
        series: byArch(rep.tasks, 'induction', curve),
      },
    },
    {
      file: 'selective-copy-curve.svg',
      caption: 'Selective copying: accuracy against training tokens',
      chart: {
        title: 'Selective copying: accuracy against training tokens',
        x: { label: 'training tokens', scale: 'linear' },
        y: { label: 'data tokens copied (training batches)', scale: 'linear', min: 0, max: 1 },
        refs: [{ y: 1 / 18, label: 'chance' }],
        series: byArch(rep.tasks, 'selective-copy', curve),
      },
    },
    {
      file: 'hanoi-success.svg',
      caption:
        'Tower of Hanoi: success against inference joules per episode (NS neuro-symbolic, E2E end-to-end; 3 disks trained, 4 unseen)',
      chart: {
        title: 'Tower of Hanoi: success against inference energy',
        x: { label: 'joules per episode (log scale)', scale: 'log10' },
        y: { label: 'episodes solved', scale: 'linear', min: 0, max: 1 },
        series: byArch(
          rep.tasks,
          'hanoi',
          (r) =>
            ran(r).map((e) => ({
              x: e.joules_per_sequence as number,
              y: e.accuracy as number,
              label: `${r.method === 'neuro-symbolic' ? 'NS' : 'E2E'} ${e.length}`,
            })),
          false,
        ),
      },
    },
  ];
  return charts;
}

/** Curves and recipes of every model of the report, read from its directory. */
function modelExtras(dir: string, rep: SyntheticReport): { curves: Map<string, CurvePoint[]>; recipes: Map<string, TaskRecipe> } {
  const curves = new Map<string, CurvePoint[]>(),
    recipes = new Map<string, TaskRecipe>();
  for (const t of rep.tasks) {
    const p = join(dir, t.model_dir);
    if (!existsSync(p)) continue;
    const f = readTaskFile(p);
    curves.set(t.model_dir, f.curve);
    recipes.set(t.model_dir, f.recipe);
  }
  return { curves, recipes };
}

/** Write synthetic.json, synthetic.md and the charts into `dir`. */
export function writeReport(dir: string, rep: SyntheticReport): void {
  mkdirSync(dir, { recursive: true });
  const { curves, recipes } = modelExtras(dir, rep);
  const charts = reportCharts(rep, curves);
  for (const c of charts) writeFileAtomic(join(dir, c.file), chartSvg(c.chart));
  const notes = readNotes(dir);
  writeFileAtomic(join(dir, REPORT_JSON), JSON.stringify(rep, null, 1) + '\n');
  writeFileAtomic(
    join(dir, REPORT_MD),
    renderMarkdown(rep, { curves, recipes, notes, charts: charts.map((c) => ({ file: c.file, caption: c.caption })) }),
  );
}

/** The folder's NOTES.md, or null: a report's hand-written Notes section. */
export function readNotes(dir: string): string | null {
  const p = join(dir, NOTES_FILE);
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
}

/** A report's JSON read back from `dir` (to render it again), with an error that names the command making it. */
export function readReportJson<T>(dir: string, file: string, study: string): T {
  const p = join(dir, file);
  if (!existsSync(p)) throw inputError(`${p} does not exist: run 'frugal report ${study} --out ${dir}' first`);
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as T;
  } catch (err) {
    throw inputError(`${p} is not valid JSON (${(err as Error).message})`);
  }
}

/** Read a report back (to render it again, e.g. after editing NOTES.md). */
export function readReport(dir: string): SyntheticReport {
  return readReportJson<SyntheticReport>(dir, REPORT_JSON, 'synthetic');
}
