/**
 * The formulas behind `frugal bench`'s derived figures, kept apart so that tests check them on
 * hand-computed cases. Bytes per decoded token come from the model itself (models/quant.ts
 * weightBytes: every weight read once per token, the tied head counted once).
 */
import type { MambaConfig } from '../models/mamba/config.js';

/** Tokens per second the read bandwidth allows when every token reads `bytesPerToken` bytes. */
export function bandwidthBound(bandwidthGbs: number, bytesPerToken: number): number {
  return (bandwidthGbs * 1e9) / bytesPerToken;
}

/** Measured tok/s as a fraction of the bandwidth bound (1: the decode is limited by memory alone). */
export function boundFraction(tokS: number, bandwidthGbs: number, bytesPerToken: number): number {
  return tokS / bandwidthBound(bandwidthGbs, bytesPerToken);
}

/** The selective scan's FLOPs per token of one training step: 7 forward + 14 backward per (ED, N, layer); the backward's recomputation not counted. */
export function mambaScanFlopsPerToken(c: Pick<MambaConfig, 'dInner' | 'dState' | 'nLayer'>): number {
  return 21 * c.dInner * c.dState * c.nLayer;
}

/** Model FLOPs per trained token: 6 × parameters (forward 2, backward 4), plus `extra` (the scan). */
export function trainFlopsPerToken(parameters: number, extra = 0): number {
  return 6 * parameters + extra;
}

/**
 * Model FLOPs per prompt token of an L-token prefill: 2 per parameter outside the embedding table
 * and head (`tableParameters`, which a prefill does not multiply per token), plus the head's 2·V·D
 * once per prompt (it runs at the last position only).
 */
export function prefillFlopsPerToken(parameters: number, tableParameters: number, vocab: number, dModel: number, L: number): number {
  return 2 * (parameters - tableParameters) + (2 * vocab * dModel) / L;
}

/** Model FLOPs per second over a peak in GFLOP/s: the CPU's theoretical peak (MFU) or frugal's measured GEMM peak. */
export function flopsFraction(tokS: number, flopsPerToken: number, peakGflops: number): number {
  return (tokS * flopsPerToken) / (peakGflops * 1e9);
}

/** The median of some measurements, with their min and max: how every headline figure is reported. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y),
    m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function spread(xs: readonly number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/** `work` units per second of each timed call (`seconds` per call): median, min and max. */
export function rateSpread(work: number, seconds: readonly number[]): Spread {
  return spread(seconds.map((s) => work / s));
}
