import { closeSync, openSync, readSync } from 'node:fs';
import { inputError } from '../io/errors.js';
import { checkOutputFile } from '../io/outputs.js';
import { ENERGY_LOG_COLUMNS, appendEnergyLog, startEnergy } from '../energy/index.js';
import type { EnergyReport, EnergySession } from '../energy/index.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** --energy-log FILE and --tdp W (train, generate, bench). */
export interface EnergyFlags {
  energyLog?: string;
  tdp?: number;
}

/**
 * Check --energy-log before any work (inputs: what the command reads) and return the flags with
 * its real path (a symbolic link is written through). An existing file must be frugal's CSV.
 */
export function checkEnergyLog(f: EnergyFlags, inputs: readonly (string | null | undefined)[]): EnergyFlags {
  if (!f.energyLog) return f;
  const path = checkOutputFile(f.energyLog, { flag: '--energy-log', inputs, append: true });
  let first = '';
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(8192);
      first = buf
        .subarray(0, readSync(fd, buf, 0, buf.length, 0))
        .toString('utf8')
        .split(/\r?\n/, 1)[0];
    } finally {
      closeSync(fd);
    }
  } catch {
    /* a new file */
  }
  const header = ENERGY_LOG_COLUMNS.join(',');
  if (first.trim() !== '' && first !== header) {
    throw inputError(
      `--energy-log ${f.energyLog} has other columns than frugal writes (its header is '${first.slice(0, 60)}…'); use a new file`,
    );
  }
  return { ...f, energyLog: path };
}

/** Start the energy meter, telling the user about counters that exist but cannot be read. */
export function meterFor(f: EnergyFlags): EnergySession {
  const m = startEnergy({ tdp: f.tdp });
  for (const n of m.notes) err(`energy: ${n}; figures are estimates`);
  return m;
}

/** Append the run's row to --energy-log when given. */
export function logEnergy(f: EnergyFlags, r: EnergyReport, command: string, tokens: number, seconds: number): void {
  if (f.energyLog) appendEnergyLog(f.energyLog, r, { command, tokens, seconds });
}
