import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENERGY_LOG_COLUMNS, appendEnergyLog, cpuTimeEstimate } from '../../src/energy/index.js';
import { FrugalError } from '../../src/io/errors.js';

function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '',
    q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

describe('--energy-log CSV', () => {
  it("appends rows under CodeCarbon's columns and units, plus joules, J/token, kind and method", () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-csv-'));
    try {
      const file = join(dir, 'emissions.csv');
      const r = cpuTimeEstimate(36, 72, 1800, { watts: 100, source: 'test, with a comma' }); // 3600 J = 0.001 kWh over 72 s
      appendEnergyLog(file, r, { command: 'train', tokens: 1800, seconds: 72 });
      appendEnergyLog(file, r, { command: 'generate', tokens: 1800, seconds: 72 });
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(3);
      const header = lines[0].split(',');
      expect(header.slice(0, 13)).toEqual([
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
      ]);
      expect(header).toEqual([...ENERGY_LOG_COLUMNS]);
      for (const k of ['joules', 'j_per_token', 'energy_kind', 'energy_method']) expect(header).toContain(k);
      const row = Object.fromEntries(parseCsvLine(lines[1]).map((v, i) => [header[i], v]));
      expect(parseCsvLine(lines[1])).toHaveLength(header.length);
      expect(Number(row.energy_consumed)).toBeCloseTo(0.001, 12); // kWh
      expect(Number(row.cpu_energy)).toBeCloseTo(0.001, 12);
      expect(Number(row.cpu_power)).toBeCloseTo(50, 9); // W = 3600 J / 72 s
      expect(Number(row.emissions)).toBeCloseTo(0.001 * 0.475, 12); // kg at 475 g/kWh
      expect(Number(row.duration)).toBe(72);
      expect(Number(row.joules)).toBe(3600);
      expect(Number(row.j_per_token)).toBe(2);
      expect(row).toMatchObject({
        project_name: 'frugal',
        energy_kind: 'estimated',
        energy_method: 'cpu-time',
        command: 'train',
        tracking_mode: 'process',
      });
      expect(parseCsvLine(lines[2])[header.indexOf('command')]).toBe('generate');
      expect(row.run_id).not.toBe(parseCsvLine(lines[2])[header.indexOf('run_id')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to append to a CSV with other columns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-csv-'));
    try {
      const file = join(dir, 'other.csv');
      writeFileSync(file, 'a,b,c\n1,2,3\n');
      const r = cpuTimeEstimate(1, 1, 1, { watts: 1, source: 's' });
      expect(() => appendEnergyLog(file, r, { command: 'x', tokens: 1, seconds: 1 })).toThrow(FrugalError);
      expect(readFileSync(file, 'utf8')).toBe('a,b,c\n1,2,3\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
