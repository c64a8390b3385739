import type { EvalRow } from './evaluate.js';
import type { SyntheticReport, TaskRow } from './synthetic.js';
import type { CurvePoint } from '../train/scored.js';
import type { TaskRecipe } from '../tasks/recipes.js';
import { joulesPerCorrect, ratio } from './stats.js';

/**
 * synthetic.md from the report: the headline beside the papers' numbers, the targets with their
 * measured values, one table row per model (training) and per evaluated length, the recipes, and
 * the charts. Every number of synthetic.json appears here, formatted by the functions below (the
 * test reads them back).
 */
export const fmt = {
  pct: (x: number) => `${(100 * x).toFixed(2)}%`,
  joules: (j: number) => j.toExponential(3),
  int: (n: number) => String(Math.round(n)),
  sec: (s: number) => s.toFixed(1),
  ratio: (r: number) => `${r.toFixed(1)}×`,
};

export function lengthLabel(L: number, task: string): string {
  if (task === 'hanoi') return `${L} disks`;
  return Number.isInteger(Math.log2(L)) ? `2^${Math.log2(L)}` : String(L);
}

export function rowName(r: Pick<TaskRow, 'task' | 'arch' | 'method'>): string {
  return `${r.task} ${r.arch}${r.method ? ` ${r.method}` : ''}`;
}

function evalCells(e: EvalRow): string[] {
  if (e.accuracy === null) return ['—', 'out of budget', '—', '—', '—', e.out_of_budget ?? ''];
  const [lo, hi] = e.ci95 as [number, number];
  return [
    String(e.n),
    fmt.pct(e.accuracy),
    `[${fmt.pct(lo)}, ${fmt.pct(hi)}]`,
    fmt.joules(e.joules_per_sequence as number),
    fmt.int(e.tok_s as number),
    '',
  ];
}

/** Extra context a writer may add: learning curves and recipes from the model directories, notes by hand. */
export interface MarkdownExtras {
  curves: Map<string, CurvePoint[]>;
  recipes: Map<string, TaskRecipe>;
  notes: string | null;
  charts: { file: string; caption: string }[];
}

function evalAt(r: TaskRow | undefined, L: number): EvalRow | undefined {
  return r?.eval.find((e) => e.length === L && e.accuracy !== null);
}

/** The targets of the study with what was measured; "met" is decided from the numbers alone. */
export function targets(rep: SyntheticReport): { target: string; measured: string; met: boolean | null }[] {
  const find = (task: string, arch: string, method: string | null = null) =>
    rep.tasks.find((t) => t.task === task && t.arch === arch && t.method === method);
  const out: { target: string; measured: string; met: boolean | null }[] = [];
  const sc = find('selective-copy', 'mamba'),
    scBest = sc?.eval.filter((e) => e.accuracy !== null).at(0);
  out.push({
    target: 'Selective copying ≥ 99% for Mamba',
    measured: scBest ? `${fmt.pct(scBest.accuracy as number)} at ${lengthLabel(scBest.length, 'selective-copy')}` : 'not run',
    met: scBest ? (scBest.accuracy as number) >= 0.99 : null,
  });
  const im = find('induction', 'mamba'),
    it = find('induction', 'transformer');
  const ran = im?.eval.filter((e) => e.accuracy !== null) ?? [];
  const perfect = ran.filter((e) => e.accuracy === 1).map((e) => e.length),
    below = ran.filter((e) => e.accuracy !== 1);
  const reach = ran.every((e) => e.length > 65536 || e.accuracy === 1) && ran.some((e) => e.length >= 65536);
  out.push({
    target: 'Induction heads 100% for Mamba out to ≥ 2^16 (trained at 256)',
    measured: ran.length
      ? `100% at ${perfect.length ? perfect.map((L) => lengthLabel(L, 'induction')).join(', ') : 'no length'}${below.length ? `; below at ${below.map((e) => `${lengthLabel(e.length, 'induction')} (${fmt.pct(e.accuracy as number)})`).join(', ')}` : ''}`
      : 'not run',
    met: ran.length ? reach : null,
  });
  const past = it?.eval.filter((e) => e.accuracy !== null && e.length > 4 * 256) ?? [];
  out.push({
    target: 'Transformer below 30% past 4× its training length',
    measured: past.length
      ? past.map((e) => `${lengthLabel(e.length, 'induction')}: ${fmt.pct(e.accuracy as number)}`).join(', ')
      : 'no length past 4× ran',
    met: past.length ? past.every((e) => (e.accuracy as number) < 0.3) : null,
  });
  const h = rep.headline;
  out.push({
    target: "Mamba's joules per sequence ≥ 100× below the transformer's at the longest common length",
    measured: h ? `${fmt.ratio(h.ratio)} at ${lengthLabel(h.length, 'induction')} (${h.energy_kind})` : 'no common length',
    met: h ? h.ratio >= 100 : null,
  });
  const ns = find('hanoi', 'mamba', 'neuro-symbolic'),
    e2e = find('hanoi', 'mamba', 'end-to-end');
  const ns3 = evalAt(ns, 3),
    ns4 = evalAt(ns, 4),
    e3 = evalAt(e2e, 3),
    e4 = evalAt(e2e, 4);
  const inf3 = ratio(ns3?.joules_per_sequence ?? null, e3?.joules_per_sequence ?? null),
    inf4 = ratio(ns4?.joules_per_sequence ?? null, e4?.joules_per_sequence ?? null);
  out.push({
    target: 'Hanoi neuro-symbolic ≥ 95% on 3 disks (Mamba)',
    measured: ns3 ? fmt.pct(ns3.accuracy as number) : 'not run',
    met: ns3 ? (ns3.accuracy as number) >= 0.95 : null,
  });
  out.push({
    target: 'Hanoi neuro-symbolic ≥ 75% on 4 disks, unseen (Mamba)',
    measured: ns4 ? fmt.pct(ns4.accuracy as number) : 'not run',
    met: ns4 ? (ns4.accuracy as number) >= 0.75 : null,
  });
  out.push({
    target: 'Hanoi neuro-symbolic inference ≤ 5% of end-to-end joules (Mamba)',
    measured: inf3 !== null && inf4 !== null ? `${fmt.pct(inf3)} (3 disks), ${fmt.pct(inf4)} (4 disks)` : 'not run',
    met: inf3 !== null && inf4 !== null ? inf3 <= 0.05 && inf4 <= 0.05 : null,
  });
  return out;
}

export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function headlineText(rep: SyntheticReport): string {
  const h = rep.headline;
  if (!h) return 'No length was run by both architectures, so there is no headline.';
  const jm = joulesPerCorrect(h.joules_per_sequence.mamba, h.accuracy.mamba),
    jt = joulesPerCorrect(h.joules_per_sequence.transformer, h.accuracy.transformer);
  // above chance means the 95% interval's lower end is above it (one right answer of two is not a skill)
  const chance = 1 / 16,
    lower = (arch: string) =>
      rep.tasks.find((t) => t.task === 'induction' && t.arch === arch)?.eval.find((x) => x.length === h.length)?.ci95?.[0] ?? 0,
    both = lower('mamba') > chance && lower('transformer') > chance;
  return [
    `**Induction heads at ${lengthLabel(h.length, 'induction')} tokens** (the longest length both architectures ran, trained at 256): ` +
      `Mamba ${fmt.pct(h.accuracy.mamba)}, transformer ${fmt.pct(h.accuracy.transformer)} (chance 6.25%); ` +
      `joules per sequence ${fmt.joules(h.joules_per_sequence.mamba)} J against ${fmt.joules(h.joules_per_sequence.transformer)} J ` +
      `(${h.energy_kind}): the transformer spends **${fmt.ratio(h.ratio)}** Mamba's energy per sequence.` +
      (both && jm !== null && jt !== null
        ? ` Per correct answer: ${fmt.joules(jm)} J against ${fmt.joules(jt)} J.`
        : ' Joules per correct answer are not compared: one of the two is not above chance there (the lower end of its 95% interval).'),
  ].join('\n');
}

export const SYNTHETIC_MARKERS = [
  '<!-- rendered from docs/synthetic/synthetic.json by tools/render_readme.mjs -->',
  '<!-- end of docs/synthetic/synthetic.json -->',
] as const;

const PAPERS =
  'The papers: Mamba (Gu & Dao 2023) solves induction heads perfectly out to 2^20 tokens (4000× its training length) while no other model ' +
  'goes beyond 2×, and copies selectively at 99.8%. Duggan et al. (ICRA 2026): on Tower of Hanoi a neuro-symbolic system succeeded 95% ' +
  'of the time against 34% for a fine-tuned vision-language-action model, 78% against 0% on an unseen larger puzzle, with 1% of the training ' +
  'energy and 5% of the inference energy. The Hanoi task here is a token-sequence analogue of that study, not a reproduction.';

/** The README's synthetic-study section: the committed run's command, headline, the papers' numbers and the targets. */
export function readmeSyntheticSection(rep: SyntheticReport): string {
  return [
    `From the committed full run \`${rep.run.command}\` (${fmt.sec(rep.run.seconds / 60)} minutes on ${String(rep.machine.cpu)}, ` +
      `${String(rep.machine.threads)} threads; energy ${rep.tasks.every((t) => t.train.energy_kind === 'measured') ? 'measured' : '**estimated**: CPU time × W per core'}); ` +
      'every number, chart and model is in [docs/synthetic/](docs/synthetic/synthetic.md).',
    '',
    headlineText(rep),
    '',
    PAPERS,
    '',
    table(
      ['target', 'measured', 'met'],
      targets(rep).map((t) => [t.target, t.measured, t.met === null ? 'not run' : t.met ? 'yes' : '**no**']),
    ),
  ].join('\n');
}

/** The whole synthetic.md. */
export function renderMarkdown(rep: SyntheticReport, x: MarkdownExtras): string {
  const m = rep.machine,
    run = rep.run;
  const lines: string[] = [
    '# Synthetic tasks: accuracy and energy, Mamba against a transformer',
    '',
    `Made by \`${run.command}\` in ${fmt.sec(run.seconds)} s on ${String(m.cpu)} (${String(m.logical_cpus)} logical CPUs, ${String(m.threads)} threads, Node ${String(m.node)}); ` +
      `other processes kept ${fmt.pct(run.other_cpu_share)} of the machine's CPUs busy meanwhile. ` +
      (run.quick ? 'Quick mode: fixed small step counts, not a study.' : `Time budget ${String(run.budget_minutes)} minutes.`),
    '',
    rep.tasks.every((t) => t.train.energy_kind === 'measured')
      ? "**Energy is measured** by the machine's energy counters (see each figure's kind)."
      : `**Energy is estimated**: no energy counter was readable, so joules are this process's CPU time × ${String(m.watts_per_core)} W per core (${String(m.watts_source)}).`,
    '',
    '## Headline',
    '',
    headlineText(rep),
    '',
    PAPERS,
    '',
    '## Targets',
    '',
    table(
      ['target', 'measured', 'met'],
      targets(rep).map((t) => [t.target, t.measured, t.met === null ? 'not run' : t.met ? 'yes' : '**no**']),
    ),
    '',
    '## Training',
    '',
    table(
      ['model', 'params', 'steps', 'tokens', 'seconds', 'joules', 'energy', 'last accuracy (training batches)', 'model_dir'],
      rep.tasks.map((t) => {
        const c = x.curves.get(t.model_dir)?.at(-1);
        return [
          rowName(t),
          fmt.int(t.params),
          fmt.int(t.train.steps),
          fmt.int(t.train.tokens),
          fmt.sec(t.train.seconds),
          fmt.joules(t.train.joules),
          t.train.energy_kind,
          c ? fmt.pct(c.accuracy) : '—',
          `\`${t.model_dir}\``,
        ];
      }),
    ),
    '',
    '## Evaluation',
    '',
    'Accuracy with its 95% Wilson interval (induction: the answer at the last position, argmax over the 16 content ids; selective copying: ' +
      'data tokens copied exactly, 16 per sequence; Hanoi: episodes whose moves are legal from the true state and reach the goal; length is the number of disks). ' +
      'Joules per sequence (episode) and tokens per second over the whole evaluation at that length, batches of independent sequences.',
    '',
    table(
      ['model', 'length', 'n', 'accuracy', '95% CI', 'J/sequence', 'tok/s', 'note'],
      rep.tasks.flatMap((t) => t.eval.map((e) => [rowName(t), lengthLabel(e.length, t.task), ...evalCells(e)])),
    ),
    '',
  ];
  if (x.charts.length) lines.push('## Charts', '', ...x.charts.flatMap((c) => [`![${c.caption}](${c.file})`, '', `*${c.caption}*`, '']));
  lines.push('## Recipes', '', recipeText(rep, x), '');
  if (x.notes) lines.push('## Notes', '', x.notes.trim(), '');
  return lines.join('\n');
}

/** ", after a curriculum: 600 steps at 64, 300 at 256" (nothing without one). */
function curriculumText(c: { seqLen: number; steps: number }[] | null | undefined): string {
  if (!c?.length) return '';
  return `, after a length curriculum: ${c.map((p) => `${fmt.int(p.steps)} steps at ${fmt.int(p.seqLen)}`).join(', ')}`;
}

function recipeText(rep: SyntheticReport, x: MarkdownExtras): string {
  const rows = rep.tasks.map((t) => {
    const r = x.recipes.get(t.model_dir);
    if (!r) return [rowName(t), '—', '—', '—', '—', '—'];
    const shape = `d_model ${r.model.dModel}, ${r.model.layers} layers${r.arch === 'mamba' ? `, d_state ${r.model.dState}` : ''}`;
    return [
      rowName(t),
      shape,
      `${r.train.batch} × ${r.train.seqLen}${r.train.disks ? ` (${r.train.disks}-disk scenes)` : ''}${curriculumText(r.train.curriculum)}`,
      String(r.train.steps),
      `AdamW lr ${r.train.lr} (warm-up ${r.train.warmup}, ${
        r.train.decaySteps !== undefined
          ? `constant, then a cosine to ${r.train.minLr} over the last ${r.train.decaySteps} steps`
          : `cosine to ${r.train.minLr}`
      }), weight decay ${r.train.weightDecay}, clip ${r.train.clip}`,
      fmt.int(t.params),
    ];
  });
  return [
    'Mamba: Mamba-1 blocks (expand 2, d_conv 4, dt_rank d_model/16), tied embeddings. Transformer: Llama layout (pre-RMSNorm, multi-head causal attention ' +
      'with rotary position embeddings (RoPE, θ = 10000), SwiGLU MLP, tied embeddings), same width and depth, the SwiGLU width chosen so that its parameter ' +
      "count is closest to the Mamba's. Of the paper's attention variants only RoPE is reproduced: absolute positions and xPos are not (nor H3 and Hyena). " +
      'Both architectures get the same steps, batch, optimiser, schedule and data (the same seed). The loss is the cross-entropy at the scored positions only ' +
      '(induction: the last; selective copying: the 16 markers; Hanoi: every output token after SEP, teacher-forced).',
    '',
    table(['model', 'shape', 'batch × length', 'steps', 'optimiser', 'params'], rows),
  ].join('\n');
}
