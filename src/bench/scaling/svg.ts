import type { ArchResult, ScalingPoint, ScalingResult } from './study.js';

/**
 * The scaling study as one hand-written SVG: four log-log panels (decode latency, state memory,
 * energy per token, prefill time) against context length, one curve per architecture, with
 * labelled axes and units, and a note on where and why each architecture stopped.
 */
interface Panel {
  id: string;
  title: string;
  y: string;
  value: (p: ScalingPoint) => number | null;
}

export const COLORS: Record<string, string> = { mamba: '#1b7f5f', transformer: '#c8511b' };
const W = 460,
  H = 320,
  M = { left: 72, right: 16, top: 34, bottom: 48 };

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Number label for a power of ten. */
export function decade(k: number): string {
  if (k >= -2 && k <= 4) return String(Number((10 ** k).toFixed(Math.max(0, -k))));
  return `1e${k}`;
}

function panelSvg(panel: Panel, results: ArchResult[], ox: number, oy: number): string {
  const series = results.map((r) => ({
    arch: r.arch,
    pts: r.points
      .map((p) => ({ x: p.context, y: panel.value(p) }))
      .filter((q): q is { x: number; y: number } => q.y !== null && q.y > 0 && Number.isFinite(q.y)),
  }));
  const xs = series.flatMap((s) => s.pts.map((p) => p.x)),
    ys = series.flatMap((s) => s.pts.map((p) => p.y));
  const x0 = Math.floor(Math.log2(Math.min(...xs, 2 ** 30))),
    x1 = Math.ceil(Math.log2(Math.max(...xs, 2)));
  const y0 = Math.floor(Math.log10(Math.min(...ys, 1e30))),
    y1r = Math.ceil(Math.log10(Math.max(...ys, 1e-30)));
  const y1 = y1r > y0 ? y1r : y0 + 1,
    xa = x1 > x0 ? x1 : x0 + 1;
  const pw = W - M.left - M.right,
    ph = H - M.top - M.bottom;
  const sx = (x: number) => ox + M.left + ((Math.log2(x) - x0) / (xa - x0)) * pw;
  const sy = (y: number) => oy + M.top + ph - ((Math.log10(y) - y0) / (y1 - y0)) * ph;
  const out: string[] = [`<g id="panel-${panel.id}">`];
  out.push(
    `<text x="${ox + M.left + pw / 2}" y="${oy + 20}" text-anchor="middle" font-size="14" font-weight="bold">${esc(panel.title)}</text>`,
  );
  out.push(`<rect x="${ox + M.left}" y="${oy + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  const step = Math.max(1, Math.ceil((xa - x0) / 7));
  for (let k = x0; k <= xa; k += step) {
    const x = sx(2 ** k).toFixed(1);
    out.push(`<line x1="${x}" y1="${oy + M.top}" x2="${x}" y2="${oy + M.top + ph}" stroke="#ddd"/>`);
    out.push(
      `<text x="${x}" y="${oy + M.top + ph + 16}" text-anchor="middle" font-size="11">2<tspan dy="-5" font-size="8">${k}</tspan></text>`,
    );
  }
  for (let k = y0; k <= y1; k++) {
    const y = sy(10 ** k).toFixed(1);
    out.push(`<line x1="${ox + M.left}" y1="${y}" x2="${ox + M.left + pw}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${ox + M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${decade(k)}</text>`);
  }
  out.push(
    `<text x="${ox + M.left + pw / 2}" y="${oy + H - 8}" text-anchor="middle" font-size="12">context length (tokens, log scale)</text>`,
  );
  const cy = oy + M.top + ph / 2;
  out.push(
    `<text x="${ox + 16}" y="${cy}" text-anchor="middle" font-size="12" transform="rotate(-90 ${ox + 16} ${cy})">${esc(panel.y)}</text>`,
  );
  for (const s of series) {
    const color = COLORS[s.arch] ?? '#333';
    const d = s.pts.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    out.push(
      `<path id="curve-${panel.id}-${s.arch}" class="curve" data-arch="${s.arch}" d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`,
    );
    for (const p of s.pts) out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2.5" fill="${color}"/>`);
  }
  out.push('</g>');
  return out.join('\n');
}

/** The chart: energy is plotted measured when every point has a measurement, else the CPU-time estimate. */
export function scalingSvg(r: ScalingResult, title: string): string {
  const measured = r.results.every((a) => a.points.every((p) => p.energy.measured !== null)) && r.results.some((a) => a.points.length > 0);
  const panels: Panel[] = [
    { id: 'decode', title: 'Decode latency per token', y: 'ms per token (median)', value: (p) => p.decodeMsPerToken },
    { id: 'memory', title: 'Memory held by the state', y: 'MiB (recurrent state / KV cache)', value: (p) => p.stateBytes / 2 ** 20 },
    {
      id: 'energy',
      title: `Energy per decoded token (${measured ? 'measured' : 'estimated'})`,
      y: measured ? 'J per token (measured)' : 'J per token (estimated: CPU time × W/core)',
      value: (p) => (measured ? (p.energy.measured?.jPerToken ?? null) : p.energy.estimated['cpu-time']),
    },
    {
      id: 'prefill',
      title: 'Prefill time to reach the context',
      y: 'seconds (cumulative, chunked prefill)',
      value: (p) => p.prefillSeconds,
    },
  ];
  const width = 2 * W,
    height = 2 * H + 110;
  const parts = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  // legend entries side by side, each as wide as its label (about 7 px per character at 13 px)
  const labels = r.results.map((a) => `${a.arch} (${(a.parameters / 1e6).toFixed(2)}M parameters)`);
  const widths = labels.map((l) => 32 + 7 * l.length + 24);
  let x = (width - widths.reduce((a, b) => a + b, 0)) / 2;
  r.results.forEach((a, i) => {
    parts.push(
      `<g id="legend-${a.arch}"><line x1="${x}" y1="40" x2="${x + 26}" y2="40" stroke="${COLORS[a.arch] ?? '#333'}" stroke-width="3"/>` +
        `<text x="${x + 32}" y="44" font-size="13">${esc(labels[i])}</text></g>`,
    );
    x += widths[i];
  });
  panels.forEach((p, i) => parts.push(panelSvg(p, r.results, (i % 2) * W, 50 + Math.floor(i / 2) * H)));
  const notes = r.results.map(
    (a) =>
      `${a.arch}: ${a.stopped.reason === 'completed' ? 'completed' : `stopped after ${a.stopped.lastContext ?? 'no'} tokens`} (${a.stopped.detail})`,
  );
  notes.forEach((n, i) => parts.push(`<text x="16" y="${2 * H + 72 + i * 16}" font-size="11">${esc(n)}</text>`));
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
