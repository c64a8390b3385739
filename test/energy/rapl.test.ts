import { describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { counterDelta, probeRapl, startRaplSampler } from '../../src/energy/index.js';
import { fakePowercap } from './fake-powercap.js';

/** The RAPL sampler against fake powercap trees: which zones count, wrap-around, unreadable and missing counters. */
describe('RAPL package counters', () => {
  it('reads only top-level package zones: never nested core/uncore/dram zones, psys or the mmio duplicate', () => {
    const f = fakePowercap([
      { zone: 'intel-rapl:0', name: 'package-0', energyUj: 1_000_000 },
      { zone: 'intel-rapl:0:0', name: 'core', energyUj: 500_000 },
      { zone: 'intel-rapl:0:1', name: 'dram', energyUj: 200_000 },
      { zone: 'intel-rapl:1', name: 'package-1', energyUj: 3_000_000 },
      { zone: 'intel-rapl:2', name: 'psys', energyUj: 9_000_000 },
      { zone: 'intel-rapl-mmio:0', name: 'package-0', energyUj: 1_000_000 },
    ]);
    try {
      const p = probeRapl(f.root);
      expect(p.problem).toBeNull();
      expect(p.domains.map((d) => `${d.zone}=${d.name}`)).toEqual(['intel-rapl:0=package-0', 'intel-rapl:1=package-1']);
      const r = startRaplSampler(p.domains);
      try {
        // every zone moves; only the two packages may be summed: 2 J + 0.5 J
        f.set('intel-rapl:0', 3_000_000);
        f.set('intel-rapl:1', 3_500_000);
        f.set('intel-rapl:0:0', 9_000_000);
        f.set('intel-rapl:2', 99_000_000);
        f.set('intel-rapl-mmio:0', 3_000_000);
        expect(r.joules()).toBeCloseTo(2.5, 12);
        expect(r.readings()).toBeGreaterThanOrEqual(1);
        expect(r.describe()).toMatch(/intel-rapl:0 \(package-0\) \+ intel-rapl:1 \(package-1\)/);
      } finally {
        r.close();
      }
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('handles a counter wrapping past max_energy_range_uj, across several readings', () => {
    expect(counterDelta(100, 350, 1000)).toBe(250);
    expect(counterDelta(900, 50, 1000)).toBe(150);
    const f = fakePowercap([{ zone: 'intel-rapl:0', name: 'package-0', energyUj: 999_000_000, maxUj: 1_000_000_000 }]);
    try {
      const r = startRaplSampler(probeRapl(f.root).domains);
      try {
        f.set('intel-rapl:0', 4_000_000); // wrapped: 1 J to the top + 4 J after
        expect(r.joules()).toBeCloseTo(5, 9); // joules() takes a fresh reading
        f.set('intel-rapl:0', 996_000_000); // 992 J more, no wrap
        expect(r.joules()).toBeCloseTo(5 + 992, 9);
        f.set('intel-rapl:0', 1_000_000); // wrapped again: 4 J + 1 J
        expect(r.joules()).toBeCloseTo(5 + 992 + 5, 9);
        expect(r.readings()).toBeGreaterThanOrEqual(3);
      } finally {
        r.close();
      }
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('says the counters need root when energy_uj cannot be read (permission denied)', () => {
    const f = fakePowercap([{ zone: 'intel-rapl:0', name: 'package-0', energyUj: 5 }]);
    try {
      const denied = (file: string): string => {
        if (file.endsWith('energy_uj')) throw Object.assign(new Error(`EACCES: permission denied, open '${file}'`), { code: 'EACCES' });
        return readFileSync(file, 'utf8').trim();
      };
      const p = probeRapl(f.root, denied);
      expect(p.domains).toEqual([]);
      expect(p.problem).toMatch(/need root/);
      expect(p.problem).toContain(join(f.root, 'intel-rapl:0', 'energy_uj'));
      expect(p.problem).toMatch(/chmod/);
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('reports missing interfaces and trees without package zones', () => {
    expect(probeRapl('/nonexistent/powercap').problem).toMatch(/no powercap interface/);
    const f = fakePowercap([
      { zone: 'intel-rapl:0:0', name: 'core', energyUj: 1 },
      { zone: 'intel-rapl:3', name: 'psys', energyUj: 1 },
    ]);
    try {
      const p = probeRapl(f.root);
      expect(p.domains).toEqual([]);
      expect(p.problem).toMatch(/no RAPL package domain/);
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('refuses a zone without max_energy_range_uj (wrap-around could not be handled)', () => {
    const f = fakePowercap([{ zone: 'intel-rapl:0', name: 'package-0', energyUj: 1 }]);
    try {
      rmSync(join(f.root, 'intel-rapl:0', 'max_energy_range_uj'));
      expect(probeRapl(f.root).problem).toMatch(/max_energy_range_uj/);
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });
});
