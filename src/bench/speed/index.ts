/** The speed benchmark's entry (`frugal bench`); src/bench/scaling/index.ts is the scaling study's. */
export { runSpeedBench } from './run.js';
export type { SpeedOptions, SpeedResult } from './run.js';
export { speedTable, speedTargets } from './table.js';
export { speedPlan, PRECISIONS } from './types.js';
export type {
  DecodeEntry,
  KernelEntry,
  MachineSection,
  PeerBuilds,
  PeerEntry,
  Precision,
  PrefillEntry,
  Skipped,
  SpeedDoc,
  SpeedMode,
  SpeedPlan,
  StreamsEntry,
  TrainEntry,
} from './types.js';
export { cpuPeak, cpuPeakFrom, peakGflopsAt } from './cpu-peak.js';
export type { CpuPeak } from './cpu-peak.js';
export { bandwidthBound, boundFraction, flopsFraction, mambaScanFlopsPerToken, spread, trainFlopsPerToken } from '../formulas.js';
export type { Spread } from '../formulas.js';
