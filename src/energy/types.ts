/**
 * What every energy figure frugal prints carries. A report is either measured (hardware energy
 * counters) or estimated (a model of the hardware), never a mix: the two kinds are kept apart
 * everywhere, including the CSV log.
 */
/** `'measured'`: hardware energy counters; `'estimated'`: a model of the hardware (no counters on the machine). */
export type EnergyKind = 'measured' | 'estimated';

/** The energy of one run or call, with how it was obtained. */
export interface EnergyReport {
  /** Energy of the window, in joules. */
  joules: number;
  /** Tokens processed in the window. */
  tokens: number;
  /** joules / tokens (NaN when no token was processed). */
  jPerToken: number;
  /** Measured by hardware counters, or estimated. */
  kind: EnergyKind;
  /** Short id: 'rapl', 'perf', 'nvml', 'rapl+nvml', 'cpu-time', 'analytic:<profile>'. */
  method: string;
  /** What the joules cover (which hardware, which processes, what was subtracted). */
  scope: string;
  /** How the number was obtained, with the figures used (for logs and the README). */
  detail: string;
  /** Wall-clock seconds of the measured window. */
  seconds: number;
  /** The CPU's part of `joules` (the CSV's cpu_energy column). */
  cpuJoules: number;
  /** The GPU's part of `joules` (the CSV's gpu_energy column). */
  gpuJoules: number;
}

export function makeReport(r: Omit<EnergyReport, 'jPerToken'>): EnergyReport {
  return { ...r, jPerToken: r.tokens > 0 ? r.joules / r.tokens : NaN };
}

/** A number of joules per token, readable from 1e-9 to 1e3. */
export function formatJoules(j: number): string {
  if (!Number.isFinite(j)) return 'n/a';
  if (j === 0) return '0';
  return j < 0.01 || j >= 1e4 ? j.toExponential(2) : j.toFixed(3);
}

/** "X J/token (estimated) by cpu-time" for closing summary lines. */
export function formatJPerToken(r: EnergyReport): string {
  return `${formatJoules(r.jPerToken)} J/token (${r.kind}) by ${r.method}`;
}
