/**
 * Energy of a run, in joules, always labelled `measured` (hardware counters: RAPL, perf, NVML) or
 * `estimated` (CPU time × power per core, or the analytic per-operation model). The kinds are
 * never merged. See meter.ts (measurement), cpu.ts and analytic.ts (estimates), csv.ts (the log).
 */
export type { EnergyKind, EnergyReport } from './types.js';
export { formatJPerToken, formatJoules, makeReport } from './types.js';
export { MIN_READINGS, startEnergy } from './meter.js';
export type { EnergyOptions, EnergySession } from './meter.js';
export { DEFAULT_WATTS_PER_CORE, TDP_TABLE, cpuModel, cpuTimeEstimate, logicalCpus, wattsPerCore } from './cpu.js';
export type { CorePower } from './cpu.js';
export { DEFAULT_PROFILE, PROFILES, PROFILE_IDS, analyticEstimate, getProfile } from './analytic.js';
export type { HardwareProfile, WorkCount } from './analytic.js';
export { POWERCAP_ROOT, RAPL_INTERVAL_MS, counterDelta, probeRapl, startRaplSampler } from './rapl.js';
export type { RaplDomain } from './rapl.js';
export { integrateSmiSamples, parsePerfIntervals, perfSamples, probeNvidiaSmi, probePerf, smiSamples } from './samplers.js';
export type { Sampler, Samples } from './samplers.js';
export { ENERGY_LOG_COLUMNS, WORLD_CARBON_INTENSITY_G_PER_KWH, appendEnergyLog, energyLogRow } from './csv.js';
export type { RunInfo } from './csv.js';
