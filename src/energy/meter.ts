import { POWERCAP_ROOT, probeRapl, startRaplSampler } from './rapl.js';
import { probeNvidiaSmi, probePerf, startNvidiaSmiSampler, startPerfSampler } from './samplers.js';
import type { Sampler } from './samplers.js';
import { cpuModel, cpuTimeEstimate, wattsPerCore } from './cpu.js';
import { makeReport } from './types.js';
import type { EnergyReport } from './types.js';

/**
 * The energy meter of a run: measured where counters cover the CPU package doing the work,
 * estimated otherwise.
 *
 * Measured: RAPL package counters (else perf's power/energy-pkg/ event: the same counters, never
 * both), read in the background. NVIDIA board power (nvidia-smi) is an extra term beside the CPU's,
 * never the whole: with NVML alone the CPU part is the CPU-time estimate and the figure is labelled
 * `estimated` (method `cpu-time+nvml`). A source whose window holds fewer than MIN_READINGS readings
 * is not used, and the reason goes to `warn` (stderr). After the run window the meter measures an
 * idle window of the same length (at most `maxIdleSeconds`, then scaled to the run's length) and
 * subtracts that idle energy, so the figure is what the run added. Warm-up is excluded by calling
 * `markWarm()` when it ends. Estimated: this process's CPU time × power per core (cpu.ts).
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
  raplIntervalMs?: number; // tests: read the fake counters more often than every 100 ms
  /** Samplers to read instead of probing this machine (tests inject them; [] means none). */
  samplers?: Sampler[];
  /** Where the reason goes when a source is left out of the figure (default: a line on stderr). */
  warn?: (message: string) => void;
}

/** Fewest readings a source must take inside the window for its joules to be used. */
export const MIN_READINGS = 5;

export interface EnergySession {
  /** Sources found ('rapl', 'perf', 'nvml'); empty when the figures can only be estimates. */
  readonly sources: readonly string[];
  /** Messages for the user about counters that exist but cannot be read (e.g. "needs root"). */
  readonly notes: readonly string[];
  /** Start the window now: everything before (warm-up) is excluded. */
  markWarm(): void;
  /** Nothing to do any more (every source samples on its own thread or process); kept for callers. */
  poll(): void;
  /** End the window and report for `tokens` tokens (0: joules only). Releases the samplers. */
  stop(tokens?: number): EnergyReport;
}

function blockingSleep(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function openSamplers(o: EnergyOptions, notes: string[]): Sampler[] {
  if (o.samplers) return o.samplers;
  const samplers: Sampler[] = [];
  const rapl = o.readCounter ? probeRapl(o.powercapRoot ?? POWERCAP_ROOT, o.readCounter) : probeRapl(o.powercapRoot ?? POWERCAP_ROOT);
  if (rapl.problem === null) samplers.push(startRaplSampler(rapl.domains, o.raplIntervalMs));
  else {
    if (/need root/.test(rapl.problem)) notes.push(rapl.problem);
    if (o.perf !== null) {
      const p = probePerf(o.perf ?? 'perf');
      if (p.ok) samplers.push(startPerfSampler(o.perf ?? 'perf'));
      else if (p.problem && /root|paranoid/.test(p.problem)) notes.push(p.problem);
    }
  }
  if (o.nvidiaSmi !== null) {
    const n = probeNvidiaSmi(o.nvidiaSmi ?? 'nvidia-smi');
    if (n.ok) samplers.push(startNvidiaSmiSampler(o.nvidiaSmi ?? 'nvidia-smi', n.detail));
    else if (n.problem) notes.push(n.problem);
  }
  return samplers;
}

/** Joules each used source added over `seconds`, minus an idle window's, and a note saying how. */
function subtractIdle(
  o: EnergyOptions,
  used: Sampler[],
  run: number[],
  seconds: number,
  now: () => number,
): { net: number[]; idle: number[]; note: string } {
  if (!(o.idleBaseline ?? true) || seconds <= 0 || used.length === 0) {
    return { net: run.map((j) => Math.max(0, j)), idle: run.map(() => 0), note: 'no idle baseline subtracted' };
  }
  const idleSeconds = Math.min(seconds, o.maxIdleSeconds ?? 30);
  const i0 = used.map((s) => s.joules()),
    w0 = now();
  (o.sleep ?? blockingSleep)(idleSeconds * 1000);
  const i1 = used.map((s) => s.joules()),
    measured = Math.max(1e-9, (now() - w0) / 1000);
  const idle = used.map((_, i) => ((i1[i] - i0[i]) / measured) * seconds);
  const watts = idle.reduce((a, b) => a + b, 0) / seconds;
  return {
    net: run.map((j, i) => Math.max(0, j - idle[i])),
    idle,
    note: `idle baseline ${watts.toFixed(2)} W measured over ${measured.toFixed(2)} s and subtracted for ${seconds.toFixed(2)} s`,
  };
}

/** Start metering now; see EnergyOptions. */
export function startEnergy(o: EnergyOptions = {}): EnergySession {
  const now = o.now ?? (() => performance.now());
  const cpuSeconds = o.cpuSeconds ?? processCpuSeconds;
  const warn =
    o.warn ??
    ((m: string) => {
      process.stderr.write(`${m}\n`);
    });
  const power = wattsPerCore(o.cpuModel ?? cpuModel(), o.tdp);
  const notes: string[] = [];
  const samplers = openSamplers(o, notes);
  const readJoules = () => samplers.map((s) => s.joules());
  const readCounts = () => samplers.map((s) => s.readings());
  let t0 = now(),
    c0 = cpuSeconds(),
    base = readJoules(),
    baseCounts = readCounts();
  let stopped = false;
  return {
    sources: samplers.map((s) => s.id),
    notes,
    markWarm() {
      t0 = now();
      c0 = cpuSeconds();
      base = readJoules();
      baseCounts = readCounts();
    },
    poll() {
      /* see EnergySession.poll */
    },
    stop(tokens = 0): EnergyReport {
      if (stopped) throw new Error('energy: stop() called twice on one session');
      stopped = true;
      const seconds = Math.max(0, (now() - t0) / 1000);
      const estimate = cpuTimeEstimate(cpuSeconds() - c0, seconds, tokens, power);
      if (samplers.length === 0) return estimate;
      const end = readJoules(),
        counts = readCounts();
      const ok = samplers.map((s, i) => {
        const n = counts[i] - baseCounts[i];
        if (n >= MIN_READINGS) return true;
        warn(
          `energy: ${s.id} took ${n} reading${n === 1 ? '' : 's'} in the ${seconds.toFixed(2)} s window, fewer than ${MIN_READINGS}: ` +
            (s.device === 'cpu' ? 'the CPU figure is estimated from CPU time instead' : 'its GPU term is left out'),
        );
        return false;
      });
      const cpuMeasured = samplers.some((s) => s.device === 'cpu') && samplers.every((s, i) => s.device !== 'cpu' || ok[i]);
      const used = samplers.filter((s, i) => ok[i] && (s.device === 'gpu' || cpuMeasured));
      if (used.length === 0) {
        for (const s of samplers) s.close();
        return estimate;
      }
      const run = used.map((s) => {
        const i = samplers.indexOf(s);
        return end[i] - base[i];
      });
      const { net, idle, note } = subtractIdle(o, used, run, seconds, now);
      for (const s of samplers) s.close();
      const by = (d: 'cpu' | 'gpu') => net.reduce((a, j, i) => a + (used[i].device === d ? j : 0), 0);
      const what = `${used.map((s) => s.describe()).join('; ')}: whole devices, every process on them; ${note}`;
      const detail = used.map((s, i) => `${s.id} ${run[i].toFixed(3)} J − idle ${idle[i].toFixed(3)} J`).join(', ');
      const ids = used.map((s) => s.id).join('+');
      if (cpuMeasured) {
        return makeReport({
          joules: by('cpu') + by('gpu'),
          tokens,
          kind: 'measured',
          method: ids,
          scope: what,
          detail,
          seconds,
          cpuJoules: by('cpu'),
          gpuJoules: by('gpu'),
        });
      }
      return makeReport({
        joules: estimate.joules + by('gpu'),
        tokens,
        kind: 'estimated',
        method: `cpu-time+${ids}`,
        scope: `CPU: ${estimate.scope} (estimated: no CPU package counters); GPU: ${what}`,
        detail: `${estimate.detail}; ${detail}`,
        seconds,
        cpuJoules: estimate.joules,
        gpuJoules: by('gpu'),
      });
    },
  };
}
