import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnergy } from '../../src/energy/index.js';
import { fakePowercap } from './fake-powercap.js';

/**
 * The meter's bookkeeping with fake counters and a fake clock: measured when counters exist, the
 * idle baseline of equal length subtracted, warm-up excluded, estimates otherwise; and NVML
 * through a stand-in nvidia-smi that prints what a real one printed on an H200.
 */
describe('energy meter', () => {
  it('measures RAPL package energy, excludes warm-up and subtracts an idle baseline of equal length', () => {
    const f = fakePowercap([
      { zone: 'intel-rapl:0', name: 'package-0', energyUj: 0 },
      { zone: 'intel-rapl:1', name: 'package-1', energyUj: 0 },
    ]);
    try {
      let clock = 0,
        e0 = 0,
        e1 = 0;
      const advance = (ms: number, watts0: number, watts1: number) => {
        clock += ms;
        e0 += watts0 * ms * 1000;
        e1 += watts1 * ms * 1000; // µJ = W × ms × 1000
        f.set('intel-rapl:0', e0);
        f.set('intel-rapl:1', e1);
      };
      const sleeps: number[] = [];
      const m = startEnergy({
        powercapRoot: f.root,
        perf: null,
        nvidiaSmi: null,
        now: () => clock,
        cpuSeconds: () => 0,
        sleep: (ms) => {
          sleeps.push(ms);
          advance(ms, 6, 4);
        },
      }); // idle: 10 W in all
      expect(m.sources).toEqual(['rapl']);
      advance(1000, 80, 20); // warm-up: excluded
      m.markWarm();
      advance(4000, 50, 30); // the run: 80 W for 4 s = 320 J
      const r = m.stop(100);
      expect(sleeps).toEqual([4000]); // idle window of equal length
      expect(r.kind).toBe('measured');
      expect(r.method).toBe('rapl');
      expect(r.seconds).toBeCloseTo(4, 9);
      expect(r.joules).toBeCloseTo(320 - 40, 6); // minus 10 W idle × 4 s
      expect(r.jPerToken).toBeCloseTo(2.8, 9);
      expect(r.cpuJoules).toBeCloseTo(280, 6);
      expect(r.gpuJoules).toBe(0);
      expect(r.scope).toMatch(/intel-rapl:0 \(package-0\) \+ intel-rapl:1 \(package-1\).*idle baseline 10\.00 W/);
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('caps the idle window and scales it to the run length', () => {
    const f = fakePowercap([{ zone: 'intel-rapl:0', name: 'package-0', energyUj: 0 }]);
    try {
      let clock = 0,
        e = 0;
      const m = startEnergy({
        powercapRoot: f.root,
        perf: null,
        nvidiaSmi: null,
        now: () => clock,
        maxIdleSeconds: 2,
        sleep: (ms) => {
          clock += ms;
          e += 5 * ms * 1000;
          f.set('intel-rapl:0', e);
        },
      });
      clock += 100_000;
      e += 100 * 100_000 * 1000;
      f.set('intel-rapl:0', e); // 100 s at 100 W
      const r = m.stop(1000);
      expect(r.joules).toBeCloseTo(10_000 - 500, 3); // idle 5 W measured over 2 s, × 100 s
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('estimates from CPU time when there are no counters, and says so', () => {
    let cpu = 10;
    const m = startEnergy({
      powercapRoot: '/nonexistent',
      perf: null,
      nvidiaSmi: null,
      cpuSeconds: () => cpu,
      cpuModel: 'AMD EPYC 7763 64-Core Processor',
    });
    expect(m.sources).toEqual([]);
    cpu += 3.2;
    const r = m.stop(64);
    expect(r.kind).toBe('estimated');
    expect(r.method).toBe('cpu-time');
    expect(r.joules).toBeCloseTo((3.2 * 280) / 64, 9);
    expect(r.jPerToken).toBeCloseTo((3.2 * 280) / 64 / 64, 9);
    expect(r.detail).toMatch(/TDP 280 W \/ 64 cores/);
    expect(() => m.stop(1)).toThrow(/twice/);
  });

  it('tells the user that RAPL needs root when the counters exist but are unreadable, and estimates instead', () => {
    expect(startEnergy({ powercapRoot: '/nonexistent', perf: null, nvidiaSmi: null }).notes).toEqual([]); // no interface: nothing to do
    const f = fakePowercap([{ zone: 'intel-rapl:0', name: 'package-0', energyUj: 5 }]);
    try {
      const readCounter = (file: string): string => {
        if (file.endsWith('energy_uj')) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
        return readFileSync(file, 'utf8').trim();
      };
      const m = startEnergy({ powercapRoot: f.root, perf: null, nvidiaSmi: null, readCounter });
      expect(m.sources).toEqual([]);
      expect(m.notes).toHaveLength(1);
      expect(m.notes[0]).toMatch(/RAPL energy counters need root/);
      expect(m.stop(1).kind).toBe('estimated');
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('integrates NVIDIA board power sampled by nvidia-smi into measured GPU joules', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-smi-'));
    const bin = join(dir, 'nvidia-smi');
    // the stand-in answers the probe at once, and in -lms mode waits, then prints 1 s of samples at 100 W
    const samples = Array.from(
      { length: 11 },
      (_, i) => `2026/11/29 18:56:0${4 + Math.floor(i / 10)}.${String((i % 10) * 100).padStart(3, '0')}, 0, 100.00`,
    );
    writeFileSync(
      bin,
      `#!/bin/sh
case "$*" in
  *-lms*) sleep 0.3; printf '%s\\n' ${samples.map((s) => `'${s}'`).join(' ')}; exec sleep 30 ;;
  *) echo '0, NVIDIA H200, 78.74' ;;
esac
`,
    );
    chmodSync(bin, 0o755);
    try {
      const m = startEnergy({ powercapRoot: '/nonexistent', perf: null, nvidiaSmi: bin, idleBaseline: false });
      expect(m.sources).toEqual(['nvml']);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200); // let the stand-in write its samples
      const r = m.stop(10);
      expect(r.kind).toBe('measured');
      expect(r.method).toBe('nvml');
      expect(r.joules).toBeCloseTo(100, 6); // 100 W for 1.0 s
      expect(r.gpuJoules).toBeCloseTo(100, 6);
      expect(r.scope).toMatch(/GPU 0 \(NVIDIA H200\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
