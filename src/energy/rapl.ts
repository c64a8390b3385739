import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Sampler } from './samplers.js';

/**
 * Linux powercap / RAPL package energy counters (/sys/class/powercap/intel-rapl:N/energy_uj, also
 * used for AMD packages by recent kernels).
 *
 * Only top-level package zones are read: `intel-rapl:N` whose name is `package-N`. Nested zones
 * (`intel-rapl:N:M`: core, uncore, dram) are parts of their package and would be counted twice;
 * `psys` (platform) contains the packages; `intel-rapl-mmio:N` is a second view of the same
 * package. Each counter wraps to 0 after `max_energy_range_uj`; a reading lower than the last one
 * is taken as one wrap, so the sampler reads them on a worker thread several times a second (a wrap
 * takes minutes at full load), however long the main thread computes without yielding.
 * Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694).
 */
export const POWERCAP_ROOT = '/sys/class/powercap';

export interface RaplDomain {
  zone: string;
  name: string;
  file: string;
  maxRangeUj: number;
}

export interface RaplProbe {
  domains: RaplDomain[];
  /** Why counters cannot be used (none found, or unreadable), for the user; null when usable. */
  problem: string | null;
}

function readText(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/**
 * Find the package domains under `root` and check that their counters can be read. `read` is the
 * file reader (tests inject permission errors, which root, who runs CI, never gets from chmod).
 */
export function probeRapl(root = POWERCAP_ROOT, read: (file: string) => string = readText): RaplProbe {
  if (!existsSync(root)) return { domains: [], problem: `no powercap interface (${root} does not exist)` };
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (e) {
    return { domains: [], problem: `cannot list ${root} (${(e as Error).message})` };
  }
  const domains: RaplDomain[] = [];
  for (const zone of entries.filter((z) => /^intel-rapl:\d+$/.test(z)).sort()) {
    const dir = join(root, zone);
    let name: string;
    try {
      name = read(join(dir, 'name'));
    } catch {
      continue;
    }
    if (!/^package-\d+$/.test(name)) continue;
    const file = join(dir, 'energy_uj');
    let maxRangeUj = Number.NaN;
    try {
      maxRangeUj = Number(read(join(dir, 'max_energy_range_uj')));
    } catch {
      /* checked below */
    }
    try {
      const v = Number(read(file));
      if (!Number.isFinite(v)) return { domains: [], problem: `${file} does not hold a number` };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        return {
          domains: [],
          problem:
            `RAPL energy counters need root: ${file} is not readable by this user ` +
            `(run as root, or grant read access with 'sudo chmod a+r ${join(root, 'intel-rapl:*', 'energy_uj')}')`,
        };
      }
      return { domains: [], problem: `cannot read ${file} (${(e as Error).message})` };
    }
    if (!(maxRangeUj > 0)) return { domains: [], problem: `${join(dir, 'max_energy_range_uj')} is missing or not positive` };
    domains.push({ zone, name, file, maxRangeUj });
  }
  if (domains.length === 0) return { domains, problem: `no RAPL package domain under ${root}` };
  return { domains, problem: null };
}

/** Microjoules from reading `before` to reading `after` of a counter that wraps after `maxRangeUj`. */
export function counterDelta(before: number, after: number, maxRangeUj: number): number {
  return after >= before ? after - before : maxRangeUj - before + after;
}

/** Milliseconds between the RAPL sampler's readings (a few per second also keeps up with any wrap). */
export const RAPL_INTERVAL_MS = 100;

// control block of the sampler's worker: request, answer count, stop, readings, started
const REQ = 0,
  ANS = 1,
  STOP = 2,
  READS = 3,
  STARTED = 4;

/**
 * Plain JavaScript of the sampling worker (eval'd, so it works from src/ under vitest and from
 * dist/); counterDelta travels as its source text. A reading that is not a number (a file caught
 * mid-rewrite) is skipped, not counted.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { files, maxUj, intervalMs, ctlBuf, totalBuf } = workerData;
const ctl = new Int32Array(ctlBuf), total = new Float64Array(totalBuf);
const counterDelta = ${counterDelta.toString()};
const parse = (t) => (/^\\d+$/.test(t.trim()) ? Number(t) : NaN);
const read = () => files.map((f) => { try { return parse(readFileSync(f, 'utf8')); } catch (e) { return NaN; } });
let last = read(), uj = 0;
Atomics.store(ctl, ${STARTED}, 1);
Atomics.notify(ctl, ${STARTED});
while (Atomics.load(ctl, ${STOP}) === 0) {
  Atomics.wait(ctl, ${REQ}, 0, intervalMs);
  const now = read();
  if (now.every(Number.isFinite) && last.every(Number.isFinite)) {
    now.forEach((v, i) => { uj += counterDelta(last[i], v, maxUj[i]); });
    total[0] = uj / 1e6;
    Atomics.add(ctl, ${READS}, 1);
  }
  if (now.every(Number.isFinite)) last = now;
  if (Atomics.exchange(ctl, ${REQ}, 0) !== 0) { Atomics.add(ctl, ${ANS}, 1); Atomics.notify(ctl, ${ANS}); }
}
`;

/**
 * A worker thread that reads the package counters every `intervalMs` (and at once when asked), so
 * that readings go on while the main thread computes, and wraps are never missed.
 */
class RaplSampler implements Sampler {
  readonly id = 'rapl' as const;
  readonly device = 'cpu' as const;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * 8));
  private readonly total = new Float64Array(new SharedArrayBuffer(8));
  private readonly worker: Worker;
  private readonly what: string;
  private closed = false;

  constructor(domains: readonly RaplDomain[], intervalMs: number) {
    this.what = `RAPL ${domains.map((d) => `${d.zone} (${d.name})`).join(' + ')}, read every ${intervalMs} ms`;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        files: domains.map((d) => d.file),
        maxUj: domains.map((d) => d.maxRangeUj),
        intervalMs,
        ctlBuf: this.ctl.buffer,
        totalBuf: this.total.buffer,
      },
    });
    this.worker.unref();
    this.worker.on('error', () => {
      /* readings stop; the meter sees too few and says so */
    });
    Atomics.wait(this.ctl, STARTED, 0, 10_000);
  }

  describe(): string {
    return this.what;
  }

  /** A fresh reading (asks the worker and waits for it, at most a second), then the total. */
  joules(): number {
    if (!this.closed) {
      const answered = Atomics.load(this.ctl, ANS);
      Atomics.store(this.ctl, REQ, 1);
      Atomics.notify(this.ctl, REQ);
      Atomics.wait(this.ctl, ANS, answered, 1000);
    }
    return this.total[0];
  }

  readings(): number {
    return Atomics.load(this.ctl, READS);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.notify(this.ctl, REQ);
    void this.worker.terminate();
  }
}

/** Start sampling these package domains on a worker thread. */
export function startRaplSampler(domains: readonly RaplDomain[], intervalMs = RAPL_INTERVAL_MS): Sampler {
  return new RaplSampler(domains, intervalMs);
}
