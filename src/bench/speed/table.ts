/** The table `frugal bench` prints to stderr: one Markdown table per section of the document. */
import type { SpeedDoc } from './types.js';

type Cell = string | number;

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const pct1 = (x: number) => `${(100 * x).toFixed(1)}%`;

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
    `frugal bench (${d.mode}, ${d.seconds.toFixed(0)} s): ${m.cpu}, ${m.logical_cpus} logical CPUs, ${m.isa.join(' ')}, Node ${m.node} (V8 ${m.v8}), ` +
      `other processes busy ${pct(m.other_busy_before)} before, ${pct(m.other_busy_during)} during the run\n`,
    `CPU theoretical peak: ${fmt(pk.gflops, 0)} GFLOP/s float32 = ${pk.cores} cores × ${pk.ghz.toFixed(2)} GHz × ${pk.flops_per_cycle} FLOP/cycle ` +
      `(${pk.fma_units} FMA × ${pk.datapath_bits / 32} lanes × 2)\n  detected: ${pk.detected.join('; ')}\n  assumed: ${pk.assumed.join('; ')}\n`,
    table(
      `machine (wasm readBandwidth over ${(m.bandwidth_bytes / 2 ** 30).toFixed(2)} GiB, 16 streams a thread; matmulNT ${m.gemm_shape}³ = frugal's measured GEMM peak)`,
      ['threads', 'read GB/s', 'GEMM GFLOP/s', 'CPU peak GFLOP/s'],
      m.by_threads.map((p) => [
        String(p.threads),
        mid(p.bandwidth_gbs, p.bandwidth_gbs_min, p.bandwidth_gbs_max),
        mid(p.gemm_gflops, p.gemm_gflops_min, p.gemm_gflops_max),
        Math.min(p.threads, pk.cores) * pk.ghz * pk.flops_per_cycle,
      ]),
      [1, 1, 1, 0],
    ),
    table(
      'decode (batch 1)',
      ['model', 'precision', 'threads', 'tok/s', 'MB/token', 'bound tok/s', 'of bound'],
      d.decode.map((e) => [
        e.model,
        e.precision,
        String(e.threads),
        mid(e.tok_s, e.tok_s_min, e.tok_s_max, 2),
        e.weight_bytes_per_token / 1e6,
        e.bound_tok_s,
        pct(e.bound_fraction),
      ]),
      [1, 1, 1, 2, 1, 1],
    ),
    table(
      'prefill',
      ['model', 'precision', 'threads', 'prompt', 'tok/s', '× single steps'],
      d.prefill.map((e) => [
        e.model,
        e.precision,
        String(e.threads),
        String(e.prompt_tokens),
        mid(e.tok_s, e.tok_s_min, e.tok_s_max),
        e.over_steps,
      ]),
    ),
    table(
      'train (AdamW step; MFU = model FLOPs ÷ the CPU\'s theoretical peak; "of GEMM peak" = the same FLOPs ÷ frugal\'s measured GEMM peak)',
      ['model', 'threads', 'batch × seq', 'tok/s', 'MFU (6·P)', 'MFU with scan', 'of GEMM peak', 'of GEMM peak with scan'],
      d.train.map((e) => [
        e.model,
        String(e.threads),
        `${e.batch} × ${e.seq_len}`,
        mid(e.tok_s, e.tok_s_min, e.tok_s_max, 0),
        pct1(e.mfu),
        pct1(e.mfu_with_scan),
        pct(e.of_gemm_peak),
        pct(e.of_gemm_peak_with_scan),
      ]),
    ),
    table(
      'streams (BatchDecoder, f32)',
      ['model', 'streams', 'threads', 'aggregate tok/s', '× one stream'],
      d.streams.map((e) => [
        e.model,
        String(e.streams),
        String(e.threads),
        mid(e.aggregate_tok_s, e.aggregate_tok_s_min, e.aggregate_tok_s_max),
        e.over_one,
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
  if (d.skipped.length > 0) parts.push(`skipped:\n${d.skipped.map((s) => `- ${s.section}: ${s.what}: ${s.reason}`).join('\n')}\n`);
  return parts.join('\n');
}

/** The speed targets frugal set itself, each with its figure from this run (met, missed, or not measured). */
export function speedTargets(d: SpeedDoc): string[] {
  const out: string[] = [];
  const all = Math.max(...d.machine.by_threads.map((p) => p.threads));
  const dec = (p: string, t: number) => d.decode.find((e) => e.precision === p && e.threads === t);
  const say = (what: string, value: number | undefined, goal: number, unit = '×') => {
    if (value === undefined || !Number.isFinite(value)) out.push(`${what}: not measured`);
    else
      out.push(
        `${what}: ${unit === '%' ? pct(value) : `${value.toFixed(2)}×`} (goal ${unit === '%' ? pct(goal) : `${goal}×`}) ${value >= goal ? 'met' : 'MISSED'}`,
      );
  };
  for (const p of ['f32', 'q8']) say(`decode ${p} ${all} threads of bandwidth bound`, dec(p, all)?.bound_fraction, 0.9, '%');
  const f32 = dec('f32', all)?.tok_s;
  say(`q8 decode over f32 (${all} threads)`, f32 ? (dec('q8', all)?.tok_s ?? NaN) / f32 : undefined, 3);
  say(
    `q4 decode over q8 (${all} threads)`,
    dec('q8', all) ? (dec('q4', all)?.tok_s ?? NaN) / (dec('q8', all)?.tok_s ?? NaN) : undefined,
    1,
  );
  const long = d.prefill.filter((e) => e.precision === 'f32' && e.prompt_tokens >= 1024).sort((a, b) => b.threads - a.threads)[0];
  say(`1024-token prefill over 1024 single steps (f32, ${all} threads)`, long?.over_steps, 5);
  const tr = d.train.find((e) => e.threads === all);
  say(`training FLOPs of frugal's measured GEMM peak (${all} threads)`, tr?.of_gemm_peak, 0.5, '%');
  const s32 = d.streams.find((e) => e.streams === 32 && e.threads === all);
  say(`32 streams over one (${all} threads)`, s32?.over_one, 10);
  for (const p of d.peers) {
    const goal = p.name === 'pytorch' && p.measure === 'train' ? 5 : 1;
    say(`${p.measure} ${p.precision} ${p.threads} threads vs ${p.name}`, p.ratio, goal);
  }
  return out;
}
