import { basename } from 'node:path';
import type { GgufValue } from '../io/gguf.js';
import { mamba2ConfigFromHF, mamba2ConfigFromOriginal, mamba2ConfigToHF, mamba2ConfigToOriginal } from './mamba2/config.js';
import type { Mamba2Config } from './mamba2/config.js';
import { mamba2ParamSpecs } from './mamba2/params.js';
import type { ConvertOpts, GgufPlan, Parsed } from './convert.js';
import { mamba3ConfigFromHF, mamba3ConfigFromOriginal, mamba3ConfigToHF, mamba3ConfigToOriginal } from './mamba3/config.js';
import { mamba3ParamSpecs } from './mamba3/params.js';

/**
 * Mamba-3: state-spaces' layout and frugal's own (model_type "mamba3"; transformers has no
 * Mamba-3 class); llama.cpp has no Mamba-3 architecture, so no GGUF.
 */
export function mamba3Source(json: unknown, file: string): Parsed {
  const o = json as Record<string, unknown>;
  const p = o.model_type === undefined ? mamba3ConfigFromOriginal(o, file) : mamba3ConfigFromHF(o, file),
    c = p.config;
  return {
    specs: mamba3ParamSpecs(c),
    tied: c.tieWordEmbeddings,
    layout: p.layout,
    warnings: p.warnings,
    original: p.original,
    toHF: () => mamba3ConfigToHF(c),
    toOriginal: (kept) => mamba3ConfigToOriginal(c, kept),
    gguf: () => ({ refuse: 'llama.cpp has no Mamba-3 architecture', kv: [], tensor: (hf, shape, values) => ({ name: hf, shape, values }) }),
  };
}

/**
 * Mamba-2's and Mamba-3's sides of `frugal convert`. Mamba-2: transformers' and state-spaces' config.json, and llama.cpp's
 * GGUF architecture `mamba2` (the tensor names and shapes of its convert_hf_to_gguf.py Mamba2Model:
 * A = −exp(A_log) and D as (H, 1), the gated norm's weight as (G, ED/G), dt_bias as ssm_dt.bias).
 */
export function mamba2Source(json: unknown, file: string): Parsed {
  const o = json as Record<string, unknown>;
  const p = o.model_type === undefined ? mamba2ConfigFromOriginal(o, file) : mamba2ConfigFromHF(o, file),
    c = p.config;
  return {
    specs: mamba2ParamSpecs(c),
    tied: c.tieWordEmbeddings,
    layout: p.layout,
    warnings: p.warnings,
    original: p.original,
    toHF: () => mamba2ConfigToHF(c),
    toOriginal: (kept) => mamba2ConfigToOriginal(c, kept),
    gguf: (_s, opts) => mamba2Gguf(c, opts),
  };
}

/** llama.cpp's names for Mamba-2 tensors, keyed by HF name without the layer. */
const NAMES: Record<string, string> = {
  'norm.weight': 'attn_norm.weight',
  'mixer.in_proj.weight': 'ssm_in.weight',
  'mixer.conv1d.weight': 'ssm_conv1d.weight',
  'mixer.conv1d.bias': 'ssm_conv1d.bias',
  'mixer.dt_bias': 'ssm_dt.bias',
  'mixer.A_log': 'ssm_a',
  'mixer.D': 'ssm_d',
  'mixer.norm.weight': 'ssm_norm.weight',
  'mixer.out_proj.weight': 'ssm_out.weight',
};

export function mamba2GgufName(hf: string): string {
  if (hf === 'backbone.embeddings.weight') return 'token_embd.weight';
  if (hf === 'backbone.norm_f.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m = /^backbone\.layers\.(\d+)\.(.+)$/.exec(hf);
  const n = m ? NAMES[m[2]] : undefined;
  if (!m || !n) throw new Error(`no GGUF name for ${hf}`);
  return `blk.${m[1]}.${n}`;
}

function mamba2Gguf(c: Mamba2Config, o: ConvertOpts): GgufPlan {
  const refuse =
    c.dInner !== 2 * c.dModel
      ? `the inner width ${c.dInner} is not 2 × hidden_size (llama.cpp supports expand = 2 only)`
      : c.useBias
        ? 'use_bias is true (llama.cpp has no in_proj/out_proj bias)'
        : !c.useConvBias
          ? 'use_conv_bias is false (llama.cpp needs the conv1d bias)'
          : c.timeStepLimit[0] !== 0 || c.timeStepLimit[1] !== Infinity
            ? `time_step_limit [${c.timeStepLimit}] clamps Δ, which llama.cpp's mamba2 does not`
            : null;
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const kv: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'mamba2' }],
    ['general.name', { type: 'string', value: basename(o.model) }],
    ['mamba2.context_length', u32(2 ** 20)],
    ['mamba2.embedding_length', u32(c.dModel)],
    ['mamba2.feed_forward_length', u32(0)],
    ['mamba2.attention.head_count', u32(0)],
    ['mamba2.block_count', u32(c.nLayer)],
    ['mamba2.ssm.conv_kernel', u32(c.dConv)],
    ['mamba2.ssm.inner_size', u32(c.dInner)],
    ['mamba2.ssm.state_size', u32(c.dState)],
    ['mamba2.ssm.time_step_rank', u32(c.nHeads)],
    ['mamba2.ssm.group_count', u32(c.nGroups)],
    ['mamba2.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.layerNormEpsilon }],
  ];
  return {
    refuse,
    kv,
    tensor: (hf, shape, v) => {
      const name = mamba2GgufName(hf);
      if (hf.endsWith('.A_log')) for (let i = 0; i < v.length; i++) v[i] = -Math.exp(v[i]);
      const out = hf.endsWith('conv1d.weight')
        ? [shape[0], shape[2]] // (CD, 1, K) -> (CD, K)
        : hf.endsWith('.A_log') || hf.endsWith('.D')
          ? [shape[0], 1] // (H) -> (H, 1)
          : hf.endsWith('mixer.norm.weight')
            ? [c.nGroups, shape[0] / c.nGroups] // (ED) -> (G, ED/G)
            : shape;
      return { name, shape: out, values: v };
    },
  };
}
