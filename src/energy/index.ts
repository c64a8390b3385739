import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/**
 * Energy of a run. Measured where Linux exposes RAPL package counters that this process can read;
 * otherwise estimated as CPU time × per-core power (TDP ÷ cores), and labelled so. The two kinds
 * are never merged.
 */
export type EnergyKind = 'measured' | 'estimated';
export interface EnergyReport { joules: number; kind: EnergyKind; method: string }

/** Default per-core power when the CPU is not in the table: 10 W (a mid-range desktop/server core). */
export const DEFAULT_WATTS_PER_CORE = 10;

// TDP (W) and cores of a few common CPUs, by model-name substring (vendor specifications).
const TDP_TABLE: [RegExp, number, number][] = [
  [/EPYC 7B13/, 240, 64], [/EPYC 7763/, 280, 64], [/EPYC 7R13/, 280, 64], [/EPYC 9B14/, 360, 96],
  [/Xeon.*8375C/, 300, 32], [/Xeon.*8488C/, 350, 48], [/Apple M1/, 20, 8], [/Apple M2/, 22, 8],
];

function cpuModel(): string { return cpus()[0]?.model ?? 'unknown'; }

/** Watts per busy core for the CPU estimate, and where the figure came from. */
export function wattsPerCore(): { watts: number; source: string } {
  const model = cpuModel();
  for (const [re, tdp, cores] of TDP_TABLE) if (re.test(model)) return { watts: tdp / cores, source: `${model}: TDP ${tdp} W / ${cores} cores` };
  return { watts: DEFAULT_WATTS_PER_CORE, source: `default ${DEFAULT_WATTS_PER_CORE} W per core (${model} not in the table)` };
}

const RAPL = '/sys/class/powercap/intel-rapl:0';
function readRapl(): number | null {
  try {
    if (!existsSync(`${RAPL}/energy_uj`)) return null;
    return Number(readFileSync(`${RAPL}/energy_uj`, 'utf8'));
  } catch { return null; }
}

/** Start measuring; `stop()` returns the energy since start. */
export function startEnergy(): { stop: () => EnergyReport } {
  const cpu0 = process.cpuUsage();
  const rapl0 = readRapl();
  return {
    stop(): EnergyReport {
      const rapl1 = readRapl();
      if (rapl0 !== null && rapl1 !== null && rapl1 >= rapl0) {
        return { joules: (rapl1 - rapl0) / 1e6, kind: 'measured', method: 'RAPL package-0 energy_uj (whole package, not only this process)' };
      }
      const d = process.cpuUsage(cpu0);
      const seconds = (d.user + d.system) / 1e6;
      const w = wattsPerCore();
      return { joules: seconds * w.watts, kind: 'estimated', method: `CPU time ${seconds.toFixed(2)} s × ${w.watts.toFixed(2)} W/core (${w.source})` };
    },
  };
}

/** "X J/token (estimated)" for the closing summary line. */
export function formatJPerToken(r: EnergyReport, tokens: number): string {
  const j = tokens > 0 ? r.joules / tokens : NaN;
  return `${j < 0.01 ? j.toExponential(2) : j.toFixed(3)} J/token (${r.kind})`;
}
