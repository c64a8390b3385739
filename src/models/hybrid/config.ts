import { inputError } from '../../io/errors.js';
import { PRETRAINED_KEYS, asObject, bool, positiveInt, reader } from '../mamba/config.js';
import { createMambaConfig } from '../mamba/config.js';
import type { MambaConfig } from '../mamba/config.js';
import { createMamba2Config } from '../mamba2/config.js';
import type { Mamba2Config } from '../mamba2/config.js';
import { defaultHeads, defaultIntermediate } from '../transformer/config.js';

/**
 * A hybrid of state-space and attention layers in the layout of transformers' BambaForCausalLM
 * (IBM's Bamba; Granite 4.0-H and Nemotron-H describe their layers the same way): every layer is
 *   h = h + mixer(RMSNorm(h)),  h = h + MLP(RMSNorm(h))
 * where the mixer is a Mamba-2 block (`mamba2`) or grouped-query attention with partial rotary
 * embeddings (`attention`), and the MLP is SwiGLU. frugal also allows a Mamba-1 block (`mamba`);
 * such a model is saved as model_type "frugal-hybrid", which only frugal reads.
 */
export type LayerType = 'mamba' | 'mamba2' | 'attention';
export const LAYER_TYPES: readonly LayerType[] = ['mamba', 'mamba2', 'attention'];

export interface HybridConfig {
  readonly modelType: 'bamba' | 'frugal-hybrid';
  readonly dModel: number; // D
  readonly nLayer: number;
  readonly layerTypes: readonly LayerType[];
  readonly vocabSize: number; // V
  readonly rmsNormEps: number; // every norm, the Mamba-2 gated norm included
  readonly tieWordEmbeddings: boolean;
  readonly intermediateSize: number; // F: SwiGLU width of every layer's MLP
  readonly mlpBias: boolean;
  readonly nHead: number; // H: attention query heads
  readonly nKvHead: number; // Hkv
  readonly headDim: number; // hd
  readonly rotaryDim: number; // rd: channels of each head the rotary embedding turns (Bamba: hd / 2)
  readonly ropeTheta: number;
  readonly attentionBias: boolean;
  readonly maxPositionEmbeddings: number;
  readonly mamba2: Mamba2Config; // the Mamba-2 layers' shape (its dModel, eps and layer count are the hybrid's)
  readonly mamba: MambaConfig; // the Mamba-1 layers' shape
  readonly initializerRange: number;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly tokenizer: 'byte' | 'file';
}

export interface HybridOptions {
  dModel: number;
  layerTypes: readonly string[];
  vocabSize?: number;
  dState?: number;
  nHead?: number;
  nKvHead?: number;
  intermediateSize?: number;
  tieWordEmbeddings?: boolean;
  rmsNormEps?: number;
  partialRotaryFactor?: number;
  ropeTheta?: number;
  mamba2?: Partial<Parameters<typeof createMamba2Config>[0]>;
}

/** A comma-separated layer list (--layer-types mamba2,attention,mamba2), checked. */
export function parseLayerTypes(list: readonly string[], where: string): LayerType[] {
  if (list.length === 0) throw inputError(`${where}: the layer list is empty; give one type per layer, e.g. mamba2,attention,mamba2`);
  for (const t of list) {
    if (!(LAYER_TYPES as readonly string[]).includes(t))
      throw inputError(`${where}: layer type '${t}' is not one of ${LAYER_TYPES.join(', ')}`);
  }
  return list as LayerType[];
}

/** Build a frozen hybrid config from frugal's own options (what --arch hybrid trains). */
export function createHybridConfig(o: HybridOptions, where = 'model options'): HybridConfig {
  const layerTypes = parseLayerTypes(o.layerTypes, where),
    D = positiveInt(o.dModel, 'dModel', where),
    nLayer = layerTypes.length;
  const nHead = positiveInt(o.nHead ?? defaultHeads(D), 'nHead', where),
    nKvHead = positiveInt(o.nKvHead ?? nHead, 'nKvHead', where);
  if (D % nHead !== 0 || nHead % nKvHead !== 0)
    throw inputError(`${where}: ${nHead} attention heads (${nKvHead} key/value heads) do not divide the width ${D}`);
  const headDim = D / nHead,
    rotaryDim = 2 * Math.floor((headDim * (o.partialRotaryFactor ?? 0.5)) / 2);
  if (layerTypes.includes('attention') && rotaryDim < 2)
    throw inputError(`${where}: heads of ${headDim} channels leave no room for rotary embeddings`);
  const eps = o.rmsNormEps ?? 1e-5,
    V = o.vocabSize ?? 256;
  const c: HybridConfig = {
    modelType: layerTypes.includes('mamba') ? 'frugal-hybrid' : 'bamba',
    dModel: D,
    nLayer,
    layerTypes,
    vocabSize: V,
    rmsNormEps: eps,
    tieWordEmbeddings: bool(o.tieWordEmbeddings ?? true, 'tieWordEmbeddings', where),
    intermediateSize: positiveInt(o.intermediateSize ?? defaultIntermediate(D), 'intermediateSize', where),
    mlpBias: false,
    nHead,
    nKvHead,
    headDim,
    rotaryDim,
    ropeTheta: o.ropeTheta ?? 10000,
    attentionBias: false,
    maxPositionEmbeddings: 262144,
    mamba2: createMamba2Config({ dState: o.dState ?? 128, ...o.mamba2, dModel: D, nLayer, layerNormEpsilon: eps, vocabSize: V }, where),
    mamba: createMambaConfig({ dModel: D, nLayer, dState: o.dState ?? 16, layerNormEpsilon: eps, vocabSize: V }, where),
    initializerRange: 0.02,
    padTokenId: 0,
    bosTokenId: 0,
    eosTokenId: 0,
    tokenizer: 'byte',
  };
  return Object.freeze(c);
}

/** transformers' BambaConfig keys (https://huggingface.co/docs/transformers/model_doc/bamba) and PRETRAINED_KEYS. */
const HF_KNOWN = new Set([
  'vocab_size',
  'tie_word_embeddings',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'hidden_act',
  'initializer_range',
  'rms_norm_eps',
  'use_cache',
  'num_logits_to_keep',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'max_position_embeddings',
  'attention_dropout',
  'attn_layer_indices',
  'mamba_n_heads',
  'mamba_d_head',
  'mamba_n_groups',
  'mamba_d_state',
  'mamba_d_conv',
  'mamba_expand',
  'mamba_chunk_size',
  'mamba_conv_bias',
  'mamba_proj_bias',
  'time_step_min',
  'time_step_max',
  'time_step_limit',
  'z_loss_coefficient',
  'rope_theta',
  'rope_parameters',
  'rope_scaling',
  'partial_rotary_factor',
  'attention_bias',
  'mlp_bias',
  'head_dim',
  'layer_types',
  'mamba1_d_state',
  'mamba1_d_conv',
  'mamba1_expand',
  'mamba1_dt_rank',
  ...PRETRAINED_KEYS,
]);

/** The layers' types: layer_types (Granite 4.0-H style, which frugal writes too) or Bamba's attn_layer_indices. */
function layersOf(o: Record<string, unknown>, nLayer: number, file: string): LayerType[] {
  if (Array.isArray(o.layer_types)) {
    const t = parseLayerTypes(
      (o.layer_types as unknown[]).map((v) => (v === 'mamba' && o.model_type === 'bamba' ? 'mamba2' : String(v))),
      file,
    );
    if (t.length !== nLayer) throw inputError(`${file}: layer_types lists ${t.length} layers, num_hidden_layers is ${nLayer}`);
    return t;
  }
  const attn = o.attn_layer_indices ?? [];
  if (!Array.isArray(attn) || attn.some((i) => !Number.isInteger(i) || i < 0 || i >= nLayer)) {
    throw inputError(`${file}: attn_layer_indices must list layer numbers below ${nLayer}, got ${JSON.stringify(attn)}`);
  }
  return Array.from({ length: nLayer }, (_, i) => (attn.includes(i) ? 'attention' : 'mamba2'));
}

/** Read a transformers BambaConfig (or frugal's hybrid) config.json leniently. */
export function hybridConfigFromHF(j: unknown, file: string): { config: HybridConfig; warnings: string[] } {
  const o = asObject(j, file);
  const warnings = Object.keys(o)
    .filter((k) => !HF_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu')
    throw inputError(`${file}: hidden_act '${String(o.hidden_act)}' is not supported (Bamba's MLP uses 'silu')`);
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size', 'num_attention_heads', 'intermediate_size']) {
    if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}' (is this a Bamba config.json?)`);
  }
  const r = reader(o, file),
    D = r.int('hidden_size') as number,
    nLayer = r.int('num_hidden_layers') as number;
  const layerTypes = layersOf(o, nLayer, file),
    V = r.int('vocab_size') as number,
    eps = r.num('rms_norm_eps', 1e-5) as number;
  const nHead = r.int('num_attention_heads') as number,
    headDim = r.int('head_dim', Math.floor(D / nHead)) as number;
  const rope = (o.rope_parameters ?? o.rope_scaling) as Record<string, unknown> | null | undefined;
  if (rope && (rope.rope_type ?? rope.type ?? 'default') !== 'default')
    throw inputError(`${file}: rope type '${String(rope.rope_type ?? rope.type)}' is not supported`);
  const factor = r.num(
    'partial_rotary_factor',
    typeof rope?.partial_rotary_factor === 'number' ? rope.partial_rotary_factor : 0.5,
  ) as number;
  const expand = r.int('mamba_expand', 2) as number,
    nH = r.int('mamba_n_heads', 128) as number;
  const dHead = o.mamba_d_head === undefined || o.mamba_d_head === 'auto' ? (expand * D) / nH : (r.int('mamba_d_head') as number);
  const limit = o.time_step_limit;
  const frugal = (typeof o.frugal === 'object' && o.frugal !== null ? o.frugal : {}) as Record<string, unknown>;
  const config: HybridConfig = Object.freeze({
    modelType: layerTypes.includes('mamba') ? 'frugal-hybrid' : 'bamba',
    dModel: D,
    nLayer,
    layerTypes,
    vocabSize: V,
    rmsNormEps: eps,
    tieWordEmbeddings: r.flag('tie_word_embeddings', false) as boolean,
    intermediateSize: r.int('intermediate_size') as number,
    mlpBias: r.flag('mlp_bias', false) as boolean,
    nHead,
    nKvHead: r.int('num_key_value_heads', nHead) as number,
    headDim,
    rotaryDim: 2 * Math.floor((headDim * factor) / 2),
    ropeTheta: r.num('rope_theta', typeof rope?.rope_theta === 'number' ? rope.rope_theta : 10000) as number,
    attentionBias: r.flag('attention_bias', false) as boolean,
    maxPositionEmbeddings: r.int('max_position_embeddings', 262144) as number,
    mamba2: createMamba2Config(
      {
        dModel: D,
        nLayer,
        vocabSize: V,
        layerNormEpsilon: eps,
        expand,
        headDim: dHead,
        nHeads: nH,
        nGroups: r.int('mamba_n_groups', 1),
        dState: r.int('mamba_d_state', 256),
        dConv: r.int('mamba_d_conv', 4),
        chunkSize: r.int('mamba_chunk_size', 256),
        useConvBias: r.flag('mamba_conv_bias', true),
        useBias: r.flag('mamba_proj_bias', false),
        timeStepLimit: Array.isArray(limit) ? ([limit[0] ?? 0, limit[1] ?? Infinity] as [number, number]) : undefined,
        timeStepMin: r.num('time_step_min', 0.001),
        timeStepMax: r.num('time_step_max', 0.1),
        rescalePrenormResidual: false,
      },
      file,
    ),
    mamba: createMambaConfig(
      {
        dModel: D,
        nLayer,
        vocabSize: V,
        layerNormEpsilon: eps,
        dState: r.int('mamba1_d_state', 16),
        dConv: r.int('mamba1_d_conv', 4),
        expand: r.int('mamba1_expand', 2),
        dtRank: o.mamba1_dt_rank === undefined ? 'auto' : r.int('mamba1_dt_rank'),
      },
      file,
    ),
    initializerRange: r.num('initializer_range', 0.02) as number,
    padTokenId: r.tokenId('pad_token_id', warnings) ?? 0,
    bosTokenId: r.tokenId('bos_token_id', warnings) ?? 1,
    eosTokenId: r.tokenId('eos_token_id', warnings) ?? 2,
    tokenizer: frugal.tokenizer === 'byte' ? 'byte' : 'file',
  });
  if (nHead % config.nKvHead !== 0)
    throw inputError(`${file}: ${nHead} attention heads are not a multiple of ${config.nKvHead} key/value heads`);
  return { config, warnings };
}

/** The config.json transformers' BambaForCausalLM expects (frugal-hybrid when a Mamba-1 layer is present). */
export function hybridConfigToHF(c: HybridConfig): Record<string, unknown> {
  const m = c.mamba2;
  return {
    architectures: [c.modelType === 'bamba' ? 'BambaForCausalLM' : 'FrugalHybridForCausalLM'],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_size: c.dModel,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKvHead,
    head_dim: c.headDim,
    hidden_act: 'silu',
    initializer_range: c.initializerRange,
    rms_norm_eps: c.rmsNormEps,
    use_cache: true,
    pad_token_id: c.padTokenId,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    max_position_embeddings: c.maxPositionEmbeddings,
    attention_dropout: 0.0,
    attn_layer_indices: c.layerTypes.flatMap((t, i) => (t === 'attention' ? [i] : [])),
    layer_types: c.layerTypes.map((t) => (t === 'mamba2' && c.modelType === 'bamba' ? 'mamba' : t)),
    mamba_n_heads: m.nHeads,
    mamba_d_head: m.headDim,
    mamba_n_groups: m.nGroups,
    mamba_d_state: m.dState,
    mamba_d_conv: m.dConv,
    mamba_expand: m.expand,
    mamba_chunk_size: m.chunkSize,
    mamba_conv_bias: m.useConvBias,
    mamba_proj_bias: m.useBias,
    time_step_min: m.timeStepMin,
    time_step_max: m.timeStepMax,
    time_step_limit: [...m.timeStepLimit],
    rope_theta: c.ropeTheta,
    partial_rotary_factor: c.rotaryDim / c.headDim,
    attention_bias: c.attentionBias,
    mlp_bias: c.mlpBias,
    ...(c.modelType === 'frugal-hybrid'
      ? {
          mamba1_d_state: c.mamba.dState,
          mamba1_d_conv: c.mamba.dConv,
          mamba1_expand: c.mamba.expand,
          mamba1_dt_rank: c.mamba.dtRank,
        }
      : {}),
    torch_dtype: 'float32',
    frugal: { tokenizer: c.tokenizer },
  };
}
