import { existsSync, readFileSync } from 'node:fs';
import { arch, release, totalmem, type } from 'node:os';
import { randomUUID } from 'node:crypto';
import { writeFileAtomic } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { cpuModel, logicalCpus } from './cpu.js';
import type { EnergyReport } from './types.js';

/**
 * `--energy-log FILE`: one CSV row per run with CodeCarbon's emissions.csv columns, in CodeCarbon's
 * units (duration s; energies kWh; powers W; emissions kg CO2-eq; emissions_rate kg/s; RAM GB),
 * followed by frugal's own columns: the command, tokens, tokens/s, joules, J/token, and the
 * energy kind, method and scope. Fields frugal cannot know offline (location, cloud) are empty;
 * RAM energy is not modelled (0). Rows are appended by rewriting the file atomically.
 */
export const CODECARBON_COLUMNS = [
  'timestamp',
  'project_name',
  'run_id',
  'duration',
  'emissions',
  'emissions_rate',
  'cpu_power',
  'gpu_power',
  'ram_power',
  'cpu_energy',
  'gpu_energy',
  'ram_energy',
  'energy_consumed',
  'country_name',
  'country_iso_code',
  'region',
  'cloud_provider',
  'cloud_region',
  'os',
  'python_version',
  'codecarbon_version',
  'cpu_count',
  'cpu_model',
  'gpu_count',
  'gpu_model',
  'longitude',
  'latitude',
  'ram_total_size',
  'tracking_mode',
  'on_cloud',
  'pue',
] as const;

export const FRUGAL_COLUMNS = [
  'command',
  'tokens',
  'tokens_per_s',
  'joules',
  'j_per_token',
  'energy_kind',
  'energy_method',
  'energy_scope',
  'carbon_intensity_g_per_kwh',
] as const;

export const ENERGY_LOG_COLUMNS: readonly string[] = [...CODECARBON_COLUMNS, ...FRUGAL_COLUMNS];

/** World-average carbon intensity of electricity, 475 g CO2/kWh (IEA, Global Energy & CO2 Status Report 2019). */
export const WORLD_CARBON_INTENSITY_G_PER_KWH = 475;

const J_PER_KWH = 3.6e6;

function field(v: string | number): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface RunInfo {
  command: string;
  tokens: number;
  seconds: number;
  gpuCount?: number;
  gpuModel?: string;
}

/** The row's values, by column name (exposed for tests). */
export function energyLogRow(
  r: EnergyReport,
  run: RunInfo,
  when = new Date(),
  intensity = WORLD_CARBON_INTENSITY_G_PER_KWH,
): Record<string, string | number> {
  const kwh = r.joules / J_PER_KWH,
    seconds = Math.max(run.seconds, 1e-9);
  const emissions = (kwh * intensity) / 1000;
  return {
    timestamp: when.toISOString().slice(0, 19),
    project_name: 'frugal',
    run_id: randomUUID(),
    duration: run.seconds,
    emissions,
    emissions_rate: emissions / seconds,
    cpu_power: r.cpuJoules / seconds,
    gpu_power: r.gpuJoules / seconds,
    ram_power: 0,
    cpu_energy: r.cpuJoules / J_PER_KWH,
    gpu_energy: r.gpuJoules / J_PER_KWH,
    ram_energy: 0,
    energy_consumed: kwh,
    country_name: '',
    country_iso_code: '',
    region: '',
    cloud_provider: '',
    cloud_region: '',
    os: `${type()}-${release()}-${arch()}`,
    python_version: '',
    codecarbon_version: '',
    cpu_count: logicalCpus(),
    cpu_model: cpuModel(),
    gpu_count: run.gpuCount ?? 0,
    gpu_model: run.gpuModel ?? '',
    longitude: '',
    latitude: '',
    ram_total_size: totalmem() / 2 ** 30,
    tracking_mode: r.kind === 'measured' ? 'machine' : 'process',
    on_cloud: '',
    pue: 1.0,
    command: run.command,
    tokens: run.tokens,
    tokens_per_s: run.tokens / seconds,
    joules: r.joules,
    j_per_token: r.jPerToken,
    energy_kind: r.kind,
    energy_method: r.method,
    energy_scope: r.scope,
    carbon_intensity_g_per_kwh: intensity,
  };
}

/** Append one row for `r` to the CSV at `file` (created with a header when absent). */
export function appendEnergyLog(file: string, r: EnergyReport, run: RunInfo): void {
  const header = ENERGY_LOG_COLUMNS.join(',');
  let text = '';
  if (existsSync(file)) {
    text = readFileSync(file, 'utf8');
    const first = text.split(/\r?\n/, 1)[0];
    if (text.trim() !== '' && first !== header) {
      throw inputError(
        `--energy-log ${file} has other columns than frugal writes (its header is '${first.slice(0, 60)}…'); use a new file`,
      );
    }
    if (text !== '' && !text.endsWith('\n')) text += '\n';
  }
  if (text.trim() === '') text = header + '\n';
  const row = energyLogRow(r, run);
  writeFileAtomic(file, text + ENERGY_LOG_COLUMNS.map((c) => field(row[c])).join(',') + '\n');
}
