import { ARCHS } from '../tasks/recipes.js';
import type { TaskArch } from '../tasks/recipes.js';
import { chartSvg } from './charts.js';
import type { Chart, Series } from './charts.js';
import { fmt, table } from './markdown.js';
import { wilson } from './stats.js';
import type { GenomeRun, GenomeTask, GenomicsReport } from './genome.js';

/**
 * genomics.md and its charts from genomics.json: per task, architecture and length the mean over
 * seeds (with the range, and for accuracies the pooled 95% Wilson interval), lengths not run with
 * why, the Markov baseline, time and joules per 100k-base window, and the targets decided from the
 * numbers alone.
 */
export const GENOMICS_JSON = 'genomics.json';
export const GENOMICS_MD = 'genomics.md';

export interface SummaryRow {
  task: GenomeTask;
  arch: TaskArch;
  length: number;
  /** Seeds that ran this length. */
  seeds: number;
  /** Mean over those seeds of the task's metric (accuracy, bits per base, MCC), or null. */
  mean: number | null;
  min: number | null;
  max: number | null;
  /** Accuracy tasks: the Wilson interval of all seeds' sequences pooled. */
  ci95: [number, number] | null;
  seconds_per_sequence: number | null;
  joules_per_sequence: number | null;
  /** Why a length did not run (the first seed's reason), when no seed ran it. */
  out_of_budget: string | null;
}

const metricOf = (task: GenomeTask, e: GenomeRun['eval'][number]): number | null =>
  task === 'lm' ? (e.bits_per_base ?? null) : task === 'exon' ? (e.mcc ?? null) : e.accuracy;

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** One row per task, architecture and length, over the seeds. */
export function summarize(rep: GenomicsReport): SummaryRow[] {
  const out: SummaryRow[] = [];
  for (const task of ['strain', 'lm', 'exon', 'motif'] as const)
    for (const arch of ARCHS) {
      const runs = rep.runs.filter((r) => r.task === task && r.arch === arch);
      const lengths = [...new Set(runs.flatMap((r) => r.eval.map((e) => e.length)))];
      for (const length of lengths) {
        const rows = runs.flatMap((r) => r.eval.filter((e) => e.length === length));
        const ran = rows.filter((e) => e.accuracy !== null);
        const m = ran.map((e) => metricOf(task, e)).filter((v): v is number => v !== null);
        const correct = ran.reduce((a, e) => a + Math.round((e.accuracy as number) * e.n), 0),
          trials = ran.reduce((a, e) => a + e.n, 0);
        out.push({
          task,
          arch,
          length,
          seeds: ran.length,
          mean: mean(m),
          min: m.length ? Math.min(...m) : null,
          max: m.length ? Math.max(...m) : null,
          ci95: (task === 'strain' || task === 'motif') && trials > 0 ? wilson(correct, trials) : null,
          seconds_per_sequence: mean(ran.map((e) => length / (e.tok_s as number))),
          joules_per_sequence: mean(ran.map((e) => e.joules_per_sequence as number)),
          out_of_budget: ran.length === 0 ? (rows[0]?.out_of_budget ?? 'not run') : null,
        });
      }
    }
  return out;
}

/** The Markov baseline's mean bits per base, over the seeds, on the bases the language model scored at `length`. */
function pairedMarkov(rep: GenomicsReport, arch: TaskArch, length: number): number | null {
  const m = rep.runs
    .filter((r) => r.task === 'lm' && r.arch === arch)
    .flatMap((r) => r.eval.filter((e) => e.length === length && e.bits_per_base != null))
    .map((e) => e.markov_bits_per_base)
    .filter((v): v is number => typeof v === 'number');
  return mean(m);
}

/** Time and joules per 100k-base window (strain classification at 100,000 bases), per architecture. */
export function per100k(rep: GenomicsReport, rows = summarize(rep)) {
  return ARCHS.map((arch) => {
    const r = rows.find((x) => x.task === 'strain' && x.arch === arch && x.length === 100_000);
    return {
      arch,
      seconds: r?.seconds_per_sequence ?? null,
      joules: r?.joules_per_sequence ?? null,
      note: !r ? 'no 100k-base window in this run (--quick)' : r.seeds === 0 ? `out of budget (${r.out_of_budget})` : '',
    };
  });
}

const energyKind = (rep: GenomicsReport) => (rep.runs.every((r) => r.train.energy_kind === 'measured') ? 'measured' : 'estimated');

/** The targets of the study with what was measured; met is decided from the numbers. */
export function genomicsTargets(rep: GenomicsReport, rows = summarize(rep)): { target: string; measured: string; met: boolean | null }[] {
  const ran = (task: GenomeTask, arch: TaskArch) => rows.filter((r) => r.task === task && r.arch === arch && r.mean !== null);
  const ms = ran('strain', 'mamba'),
    ts = rows.filter((r) => r.task === 'strain' && r.arch === 'transformer');
  const rising = ms.length > 1 && ms.every((r, i) => i === 0 || (r.mean as number) >= (ms[i - 1].mean as number));
  const stopped = ts.filter((r) => r.mean === null).map((r) => r.length);
  const lm = ran('lm', 'mamba'),
    bestRow = lm.reduce<SummaryRow | null>((b, r) => (b === null || (r.mean as number) < (b.mean as number) ? r : b), null),
    best = bestRow ? (bestRow.mean as number) : null,
    paired = bestRow ? pairedMarkov(rep, 'mamba', bestRow.length) : null,
    markov = paired ?? rep.data.markov.test_bits_per_base;
  const cost = per100k(rep, rows);
  return [
    {
      target: 'Strain accuracy: Mamba keeps improving with the window up to the longest',
      measured: ms.map((r) => `${r.length}: ${fmt.pct(r.mean as number)}`).join(', ') || 'not run',
      met: ms.length > 1 ? rising : null,
    },
    {
      target: 'Strain accuracy: the transformer stops at its budget',
      measured: stopped.length ? `out of budget from ${Math.min(...stopped)} bases` : 'ran every length',
      met: ts.length ? stopped.length > 0 : null,
    },
    {
      target: 'Bits per base below the best Markov baseline (Mamba)',
      measured:
        best === null
          ? 'not run'
          : `${best.toFixed(4)} at context ${bestRow?.length} against order-${rep.data.markov.k} Markov ${markov.toFixed(4)} bits per base ${paired === null ? 'on the whole test part' : `on the same bases (${rep.data.markov.test_bits_per_base.toFixed(4)} on the whole test part)`}`,
      met: best === null ? null : best < markov,
    },
    {
      target: 'Time and joules per 100k-base window, each architecture',
      measured: cost
        .map(
          (c) =>
            `${c.arch}: ${c.seconds === null ? c.note : `${fmt.sec(c.seconds)} s, ${fmt.joules(c.joules as number)} J (${energyKind(rep)})`}`,
        )
        .join('; '),
      met: cost.every((c) => c.seconds !== null) ? true : cost.some((c) => c.seconds !== null) ? false : null,
    },
  ];
}

const byArch = (rows: SummaryRow[], task: GenomeTask, y: (r: SummaryRow) => number | null): Series[] =>
  ARCHS.map((arch) => ({
    arch,
    label: arch,
    line: true,
    points: rows.filter((r) => r.task === task && r.arch === arch && y(r) !== null).map((r) => ({ x: r.length, y: y(r) as number })),
  }));

function skippedNote(rows: SummaryRow[], task: GenomeTask): string | undefined {
  const s = ARCHS.flatMap((arch) => {
    const first = rows.find((r) => r.task === task && r.arch === arch && r.mean === null);
    return first ? [`${arch} from ${first.length} (${(first.out_of_budget ?? '').split(':')[0]})`] : [];
  });
  return s.length ? `out of budget: ${s.join('; ')}` : undefined;
}

/** The charts: file name, caption, chart. */
export function genomicsCharts(rep: GenomicsReport, rows = summarize(rep)): { file: string; caption: string; chart: Chart }[] {
  const strains = rep.data.strains.length,
    kind = energyKind(rep);
  return [
    {
      file: 'strain-accuracy.svg',
      caption: `Strain classification: accuracy against window length (mean over seeds; ${strains} strains, held-out bases)`,
      chart: {
        title: 'Strain classification: accuracy against window',
        x: { label: 'window (bases, log scale)', scale: 'log2' },
        y: { label: 'accuracy', scale: 'linear', min: 0, max: 1 },
        refs: [{ y: 1 / strains, label: `chance (1/${strains})` }],
        series: byArch(rows, 'strain', (r) => r.mean),
        note: skippedNote(rows, 'strain'),
      },
    },
    {
      file: 'lm-bits.svg',
      caption: 'Next-base prediction on held-out E. coli: bits per base against context length, beside the Markov baseline',
      chart: {
        title: 'Bits per base against context',
        x: { label: 'context (bases, log scale)', scale: 'log2' },
        y: { label: 'bits per base', scale: 'linear' },
        refs: [{ y: rep.data.markov.test_bits_per_base, label: `order-${rep.data.markov.k} Markov` }],
        series: byArch(rows, 'lm', (r) => r.mean),
        note: skippedNote(rows, 'lm'),
      },
    },
    {
      file: 'motif-accuracy.svg',
      caption: 'Motif pair: accuracy against the distance between the motifs (E. coli-fitted background)',
      chart: {
        title: 'Motif pair: accuracy against distance',
        x: { label: 'distance d (bases, log scale)', scale: 'log2' },
        y: { label: 'accuracy', scale: 'linear', min: 0, max: 1 },
        refs: [{ y: 0.5, label: 'chance' }],
        series: byArch(rows, 'motif', (r) => r.mean),
        note: skippedNote(rows, 'motif'),
      },
    },
    {
      file: 'window-joules.svg',
      caption: `Joules per window against window length (strain classification; ${kind})`,
      chart: {
        title: 'Energy per window',
        x: { label: 'window (bases, log scale)', scale: 'log2' },
        y: { label: `joules per window (${kind})`, scale: 'log10' },
        series: byArch(rows, 'strain', (r) => r.joules_per_sequence),
        note: skippedNote(rows, 'strain'),
      },
    },
  ];
}

const UNITS: Record<GenomeTask, [string, string, (v: number) => string]> = {
  strain: ['window', 'accuracy', fmt.pct],
  lm: ['context', 'bits per base', (v) => v.toFixed(4)],
  exon: ['tile', 'MCC', (v) => v.toFixed(4)],
  motif: ['distance', 'accuracy', fmt.pct],
};

function taskTable(rows: SummaryRow[], task: GenomeTask): string {
  const [len, metric, f] = UNITS[task];
  return table(
    ['arch', len, 'seeds', `${metric} (mean)`, 'range over seeds', '95% CI (pooled)', 's/sequence', 'J/sequence', 'note'],
    rows
      .filter((r) => r.task === task)
      .map((r) =>
        r.mean === null
          ? [r.arch, String(r.length), '0', 'out of budget', '—', '—', '—', '—', r.out_of_budget ?? '']
          : [
              r.arch,
              String(r.length),
              String(r.seeds),
              f(r.mean),
              `${f(r.min as number)} … ${f(r.max as number)}`,
              r.ci95 ? `[${fmt.pct(r.ci95[0])}, ${fmt.pct(r.ci95[1])}]` : '—',
              (r.seconds_per_sequence as number).toPrecision(3),
              fmt.joules(r.joules_per_sequence as number),
              '',
            ],
      ),
  );
}

/** The opening paragraphs: the run, the energy's kind, the data and the models. */
function intro(rep: GenomicsReport, kind: string): string[] {
  const m = rep.machine,
    run = rep.run,
    d = rep.data;
  return [
    '# Genomes: Mamba and a transformer on real DNA',
    '',
    `Made by \`${run.command}\` in ${fmt.sec(run.seconds)} s on ${String(m.cpu)} (${String(m.logical_cpus)} logical CPUs, ${String(m.threads)} threads, Node ${String(m.node)}); ` +
      `seeds ${run.seeds.join(', ')}; reverse-complement averaging ${run.rc_equivariant ? 'on' : 'off'}; other processes kept ${fmt.pct(run.other_cpu_share)} of the CPUs busy. ` +
      (run.quick ? 'Quick mode: a few steps on tiny models, not a study.' : `Time budget ${String(run.budget_minutes)} minutes.`),
    '',
    kind === 'measured'
      ? "**Energy is measured** by the machine's energy counters."
      : `**Energy is estimated**: no energy counter was readable, so joules are this process's CPU time × ${String(m.watts_per_core)} W per core (${String(m.watts_source)}).`,
    '',
    `Genomes from Debian packages (${Object.entries(d.packages)
      .map(([p, v]) => `${p} ${v}`)
      .join(', ')}): ${d.strains.length} strains ` +
      `(${d.strains.map((s) => `${s.species} ${s.strain}`).join(', ')}) and ${d.hla.accession}, the human HLA class I region ` +
      `(${fmt.int(d.hla.bases)} bases, ${d.hla.exons} exons). The last 20% of each genome is the test set; the HLA genes from base ${fmt.int(d.hla.test_from)} on ` +
      `(${d.hla.genes_test} genes) are held out whole (${d.hla.genes_train} genes train).`,
    '',
    `Models: Mamba d_model ${rep.models.shape.dModel}, ${rep.models.shape.layers} layers, d_state ${rep.models.shape.dState} (${fmt.int(rep.models.params.mamba)} parameters) ` +
      `and a Llama-layout transformer of the same width and depth (${fmt.int(rep.models.params.transformer)} parameters), vocabulary ${rep.models.vocab} (A C G T N and answer ids).`,
    '',
  ];
}

/** The whole genomics.md. */
export function genomicsMarkdown(rep: GenomicsReport, charts: { file: string; caption: string }[]): string {
  const rows = summarize(rep),
    d = rep.data,
    kind = energyKind(rep);
  return [
    ...intro(rep, kind),
    '## Targets',
    '',
    table(
      ['target', 'measured', 'met'],
      genomicsTargets(rep, rows).map((t) => [t.target, t.measured, t.met === null ? 'not run' : t.met ? 'yes' : '**no**']),
    ),
    '',
    '## Time and joules per 100k-base window',
    '',
    table(
      ['arch', 'seconds per window', `joules per window (${kind})`, 'note'],
      per100k(rep, rows).map((c) => [
        c.arch,
        c.seconds === null ? '—' : fmt.sec(c.seconds),
        c.joules === null ? '—' : fmt.joules(c.joules),
        c.note,
      ]),
    ),
    '',
    '## (a) Strain classification',
    '',
    'The strain is read along the whole window: the answer’s log-probabilities at every 256th base and at the last are averaged (constant memory beside the state). The models were trained on windows of a few thousand bases at most, answering from the first quarter on.',
    '',
    taskTable(rows, 'strain'),
    '',
    '## (b) Next-base language modelling (E. coli MG1655)',
    '',
    `Bits per definite base over the four bases, scored on the bases after each context. Markov baseline: order ${d.markov.k} chosen on validation ` +
      `(${d.markov.validation.map((v) => `k=${v.k}: ${v.bits_per_base.toFixed(4)}`).join(', ')}), ${d.markov.test_bits_per_base.toFixed(4)} bits per base on the ${fmt.int(d.markov.test_bases)} test bases.`,
    '',
    taskTable(rows, 'lm'),
    '',
    '## (c) Exon labelling on held-out HLA genes',
    '',
    'Per-base Matthews correlation of exon / not exon over tiles spread evenly across the held-out genes (each base labelled 32 bases after it is read; a base is called exon when the model gives it more than the share of exon labels in the training batches).',
    '',
    taskTable(rows, 'exon'),
    '',
    '## (d) Motif pair',
    '',
    'Two 8-base motifs d bases apart in a background drawn from an order-3 Markov chain fitted to E. coli: the same motif or not (chance 50%).',
    '',
    taskTable(rows, 'motif'),
    '',
    '## Training',
    '',
    table(
      ['task', 'arch', 'seed', 'params', 'steps', 'tokens', 'seconds', `joules (${kind})`, 'note'],
      rep.runs.map((r) => [
        r.task,
        r.arch,
        String(r.seed),
        fmt.int(r.params),
        fmt.int(r.train.steps),
        fmt.int(r.train.tokens),
        fmt.sec(r.train.seconds),
        fmt.joules(r.train.joules),
        r.train.stopped_early ?? '',
      ]),
    ),
    '',
    '## Charts',
    '',
    ...charts.flatMap((c) => [`![${c.caption}](${c.file})`, '', `*${c.caption}*`, '']),
  ].join('\n');
}

/** Every file of a report folder: genomics.json, genomics.md, the charts. */
export function genomicsFiles(rep: GenomicsReport): Record<string, string> {
  const rows = summarize(rep),
    charts = genomicsCharts(rep, rows);
  const json = { ...rep, summary: rows, per_100k: per100k(rep, rows), targets: genomicsTargets(rep, rows) };
  const files: Record<string, string> = {
    [GENOMICS_JSON]: JSON.stringify(json, null, 1) + '\n',
    [GENOMICS_MD]: genomicsMarkdown(rep, charts),
  };
  for (const c of charts) files[c.file] = chartSvg(c.chart);
  return files;
}
