import type { RefineEntry, RefineReport } from './refine.js';

/** refine.md and refine.svg: the study as a table, a statement and a two-panel bar chart. */

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const COLORS: Record<string, string> = {
  'small-general': '#8a8a8a',
  'large-general': '#c8511b',
  'small-lora': '#1b7f5f',
  'small-full': '#2a6fb0',
  'small-distilled': '#7a4bb0',
};

/** One horizontal bar panel: a value per model, bars from 0, labelled. */
function panel(r: RefineReport, title: string, value: (m: RefineEntry) => number, fmt: (v: number) => string, ox: number): string {
  const W = 420,
    rowH = 34,
    top = 40,
    left = 130,
    pw = W - left - 70;
  const max = Math.max(...r.models.map(value)) * 1.05;
  const out = [
    `<g id="${esc(title)}">`,
    `<text x="${ox + W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  r.models.forEach((m, i) => {
    const y = top + i * rowH,
      w = (value(m) / max) * pw;
    out.push(`<text x="${ox + left - 8}" y="${y + 20}" text-anchor="end" font-size="12">${esc(m.name)}</text>`);
    out.push(`<rect x="${ox + left}" y="${y + 6}" width="${w.toFixed(1)}" height="${rowH - 12}" fill="${COLORS[m.name] ?? '#555'}"/>`);
    out.push(`<text x="${(ox + left + w + 6).toFixed(1)}" y="${y + 20}" font-size="12">${esc(fmt(value(m)))}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

export function refineSvg(r: RefineReport): string {
  const H = 40 + r.models.length * 34 + 40;
  const note = `held-out era ${r.domain.heldout_years}; J/token ${r.models[0].energy_kind}${r.quick ? '; --quick: a smoke test, not a result' : ''}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="860" height="${H}" viewBox="0 0 860 ${H}" font-family="sans-serif">`,
    '<rect width="100%" height="100%" fill="white"/>',
    panel(
      r,
      'bits per byte on the held-out era (lower is better)',
      (m) => m.domain_bits_per_byte,
      (v) => v.toFixed(3),
      0,
    ),
    panel(
      r,
      'J per decoded token (lower is better)',
      (m) => m.j_per_token,
      (v) => v.toExponential(2),
      430,
    ),
    `<text x="430" y="${H - 12}" text-anchor="middle" font-size="11" fill="#444">${esc(note)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

const kb = (b: number) => `${(b / 1024).toFixed(0)} KiB`;

export function refineMarkdown(r: RefineReport, command: string): string {
  const rows = r.models.map(
    (m) =>
      `| ${m.name} | ${m.description} | ${m.parameters.toLocaleString('en-US')} | ${m.trained_parameters.toLocaleString('en-US')} | ` +
      `**${m.domain_bits_per_byte.toFixed(3)}** | ${m.general_bits_per_byte.toFixed(3)} | ${m.decode_tok_s.toFixed(0)} | ${m.j_per_token.toExponential(2)} | ` +
      `${m.train_tokens.toLocaleString('en-US')} | ${m.train_joules.toFixed(0)} | ${m.train_joules_with_base.toFixed(0)} | ${kb(m.artefact_bytes)} |`,
  );
  return [
    '# Small and refined vs big and general',
    '',
    `Made by \`${command}\` in ${(r.seconds / 60).toFixed(1)} minutes (${r.threads} threads, seed ${r.seed}).${r.quick ? ' **--quick: tiny models and a few steps, a smoke test of the pipeline, not a result.**' : ''}`,
    '',
    `**Task**: ${r.domain.description}. Refinement trains on the addresses of ${r.domain.train_years} (${r.domain.train_bytes.toLocaleString('en-US')} bytes); ` +
      `every model is scored on the addresses of ${r.domain.heldout_years} (${r.domain.heldout_bytes.toLocaleString('en-US')} bytes), which nothing trains on. ` +
      `The general models learn from ${r.domain.general_years} (${r.domain.general_bytes.toLocaleString('en-US')} bytes) with a ${r.tokenizer.vocab_size}-id BPE tokenizer learned from ${r.tokenizer.learned_from}.`,
    '',
    `**Models**: Mamba, small d_model ${r.sizes.small.dModel} × ${r.sizes.small.layers} layers (${r.sizes.small.parameters.toLocaleString('en-US')} parameters), ` +
      `large d_model ${r.sizes.large.dModel} × ${r.sizes.large.layers} layers (${r.sizes.large.parameters.toLocaleString('en-US')}; ${r.sizes.parameter_ratio.toFixed(2)}× the small one). ` +
      `Steps (batch ${r.batch} × ${r.seq_len} tokens): ${Object.entries(r.steps)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; both general models see the same tokens.`,
    '',
    `**Result**: ${r.target.statement}.`,
    '',
    '![bits per byte on the held-out era and J per decoded token, per model](refine.svg)',
    '',
    '| model | what | parameters | trained | held-out era bits/byte | general held-out bits/byte | decode tok/s | J/token | training tokens | training J | training J with its base | artefact |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    "- bits/byte: mean next-token loss over windows of the held-out text, each window starting without context, over the text's bytes per token.",
    `- decode tok/s and J/token: greedy decoding of ${r.decode.tokens} tokens after a short prompt, one stream, one thread, the best of ${r.decode.rounds} interleaved rounds (J/token ${r.models[0].energy_kind}); LoRA runs unmerged (merged, it costs what the small model costs).`,
    `- energy: ${r.models[0].energy_kind === 'estimated' ? 'this machine has no energy counters, so every joule figure is an **estimate** (CPU time × power per core)' : 'measured by hardware counters'}; ` +
      '"training J with its base" adds the general training the model started from (and, for distillation, the teacher\'s).',
    '- artefact: what has to be shipped for the model on top of nothing (the LoRA adapter alone needs the small general base beside it).',
    `- the study is void unless the large general model beats the small one on general held-out text; here it ${r.valid ? 'does' : 'does **not**'}.`,
    '',
  ].join('\n');
}
