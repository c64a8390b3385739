/**
 * The arithmetic of `frugal bench serve`: latency percentiles of streamed tokens, the aggregate
 * rate while every stream is decoding, and the verdicts against the server's targets.
 */
import { percentile } from '../../streams/metrics.js';

/** p50 / p99 (linear interpolation between order statistics), mean and max of some milliseconds. */
export interface Latency {
  n: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  max_ms: number;
}

export function latency(ms: readonly number[]): Latency {
  if (ms.length === 0) return { n: 0, p50_ms: Number.NaN, p99_ms: Number.NaN, mean_ms: Number.NaN, max_ms: Number.NaN };
  let sum = 0,
    max = -Infinity;
  for (const x of ms) {
    sum += x;
    max = Math.max(max, x);
  }
  return { n: ms.length, p50_ms: percentile(ms, 50), p99_ms: percentile(ms, 99), mean_ms: sum / ms.length, max_ms: max };
}

/** What the rate needs of a stream: when it was sent, when each token arrived, how many tokens it made. */
export interface TimedStream {
  start: number;
  tokenTimes: readonly number[];
  tokens: number;
}

/** Time to first token of each stream that produced one (ms). */
export function firstTokenTimes(streams: readonly TimedStream[]): number[] {
  return streams.filter((s) => s.tokenTimes.length > 0).map((s) => s.tokenTimes[0] - s.start);
}

/** The gaps between consecutive tokens of every stream, pooled (ms). */
export function interTokenGaps(streams: readonly TimedStream[]): number[] {
  const gaps: number[] = [];
  for (const s of streams) for (let i = 1; i < s.tokenTimes.length; i++) gaps.push(s.tokenTimes[i] - s.tokenTimes[i - 1]);
  return gaps;
}

export interface Rate {
  tokens_per_s: number;
  /** Seconds the rate is measured over. */
  window_s: number;
  /** 'all streams decoding': from the last first token to the first last token; 'end to end' when that window is empty. */
  method: 'all streams decoding' | 'end to end';
}

/**
 * Aggregate tokens/s of streams run together. The steady rate counts the tokens that arrived
 * while every stream was past its prefill and none had finished (what a batched decode step
 * sees); a chunk that carries several tokens counts as tokens/chunks of its stream.
 */
export function aggregateRate(streams: readonly TimedStream[]): Rate {
  const live = streams.filter((s) => s.tokenTimes.length > 0);
  if (live.length === 0) return { tokens_per_s: 0, window_s: 0, method: 'end to end' };
  const from = Math.max(...live.map((s) => s.tokenTimes[0]));
  const to = Math.min(...live.map((s) => s.tokenTimes[s.tokenTimes.length - 1]));
  let tokens = 0,
    events = 0;
  for (const s of live) {
    const inWindow = s.tokenTimes.filter((t) => t > from && t <= to).length;
    events += inWindow;
    tokens += (inWindow * s.tokens) / s.tokenTimes.length;
  }
  // a window must hold at least one step of every stream to say anything about the batched rate
  if (to > from && events >= live.length)
    return { tokens_per_s: (tokens * 1000) / (to - from), window_s: (to - from) / 1000, method: 'all streams decoding' };
  const start = Math.min(...live.map((s) => s.start));
  const end = Math.max(...live.map((s) => s.tokenTimes[s.tokenTimes.length - 1]));
  const all = live.reduce((a, s) => a + s.tokens, 0);
  return { tokens_per_s: (all * 1000) / Math.max(end - start, 1e-9), window_s: (end - start) / 1000, method: 'end to end' };
}

/** A measured figure against its target. */
export interface Verdict {
  name: string;
  value: number;
  target: string;
  met: boolean;
}

/** The server's aggregate tokens/s at 64 streams over the in-process batched decode of the same model: ≥ 0.90. */
export const THROUGHPUT_TARGET = 0.9;

export function throughputVerdict(serverTokS: number, referenceTokS: number): Verdict {
  const ratio = serverTokS / referenceTokS;
  return {
    name: 'aggregate tok/s at 64 streams / in-process batched decode',
    value: ratio,
    target: `≥ ${THROUGHPUT_TARGET.toFixed(2)}`,
    met: ratio >= THROUGHPUT_TARGET,
  };
}

/** Continuing from the snapshot must reach its first token sooner than re-processing the whole history. */
export function continuationVerdict(continuedMs: number, reprocessedMs: number): Verdict {
  const speedup = reprocessedMs / continuedMs;
  return { name: 'first token: re-processing the history / continuing from its snapshot', value: speedup, target: '> 1', met: speedup > 1 };
}

/** One line per verdict for stderr. */
export function verdictLine(v: Verdict): string {
  const value = Number.isFinite(v.value) ? v.value.toFixed(v.value >= 10 ? 0 : 2) : String(v.value);
  return `${v.name}: ${value} (target ${v.target}) ${v.met ? 'met' : 'MISSED'}`;
}
