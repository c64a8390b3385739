import { COLORS, decade, esc } from '../bench/scaling/svg.js';

/**
 * Small hand-written SVG charts for the synthetic report: one panel, one series per architecture
 * (a <g class="series" data-arch="…"> holding its line and points), optional point labels and
 * horizontal reference lines (chance level). Axes are log2 (lengths), log10 (joules) or linear.
 */
export interface Point {
  x: number;
  y: number;
  label?: string;
}
export interface Series {
  arch: string;
  label: string;
  points: Point[];
  line: boolean;
}
export type Scale = 'log2' | 'log10' | 'linear';
export interface Chart {
  title: string;
  x: { label: string; scale: Scale };
  y: { label: string; scale: Scale; min?: number; max?: number };
  series: Series[];
  /** Horizontal reference lines (value, label). */
  refs?: { y: number; label: string }[];
  note?: string;
}

const W = 640,
  H = 400,
  M = { left: 78, right: 24, top: 58, bottom: 64 };

function axis(
  scale: Scale,
  values: number[],
  min?: number,
  max?: number,
): { lo: number; hi: number; f: (v: number) => number; ticks: { v: number; text: string }[] } {
  const f = scale === 'log2' ? Math.log2 : scale === 'log10' ? Math.log10 : (v: number) => v;
  const vs = values.filter((v) => Number.isFinite(f(v)));
  let lo = min !== undefined ? f(min) : Math.min(...vs.map(f), Infinity),
    hi = max !== undefined ? f(max) : Math.max(...vs.map(f), -Infinity);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (scale !== 'linear') {
    lo = Math.floor(lo);
    hi = Math.ceil(hi);
  }
  if (hi <= lo) hi = lo + 1;
  const ticks: { v: number; text: string }[] = [];
  if (scale === 'log2') {
    const step = Math.max(1, Math.ceil((hi - lo) / 8));
    for (let k = lo; k <= hi; k += step) ticks.push({ v: k, text: `2^${k}` });
  } else if (scale === 'log10') {
    for (let k = lo; k <= hi; k++) ticks.push({ v: k, text: decade(k) });
  } else {
    for (let i = 0; i <= 5; i++) {
      const v = lo + ((hi - lo) * i) / 5;
      ticks.push({ v, text: String(Number(v.toPrecision(3))) });
    }
  }
  return { lo, hi, f, ticks };
}

/** The chart as a standalone SVG document. */
export function chartSvg(c: Chart): string {
  const pts = c.series.flatMap((s) => s.points);
  const xa = axis(
      c.x.scale,
      pts.map((p) => p.x),
    ),
    ya = axis(c.y.scale, [...pts.map((p) => p.y), ...(c.refs ?? []).map((r) => r.y)], c.y.min, c.y.max);
  const pw = W - M.left - M.right,
    ph = H - M.top - M.bottom;
  const sx = (v: number) => M.left + ((xa.f(v) - xa.lo) / (xa.hi - xa.lo)) * pw;
  const sy = (v: number) => M.top + ph - ((ya.f(v) - ya.lo) / (ya.hi - ya.lo)) * ph;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<title>${esc(c.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (const t of xa.ticks) {
    const x = (M.left + ((t.v - xa.lo) / (xa.hi - xa.lo)) * pw).toFixed(1);
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + ph}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 16}" text-anchor="middle" font-size="11">${esc(t.text)}</text>`);
  }
  for (const t of ya.ticks) {
    const y = (M.top + ph - ((t.v - ya.lo) / (ya.hi - ya.lo)) * ph).toFixed(1);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${M.left + pw}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${esc(t.text)}</text>`);
  }
  out.push(`<text x="${M.left + pw / 2}" y="${H - 26}" text-anchor="middle" font-size="12">${esc(c.x.label)}</text>`);
  const cy = M.top + ph / 2;
  out.push(`<text x="16" y="${cy}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${cy})">${esc(c.y.label)}</text>`);
  for (const r of c.refs ?? []) {
    const y = sy(r.y).toFixed(1);
    out.push(`<line class="reference" x1="${M.left}" y1="${y}" x2="${M.left + pw}" y2="${y}" stroke="#888" stroke-dasharray="4 3"/>`);
    out.push(
      `<text x="${M.left + pw - 4}" y="${(Number(y) - 4).toFixed(1)}" text-anchor="end" font-size="10" fill="#666">${esc(r.label)}</text>`,
    );
  }
  c.series.forEach((s, i) => {
    const color = COLORS[s.arch] ?? '#333',
      vis = s.points.filter((p) => Number.isFinite(xa.f(p.x)) && Number.isFinite(ya.f(p.y)));
    out.push(`<g class="series" data-arch="${esc(s.arch)}">`);
    if (s.line && vis.length > 1)
      out.push(
        `<path d="${vis.map((p, k) => `${k ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    for (const p of vis) {
      out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3.5" fill="${color}"/>`);
      if (p.label)
        out.push(
          `<text x="${(sx(p.x) + 6).toFixed(1)}" y="${(sy(p.y) - 6).toFixed(1)}" font-size="10" fill="${color}">${esc(p.label)}</text>`,
        );
    }
    out.push(`<line x1="${M.left + 10 + i * 220}" y1="40" x2="${M.left + 36 + i * 220}" y2="40" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${M.left + 42 + i * 220}" y="44" font-size="12">${esc(s.label)}</text>`);
    out.push('</g>');
  });
  if (c.note) out.push(`<text x="${M.left}" y="${H - 8}" font-size="10" fill="#555">${esc(c.note)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
