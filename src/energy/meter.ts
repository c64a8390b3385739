import { POWERCAP_ROOT, RaplReader, probeRapl } from './rapl.js';
import { probeNvidiaSmi, probePerf, startNvidiaSmiSampler, startPerfSampler } from './samplers.js';
import type { Sampler } from './samplers.js';
import { cpuModel, cpuTimeEstimate, wattsPerCore } from './cpu.js';
import { makeReport } from './types.js';
import type { EnergyReport } from './types.js';

/**
 * The energy meter of a run: measured where the machine exposes counters, estimated otherwise.
 *
 * Measured: RAPL package counters (else perf's power/energy-pkg/ event: the same counters, never
 * both) plus NVIDIA board power from nvidia-smi. After the run window it measures an idle window of
 * the same length (at most `maxIdleSeconds`, then scaled to the run's length) and subtracts that
 * idle energy, so the figure is what the run added. Warm-up is excluded by calling `markWarm()`
 * when it ends. Estimated: this process's CPU time × power per core (cpu.ts).
 */
export interface EnergyOptions {
  tdp?: number; // --tdp: package watts for the CPU-time estimate
  powercapRoot?: string; // default /sys/class/powercap (tests point it at fake counter files)
  perf?: string | null; // perf binary, null: do not use perf
  nvidiaSmi?: string | null; // nvidia-smi binary, null: do not use NVML
  idleBaseline?: boolean; // default true
  maxIdleSeconds?: number; // default 30
  sleep?: (ms: number) => void; // tests
  now?: () => number; // milliseconds (tests)
  cpuSeconds?: () => number; // this process's CPU seconds (tests)
  cpuModel?: string;
  readCounter?: (file: string) => string; // tests: simulate unreadable counters
}

export interface EnergySession {
  /** Measured sources in use ('rapl', 'perf', 'nvml'); empty when the figures are estimates. */
  readonly sources: readonly string[];
  /** Messages for the user about counters that exist but cannot be read (e.g. "needs root"). */
  readonly notes: readonly string[];
  /** Start the window now: everything before (warm-up) is excluded. */
  markWarm(): void;
  /** Read wrapping counters (call at least every few minutes in long runs). */
  poll(): void;
  /** End the window and report for `tokens` tokens (0: joules only). Releases the samplers. */
  stop(tokens?: number): EnergyReport;
}

interface Source {
  id: string;
  device: 'cpu' | 'gpu';
  what: string;
  joules(): number;
  close(): void;
}

function blockingSleep(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function openSources(o: EnergyOptions, notes: string[]): Source[] {
  const sources: Source[] = [];
  const rapl = o.readCounter ? probeRapl(o.powercapRoot ?? POWERCAP_ROOT, o.readCounter) : probeRapl(o.powercapRoot ?? POWERCAP_ROOT);
  if (rapl.problem === null) {
    const r = new RaplReader(rapl.domains);
    sources.push({ id: 'rapl', device: 'cpu', what: `RAPL ${r.describe()}`, joules: () => r.joules(), close: () => {} });
  } else {
    if (/need root/.test(rapl.problem)) notes.push(rapl.problem);
    if (o.perf !== null) {
      const p = probePerf(o.perf ?? 'perf');
      if (p.ok) sources.push(fromSampler(startPerfSampler(o.perf ?? 'perf')));
      else if (p.problem && /root|paranoid/.test(p.problem)) notes.push(p.problem);
    }
  }
  if (o.nvidiaSmi !== null) {
    const n = probeNvidiaSmi(o.nvidiaSmi ?? 'nvidia-smi');
    if (n.ok) sources.push(fromSampler(startNvidiaSmiSampler(o.nvidiaSmi ?? 'nvidia-smi', n.detail)));
    else if (n.problem) notes.push(n.problem);
  }
  return sources;
}

function fromSampler(s: Sampler): Source {
  return { id: s.id, device: s.device, what: s.describe(), joules: () => s.joules(), close: () => s.close() };
}

/** Start metering now; see EnergyOptions. */
export function startEnergy(o: EnergyOptions = {}): EnergySession {
  const now = o.now ?? (() => performance.now());
  const cpuSeconds = o.cpuSeconds ?? processCpuSeconds;
  const sleep = o.sleep ?? blockingSleep;
  const power = wattsPerCore(o.cpuModel ?? cpuModel(), o.tdp);
  const notes: string[] = [];
  const sources = openSources(o, notes);
  let t0 = now(),
    c0 = cpuSeconds(),
    base = sources.map((s) => s.joules());
  let stopped = false;
  const readAll = () => sources.map((s) => s.joules());
  return {
    sources: sources.map((s) => s.id),
    notes,
    markWarm() {
      t0 = now();
      c0 = cpuSeconds();
      base = readAll();
    },
    poll() {
      for (const s of sources) s.joules();
    },
    stop(tokens = 0): EnergyReport {
      if (stopped) throw new Error('energy: stop() called twice on one session');
      stopped = true;
      const seconds = Math.max(0, (now() - t0) / 1000);
      if (sources.length === 0) return cpuTimeEstimate(cpuSeconds() - c0, seconds, tokens, power);
      const end = readAll();
      const run = sources.map((_, i) => end[i] - base[i]);
      let idle = sources.map(() => 0),
        idleNote = 'no idle baseline subtracted';
      if ((o.idleBaseline ?? true) && seconds > 0) {
        const idleSeconds = Math.min(seconds, o.maxIdleSeconds ?? 30);
        const i0 = readAll(),
          w0 = now();
        sleep(idleSeconds * 1000);
        const i1 = readAll(),
          measuredIdle = Math.max(1e-9, (now() - w0) / 1000);
        idle = sources.map((_, i) => ((i1[i] - i0[i]) / measuredIdle) * seconds);
        const watts = idle.reduce((a, b) => a + b, 0) / seconds;
        idleNote = `idle baseline ${watts.toFixed(2)} W measured over ${measuredIdle.toFixed(2)} s and subtracted for ${seconds.toFixed(2)} s`;
      }
      for (const s of sources) s.close();
      const net = run.map((j, i) => Math.max(0, j - idle[i]));
      const by = (d: 'cpu' | 'gpu') => net.reduce((a, j, i) => a + (sources[i].device === d ? j : 0), 0);
      const joules = net.reduce((a, b) => a + b, 0);
      return makeReport({
        joules,
        tokens,
        kind: 'measured',
        method: sources.map((s) => s.id).join('+'),
        scope: `${sources.map((s) => s.what).join('; ')}: whole devices, every process on them; ${idleNote}`,
        detail: sources.map((s, i) => `${s.id} ${run[i].toFixed(3)} J − idle ${idle[i].toFixed(3)} J`).join(', '),
        seconds,
        cpuJoules: by('cpu'),
        gpuJoules: by('gpu'),
      });
    },
  };
}
