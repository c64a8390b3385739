/** The speed benchmark's entry (`frugal bench`); src/bench/scaling/index.ts is the scaling study's. */
export { runSpeedBench } from './run.js';
export type { SpeedOptions, SpeedResult } from './run.js';
export { speedTable, speedTargets } from './table.js';
export { speedPlan, PRECISIONS } from './types.js';
export type {
  DecodeEntry,
  KernelEntry,
  MachineSection,
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
