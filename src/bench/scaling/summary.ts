import type { ArchResult, ScalingPoint, ScalingResult } from './study.js';

/**
 * The study's headline numbers (the targets of the closing note) and its table, computed from the
 * measured points only.
 */
export interface ScalingSummary {
  /** max/min of the per-context median decode times over the measured contexts (1 = perfectly flat), per architecture. */
  decodeFlatness: Record<string, number>;
  /** The smallest and largest of those medians (ms per token). */
  decodeMedians: Record<string, { min: number; max: number }>;
  /** The same for the per-step CPU time (insensitive to other processes taking turns on the cores). */
  decodeCpuFlatness: Record<string, number>;
  stateFlatness: Record<string, number>;
  /** Last / first decode time and state bytes, per architecture (growth over the measured range). */
  decodeGrowth: Record<string, number>;
  stateGrowth: Record<string, number>;
  /** Smallest measured context from which Mamba's decode is faster at every larger context both measured; null if never. */
  crossoverContext: number | null;
  /** Contexts both architectures measured. */
  sharedContexts: number[];
  /** Transformer J/token ÷ Mamba J/token at `ratioContext`, per estimation method (and 'measured' when present). */
  ratioContext: number;
  jPerTokenRatio: Record<string, number> | null;
}

const ratio = (xs: number[]) => (xs.length ? Math.max(...xs) / Math.min(...xs) : NaN);

function byArch(r: ScalingResult, arch: string): ArchResult | undefined {
  return r.results.find((a) => a.arch === arch);
}

export function summarize(r: ScalingResult, ratioContext = 1 << 16): ScalingSummary {
  const s: ScalingSummary = {
    decodeFlatness: {},
    decodeMedians: {},
    decodeCpuFlatness: {},
    stateFlatness: {},
    decodeGrowth: {},
    stateGrowth: {},
    crossoverContext: null,
    sharedContexts: [],
    ratioContext,
    jPerTokenRatio: null,
  };
  for (const a of r.results) {
    const d = a.points.map((p) => p.decodeMsPerToken),
      m = a.points.map((p) => p.stateBytes);
    s.decodeFlatness[a.arch] = ratio(d);
    s.decodeMedians[a.arch] = { min: Math.min(...d), max: Math.max(...d) };
    s.decodeCpuFlatness[a.arch] = ratio(a.points.map((p) => p.decodeCpuMsPerToken));
    s.stateFlatness[a.arch] = ratio(m);
    s.decodeGrowth[a.arch] = d.length ? d[d.length - 1] / d[0] : NaN;
    s.stateGrowth[a.arch] = m.length ? m[m.length - 1] / m[0] : NaN;
  }
  const mb = byArch(r, 'mamba'),
    tf = byArch(r, 'transformer');
  if (!mb || !tf) return s;
  const at = (a: ArchResult, n: number): ScalingPoint | undefined => a.points.find((p) => p.context === n);
  s.sharedContexts = mb.points.map((p) => p.context).filter((n) => at(tf, n));
  for (let i = s.sharedContexts.length - 1; i >= 0; i--) {
    const n = s.sharedContexts[i];
    if ((at(mb, n) as ScalingPoint).decodeMsPerToken < (at(tf, n) as ScalingPoint).decodeMsPerToken) s.crossoverContext = n;
    else break;
  }
  const pm = at(mb, ratioContext),
    pt = at(tf, ratioContext);
  if (pm && pt) {
    s.jPerTokenRatio = {};
    for (const k of Object.keys(pm.energy.estimated)) s.jPerTokenRatio[k] = pt.energy.estimated[k] / pm.energy.estimated[k];
    if (pm.energy.measured && pt.energy.measured) s.jPerTokenRatio.measured = pt.energy.measured.jPerToken / pm.energy.measured.jPerToken;
  }
  return s;
}

function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}
function pow2(n: number): string {
  return `2^${Math.round(Math.log2(n))}`;
}
function sci(x: number): string {
  return x.toExponential(2);
}

/** A Markdown table of the points: one row per context, the two architectures side by side. */
export function scalingTable(r: ScalingResult): string {
  const mb = byArch(r, 'mamba'),
    tf = byArch(r, 'transformer');
  const contexts = [...new Set(r.results.flatMap((a) => a.points.map((p) => p.context)))].sort((x, y) => x - y);
  const cell = (a: ArchResult | undefined, n: number, f: (p: ScalingPoint) => string) => {
    const p = a?.points.find((q) => q.context === n);
    return p ? f(p) : '—';
  };
  const lines = [
    '| context | decode ms/token, median (min–max): Mamba | transformer | state: Mamba | KV cache | J/token (est., CPU time): Mamba | transformer | J/token (est., 45 nm analytic): Mamba | transformer | prefill s: Mamba | transformer |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const n of contexts) {
    const ms = (p: ScalingPoint) =>
      `${p.decodeMsPerToken.toFixed(2)} (${p.decodeMsPerTokenMin.toFixed(2)}–${p.decodeMsPerTokenMax.toFixed(2)})`;
    lines.push(
      `| ${pow2(n)} | ${cell(mb, n, ms)} | ${cell(tf, n, ms)} | ` +
        `${cell(mb, n, (p) => bytes(p.stateBytes))} | ${cell(tf, n, (p) => bytes(p.stateBytes))} | ` +
        `${cell(mb, n, (p) => sci(p.energy.estimated['cpu-time']))} | ${cell(tf, n, (p) => sci(p.energy.estimated['cpu-time']))} | ` +
        `${cell(mb, n, (p) => sci(p.energy.estimated['analytic:horowitz-45nm']))} | ${cell(tf, n, (p) => sci(p.energy.estimated['analytic:horowitz-45nm']))} | ` +
        `${cell(mb, n, (p) => p.prefillSeconds.toFixed(2))} | ${cell(tf, n, (p) => p.prefillSeconds.toFixed(2))} |`,
    );
  }
  return lines.join('\n');
}

/** The targets in words, for the closing note on stderr. */
export function summaryLines(r: ScalingResult, s: ScalingSummary): string[] {
  const out: string[] = [];
  for (const a of r.results) {
    const dm = s.decodeMedians[a.arch];
    out.push(
      `${a.arch}: ${a.parameters.toLocaleString('en-US')} parameters; median decode ${dm.min.toFixed(3)}–${dm.max.toFixed(3)} ms/token over the contexts, max/min ${s.decodeFlatness[a.arch].toFixed(3)} ` +
        `(CPU time ${s.decodeCpuFlatness[a.arch].toFixed(3)}), ` +
        `state max/min ${s.stateFlatness[a.arch].toFixed(3)} over ${a.points.length} contexts; stopped: ${a.stopped.reason} (${a.stopped.detail})`,
    );
  }
  if (s.sharedContexts.length) {
    out.push(
      s.crossoverContext === null
        ? 'Mamba is not cheaper per decoded token at the largest shared context'
        : `Mamba's decode is faster per token from ${pow2(s.crossoverContext)} tokens of context on`,
    );
  }
  if (s.jPerTokenRatio) {
    out.push(
      `J/token transformer ÷ Mamba at ${pow2(s.ratioContext)}: ` +
        Object.entries(s.jPerTokenRatio)
          .map(([k, v]) => `${v.toFixed(1)}× (${k === 'measured' ? 'measured' : `estimated, ${k}`})`)
          .join(', '),
    );
  }
  return out;
}
