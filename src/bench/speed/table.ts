/** The table `frugal bench` prints to stderr: one Markdown table per section of the document. */
import type { Interleaved, SpeedDoc } from './types.js';
import { figure, flagsOn } from './steady.js';

type Cell = string | number;

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const pct1 = (x: number) => `${(100 * x).toFixed(1)}%`;
/** Peak resident memory in MB, or blank for a document without it. */
const rss = (b: number | undefined) => (b === undefined ? '' : (b / 1e6).toFixed(0));
const optPct = (x: number | undefined) => (x === undefined ? '' : pct(x));
/** A fraction of a ceiling, with its rounds' range where it was measured in alternation with the ceiling (the README's cells too). */
export const ceilingText = (x: number | undefined, il: Interleaved | undefined) =>
  il ? `${pct(il.median)} (${pct(il.min)}–${pct(il.max)})` : optPct(x);
/** The same, marked `i` where measured in alternation. */
const ofCeiling = (x: number | undefined, il: Interleaved | undefined) => (il ? `${ceilingText(x, il)} i` : ceilingText(x, il));

function fmt(v: Cell, digits = 1): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return 'n/a';
  return Math.abs(v) >= 1e5 ? v.toExponential(2) : v.toFixed(digits);
}

function table(title: string, head: string[], rows: Cell[][], digits: number[] = []): string {
  if (rows.length === 0) return `${title}: none\n`;
  const cells = rows.map((r) => r.map((c, i) => fmt(c, digits[i] ?? 1)));
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join(' | ')} |`;
  const sep = `|${width.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [`${title}`, line(head), sep, ...cells.map(line)].join('\n') + '\n';
}

/** "median (min–max)" of a figure and its _min / _max companions. */
function mid(median: number, min: number, max: number, digits = 1): string {
  return `${fmt(median, digits)} (${fmt(min, digits)}–${fmt(max, digits)})`;
}

/** Every section as a table, then the skipped parts. Figures are medians with (min–max). */
export function speedTable(d: SpeedDoc): string {
  const m = d.machine,
    pk = m.cpu_peak;
  const parts = [
    `frugal bench (${d.mode}, ${d.seconds.toFixed(0)} s, kernels ${d.kernel_build ?? 'wasm'}): ${m.cpu}, ${m.logical_cpus} logical CPUs, ${m.isa.join(' ')}, Node ${m.node} (V8 ${m.v8}), ` +
      `other processes busy ${pct(m.other_busy_before)} before, ${pct(m.other_busy_during)} during the run\n`,
    `CPU theoretical peak: ${fmt(pk.gflops, 0)} GFLOP/s float32 = ${pk.cores} cores × ${pk.ghz.toFixed(2)} GHz × ${pk.flops_per_cycle} FLOP/cycle ` +
      `(${pk.fma_units} FMA × ${pk.datapath_bits / 32} lanes × 2)\n  detected: ${pk.detected.join('; ')}\n  assumed: ${pk.assumed.join('; ')}\n`,
    table(
      `machine (wasm readBandwidth over ${(m.bandwidth_bytes / 2 ** 30).toFixed(2)} GiB, the fastest of 2/4/8/16 streams a thread; matmulNTP4 ${m.gemm_shape}³, weights in panels = frugal's measured GEMM peak)`,
      ['threads', 'read GB/s', 'streams', 'GEMM GFLOP/s', 'CPU peak GFLOP/s'],
      m.by_threads.map((p) => [
        String(p.threads),
        mid(p.bandwidth_gbs, p.bandwidth_gbs_min, p.bandwidth_gbs_max),
        p.read_streams === undefined ? '16' : String(p.read_streams),
        mid(p.gemm_gflops, p.gemm_gflops_min, p.gemm_gflops_max),
        Math.min(p.threads, pk.cores) * pk.ghz * pk.flops_per_cycle,
      ]),
      [1, 1, 1, 0],
    ),
    table(
      'decode (batch 1; a fraction marked i was measured in alternation with its ceiling: the median of its rounds, min–max)',
      ['model', 'precision', 'threads', 'tok/s', 'MB/token', 'bound tok/s', 'of bound', 'peak RSS MB'],
      d.decode.map((e) => [
        e.model,
        e.precision,
        String(e.threads),
        mid(e.tok_s, e.tok_s_min, e.tok_s_max, 2),
        e.weight_bytes_per_token / 1e6,
        e.bound_tok_s,
        ofCeiling(e.bound_fraction, e.interleaved),
        rss(e.peak_rss_bytes),
      ]),
      [1, 1, 1, 2, 1, 1],
    ),
    table(
      'prefill',
      ['model', 'precision', 'threads', 'prompt', 'tok/s', '× single steps', "of frugal's GEMM peak", 'peak RSS MB'],
      d.prefill.map((e) => [
        e.model,
        e.precision,
        String(e.threads),
        String(e.prompt_tokens),
        mid(e.tok_s, e.tok_s_min, e.tok_s_max),
        e.over_steps,
        ofCeiling(e.of_gemm_peak, e.interleaved),
        rss(e.peak_rss_bytes),
      ]),
    ),
    table(
      'train (AdamW step; MFU = model FLOPs ÷ the CPU\'s theoretical peak; "of GEMM peak" = the same FLOPs ÷ frugal\'s measured GEMM peak)',
      ['model', 'threads', 'batch × seq', 'tok/s', 'MFU (6·P)', 'MFU with scan', 'of GEMM peak', 'of GEMM peak with scan', 'peak RSS MB'],
      d.train.map((e) => [
        e.model,
        String(e.threads),
        `${e.batch} × ${e.seq_len}`,
        mid(e.tok_s, e.tok_s_min, e.tok_s_max, 0),
        pct1(e.mfu),
        pct1(e.mfu_with_scan),
        pct(e.of_gemm_peak),
        pct(e.of_gemm_peak_with_scan),
        rss(e.peak_rss_bytes),
      ]),
    ),
    table(
      'streams (BatchDecoder, f32)',
      ['model', 'streams', 'threads', 'aggregate tok/s', '× one stream', 'of compute bound', 'peak RSS MB'],
      d.streams.map((e) => [
        e.model,
        String(e.streams),
        String(e.threads),
        mid(e.aggregate_tok_s, e.aggregate_tok_s_min, e.aggregate_tok_s_max),
        e.over_one,
        ofCeiling(e.of_compute_bound, e.interleaved),
        rss(e.peak_rss_bytes),
      ]),
    ),
    table(
      'kernels (one thread)',
      ['kernel', 'shape', 'wasm ms', 'ref ms', 'wasm ÷ ref'],
      d.kernels.map((e) => [e.name, e.shape, e.wasm_ms, e.ref_ms, e.wasm_over_ref]),
      [1, 1, 3, 3, 1],
    ),
    table(
      "peers (interleaved rounds: frugal, then the peer; ratio = frugal ÷ peer, median of the rounds' ratios)",
      ['peer', 'measure', 'precision', 'threads', 'rounds', 'peer tok/s', 'frugal tok/s', 'ratio', 'peer MFU', 'peer build'],
      d.peers.map((e) => [
        e.name,
        e.measure,
        e.precision,
        String(e.threads),
        String(e.rounds),
        mid(e.tok_s, e.tok_s_min, e.tok_s_max),
        mid(e.frugal_tok_s, e.frugal_tok_s_min, e.frugal_tok_s_max),
        mid(e.ratio, e.ratio_min, e.ratio_max, 2),
        e.mfu === undefined ? '' : pct1(e.mfu),
        e.detail,
      ]),
    ),
  ];
  if (d.builds)
    parts.push(
      table(
        "kernel builds (interleaved rounds; ratio = the build ÷ the first build, median of the rounds' ratios)",
        ['build', 'measure', 'precision', 'threads', 'rounds', 'value', 'unit', 'ratio'],
        d.builds.map((e) => [
          e.kernels,
          e.measure,
          e.precision,
          String(e.threads),
          String(e.rounds),
          mid(e.value, e.value_min, e.value_max),
          e.unit,
          e.over_first,
        ]),
        [1, 1, 1, 1, 1, 1, 1, 2],
      ),
    );
  if (m.after && m.after.length > 0)
    parts.push(
      `machine ceilings again at the end: ${m.after
        .map((p) => `${p.threads} thread${p.threads > 1 ? 's' : ''} read ${fmt(p.bandwidth_gbs)} GB/s, GEMM ${fmt(p.gemm_gflops)} GFLOP/s`)
        .join('; ')}\n`,
    );
  if (d.flags && d.flags.length > 0)
    parts.push(`flags (not to be trusted as they stand):\n${d.flags.map((f) => `- ${f.kind}: ${f.figure}: ${f.detail}`).join('\n')}\n`);
  if (d.skipped.length > 0) parts.push(`skipped:\n${d.skipped.map((s) => `- ${s.section}: ${s.what}: ${s.reason}`).join('\n')}\n`);
  return parts.join('\n');
}

/**
 * The figures a fraction of a ceiling rests on: the fraction's own rounds where it was measured in
 * alternation with the ceiling, else the figure and the ceiling from the start of the run.
 */
function ceilingFigures(f: string, interleaved: Interleaved | undefined, ceiling: string): string[] {
  return interleaved ? [figure.ofCeiling(f)] : [f, ceiling];
}

/**
 * The speed targets, each with its figure from this run: met, MISSED, not measured, or not judged
 * with the kinds of the flags on the figures behind it (steady.ts: its own figure, the ceiling it is
 * a fraction of, or the figures of a ratio).
 */
export function speedTargets(d: SpeedDoc): string[] {
  const out: string[] = [];
  const flags = d.flags ?? [];
  const threads = d.machine.by_threads.map((p) => p.threads),
    all = Math.max(...threads);
  const th = (T: number) => `${T} thread${T > 1 ? 's' : ''}`;
  const say = (what: string, value: number | undefined, goal: number, unit: '×' | '%', figures: string[]) => {
    // a fraction just short of its goal keeps a decimal, so that 84.9% does not read as the 85% it missed
    const show = (x: number) =>
      unit === '%' ? (x < goal && pct(x) === pct(goal) ? `${(100 * x).toFixed(1)}%` : pct(x)) : `${x.toFixed(2)}×`;
    const why = flagsOn(flags, figures);
    if (value === undefined || !Number.isFinite(value)) out.push(`${what}: not measured`);
    else if (why !== '') out.push(`${what}: ${show(value)} (goal ${show(goal)}) not judged: ${why}`);
    else out.push(`${what}: ${show(value)} (goal ${show(goal)}) ${value >= goal ? 'met' : 'MISSED'}`);
  };
  const peer = (name: 'llama.cpp' | 'pytorch', measure: string, precision: string, goal: number) => {
    const ps = d.peers.filter((p) => p.name === name && p.measure === measure && p.precision === precision);
    if (ps.length === 0) say(`${measure} ${precision} vs ${name}`, undefined, goal, '×', []);
    for (const p of ps) say(`${measure} ${precision} ${th(p.threads)} vs ${name}`, p.ratio, goal, '×', [figure.peer(p)]);
  };
  for (const p of ['f32', 'q8', 'q4']) peer('llama.cpp', 'decode', p, 1);
  const dec = d.decode.find((e) => e.precision === 'f32' && e.threads === all);
  say(
    `decode f32 ${th(all)} of the bandwidth bound`,
    dec?.bound_fraction,
    0.85,
    '%',
    dec ? ceilingFigures(figure.decode(dec), dec.interleaved, figure.bandwidth(all)) : [],
  );
  const L = Math.min(...d.prefill.map((e) => e.prompt_tokens));
  const pre = (p: string, T: number) => d.prefill.find((e) => e.precision === p && e.threads === T && e.prompt_tokens === L);
  for (const T of threads) {
    const f32 = pre('f32', T);
    say(
      `prefill f32 ${L} tokens ${th(T)} of frugal's GEMM peak`,
      f32?.of_gemm_peak,
      0.85,
      '%',
      f32 ? ceilingFigures(figure.prefill(f32), f32.interleaved, figure.gemm(T)) : [],
    );
    for (const p of ['q8', 'q4']) {
      const q = pre(p, T);
      say(
        `prefill ${p} over f32 (${L} tokens, ${th(T)})`,
        f32 && q ? q.tok_s / f32.tok_s : undefined,
        1,
        '×',
        f32 && q ? [figure.prefill(f32), figure.prefill(q)] : [],
      );
    }
  }
  peer('llama.cpp', `prefill-${L}`, 'f32', 0.85);
  for (const p of ['q8', 'q4']) peer('llama.cpp', `prefill-${L}`, p, 0.6);
  const s32 = d.streams.find((e) => e.streams === 32 && e.threads === all);
  say(
    `32 streams ${th(all)} of the compute bound`,
    s32?.of_compute_bound,
    0.7,
    '%',
    s32 ? ceilingFigures(figure.streams(s32), s32.interleaved, figure.gemm(all)) : [],
  );
  peer('pytorch', 'train', 'f32', 5);
  const tr = d.train.find((e) => e.threads === all);
  say(
    `training FLOPs of frugal's measured GEMM peak (${th(all)})`,
    tr?.of_gemm_peak,
    0.5,
    '%',
    tr ? [figure.train(tr), figure.gemm(all)] : [],
  );
  out.push('each headline ratio within 10% across three consecutive runs: not judged by one run (compare the JSON of three)');
  return out;
}
