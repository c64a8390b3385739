import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_READINGS, startEnergy } from '../../src/energy/index.js';
import type { EnergyOptions, Sampler } from '../../src/energy/index.js';
import { fakePowercap } from './fake-powercap.js';

/**
 * The meter's labels and bookkeeping with injected samplers and a fake clock: `measured` only when
 * counters cover the CPU package, NVML only ever an extra GPU term, a window of fewer than five
 * readings estimated with the reason on stderr, the idle baseline of equal length subtracted and
 * warm-up excluded. Then the real samplers against stand-ins: fake powercap files read by the RAPL
 * worker, and an nvidia-smi that prints what a real one printed on an H200.
 */
interface Fake {
  sampler: Sampler;
  add(joules: number, readings: number): void;
  closed(): boolean;
}

function fake(id: Sampler['id'], device: Sampler['device']): Fake {
  let j = 0,
    n = 0,
    closed = false;
  return {
    sampler: {
      id,
      device,
      describe: () => `fake ${id}`,
      joules: () => j,
      readings: () => n,
      close: () => {
        closed = true;
      },
    },
    add(joules, readings) {
      j += joules;
      n += readings;
    },
    closed: () => closed,
  };
}

/**
 * A fake world: a clock, this process's CPU seconds, and samplers that gain `watts` per sampler
 * while time passes (one reading per 100 ms). The EPYC 7763 is in the TDP table: 280 W / 64 cores.
 */
function world(fakes: { f: Fake; runWatts: number; idleWatts: number }[]) {
  let clock = 0,
    cpu = 0;
  const pass = (ms: number, idle: boolean, cpuShare = 0) => {
    clock += ms;
    cpu += (cpuShare * ms) / 1000;
    for (const x of fakes) x.f.add(((idle ? x.idleWatts : x.runWatts) * ms) / 1000, Math.floor(ms / 100));
  };
  const warnings: string[] = [];
  const options: EnergyOptions = {
    samplers: fakes.map((x) => x.f.sampler),
    now: () => clock,
    cpuSeconds: () => cpu,
    cpuModel: 'AMD EPYC 7763 64-Core Processor',
    sleep: (ms) => pass(ms, true),
    warn: (m) => warnings.push(m),
  };
  return { pass, warnings, options };
}

const W = 280 / 64; // watts per busy core of the EPYC 7763

describe('energy labels by the samplers present', () => {
  it('none: estimated from CPU time', () => {
    const w = world([]);
    const m = w.options;
    const s = startEnergy(m);
    expect(s.sources).toEqual([]);
    w.pass(2000, false, 1.6); // 3.2 CPU seconds
    const r = s.stop(64);
    expect(r).toMatchObject({ kind: 'estimated', method: 'cpu-time', gpuJoules: 0 });
    expect(r.joules).toBeCloseTo(3.2 * W, 9);
    expect(r.jPerToken).toBeCloseTo((3.2 * W) / 64, 9);
    expect(r.detail).toMatch(/TDP 280 W \/ 64 cores/);
    expect(w.warnings).toEqual([]);
    expect(() => s.stop(1)).toThrow(/twice/);
  });

  it('RAPL only: measured, warm-up excluded, an idle baseline of equal length subtracted', () => {
    const rapl = fake('rapl', 'cpu');
    const w = world([{ f: rapl, runWatts: 80, idleWatts: 10 }]);
    const s = startEnergy(w.options);
    expect(s.sources).toEqual(['rapl']);
    w.pass(1000, false, 1); // warm-up: excluded
    s.markWarm();
    w.pass(4000, false, 1); // the run: 80 W for 4 s = 320 J
    const r = s.stop(100);
    expect(r).toMatchObject({ kind: 'measured', method: 'rapl', gpuJoules: 0 });
    expect(r.seconds).toBeCloseTo(4, 9);
    expect(r.joules).toBeCloseTo(320 - 40, 6); // minus 10 W idle × 4 s
    expect(r.cpuJoules).toBeCloseTo(280, 6);
    expect(r.jPerToken).toBeCloseTo(2.8, 9);
    expect(r.scope).toMatch(/fake rapl.*idle baseline 10\.00 W/);
    expect(rapl.closed()).toBe(true);
    expect(w.warnings).toEqual([]);
  });

  it('NVML only: the CPU part stays a CPU-time estimate and the GPU joules are added beside it', () => {
    const nvml = fake('nvml', 'gpu');
    const w = world([{ f: nvml, runWatts: 100, idleWatts: 75 }]);
    const s = startEnergy(w.options);
    expect(s.sources).toEqual(['nvml']);
    w.pass(2000, false, 1.6); // 3.2 CPU s; GPU 200 J, idle 150 J
    const r = s.stop(10);
    expect(r).toMatchObject({ kind: 'estimated', method: 'cpu-time+nvml' });
    expect(r.cpuJoules).toBeCloseTo(3.2 * W, 9);
    expect(r.gpuJoules).toBeCloseTo(200 - 150, 6);
    expect(r.joules).toBeCloseTo(3.2 * W + 50, 6);
    expect(r.scope).toMatch(/no CPU package counters/);
  });

  it('RAPL and NVML: measured, split into CPU and GPU joules', () => {
    const rapl = fake('rapl', 'cpu'),
      nvml = fake('nvml', 'gpu');
    const w = world([
      { f: rapl, runWatts: 60, idleWatts: 20 },
      { f: nvml, runWatts: 90, idleWatts: 80 },
    ]);
    const s = startEnergy({ ...w.options, maxIdleSeconds: 1 }); // idle measured over 1 s, scaled to 3 s
    w.pass(3000, false, 1);
    const r = s.stop(30);
    expect(r).toMatchObject({ kind: 'measured', method: 'rapl+nvml' });
    expect(r.cpuJoules).toBeCloseTo(3 * (60 - 20), 6);
    expect(r.gpuJoules).toBeCloseTo(3 * (90 - 80), 6);
    expect(r.joules).toBeCloseTo(150, 6);
    expect(r.jPerToken).toBeCloseTo(5, 9);
  });

  it(`a window of fewer than ${MIN_READINGS} readings is estimated, with the reason on stderr`, () => {
    const rapl = fake('rapl', 'cpu'),
      nvml = fake('nvml', 'gpu');
    const w = world([
      { f: rapl, runWatts: 60, idleWatts: 20 },
      { f: nvml, runWatts: 90, idleWatts: 80 },
    ]);
    const s = startEnergy(w.options);
    w.pass(450, false, 1); // 4 readings each
    const r = s.stop(5);
    expect(r).toMatchObject({ kind: 'estimated', method: 'cpu-time', gpuJoules: 0 });
    expect(r.joules).toBeCloseTo(0.45 * W, 9);
    expect(w.warnings).toHaveLength(2);
    expect(w.warnings[0]).toMatch(/^energy: rapl took 4 readings in the 0\.45 s window, fewer than 5: the CPU figure is estimated/);
    expect(w.warnings[1]).toMatch(/^energy: nvml took 4 readings .* its GPU term is left out/);
    expect(rapl.closed() && nvml.closed()).toBe(true);
  });

  it('a short GPU window leaves the measured CPU figure alone', () => {
    const rapl = fake('rapl', 'cpu'),
      nvml = fake('nvml', 'gpu');
    const w = world([{ f: rapl, runWatts: 60, idleWatts: 20 }]);
    const s = startEnergy({ ...w.options, samplers: [rapl.sampler, nvml.sampler], idleBaseline: false });
    w.pass(1000, false, 1);
    nvml.add(90, 2); // as if nvidia-smi had stalled
    const r = s.stop(1);
    expect(r).toMatchObject({ kind: 'measured', method: 'rapl', gpuJoules: 0 });
    expect(r.joules).toBeCloseTo(60, 6);
    expect(w.warnings.join('\n')).toMatch(/nvml took 2 readings/);
  });
});

describe('energy meter with the real samplers', () => {
  it('reads fake RAPL counters on its worker thread and measures them', () => {
    const f = fakePowercap([
      { zone: 'intel-rapl:0', name: 'package-0', energyUj: 0 },
      { zone: 'intel-rapl:1', name: 'package-1', energyUj: 0 },
    ]);
    try {
      const m = startEnergy({ powercapRoot: f.root, perf: null, nvidiaSmi: null, idleBaseline: false, raplIntervalMs: 5, warn: () => {} });
      expect(m.sources).toEqual(['rapl']);
      for (let i = 1; i <= 10; i++) {
        // 10 × (1 J + 0.5 J), 20 ms apart
        f.set('intel-rapl:0', i * 1_000_000);
        f.set('intel-rapl:1', i * 500_000);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
      const r = m.stop(3);
      expect(r).toMatchObject({ kind: 'measured', method: 'rapl' });
      expect(r.joules).toBeCloseTo(15, 9);
      expect(r.scope).toMatch(/intel-rapl:0 \(package-0\) \+ intel-rapl:1 \(package-1\)/);
    } finally {
      rmSync(f.root, { recursive: true, force: true });
    }
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

  it('integrates NVIDIA board power sampled by nvidia-smi into the GPU term beside the CPU estimate', () => {
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
      let cpu = 0;
      const m = startEnergy({
        powercapRoot: '/nonexistent',
        perf: null,
        nvidiaSmi: bin,
        idleBaseline: false,
        cpuSeconds: () => cpu,
        cpuModel: 'AMD EPYC 7763 64-Core Processor',
      });
      expect(m.sources).toEqual(['nvml']);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200); // let the stand-in write its samples
      cpu = 2;
      const r = m.stop(10);
      expect(r).toMatchObject({ kind: 'estimated', method: 'cpu-time+nvml' });
      expect(r.gpuJoules).toBeCloseTo(100, 6); // 100 W for 1.0 s
      expect(r.cpuJoules).toBeCloseTo(2 * W, 9);
      expect(r.joules).toBeCloseTo(100 + 2 * W, 6);
      expect(r.scope).toMatch(/GPU 0 \(NVIDIA H200\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
