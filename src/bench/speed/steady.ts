/**
 * Steady measurement for `frugal bench`: on a shared machine one figure can swing 3× between runs,
 * so every figure is reported as a median with its min and max, and the run flags what it should
 * not be trusted for instead of quoting it: a spread over 10%, a figure above a physical bound
 * (decode faster than the read bandwidth allows, f32 FLOP rates above the measured GEMM peak), machine
 * ceilings that moved between the start and the end of the run, a peer comparison with fewer than
 * MIN_ROUNDS alternations, and a peer that got slower with more threads (its ratio is then no
 * win). Peak resident memory is read per figure. The flagging is pure (tested on synthetic docs).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Interleaved, MachinePoint, PeerEntry, SpeedDoc } from './types.js';
import { spread } from '../formulas.js';
import type { Spread } from '../formulas.js';

/** Alternations (frugal, peer) a comparison needs before its ratio counts as steady. */
export const MIN_ROUNDS = 5;
/** (max − min) ÷ median above which a figure is flagged as unsteady. */
export const MAX_SPREAD = 0.1;

export type FlagKind = 'spread' | 'bound' | 'ceiling-drift' | 'rounds' | 'peer-anomaly';

export interface Flag {
  kind: FlagKind;
  /** The figure, as the table names it ('decode q8 2 threads', 'llama.cpp decode f32 2 threads'). */
  figure: string;
  detail: string;
}

/**
 * A figure as a fraction of a machine ceiling measured in alternation with it: ceiling, figure,
 * ceiling, figure, …, ceiling (`ceilings` has one more entry than `figures`). Round i's fraction is
 * figures[i] over the higher of the two ceilings around it (the best the machine did right then),
 * so load that comes and goes during the run moves the figure and its bound together instead of
 * showing up as a fraction above 1. The median, min and max of the rounds' fractions.
 */
export function interleavedFraction(figures: readonly number[], ceilings: readonly number[]): Spread & { rounds: number } {
  if (figures.length === 0 || ceilings.length !== figures.length + 1)
    throw new Error(
      `interleavedFraction: ${figures.length} figures need ${figures.length + 1} ceilings around them, got ${ceilings.length}`,
    );
  return { ...spread(figures.map((f, i) => f / Math.max(ceilings[i], ceilings[i + 1]))), rounds: figures.length };
}

/** Run `rounds` alternations ceiling, figure, …, ceiling (each call returns its rate) and return interleavedFraction of them. */
export function runInterleaved(rounds: number, figure: () => number, ceiling: () => number): Spread & { rounds: number } {
  const figures: number[] = [],
    ceilings = [ceiling()];
  for (let i = 0; i < rounds; i++) {
    figures.push(figure());
    ceilings.push(ceiling());
  }
  return interleavedFraction(figures, ceilings);
}

/** (max − min) ÷ median; 0 for a single sample. */
export function relativeSpread(median: number, min: number, max: number): number {
  return median > 0 ? (max - min) / median : 0;
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const plural = (T: number) => `${T} thread${T > 1 ? 's' : ''}`;

function spreadFlag(out: Flag[], figure: string, median: number, min: number, max: number): void {
  const s = relativeSpread(median, min, max);
  if (s > MAX_SPREAD) out.push({ kind: 'spread', figure, detail: `min–max spread ${pct(s)} of the median (over ${pct(MAX_SPREAD)})` });
}

function boundFlag(out: Flag[], figure: string, fraction: number | undefined, bound: string): void {
  if (fraction !== undefined && fraction > 1)
    out.push({
      kind: 'bound',
      figure,
      detail: `${pct(fraction)} of ${bound}: above a physical bound, so the bound or the figure is mismeasured`,
    });
}

/** The machine ceilings at the start and the end of the run: a move over MAX_SPREAD, or a GEMM peak lower at more threads. */
export function ceilingFlags(before: readonly MachinePoint[], after: readonly MachinePoint[]): Flag[] {
  const out: Flag[] = [];
  for (const b of before) {
    const a = after.find((x) => x.threads === b.threads);
    if (!a) continue;
    for (const [what, x, y] of [
      ['read bandwidth', b.bandwidth_gbs, a.bandwidth_gbs],
      ['GEMM peak', b.gemm_gflops, a.gemm_gflops],
    ] as const) {
      const d = Math.abs(y - x) / Math.max(x, y);
      if (d > MAX_SPREAD)
        out.push({
          kind: 'ceiling-drift',
          figure: what === 'GEMM peak' ? figure.gemm(b.threads) : figure.bandwidth(b.threads),
          detail: `${x.toFixed(1)} at the start, ${y.toFixed(1)} at the end (${pct(d)} apart): the load changed during the run`,
        });
    }
  }
  const sorted = [...before].sort((x, y) => x.threads - y.threads);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i].gemm_gflops_max < sorted[i - 1].gemm_gflops_max)
      out.push({
        kind: 'ceiling-drift',
        figure: figure.gemm(sorted[i].threads),
        detail: `below the ${plural(sorted[i - 1].threads)} peak (${sorted[i].gemm_gflops_max.toFixed(1)} < ${sorted[i - 1].gemm_gflops_max.toFixed(1)} GFLOP/s): the other cores were busy`,
      });
  return out;
}

/** A peer slower at more threads than at fewer (same measure and precision): its higher-thread ratios are no win. */
export function peerAnomalies(peers: readonly PeerEntry[]): Flag[] {
  const out: Flag[] = [];
  for (const p of peers) {
    const fewer = peers.filter(
      (q) => q.name === p.name && q.measure === p.measure && q.precision === p.precision && q.threads < p.threads && q.tok_s > p.tok_s,
    );
    for (const q of fewer)
      out.push({
        kind: 'peer-anomaly',
        figure: peerFigure(p),
        detail: `${p.name} ran ${p.tok_s.toFixed(1)} tok/s at ${plural(p.threads)} but ${q.tok_s.toFixed(1)} at ${plural(q.threads)}: its ratio here is not quoted as a win`,
      });
  }
  return out;
}

/** The names flags give figures (targets look their figures up by them). */
export const figure = {
  peer: (p: Pick<PeerEntry, 'name' | 'measure' | 'precision' | 'threads'>) => `${p.name} ${p.measure} ${p.precision} ${plural(p.threads)}`,
  decode: (e: { precision: string; threads: number }) => `decode ${e.precision} ${plural(e.threads)}`,
  prefill: (e: { precision: string; threads: number; prompt_tokens: number }) =>
    `prefill ${e.precision} ${e.prompt_tokens} tokens ${plural(e.threads)}`,
  streams: (e: { streams: number; threads: number }) => `${e.streams} streams ${plural(e.threads)}`,
  train: (e: { threads: number }) => `train ${plural(e.threads)}`,
  bandwidth: (T: number) => `read bandwidth ${plural(T)}`,
  /** A figure's fraction of the ceiling measured in alternation with it (an entry's `interleaved`). */
  ofCeiling: (f: string) => `${f} (of its ceiling)`,
  gemm: (T: number) => `GEMM peak ${plural(T)}`,
};
export const peerFigure = figure.peer;

/** The kinds of the flags on any of `figures` (a peer's ratio counts as the peer's figure), joined; '' when none. */
export function flagsOn(flags: readonly Flag[], figures: readonly string[]): string {
  const kinds = flags.filter((f) => figures.some((g) => f.figure === g || f.figure === `${g} (ratio)`)).map((f) => f.kind);
  return [...new Set(kinds)].join(', ');
}

/** Every flag of a finished document (`after`: the ceilings measured again at its end, if they were). */
export function steadyFlags(d: SpeedDoc): Flag[] {
  const out: Flag[] = [];
  for (const p of d.machine.by_threads) {
    spreadFlag(out, figure.bandwidth(p.threads), p.bandwidth_gbs, p.bandwidth_gbs_min, p.bandwidth_gbs_max);
    spreadFlag(out, figure.gemm(p.threads), p.gemm_gflops, p.gemm_gflops_min, p.gemm_gflops_max);
  }
  out.push(...ceilingFlags(d.machine.by_threads, d.machine.after ?? []));
  const gemm = "frugal's measured GEMM peak";
  /** A figure's spread, and each fraction of a bound it reports. */
  const check = (f: string, median: number, min: number, max: number, bounds: [number | undefined, string][]) => {
    spreadFlag(out, f, median, min, max);
    for (const [x, what] of bounds) boundFlag(out, f, x, what);
  };
  /** The fraction of a ceiling: on the figure itself, or, measured in alternation, on its own rounds (their spread too). */
  const fraction = (f: string, x: number | undefined, what: string, il: Interleaved | undefined) => {
    if (!il) return boundFlag(out, f, x, what);
    spreadFlag(out, figure.ofCeiling(f), il.median, il.min, il.max);
    boundFlag(out, figure.ofCeiling(f), x, what);
  };
  for (const e of d.decode) {
    check(figure.decode(e), e.tok_s, e.tok_s_min, e.tok_s_max, []);
    fraction(figure.decode(e), e.bound_fraction, 'the read-bandwidth bound', e.interleaved);
  }
  // frugal's f32 GEMM peak bounds an f32 prefill only: the q8/q4 products run on 16-bit integer
  // dots (pmaddwd: twice the lanes of an f32 multiply-add), so theirs may pass it
  for (const e of d.prefill) {
    check(figure.prefill(e), e.tok_s, e.tok_s_min, e.tok_s_max, []);
    if (e.precision === 'f32') fraction(figure.prefill(e), e.of_gemm_peak, gemm, e.interleaved);
  }
  for (const e of d.streams) {
    check(figure.streams(e), e.aggregate_tok_s, e.aggregate_tok_s_min, e.aggregate_tok_s_max, []);
    fraction(figure.streams(e), e.of_compute_bound, 'the compute bound', e.interleaved);
  }
  for (const e of d.train)
    check(figure.train(e), e.tok_s, e.tok_s_min, e.tok_s_max, [
      [e.of_gemm_peak, gemm],
      [e.mfu, "the CPU's theoretical peak"],
    ]);
  for (const p of d.peers) {
    const f = peerFigure(p);
    spreadFlag(out, `${f} (ratio)`, p.ratio, p.ratio_min, p.ratio_max);
    if (p.rounds < MIN_ROUNDS) out.push({ kind: 'rounds', figure: f, detail: `${p.rounds} alternations (fewer than ${MIN_ROUNDS})` });
  }
  out.push(...peerAnomalies(d.peers));
  out.push(...slowPeerBuilds(d));
  return out;
}

/**
 * A peer built in a way that makes it slow for no reason of its own: PyTorch on the reference BLAS
 * (what Debian's python3-torch links to when no optimised BLAS is installed, about 25× slower than
 * OpenBLAS). Its ratios are then no win.
 */
export function slowPeerBuilds(d: Pick<SpeedDoc, 'peers' | 'peer_builds'>): Flag[] {
  if (d.peer_builds.pytorch?.blas !== 'reference (netlib)') return [];
  return d.peers
    .filter((p) => p.name === 'pytorch')
    .map((p) => ({
      kind: 'peer-anomaly' as const,
      figure: peerFigure(p),
      detail:
        'PyTorch ran on the reference BLAS (netlib, about 25× slower than OpenBLAS): its ratio is no win; ' +
        'install an optimised one (Debian: apt-get install libopenblas0-openmp)',
    }));
}

// ---------------------------------------------------------------- peak resident memory

/** How peak RSS is read: per figure (Linux: VmHWM, reset through /proc/self/clear_refs) or the process's high-water mark. */
export type RssMethod = 'per-figure' | 'process-peak';

/** Reset the peak-RSS counter (Linux); false where that is not possible (then peaks are the process's so far). */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak resident bytes since the last reset (VmHWM), or the process's lifetime peak where /proc is missing. */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // no /proc: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Run `fn` and return its value with the peak resident bytes while it ran. */
export function withPeakRss<T>(fn: () => T): { value: T; peakRss: number } {
  resetPeakRss();
  const value = fn();
  return { value, peakRss: peakRssBytes() };
}
