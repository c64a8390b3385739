import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { readNotes, readReportJson } from './write.js';
import { chartSvg } from './charts.js';
import type { Chart } from './charts.js';
import { meanSd } from '../streams/metrics.js';
import type { DetectionScores, ForecastBaselines, ForecastScores } from './streams-eval.js';
import type { ForecastModelRow, LatencyRow, SeriesRow, StreamsReport } from './streams.js';
import { ARCHS } from './streams.js';

/**
 * The files of a streams report: streams.json (the contract), streams.md and SVG charts, each
 * written atomically; NOTES.md in the folder, when present, becomes the Notes section.
 */
export const STREAMS_JSON = 'streams.json';
export const STREAMS_MD = 'streams.md';

const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const pm = (v: number[], d = 3) => {
  const s = meanSd(v);
  return v.length > 1 ? `${f(s.mean, d)} ± ${f(s.sd, d)}` : f(s.mean, d);
};

function forecastTable(r: SeriesRow): string[] {
  const b = r.baselines as ForecastBaselines;
  const line = (name: string, s: ForecastScores) => `| ${name} | ${f(s.mse, 4)} | ${f(s.nll)} | ${f(s.coverage90, 2)} | | | | |`;
  const out = [
    `### ${r.series}`,
    '',
    `${r.source}. Trained on the first ${r.rows.train} ticks, scored on the last ${r.rows.held_out} (one step ahead).`,
    '',
    '| forecaster | MSE | NLL (nats) | 90% coverage | skill vs persistence | skill vs training mean | NLL − GARCH | NLL − oracle |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    line('persistence', b.persistence),
    line('training mean', b.train_mean),
    line('EWMA variance (λ 0.94)', b.ewma),
    line(`GARCH(1,1) (α ${f(b.garch.fit.alpha)}, β ${f(b.garch.fit.beta)})`, b.garch),
    ...(b.oracle ? [line('oracle', b.oracle)] : []),
  ];
  for (const arch of ARCHS) {
    const m = r.models.filter((x) => x.arch === arch) as ForecastModelRow[];
    if (!m.length) continue;
    const g = (k: keyof ForecastModelRow, d = 3) =>
      pm(
        m.map((x) => x[k] as number),
        d,
      );
    out.push(
      `| **${arch}** (${m.length} seed${m.length > 1 ? 's' : ''}) | ${g('mse', 4)} | ${g('nll')} | ${g('coverage90', 2)} | ${g('skill_vs_persistence')} | ${g('skill_vs_mean')} | ${g('nll_minus_garch')} | ${m[0].excess_nll === null ? '—' : g('excess_nll')} |`,
    );
  }
  out.push('');
  return out;
}

function anomalyTable(r: SeriesRow): string[] {
  const th = (r.baselines as { threshold: DetectionScores }).threshold;
  const row = (name: string, d: DetectionScores[]) =>
    `| ${name} | ${pm(d.map((x) => x.tick.f1))} | ${pm(d.map((x) => x.window.f1))} | ${pm(d.map((x) => x.event.f1))} | ${pm(d.map((x) => x.event.precision))} | ${pm(d.map((x) => x.event.recall))} |`;
  const out = [
    `### ${r.series}`,
    '',
    `${r.source}. Trained on the first ${r.rows.train} ticks, scored on the last ${r.rows.held_out}; each detector's threshold is the one with the best per-tick F1 on the training span.`,
    '',
    '| detector | F1 per tick | F1 per 10-tick window | event F1 | event precision | event recall |',
    '| --- | --- | --- | --- | --- | --- |',
    row('threshold on EWMA z-scores', [th]),
  ];
  for (const arch of ARCHS) {
    const m = r.models.filter((x) => x.arch === arch) as unknown as DetectionScores[];
    if (m.length) out.push(row(`**${arch}**`, m));
  }
  out.push('');
  return out;
}

function latencyTable(l: readonly LatencyRow[]): string[] {
  return [
    '| model | ticks | p50 µs/tick | p99 µs/tick | process RSS MiB, first → last sample | wasm memory MiB | state bytes | J/tick (estimated) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...l.map((x) => {
      const a = x.memory[0],
        z = x.memory[x.memory.length - 1];
      return `| ${x.arch}${x.window ? ` (sliding window ${x.window})` : ''} | ${x.ticks.toLocaleString('en-US')} | ${f(x.p50_us, 1)} | ${f(x.p99_us, 1)} | ${f(a[1], 1)} → ${f(z[1], 1)} | ${f(a[2], 1)} → ${f(z[2], 1)} | ${x.state_bytes.toLocaleString('en-US')} | ${x.joules_per_tick.toExponential(2)} (${x.energy_method}) |`;
    }),
    '',
  ];
}

export function streamsCharts(rep: StreamsReport): { file: string; caption: string; chart: Chart }[] {
  return [
    {
      file: 'streams-memory.svg',
      caption: 'Resident memory along the latency stream (flat: constant memory per stream)',
      chart: {
        title: 'Memory along the stream',
        x: { label: 'ticks (log scale)', scale: 'log10' },
        y: { label: 'resident set (MiB)', scale: 'linear', min: 0 },
        series: rep.latency.map((l) => ({
          arch: l.arch,
          label: l.window ? `${l.arch} (window ${l.window})` : l.arch,
          line: true,
          points: l.memory.map(([t, rss]) => ({ x: t, y: rss })),
        })),
      },
    },
    {
      file: 'streams-skill.svg',
      caption: 'Forecast NLL minus GARCH(1,1) on each series, per seed (below 0: better than GARCH)',
      chart: {
        title: 'Forecast NLL − GARCH NLL (nats)',
        x: { label: 'series (index in the tables)', scale: 'linear' },
        y: { label: 'NLL − GARCH NLL', scale: 'linear' },
        refs: [{ y: 0, label: 'GARCH(1,1)' }],
        series: ARCHS.map((arch) => ({
          arch,
          label: arch,
          line: false,
          points: rep.series
            .filter((s) => s.kind === 'forecast')
            .flatMap((s, i) =>
              (s.models.filter((m) => m.arch === arch) as ForecastModelRow[]).map((m) => ({ x: i + 1, y: m.nll_minus_garch })),
            ),
        })),
      },
    },
  ];
}

export function renderStreamsMarkdown(rep: StreamsReport, notes: string | null, charts: { file: string; caption: string }[]): string {
  const m = rep.machine,
    [sm, st] = rep.shapes;
  const out = [
    '# Streams: Mamba and the transformer on series that never end',
    '',
    `Command: \`${rep.run.command}\` (${rep.run.seconds.toFixed(0)} s on ${String(m.cpu)}, ${String(m.logical_cpus)} logical CPUs, Node ${String(m.node)}; other processes used ${(100 * rep.run.other_cpu_share).toFixed(0)}% of the CPUs meanwhile).` +
      (rep.run.quick ? ' **Quick run**: tiny models, few steps, short series; the figures only show that the pipeline works.' : ''),
    '',
    `Models at equal parameter counts (blocks, final norm and heads; no token table): Mamba d_model ${sm.d_model}, ${sm.layers} layer(s), ${sm.parameters.toLocaleString('en-US')} parameters; transformer d_model ${st.d_model}, ${st.layers} layer(s), ${st.heads} head(s), ${st.parameters.toLocaleString('en-US')} parameters (plus the input embedding and head, the same for both). ${rep.run.seeds} seed(s) each, mean ± standard deviation over seeds. Every model is under \`models/\` (forecasting ones named \`forecast-…\`, loadable by \`frugal stream\`).`,
    '',
    '## Per-tick latency and memory',
    '',
    ...latencyTable(rep.latency),
    'Memory is flat when a stream’s first and last samples agree: the resident set is the whole process (what earlier phases left behind included, so compare each row with itself), the wasm memory holds every tensor of the model and its state. p99 includes whatever else the machine ran (see the CPU share above).',
    '',
    `Energy is **estimated** (this process's CPU time × ${Number(m.watts_per_core).toFixed(2)} W per core, ${String(m.watts_source)}); the machine has no energy counters.`,
    '',
    '## Forecasts',
    '',
    'One step ahead: MSE of the mean, Gaussian negative log-likelihood of the next value (mean and variance together), coverage of the 90% interval. Skill = 1 − MSE/MSE(reference): against persistence (the last value, a weak reference for returns) and against the training mean (returns are nearly unpredictable in the mean, so a skill near or below 0 there is expected); NLL − GARCH below zero means the model beats a GARCH(1,1) fitted on the training span; a positive figure is a loss and is reported as one.',
    '',
    ...rep.series.filter((s) => s.kind === 'forecast').flatMap(forecastTable),
    '## Anomaly detection',
    '',
    ...rep.series.filter((s) => s.kind === 'anomaly').flatMap(anomalyTable),
    '## Feed faults',
    '',
    `${rep.faults.ticks.toLocaleString('en-US')} ticks of a synthetic feed with faults injected (${rep.faults.injected.dropped} dropped, ${rep.faults.injected.duplicates} sent twice, ${rep.faults.injected.swapped} overtaken by the next tick), through the time check of \`frugal stream\`: ` +
      `${rep.faults.detected.duplicate} duplicates and ${rep.faults.detected.out_of_order} out-of-order ticks skipped, ${rep.faults.detected.gap} gaps flagged (a dropped tick leaves a gap; an overtaken one is skipped as out of order and leaves a gap where it should have been; faults next to each other merge).`,
    '',
    '## Charts',
    '',
    ...charts.flatMap((c) => [`![${c.caption}](${c.file})`, '', c.caption, '']),
  ];
  if (notes) out.push('## Notes', '', notes.trim(), '');
  return out.join('\n');
}

/** Write streams.json, streams.md and the charts into `dir`. */
export function writeStreamsReport(dir: string, rep: StreamsReport): void {
  mkdirSync(dir, { recursive: true });
  const charts = streamsCharts(rep);
  for (const c of charts) writeFileAtomic(join(dir, c.file), chartSvg(c.chart));
  writeFileAtomic(join(dir, STREAMS_JSON), JSON.stringify(rep, null, 1) + '\n');
  writeFileAtomic(join(dir, STREAMS_MD), renderStreamsMarkdown(rep, readNotes(dir), charts));
}

export function readStreamsReport(dir: string): StreamsReport {
  return readReportJson<StreamsReport>(dir, STREAMS_JSON, 'streams');
}
