/** The speed benchmark's public face (`frugal bench`); src/bench/index.ts is the scaling study's. */
export { runSpeedBench } from './speed.js';
export type { SpeedOptions, SpeedResult } from './speed.js';
export { speedTable, speedTargets } from './speed-table.js';
export { speedPlan, PRECISIONS } from './speed-types.js';
export type {
  DecodeEntry, KernelEntry, MachineSection, PeerBuilds, PeerEntry, Precision, PrefillEntry, Skipped, SpeedDoc, SpeedMode, SpeedPlan, StreamsEntry, TrainEntry,
} from './speed-types.js';
export { cpuPeak, cpuPeakFrom, peakGflopsAt } from './cpu-peak.js';
export type { CpuPeak } from './cpu-peak.js';
export { bandwidthBound, boundFraction, flopsFraction, mambaScanFlopsPerToken, spread, trainFlopsPerToken } from './formulas.js';
export type { Spread } from './formulas.js';
