import { inputError } from '../../io/errors.js';
import { ORIGINAL_KNOWN, PRETRAINED_KEYS, asObject, bool, finiteNum, positiveInt, reader, tokenFields } from '../mamba/config.js';
import type { CheckpointLayout } from '../mamba/config.js';
import { defaultHeadDim, keptSsm, originalConfig } from '../mamba2/config.js';

/**
 * Mamba-3 configuration (SISO, or MIMO with `isMimo`), after state-spaces modules/mamba3.py: the
 * shape legend of every tensor of the model. No conv; per-token Δ, decay and trapezoid weight per
 * head; B and C RMS-normalised, biased per head and turned by data-dependent rotary angles. MIMO
 * gives each head R = mimo_rank pairs of B and C, and spreads its input and gate over R ranks (and
 * gathers the R outputs) with per-head weights mimo_x, mimo_z, mimo_o (H, R, P).
 *
 * Checkpoints: state-spaces' layout (config.json with ssm_cfg.layer "Mamba3", pytorch_model.bin)
 * is read and written by convert; transformers has no Mamba-3 class, so frugal's own saves use
 * the Hugging Face naming of its other models (backbone.embeddings.weight, backbone.layers.{i}.mixer.*)
 * with a config.json of model_type "mamba3" whose keys follow Mamba2Config's.
 */
export interface Mamba3Config {
  readonly modelType: 'mamba3';
  readonly dModel: number; // D
  readonly nLayer: number;
  readonly dState: number; // N
  readonly expand: number;
  readonly dInner: number; // ED = H · P
  readonly headDim: number; // P
  readonly nHeads: number; // H
  readonly nGroups: number; // G: heads share B and C in G groups
  readonly ropeFraction: number; // 0.5 or 1: the share of the state the rotary angles turn
  readonly nAngles: number; // S = floor(N · ropeFraction / 2): rotary angles per token
  readonly isMimo: boolean; // MIMO heads (their own rotary pairing: channel i with i + N/2)
  readonly mimoRank: number; // R: B/C pairs per head (1 when not MIMO)
  readonly aFloor: number; // the decay rate A is at most −aFloor
  readonly chunkSize: number; // the reference kernels' chunk (kept for the config; frugal's scan checkpoints every 16)
  readonly vocabSize: number;
  readonly layerNormEpsilon: number;
  readonly tieWordEmbeddings: boolean;
  readonly timeStepMin: number;
  readonly timeStepMax: number;
  readonly timeStepFloor: number;
  readonly rescalePrenormResidual: boolean;
  readonly residualInFp32: boolean;
  readonly initializerRange: number;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly tokenizer: 'byte' | 'file';
}

/** in_proj's output [z | x | B | C | dt | A | trap | angles]: 2ED + 2RGN + 3H + S. */
export function mamba3InProjDim(c: Mamba3Config): number {
  return 2 * c.dInner + 2 * c.mimoRank * c.nGroups * c.dState + 3 * c.nHeads + c.nAngles;
}

export type Mamba3Options = Partial<Omit<Mamba3Config, 'modelType' | 'dInner' | 'nHeads' | 'nAngles'>> & { dModel: number; nLayer: number };

/** R: mimo_rank when MIMO (the reference's default 4), 1 otherwise. */
function mimoRankOf(o: Mamba3Options, where: string): number {
  if (!o.isMimo) {
    if (o.mimoRank !== undefined && o.mimoRank !== 1) throw inputError(`${where}: mimo_rank ${o.mimoRank} needs is_mimo true`);
    return 1;
  }
  return positiveInt(o.mimoRank ?? 4, 'mimoRank', where);
}

export function createMamba3Config(o: Mamba3Options, where = 'model options'): Mamba3Config {
  const dModel = positiveInt(o.dModel, 'dModel', where),
    expand = positiveInt(o.expand ?? 2, 'expand', where),
    dInner = expand * dModel;
  const headDim = positiveInt(o.headDim ?? defaultHeadDim(dInner), 'headDim', where);
  if (dInner % headDim !== 0) throw inputError(`${where}: the inner width ${dInner} is not a multiple of the head size ${headDim}`);
  const nHeads = dInner / headDim,
    nGroups = positiveInt(o.nGroups ?? 1, 'nGroups', where);
  if (nHeads % nGroups !== 0) throw inputError(`${where}: ${nHeads} heads do not split into ${nGroups} groups of B and C`);
  const dState = positiveInt(o.dState ?? 128, 'dState', where),
    ropeFraction = o.ropeFraction ?? 0.5;
  if (ropeFraction !== 0.5 && ropeFraction !== 1) throw inputError(`${where}: rope_fraction must be 0.5 or 1.0, got ${ropeFraction}`);
  const nAngles = Math.floor(Math.floor(dState * ropeFraction) / 2);
  if (nAngles < 1) throw inputError(`${where}: a state of ${dState} leaves no rotary angle at rope_fraction ${ropeFraction}`);
  const isMimo = bool(o.isMimo ?? false, 'isMimo', where),
    mimoRank = mimoRankOf(o, where);
  // MIMO's turns pair channel i with i + N/2
  if (isMimo && dState % 2 !== 0) throw inputError(`${where}: MIMO needs an even state size, got ${dState}`);
  const c: Mamba3Config = {
    modelType: 'mamba3',
    dModel,
    nLayer: positiveInt(o.nLayer, 'nLayer', where),
    dState,
    expand,
    dInner,
    headDim,
    nHeads,
    nGroups,
    ropeFraction,
    nAngles,
    isMimo,
    mimoRank,
    aFloor: finiteNum(o.aFloor ?? 1e-4, 'aFloor', where),
    chunkSize: positiveInt(o.chunkSize ?? 64, 'chunkSize', where),
    vocabSize: positiveInt(o.vocabSize ?? 256, 'vocabSize', where),
    layerNormEpsilon: finiteNum(o.layerNormEpsilon ?? 1e-5, 'layerNormEpsilon', where),
    tieWordEmbeddings: bool(o.tieWordEmbeddings ?? true, 'tieWordEmbeddings', where),
    timeStepMin: finiteNum(o.timeStepMin ?? 1e-3, 'timeStepMin', where),
    timeStepMax: finiteNum(o.timeStepMax ?? 0.1, 'timeStepMax', where),
    timeStepFloor: finiteNum(o.timeStepFloor ?? 1e-4, 'timeStepFloor', where),
    rescalePrenormResidual: bool(o.rescalePrenormResidual ?? true, 'rescalePrenormResidual', where),
    residualInFp32: bool(o.residualInFp32 ?? true, 'residualInFp32', where),
    initializerRange: finiteNum(o.initializerRange ?? 0.02, 'initializerRange', where),
    padTokenId: o.padTokenId ?? 0,
    bosTokenId: o.bosTokenId ?? 0,
    eosTokenId: o.eosTokenId ?? 0,
    tokenizer: o.tokenizer ?? 'byte',
  };
  if (c.nLayer > 65536) throw inputError(`${where}: ${c.nLayer} layers is over the 65536 frugal accepts`);
  if (!(c.aFloor >= 0) || !(c.timeStepMin > 0 && c.timeStepMax >= c.timeStepMin))
    throw inputError(`${where}: need A_floor >= 0 and 0 < dt_min <= dt_max`);
  return Object.freeze(c);
}

/** Parameters from the shape legend (params.ts lists the same shapes). */
export function mamba3ParameterCount(c: Mamba3Config): number {
  const { dModel: D, dInner: ED, nHeads: H, dState: N, mimoRank: R, headDim: P } = c;
  const mimo = c.isMimo ? 3 * H * R * P : 0;
  const layer = D + mamba3InProjDim(c) * D + H + 2 * H * R * N + 2 * N + H + mimo + D * ED;
  return c.vocabSize * D * (c.tieWordEmbeddings ? 1 : 2) + c.nLayer * layer + D;
}

export interface Mamba3Parse {
  config: Mamba3Config;
  warnings: string[];
  layout: CheckpointLayout;
  original?: Record<string, unknown>;
}

/** Variants of the Mamba3 block frugal does not run, refused with the key that selects them. */
function refuse(s: Record<string, unknown>, o: Record<string, unknown>, file: string): void {
  const why =
    s.is_outproj_norm === true
      ? 'ssm_cfg.is_outproj_norm true (the gated output norm)'
      : o.d_intermediate !== undefined && o.d_intermediate !== 0
        ? `d_intermediate ${JSON.stringify(o.d_intermediate)} (MLP blocks)`
        : Array.isArray(o.attn_layer_idx) && o.attn_layer_idx.length > 0
          ? 'attn_layer_idx (attention layers)'
          : null;
  if (why) throw inputError(`${file}: ${why} is not supported; frugal runs Mamba-3's block without them`);
}

const SSM_KNOWN = new Set([
  'layer',
  'd_state',
  'expand',
  'headdim',
  'ngroups',
  'rope_fraction',
  'dt_min',
  'dt_max',
  'dt_init_floor',
  'A_floor',
  'is_outproj_norm',
  'is_mimo',
  'mimo_rank',
  'fuse_pregate_headwise_norm',
  'chunk_size',
  'dropout',
]);

/** Read a state-spaces config.json whose ssm_cfg.layer is "Mamba3". */
export function mamba3ConfigFromOriginal(o: Record<string, unknown>, file: string): Mamba3Parse {
  const warnings = Object.keys(o)
    .filter((k) => !ORIGINAL_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  const ssm = asObject(o.ssm_cfg ?? {}, `${file} ssm_cfg`);
  warnings.push(
    ...Object.keys(ssm)
      .filter((k) => !SSM_KNOWN.has(k))
      .map((k) => `${file}: unknown ssm_cfg key '${k}' ignored`),
  );
  refuse(ssm, o, file);
  for (const k of ['d_model', 'n_layer', 'vocab_size']) if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}'`);
  const r = reader(o, file),
    s = reader(ssm, `${file} ssm_cfg`),
    multiple = r.int('pad_vocab_size_multiple', 8) as number;
  const config = createMamba3Config(
    {
      dModel: r.int('d_model') as number,
      nLayer: r.int('n_layer') as number,
      vocabSize: Math.ceil((r.int('vocab_size') as number) / multiple) * multiple,
      dState: s.int('d_state', 128),
      expand: s.int('expand', 2),
      headDim: s.int('headdim', 64),
      nGroups: s.int('ngroups', 1),
      ropeFraction: s.num('rope_fraction', 0.5),
      isMimo: s.flag('is_mimo', false),
      mimoRank: ssm.is_mimo === true ? s.int('mimo_rank', 4) : undefined,
      aFloor: s.num('A_floor', 1e-4),
      chunkSize: s.int('chunk_size', 64),
      timeStepMin: s.num('dt_min', 0.001),
      timeStepMax: s.num('dt_max', 0.1),
      timeStepFloor: s.num('dt_init_floor', 1e-4),
      tieWordEmbeddings: r.flag('tie_embeddings', true),
      residualInFp32: r.flag('residual_in_fp32', true),
      tokenizer: 'file',
    },
    file,
  );
  return { config, warnings, layout: 'original', original: o };
}

const HF_KNOWN = new Set([
  'num_heads',
  'head_dim',
  'vocab_size',
  'hidden_size',
  'state_size',
  'num_hidden_layers',
  'layer_norm_epsilon',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'expand',
  'n_groups',
  'rope_fraction',
  'a_floor',
  'is_outproj_norm',
  'is_mimo',
  'mimo_rank',
  'chunk_size',
  'time_step_min',
  'time_step_max',
  'time_step_floor',
  'residual_in_fp32',
  'rescale_prenorm_residual',
  'initializer_range',
  'use_cache',
  'hidden_act',
  ...PRETRAINED_KEYS,
]);

/** Read frugal's Mamba-3 config.json (model_type "mamba3"). */
export function mamba3ConfigFromHF(j: unknown, file: string): Mamba3Parse {
  const o = asObject(j, file);
  const warnings = Object.keys(o)
    .filter((k) => !HF_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  refuse({ is_outproj_norm: o.is_outproj_norm }, {}, file);
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size'])
    if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}'`);
  const r = reader(o, file);
  const D = r.int('hidden_size') as number,
    expand = r.int('expand', 2) as number,
    headDim = r.int('head_dim', 64) as number;
  if (o.num_heads !== undefined && (r.int('num_heads') as number) * headDim !== expand * D) {
    throw inputError(`${file}: num_heads ${String(o.num_heads)} × head_dim ${headDim} must equal expand ${expand} × hidden_size ${D}`);
  }
  const config = createMamba3Config(
    {
      dModel: D,
      expand,
      headDim,
      nLayer: r.int('num_hidden_layers') as number,
      vocabSize: r.int('vocab_size'),
      dState: r.int('state_size', 128),
      nGroups: r.int('n_groups', 1),
      ropeFraction: r.num('rope_fraction', 0.5),
      isMimo: r.flag('is_mimo', false),
      mimoRank: o.is_mimo === true ? r.int('mimo_rank', 4) : undefined,
      aFloor: r.num('a_floor', 1e-4),
      chunkSize: r.int('chunk_size', 64),
      layerNormEpsilon: r.num('layer_norm_epsilon', 1e-5),
      tieWordEmbeddings: r.flag('tie_word_embeddings', true),
      timeStepMin: r.num('time_step_min', 0.001),
      timeStepMax: r.num('time_step_max', 0.1),
      timeStepFloor: r.num('time_step_floor', 1e-4),
      residualInFp32: r.flag('residual_in_fp32', true),
      rescalePrenormResidual: r.flag('rescale_prenorm_residual', true),
      initializerRange: r.num('initializer_range', 0.02),
      ...tokenFields(o, r, warnings),
    },
    file,
  );
  return { config, warnings, layout: 'hf' };
}

export function mamba3ConfigToHF(c: Mamba3Config): Record<string, unknown> {
  return {
    architectures: ['Mamba3ForCausalLM'],
    model_type: 'mamba3',
    num_heads: c.nHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    state_size: c.dState,
    num_hidden_layers: c.nLayer,
    layer_norm_epsilon: c.layerNormEpsilon,
    pad_token_id: c.padTokenId,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    expand: c.expand,
    n_groups: c.nGroups,
    rope_fraction: c.ropeFraction,
    a_floor: c.aFloor,
    is_outproj_norm: false,
    is_mimo: c.isMimo,
    ...(c.isMimo ? { mimo_rank: c.mimoRank } : {}),
    chunk_size: c.chunkSize,
    time_step_min: c.timeStepMin,
    time_step_max: c.timeStepMax,
    time_step_floor: c.timeStepFloor,
    residual_in_fp32: c.residualInFp32,
    rescale_prenorm_residual: c.rescalePrenormResidual,
    initializer_range: c.initializerRange,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: 'float32',
    frugal: { tokenizer: c.tokenizer },
  };
}

export function mamba3ConfigToOriginal(c: Mamba3Config, kept?: Record<string, unknown>): Record<string, unknown> {
  const k = kept ?? {};
  const { ssm, put } = keptSsm(k, 'Mamba3');
  put('d_state', c.dState, 128);
  put('expand', c.expand, 2);
  put('headdim', c.headDim, 64);
  put('ngroups', c.nGroups, 1);
  put('rope_fraction', c.ropeFraction, 0.5);
  put('A_floor', c.aFloor, 1e-4);
  put('is_mimo', c.isMimo, false);
  if (c.isMimo) ssm.mimo_rank = c.mimoRank;
  put('chunk_size', c.chunkSize, 64);
  put('dt_min', c.timeStepMin, 0.001);
  put('dt_max', c.timeStepMax, 0.1);
  put('dt_init_floor', c.timeStepFloor, 1e-4);
  return originalConfig(c, k, ssm);
}
