import { cpus } from 'node:os';
import { inputError } from '../io/errors.js';
import { makeReport } from './types.js';
import type { EnergyReport } from './types.js';

/**
 * The CPU-time estimate: joules = CPU seconds of this process × power per busy core, with the power
 * per core taken as the package TDP divided by its cores. TDP is the sustained power the package
 * is designed for, so a busy core is charged its share of the whole package (uncore and memory
 * controller included); an idle core is charged nothing.
 */

/** Per-core power when the CPU is in no table and no --tdp is given: 10 W (e.g. 125 W ÷ 12 cores of a desktop part). */
export const DEFAULT_WATTS_PER_CORE = 10;

/** TDP (W) and physical cores of common CPUs, by model-name pattern (vendor specification sheets). */
export const TDP_TABLE: readonly { pattern: RegExp; tdp: number; cores: number }[] = [
  { pattern: /EPYC 7763\b/, tdp: 280, cores: 64 },
  { pattern: /EPYC 7742\b/, tdp: 225, cores: 64 },
  { pattern: /EPYC 7B13\b/, tdp: 240, cores: 64 },
  { pattern: /EPYC 7R13\b/, tdp: 280, cores: 64 },
  { pattern: /EPYC 9654\b/, tdp: 360, cores: 96 },
  { pattern: /EPYC 9B14\b/, tdp: 360, cores: 96 },
  { pattern: /Xeon.*8375C\b/, tdp: 300, cores: 32 },
  { pattern: /Xeon.*8380\b/, tdp: 270, cores: 40 },
  { pattern: /Xeon.*8480\+?/, tdp: 350, cores: 56 },
  { pattern: /Xeon.*8488C\b/, tdp: 350, cores: 48 },
  { pattern: /Xeon.*6248R\b/, tdp: 205, cores: 24 },
  { pattern: /Ryzen 9 7950X\b/, tdp: 170, cores: 16 },
  { pattern: /Ryzen 7 5800X\b/, tdp: 105, cores: 8 },
  { pattern: /i9-13900K\b/, tdp: 125, cores: 24 },
  { pattern: /i7-12700K\b/, tdp: 125, cores: 12 },
  { pattern: /Apple M1\b/, tdp: 20, cores: 8 },
  { pattern: /Apple M2\b/, tdp: 22, cores: 8 },
];

export function cpuModel(): string {
  return cpus()[0]?.model?.trim() || 'unknown CPU';
}
export function logicalCpus(): number {
  return Math.max(1, cpus().length);
}

export interface CorePower {
  watts: number;
  source: string;
}

/**
 * Watts per busy core for `model`, and where the figure came from. `tdp` (the --tdp flag) overrides
 * the table's TDP; it is divided by the table's cores when the model is known, otherwise by the
 * logical CPUs this machine shows.
 */
export function wattsPerCore(model = cpuModel(), tdp?: number, cores = logicalCpus()): CorePower {
  if (tdp !== undefined && !(Number.isFinite(tdp) && tdp > 0)) throw inputError(`--tdp must be a positive number of watts, got ${tdp}`);
  const known = TDP_TABLE.find((r) => r.pattern.test(model));
  if (tdp !== undefined) {
    const n = known?.cores ?? cores;
    return { watts: tdp / n, source: `--tdp ${tdp} W / ${n} ${known ? 'cores' : 'logical CPUs'} (${model})` };
  }
  if (known) return { watts: known.tdp / known.cores, source: `${model}: TDP ${known.tdp} W / ${known.cores} cores` };
  return {
    watts: DEFAULT_WATTS_PER_CORE,
    source: `default ${DEFAULT_WATTS_PER_CORE} W per core (${model} is not in the TDP table; pass --tdp W)`,
  };
}

/** The CPU-time estimate for `cpuSeconds` of this process's CPU time over `seconds` of wall time. */
export function cpuTimeEstimate(cpuSeconds: number, seconds: number, tokens: number, power: CorePower): EnergyReport {
  const joules = cpuSeconds * power.watts;
  return makeReport({
    joules,
    tokens,
    kind: 'estimated',
    method: 'cpu-time',
    scope: "this process's CPU time (user + system, all threads); idle cores and other processes excluded",
    detail: `CPU time ${cpuSeconds.toFixed(3)} s × ${power.watts.toFixed(2)} W/core (${power.source})`,
    seconds,
    cpuJoules: joules,
    gpuJoules: 0,
  });
}
