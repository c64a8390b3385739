/**
 * The README's measured sections, rendered from the committed JSON documents (docs/bench.json from
 * `frugal bench --json`, docs/scaling.json from `frugal bench scaling --json`), so that every
 * figure and every ratio in the text comes from a committed run. tools/render_readme.mjs writes
 * them between their markers; a test checks that the README holds what these functions render.
 */
import type { PeerEntry, SpeedDoc } from './speed/types.js';
import { ceilingText } from './speed/table.js';
import type { ScalingResult } from './scaling/study.js';
import type { ScalingSummary } from './scaling/summary.js';
import { scalingTable } from './scaling/summary.js';

export const SPEED_MARKERS = [
  '<!-- rendered from docs/bench.json by tools/render_readme.mjs -->',
  '<!-- end of docs/bench.json -->',
] as const;
export const SCALING_MARKERS = [
  '<!-- rendered from docs/scaling.json by tools/render_readme.mjs -->',
  '<!-- end of docs/scaling.json -->',
] as const;

/** The CMake flags that decide llama.cpp's CPU speed (GGML_NATIVE makes the per-ISA switches moot). */
const README_FLAGS = ['CMAKE_BUILD_TYPE', 'GGML_NATIVE', 'GGML_OPENMP', 'GGML_LLAMAFILE', 'GGML_BLAS', 'BUILD_SHARED_LIBS'];

const f = (x: number, d = 1) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const pct = (x: number, d = 0) => `${(100 * x).toFixed(d)}%`;
/** "median (min–max)" */
const mm = (m: number, lo: number, hi: number, d = 1) => `${f(m, d)} (${f(lo, d)}–${f(hi, d)})`;
const x2 = (r: number) => `${r.toFixed(2)}×`;

function byThreads<T extends { threads: number }>(xs: T[], pick: (x: T) => boolean = () => true): Map<number, T> {
  return new Map(xs.filter(pick).map((x) => [x.threads, x]));
}

/** The speed table: one column per thread count measured. */
function speedRows(d: SpeedDoc, threads: number[]): string[] {
  const cell = <T extends { threads: number }>(m: Map<number, T>, show: (x: T) => string) =>
    threads.map((t) => {
      const x = m.get(t);
      return x ? show(x) : '—';
    });
  const row = (label: string, cells: string[]) => `| ${label} | ${cells.join(' | ')} |`;
  const pk = d.machine.cpu_peak;
  const dec = (p: string) => byThreads(d.decode, (e) => e.precision === p);
  const pre = (p: string, L: number) => byThreads(d.prefill, (e) => e.precision === p && e.prompt_tokens === L);
  const train = byThreads(d.train),
    s32 = byThreads(d.streams, (e) => e.streams === Math.max(...d.streams.map((x) => x.streams)));
  const longest = Math.max(...d.prefill.map((e) => e.prompt_tokens));
  const first = d.prefill.length > 0 ? Math.min(...d.prefill.map((e) => e.prompt_tokens)) : 0;
  const rows = [
    row(
      `read bandwidth, wasm, ${f(d.machine.bandwidth_bytes / 2 ** 30, 0)} GiB (GB/s)`,
      cell(byThreads(d.machine.by_threads), (p) => mm(p.bandwidth_gbs, p.bandwidth_gbs_min, p.bandwidth_gbs_max)),
    ),
    row(
      `frugal's GEMM peak, wasm SIMD matmul ${d.machine.gemm_shape}³ (GFLOP/s)`,
      cell(byThreads(d.machine.by_threads), (p) => mm(p.gemm_gflops, p.gemm_gflops_min, p.gemm_gflops_max)),
    ),
    row(
      'CPU theoretical peak, float32 (GFLOP/s)',
      threads.map((t) => f(Math.min(t, pk.cores) * pk.ghz * pk.flops_per_cycle, 0)),
    ),
    ...['f32', 'q8', 'q4'].map((p) =>
      row(
        `decode ${p} (tok/s; of the bandwidth bound)`,
        cell(dec(p), (e) => `${mm(e.tok_s, e.tok_s_min, e.tok_s_max)}; ${ceilingText(e.bound_fraction, e.interleaved)}`),
      ),
    ),
    ...['f32', 'q8', 'q4'].map((p) =>
      row(
        `prefill ${p}, ${first}-token prompt (tok/s)`,
        cell(pre(p, first), (e) => mm(e.tok_s, e.tok_s_min, e.tok_s_max)),
      ),
    ),
    row(
      `prefill f32, ${first}-token prompt, of frugal's GEMM peak`,
      cell(pre('f32', first), (e) => ceilingText(e.of_gemm_peak, e.interleaved)),
    ),
    row(
      `prefill f32, ${longest} tokens, over ${longest} single steps`,
      cell(pre('f32', longest), (e) => x2(e.over_steps)),
    ),
    row(
      `training ${d.train[0]?.model ?? ''}, batch ${d.train[0]?.batch ?? ''} × ${d.train[0]?.seq_len ?? ''} (tok/s)`,
      cell(train, (e) => mm(e.tok_s, e.tok_s_min, e.tok_s_max, 0)),
    ),
    row(
      'training MFU: 6·P FLOPs ÷ the CPU theoretical peak (with the scan)',
      cell(train, (e) => `${pct(e.mfu, 1)} (${pct(e.mfu_with_scan, 1)})`),
    ),
    row(
      "training FLOPs ÷ frugal's measured GEMM peak (with the scan)",
      cell(train, (e) => `${pct(e.of_gemm_peak)} (${pct(e.of_gemm_peak_with_scan)})`),
    ),
    row(
      `${Math.max(...d.streams.map((x) => x.streams))} batched streams, f32 (aggregate tok/s; × one stream; of the compute bound)`,
      cell(
        s32,
        (e) =>
          `${mm(e.aggregate_tok_s, e.aggregate_tok_s_min, e.aggregate_tok_s_max)}; ${x2(e.over_one)}; ${ceilingText(e.of_compute_bound, e.interleaved)}`,
      ),
    ),
  ];
  return [
    `| measure | ${threads.map((t) => `${t} thread${t > 1 ? 's' : ''}`).join(' | ')} |`,
    `|---|${threads.map(() => '---:').join('|')}|`,
    ...rows,
  ];
}

function peerRows(peers: PeerEntry[]): string[] {
  return [
    '| peer | measure | precision | threads | rounds | peer tok/s | frugal tok/s | frugal ÷ peer |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...peers.map(
      (e) =>
        `| ${e.name} | ${e.measure} | ${e.precision} | ${e.threads} | ${e.rounds} | ${mm(e.tok_s, e.tok_s_min, e.tok_s_max)} | ` +
        `${mm(e.frugal_tok_s, e.frugal_tok_s_min, e.frugal_tok_s_max)} | ${x2(e.ratio)} (${e.ratio_min.toFixed(2)}–${e.ratio_max.toFixed(2)}) |`,
    ),
  ];
}

/** One sentence per peer: the span of its median ratios, and for PyTorch's training both MFUs. */
function peerSentences(d: SpeedDoc): string[] {
  const out: string[] = [];
  for (const name of ['llama.cpp', 'pytorch'] as const) {
    const es = d.peers.filter((e) => e.name === name);
    if (es.length === 0) continue;
    const lo = es.reduce((a, b) => (b.ratio < a.ratio ? b : a)),
      hi = es.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    const where = (e: PeerEntry) => `${e.measure} ${e.precision}, ${e.threads} thread${e.threads > 1 ? 's' : ''}`;
    let s = `Against ${name === 'pytorch' ? 'PyTorch' : 'llama.cpp'}, frugal's median ratio runs from ${x2(lo.ratio)} (${where(lo)}) to ${x2(hi.ratio)} (${where(hi)})`;
    const tr = es.filter((e) => e.measure === 'train' && e.mfu !== undefined);
    for (const e of tr) {
      const mine = d.train.find((t) => t.threads === e.threads);
      if (mine)
        s += `; training on ${e.threads} thread${e.threads > 1 ? 's' : ''}, PyTorch reaches ${pct(e.mfu as number, 1)} MFU against frugal's ${pct(mine.mfu, 1)}`;
    }
    out.push(`${s}.`);
  }
  return out;
}

/**
 * When other processes held most of the CPUs, say what that does to the figures: threads that wait
 * by spinning (OpenMP in llama.cpp and PyTorch, frugal's pool for a while) lose their turn to the
 * other processes, so multi-thread figures, the peers' above all, measure the load as much as the
 * program.
 */
function loadNote(d: SpeedDoc): string[] {
  const busy = Math.max(d.machine.other_busy_before, d.machine.other_busy_during);
  if (!(busy > 0.25)) return [];
  return [
    '',
    `Other processes kept up to ${pct(busy)} of the CPUs busy around this run, so every figure is low and noisy, and the ` +
      'multi-thread ones most: threads that wait for each other by spinning (OpenMP in llama.cpp and PyTorch) lose their turns to ' +
      'the other processes, and their 2-thread figures drop far below their 1-thread ones. The 1-thread rows are the fairer comparison; ' +
      'the interleaved rounds give each side the same load, not a quiet machine.',
  ];
}

/** Whether any fraction of the document was measured in alternation with its ceiling. */
function interleavedAny(d: SpeedDoc): boolean {
  return [...d.decode, ...d.prefill, ...d.streams].some((e) => e.interleaved !== undefined);
}

/** The README's "Measured on this machine" block. */
export function readmeSpeedSection(d: SpeedDoc): string {
  const m = d.machine,
    pk = m.cpu_peak,
    threads = m.by_threads.map((p) => p.threads);
  const llama = d.peer_builds.llama_cpp,
    torch = d.peer_builds.pytorch;
  const lines = [
    `\`${d.command}\` (${f(d.seconds, 0)} s, ${d.mode} mode) on ${m.cpu} (${m.logical_cpus} logical CPUs; ${m.isa.join(', ')}), ` +
      `Node ${m.node}, V8 ${m.v8}; other processes kept ${pct(m.other_busy_before)} of the CPUs busy before the run and ${pct(m.other_busy_during)} during it. ` +
      `Random weights in the shapes of mamba-130m for decode and prefill. Every figure is the median timed call with (min–max); ` +
      (interleavedAny(d)
        ? 'fractions of a ceiling were measured again in rounds alternating with the ceiling (the decode against reads of as many bytes, ' +
          'the f32 prefill and the streams against the GEMM peak; the median of the rounds with their min–max), the others use the ceiling’s max. '
        : 'fractions of a ceiling use its max. ') +
      'Speeds are measured; no energy figure appears here.',
    '',
    ...speedRows(d, threads),
    '',
    `The CPU theoretical peak is ${pk.cores} cores × ${pk.ghz.toFixed(3)} GHz × ${pk.flops_per_cycle} float32 FLOP per cycle ` +
      `(${pk.fma_units} FMA units × ${pk.datapath_bits / 32} lanes × 2) = ${f(pk.gflops, 0)} GFLOP/s. Detected: ${pk.detected.join('; ')}. ` +
      `Assumed: ${pk.assumed.join('; ')}. MFU is measured against it; frugal's wasm kernels use 128-bit SIMD, so its own GEMM peak is a ` +
      `fraction of it, and the fraction of that GEMM peak is reported separately, under its own name.`,
    '',
    'Peers, measured in the same run in interleaved rounds (each round times frugal, then the peer, back to back, so both meet the same ' +
      "load from other processes; the ratio is the median of the rounds' ratios, with min–max):",
    '',
    ...peerRows(d.peers),
    '',
    ...peerSentences(d),
    ...loadNote(d),
  ];
  if (llama) {
    const flags = README_FLAGS.filter((k) => k in llama.cmake)
      .map((k) => `${k}=${llama.cmake[k]}`)
      .join(' ');
    lines.push(
      '',
      `llama.cpp: commit ${llama.commit} (build ${llama.build_number}), built from source on this machine (${flags}; ` +
        'every recorded CMake flag is in docs/bench.json); see docs/BENCHMARKS.md.',
    );
  }
  if (torch)
    lines.push(
      '',
      `PyTorch: ${torch.torch} from Debian (${torch.python}) with ${torch.blas} BLAS, running tools/bench_torch.py, frugal's own mamba.py-style script.`,
    );
  const skipped = d.skipped.filter((s) => s.section === 'peers');
  if (skipped.length > 0) lines.push('', `Not measured: ${skipped.map((s) => `${s.what} (${s.reason})`).join('; ')}.`);
  return lines.join('\n');
}

/** The README's scaling block: the table and the headline figures in words. */
export function readmeScalingSection(
  r: ScalingResult & { summary: ScalingSummary; command: string; machine: { cpu: string; logicalCpus: number; node: string } },
): string {
  const s = r.summary,
    mb = r.results.find((a) => a.arch === 'mamba'),
    tf = r.results.find((a) => a.arch === 'transformer');
  const min = Math.floor(r.seconds / 60),
    sec = Math.round(r.seconds - 60 * min);
  const lines = [
    `Made on this machine (${r.machine.cpu}, ${r.machine.logicalCpus} logical CPUs, Node ${r.machine.node}, ` +
      `${r.options.threads} thread${r.options.threads > 1 ? 's' : ''}) by \`npx ${r.command}\` in ${min} min ${sec} s.`,
    '',
    scalingTable(r),
    '',
  ];
  const pow2 = (n: number) => `2^${Math.round(Math.log2(n))}`;
  if (mb) {
    const dm = s.decodeMedians.mamba;
    lines.push(
      `- **Mamba is flat**: from ${pow2(mb.points[0].context)} to ${pow2(mb.points[mb.points.length - 1].context)} tokens of context its ` +
        `median decode time per token stays between ${dm.min.toFixed(2)} and ${dm.max.toFixed(2)} ms (max/min ${s.decodeFlatness.mamba.toFixed(2)}; ` +
        `${s.decodeCpuFlatness.mamba.toFixed(2)} in CPU time) and its state holds ${f(mb.points[0].stateBytes / 1024, 0)} KiB throughout (max/min ${s.stateFlatness.mamba.toFixed(2)}).`,
    );
  }
  if (tf) {
    lines.push(
      `- **The transformer grows with context**: ${f(s.decodeGrowth.transformer, 0)}× the median decode time and ${f(s.stateGrowth.transformer, 0)}× the memory ` +
        `from ${pow2(tf.points[0].context)} to ${pow2(tf.points[tf.points.length - 1].context)}.`,
    );
  }
  if (mb && tf && s.crossoverContext !== null) {
    const a = mb.points.find((p) => p.context === s.crossoverContext),
      b = tf.points.find((p) => p.context === s.crossoverContext);
    lines.push(
      `- **Crossover**: from ${pow2(s.crossoverContext)} tokens of context on, Mamba decodes faster per token at every context both measured ` +
        `(${a?.decodeMsPerToken.toFixed(2)} vs ${b?.decodeMsPerToken.toFixed(2)} ms there).`,
    );
  }
  if (s.jPerTokenRatio) {
    const parts = Object.entries(s.jPerTokenRatio).map(
      ([k, v]) =>
        `${f(v, 0)}× by ${k === 'cpu-time' ? 'the CPU-time estimate' : k === 'measured' ? 'measurement' : `the ${k.replace('analytic:', '')} analytic estimate`}`,
    );
    lines.push(
      `- **At ${pow2(s.ratioContext)} tokens** the transformer's J/token over Mamba's is ${parts.join(', ')} (the analytic ratios agree ` +
        'when the KV cache read per token dominates the work in every profile).',
    );
  }
  for (const a of r.results)
    lines.push(
      `- **Where ${a.arch === 'mamba' ? 'Mamba' : 'the transformer'} stopped**: ${a.stopped.reason === 'completed' ? 'it completed' : `after ${pow2(a.stopped.lastContext ?? 0)} tokens`}: ${a.stopped.detail}.`,
    );
  return lines.join('\n');
}

/** Replace the text between a pair of markers (both kept) with `body`; throws when a marker is missing. */
export function replaceBetween(text: string, markers: readonly [string, string], body: string): string {
  const a = text.indexOf(markers[0]),
    b = text.indexOf(markers[1]);
  if (a < 0 || b < a) throw new Error(`README: markers '${markers[0]}' … '${markers[1]}' not found`);
  return `${text.slice(0, a + markers[0].length)}\n${body}\n${text.slice(b)}`;
}

/** The text between a pair of markers, or null. */
export function between(text: string, markers: readonly [string, string]): string | null {
  const a = text.indexOf(markers[0]),
    b = text.indexOf(markers[1]);
  return a < 0 || b < a ? null : text.slice(a + markers[0].length, b).trim();
}
