import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Linux powercap / RAPL package energy counters (/sys/class/powercap/intel-rapl:N/energy_uj, also
 * used for AMD packages by recent kernels).
 *
 * Only top-level package zones are read: `intel-rapl:N` whose name is `package-N`. Nested zones
 * (`intel-rapl:N:M`: core, uncore, dram) are parts of their package and would be counted twice;
 * `psys` (platform) contains the packages; `intel-rapl-mmio:N` is a second view of the same
 * package. Each counter wraps to 0 after `max_energy_range_uj`; a reading lower than the last one
 * is taken as one wrap, so a reader must poll at least once per wrap period (minutes at full load).
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

/**
 * Accumulates package energy across polls: each poll adds every domain's increase since the last
 * poll (wrap-around included) to the total.
 */
export class RaplReader {
  readonly domains: readonly RaplDomain[];
  private last: number[];
  private totalUj = 0;

  constructor(domains: readonly RaplDomain[]) {
    this.domains = domains;
    this.last = domains.map((d) => Number(readText(d.file)));
  }

  /** Read every counter and add the increase since the previous read. */
  poll(): void {
    this.domains.forEach((d, i) => {
      const v = Number(readText(d.file));
      this.totalUj += counterDelta(this.last[i], v, d.maxRangeUj);
      this.last[i] = v;
    });
  }

  /** Joules since construction (polls first). */
  joules(): number {
    this.poll();
    return this.totalUj / 1e6;
  }

  describe(): string {
    return this.domains.map((d) => `${d.zone} (${d.name})`).join(' + ');
  }
}
