import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fake /sys/class/powercap: zone directories with name, energy_uj and max_energy_range_uj files. */
export interface FakeZone {
  zone: string;
  name: string;
  energyUj: number;
  maxUj?: number;
}

export function fakePowercap(zones: FakeZone[]): { root: string; set: (zone: string, energyUj: number) => void } {
  const root = mkdtempSync(join(tmpdir(), 'frugal-powercap-'));
  const set = (zone: string, energyUj: number) => writeFileSync(join(root, zone, 'energy_uj'), `${energyUj}\n`);
  for (const z of zones) {
    mkdirSync(join(root, z.zone));
    writeFileSync(join(root, z.zone, 'name'), `${z.name}\n`);
    writeFileSync(join(root, z.zone, 'max_energy_range_uj'), `${z.maxUj ?? 262143328850}\n`);
    set(z.zone, z.energyUj);
  }
  return { root, set };
}
