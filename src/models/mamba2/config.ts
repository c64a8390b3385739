import { inputError } from '../../io/errors.js';
import { ORIGINAL_KNOWN, PRETRAINED_KEYS, asObject, bool, finiteNum, positiveInt, reader, tokenFields } from '../mamba/config.js';
import type { HFParseResult as MambaParse } from '../mamba/config.js';

/**
 * Mamba-2 configuration (state-spaces mamba2.py; transformers' Mamba2Config): the shape legend of
 * every tensor of the model. Field names are frugal's; the readers below translate transformers'
 * keys and state-spaces' ssm_cfg.
 */
export interface Mamba2Config {
  readonly modelType: 'mamba2';
  readonly dModel: number; // D
  readonly nLayer: number;
  readonly dState: number; // N
  readonly dConv: number; // K, causal conv kernel over x, B and C
  readonly expand: number;
  readonly dInner: number; // ED = expand · D = H · P
  readonly headDim: number; // P
  readonly nHeads: number; // H: each head has one decay A_h, one Δ, one D
  readonly nGroups: number; // G: heads share B and C in G groups (head h reads group h / (H/G))
  readonly chunkSize: number; // Q: tokens per chunk of the SSD in training and prefill
  readonly vocabSize: number; // V: rows of the output head, padding included
  readonly layerNormEpsilon: number; // the block norms, norm_f and the gated norm
  readonly useBias: boolean; // in_proj / out_proj bias
  readonly useConvBias: boolean;
  readonly tieWordEmbeddings: boolean;
  readonly timeStepLimit: readonly [number, number]; // Δ is clamped to [lo, hi]
  // initialisation-only (kept so a saved config round-trips)
  readonly initializerRange: number;
  readonly timeStepMin: number;
  readonly timeStepMax: number;
  readonly timeStepFloor: number;
  readonly aInitRange: readonly [number, number]; // A = −uniform(lo, hi) at init
  readonly rescalePrenormResidual: boolean;
  readonly residualInFp32: boolean;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly tokenizer: 'byte' | 'file';
}

/** The conv runs over x, B and C: ED + 2·G·N channels. */
export function convDim(c: Mamba2Config): number {
  return c.dInner + 2 * c.nGroups * c.dState;
}
/** in_proj's output [z | x B C | dt]: ED + (ED + 2GN) + H. */
export function inProjDim(c: Mamba2Config): number {
  return 2 * c.dInner + 2 * c.nGroups * c.dState + c.nHeads;
}

export type Mamba2Options = Partial<Omit<Mamba2Config, 'modelType' | 'dInner' | 'nHeads'>> & {
  dModel: number;
  nLayer: number;
  dInner?: number;
  nHeads?: number;
};

const OPTION_KEYS = new Set([
  'dModel',
  'nLayer',
  'dState',
  'dConv',
  'expand',
  'dInner',
  'headDim',
  'nHeads',
  'nGroups',
  'chunkSize',
  'vocabSize',
  'layerNormEpsilon',
  'useBias',
  'useConvBias',
  'tieWordEmbeddings',
  'timeStepLimit',
  'initializerRange',
  'timeStepMin',
  'timeStepMax',
  'timeStepFloor',
  'aInitRange',
  'rescalePrenormResidual',
  'residualInFp32',
  'padTokenId',
  'bosTokenId',
  'eosTokenId',
  'tokenizer',
]);

/** Head size by default: 64 (the published models'), or the largest divisor of ED below it for small widths. */
export function defaultHeadDim(dInner: number): number {
  for (let p = Math.min(64, dInner); p > 1; p--) if (dInner % p === 0) return p;
  return 1;
}

function range(v: unknown, key: string, where: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => typeof x !== 'number' || Number.isNaN(x)) || !(v[0] >= 0 && v[1] > v[0])) {
    throw inputError(`${where}: ${key} must be a pair [lo, hi] with 0 <= lo < hi, got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1]];
}

/** Build a frozen config from frugal's own options (strict: an unknown key is an error that names it). */
export function createMamba2Config(o: Mamba2Options, where = 'model options'): Mamba2Config {
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw inputError(`${where}: unknown option '${k}'`);
  const dModel = positiveInt(o.dModel, 'dModel', where);
  const expand = positiveInt(o.expand ?? 2, 'expand', where);
  const dInner = positiveInt(o.dInner ?? expand * dModel, 'dInner', where);
  const headDim = positiveInt(o.headDim ?? (o.nHeads !== undefined ? dInner / o.nHeads : defaultHeadDim(dInner)), 'headDim', where);
  if (dInner % headDim !== 0) throw inputError(`${where}: the inner width ${dInner} is not a multiple of the head size ${headDim}`);
  const nHeads = dInner / headDim;
  if (o.nHeads !== undefined && o.nHeads !== nHeads)
    throw inputError(`${where}: ${o.nHeads} heads of ${headDim} do not make the inner width ${dInner}`);
  const nGroups = positiveInt(o.nGroups ?? 1, 'nGroups', where);
  if (nHeads % nGroups !== 0) throw inputError(`${where}: ${nHeads} heads do not split into ${nGroups} groups of B and C`);
  const c: Mamba2Config = {
    modelType: 'mamba2',
    dModel,
    expand,
    dInner,
    headDim,
    nHeads,
    nGroups,
    nLayer: positiveInt(o.nLayer, 'nLayer', where),
    dState: positiveInt(o.dState ?? 128, 'dState', where),
    dConv: positiveInt(o.dConv ?? 4, 'dConv', where),
    chunkSize: positiveInt(o.chunkSize ?? 256, 'chunkSize', where),
    vocabSize: positiveInt(o.vocabSize ?? 256, 'vocabSize', where),
    layerNormEpsilon: finiteNum(o.layerNormEpsilon ?? 1e-5, 'layerNormEpsilon', where),
    useBias: bool(o.useBias ?? false, 'useBias', where),
    useConvBias: bool(o.useConvBias ?? true, 'useConvBias', where),
    tieWordEmbeddings: bool(o.tieWordEmbeddings ?? true, 'tieWordEmbeddings', where),
    timeStepLimit: range(o.timeStepLimit ?? [0, Infinity], 'timeStepLimit', where),
    initializerRange: finiteNum(o.initializerRange ?? 0.02, 'initializerRange', where),
    timeStepMin: finiteNum(o.timeStepMin ?? 1e-3, 'timeStepMin', where),
    timeStepMax: finiteNum(o.timeStepMax ?? 0.1, 'timeStepMax', where),
    timeStepFloor: finiteNum(o.timeStepFloor ?? 1e-4, 'timeStepFloor', where),
    aInitRange: range(o.aInitRange ?? [1, 16], 'aInitRange', where),
    rescalePrenormResidual: bool(o.rescalePrenormResidual ?? true, 'rescalePrenormResidual', where),
    residualInFp32: bool(o.residualInFp32 ?? true, 'residualInFp32', where),
    padTokenId: o.padTokenId ?? 0,
    bosTokenId: o.bosTokenId ?? 0,
    eosTokenId: o.eosTokenId ?? 0,
    tokenizer: o.tokenizer ?? 'byte',
  };
  if (c.layerNormEpsilon <= 0) throw inputError(`${where}: layer_norm_epsilon must be > 0`);
  if (c.nLayer > 65536) throw inputError(`${where}: ${c.nLayer} layers is over the 65536 frugal accepts`);
  if (!(c.timeStepMin > 0 && c.timeStepMax >= c.timeStepMin)) throw inputError(`${where}: need 0 < time_step_min <= time_step_max`);
  return Object.freeze(c);
}

/** Parameters of one Mamba-2 mixer and its block norm (params.ts lists the same shapes). */
export function mamba2LayerParameterCount(c: Mamba2Config): number {
  const { dModel: D, dInner: ED, nHeads: H, dConv: K } = c,
    CD = convDim(c),
    IP = inProjDim(c);
  return D + IP * D + (c.useBias ? IP + D : 0) + CD * K + (c.useConvBias ? CD : 0) + 3 * H + ED + D * ED;
}

/** Parameters of a model of config `c`, from the shape legend (a forged config must be refused by arithmetic). */
export function mamba2ParameterCount(c: Mamba2Config): number {
  return c.vocabSize * c.dModel * (c.tieWordEmbeddings ? 1 : 2) + c.nLayer * mamba2LayerParameterCount(c) + c.dModel;
}

export interface Mamba2Parse {
  config: Mamba2Config;
  warnings: string[];
  layout: MambaParse['layout'];
  original?: Record<string, unknown>;
}

/** transformers' Mamba2Config keys (https://huggingface.co/docs/transformers/model_doc/mamba2) and PRETRAINED_KEYS. */
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
  'conv_kernel',
  'n_groups',
  'use_bias',
  'use_conv_bias',
  'hidden_act',
  'initializer_range',
  'residual_in_fp32',
  'time_step_rank',
  'time_step_min',
  'time_step_max',
  'time_step_floor',
  'time_step_limit',
  'rescale_prenorm_residual',
  'use_cache',
  'rms_norm',
  'chunk_size',
  ...PRETRAINED_KEYS,
]);

/**
 * time_step_limit as read: a pair, where a writer that cannot write Infinity may have left null
 * for an unbounded end (read as 0 or ∞, with a warning).
 */
function readLimit(v: unknown, file: string, warnings: string[]): [number, number] | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.length === 2 && (v[0] === null || v[1] === null)) {
    warnings.push(`${file}: time_step_limit ${JSON.stringify(v)} read as [${v[0] ?? 0}, ${v[1] ?? 'Infinity'}]`);
    return [v[0] ?? 0, v[1] ?? Infinity];
  }
  return range(v, 'time_step_limit', file);
}

/** Read a transformers Mamba2Config object leniently (documented keys accepted, unknown ones warned about). */
export function mamba2ConfigFromHF(j: unknown, file: string): Mamba2Parse {
  const o = asObject(j, file);
  const warnings = Object.keys(o)
    .filter((k) => !HF_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu')
    throw inputError(`${file}: hidden_act '${String(o.hidden_act)}' is not supported (Mamba-2 uses 'silu')`);
  if (o.rms_norm === false)
    throw inputError(`${file}: rms_norm false (no gated norm) is not supported; Mamba-2 checkpoints use the gated RMSNorm`);
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size']) {
    if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}' (is this a Mamba-2 config.json?)`);
  }
  const r = reader(o, file);
  const D = r.int('hidden_size') as number,
    expand = r.int('expand', 2) as number;
  const headDim = r.int('head_dim', 64) as number,
    nHeads = r.int('num_heads', 128) as number;
  if (nHeads * headDim !== expand * D) {
    throw inputError(
      `${file}: num_heads ${nHeads} × head_dim ${headDim} must equal expand ${expand} × hidden_size ${D} (as Mamba2Config requires)`,
    );
  }
  const config = createMamba2Config(
    {
      dModel: D,
      expand,
      headDim,
      nHeads,
      nLayer: r.int('num_hidden_layers') as number,
      vocabSize: r.int('vocab_size'),
      dState: r.int('state_size', 128),
      dConv: r.int('conv_kernel', 4),
      nGroups: r.int('n_groups', 8),
      chunkSize: r.int('chunk_size', 256),
      layerNormEpsilon: r.num('layer_norm_epsilon', 1e-5),
      useBias: r.flag('use_bias', false),
      useConvBias: r.flag('use_conv_bias', true),
      // Mamba2Config's own default is an untied head
      tieWordEmbeddings: r.flag('tie_word_embeddings', false),
      timeStepLimit: readLimit(o.time_step_limit, file, warnings),
      initializerRange: r.num('initializer_range', 0.1),
      timeStepMin: r.num('time_step_min', 0.001),
      timeStepMax: r.num('time_step_max', 0.1),
      timeStepFloor: r.num('time_step_floor', 1e-4),
      rescalePrenormResidual: r.flag('rescale_prenorm_residual', false),
      residualInFp32: r.flag('residual_in_fp32', true),
      ...tokenFields(o, r, warnings),
    },
    file,
  );
  return { config, warnings, layout: 'hf' };
}

/** mamba_ssm's MambaConfig keys and the Mamba2 block's ssm_cfg (modules/mamba2.py). */
const SSM_KNOWN = new Set([
  'layer',
  'd_state',
  'd_conv',
  'conv_init',
  'expand',
  'headdim',
  'd_ssm',
  'ngroups',
  'A_init_range',
  'D_has_hdim',
  'rmsnorm',
  'norm_before_gate',
  'dt_min',
  'dt_max',
  'dt_init_floor',
  'dt_limit',
  'bias',
  'conv_bias',
  'chunk_size',
  'use_mem_eff_path',
]);

/** Variants of the Mamba2 block frugal does not run, refused with the key that selects them. */
function refuseVariants(ssm: Record<string, unknown>, o: Record<string, unknown>, file: string, dInner: number): void {
  const why =
    ssm.d_ssm !== undefined && ssm.d_ssm !== null && ssm.d_ssm !== dInner
      ? `ssm_cfg.d_ssm ${JSON.stringify(ssm.d_ssm)} (a gated MLP beside the SSM)`
      : ssm.D_has_hdim === true
        ? 'ssm_cfg.D_has_hdim true (a D per channel)'
        : ssm.rmsnorm === false
          ? 'ssm_cfg.rmsnorm false'
          : ssm.norm_before_gate === true
            ? 'ssm_cfg.norm_before_gate true'
            : o.d_intermediate !== undefined && o.d_intermediate !== 0
              ? `d_intermediate ${JSON.stringify(o.d_intermediate)} (MLP blocks)`
              : Array.isArray(o.attn_layer_idx) && o.attn_layer_idx.length > 0
                ? "attn_layer_idx (attention layers: load the hybrid in Bamba's layout)"
                : o.rms_norm === false
                  ? 'rms_norm false (LayerNorm blocks)'
                  : null;
  if (why) throw inputError(`${file}: ${why} is not supported; frugal runs the Mamba2 block of the published mamba2-* checkpoints`);
}

/** Read a state-spaces (mamba_ssm) config.json whose ssm_cfg.layer is "Mamba2". */
export function mamba2ConfigFromOriginal(o: Record<string, unknown>, file: string): Mamba2Parse {
  const warnings = Object.keys(o)
    .filter((k) => !ORIGINAL_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  const ssm = asObject(o.ssm_cfg ?? {}, `${file} ssm_cfg`);
  warnings.push(
    ...Object.keys(ssm)
      .filter((k) => !SSM_KNOWN.has(k))
      .map((k) => `${file}: unknown ssm_cfg key '${k}' ignored`),
  );
  for (const k of ['d_model', 'n_layer', 'vocab_size']) if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}'`);
  const r = reader(o, file),
    s = reader(ssm, `${file} ssm_cfg`);
  const D = r.int('d_model') as number,
    expand = s.int('expand', 2) as number;
  refuseVariants(ssm, o, file, expand * D);
  const multiple = r.int('pad_vocab_size_multiple', 8) as number,
    vocab = r.int('vocab_size') as number;
  const config = createMamba2Config(
    {
      dModel: D,
      expand,
      nLayer: r.int('n_layer') as number,
      vocabSize: Math.ceil(vocab / multiple) * multiple, // mamba_ssm pads the embedding and head rows
      dState: s.int('d_state', 128),
      dConv: s.int('d_conv', 4),
      headDim: s.int('headdim', 64),
      nGroups: s.int('ngroups', 1),
      chunkSize: s.int('chunk_size', 256),
      layerNormEpsilon: 1e-5, // mamba_ssm's RMSNorm and the gated norm; the original config has no key for it
      useBias: s.flag('bias', false),
      useConvBias: s.flag('conv_bias', true),
      tieWordEmbeddings: r.flag('tie_embeddings', true),
      timeStepLimit: ssm.dt_limit === undefined ? undefined : readLimit(ssm.dt_limit, `${file} ssm_cfg.dt_limit`, warnings),
      aInitRange: ssm.A_init_range === undefined ? undefined : range(ssm.A_init_range, 'ssm_cfg.A_init_range', file),
      initializerRange: 0.02,
      timeStepMin: s.num('dt_min', 0.001),
      timeStepMax: s.num('dt_max', 0.1),
      timeStepFloor: s.num('dt_init_floor', 1e-4),
      rescalePrenormResidual: true,
      residualInFp32: r.flag('residual_in_fp32', true),
      tokenizer: 'file',
    },
    file,
  );
  return { config, warnings, layout: 'original', original: o };
}

/** The config.json transformers' Mamba2ForCausalLM.from_pretrained expects, plus frugal's own block. */
export function mamba2ConfigToHF(c: Mamba2Config): Record<string, unknown> {
  return {
    architectures: ['Mamba2ForCausalLM'],
    model_type: 'mamba2',
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
    conv_kernel: c.dConv,
    n_groups: c.nGroups,
    use_bias: c.useBias,
    use_conv_bias: c.useConvBias,
    hidden_act: 'silu',
    initializer_range: c.initializerRange,
    residual_in_fp32: c.residualInFp32,
    time_step_rank: Math.ceil(c.dModel / 16), // read by Mamba2Config, used by no layer
    time_step_min: c.timeStepMin,
    time_step_max: c.timeStepMax,
    time_step_floor: c.timeStepFloor,
    time_step_limit: [...c.timeStepLimit],
    rescale_prenorm_residual: c.rescalePrenormResidual,
    use_cache: true,
    rms_norm: true,
    chunk_size: c.chunkSize,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: 'float32',
    frugal: { tokenizer: c.tokenizer },
  };
}

/**
 * A state-spaces config.json (ssm_cfg.layer "Mamba2") for `c`; keys of `kept` (the original
 * config read earlier) stay as they were wherever they still describe `c`.
 */
export function mamba2ConfigToOriginal(c: Mamba2Config, kept?: Record<string, unknown>): Record<string, unknown> {
  const k = kept ?? {};
  const { ssm, put } = keptSsm(k, 'Mamba2');
  put('d_state', c.dState, 128);
  put('d_conv', c.dConv, 4);
  put('expand', c.expand, 2);
  put('headdim', c.headDim, 64);
  put('ngroups', c.nGroups, 1);
  put('chunk_size', c.chunkSize, 256);
  put('bias', c.useBias, false);
  put('conv_bias', c.useConvBias, true);
  put('dt_min', c.timeStepMin, 0.001);
  put('dt_max', c.timeStepMax, 0.1);
  put('dt_init_floor', c.timeStepFloor, 1e-4);
  if (ssm.dt_limit !== undefined || c.timeStepLimit[0] !== 0 || c.timeStepLimit[1] !== Infinity) ssm.dt_limit = [...c.timeStepLimit];
  return originalConfig(c, k, ssm);
}

/**
 * The ssm_cfg of a state-spaces config.json for block `layer`, starting from the kept one; `put`
 * writes a key when it was there before or differs from the block's default.
 */
export function keptSsm(kept: Record<string, unknown>, layer: string) {
  const ssm: Record<string, unknown> = { ...(typeof kept.ssm_cfg === 'object' && kept.ssm_cfg !== null ? kept.ssm_cfg : {}), layer };
  const put = (key: string, value: unknown, dflt: unknown) => {
    if (ssm[key] !== undefined || value !== dflt) ssm[key] = value;
  };
  return { ssm, put };
}

/** The fields of a state-space model that state-spaces' config.json spells outside ssm_cfg. */
interface OriginalOuter {
  dModel: number;
  nLayer: number;
  vocabSize: number;
  residualInFp32: boolean;
  tieWordEmbeddings: boolean;
}

/**
 * A state-spaces config.json around `ssm` (its ssm_cfg) for `c`, keeping the keys of `kept` (the
 * original config read earlier) and its unpadded vocabulary size when it still pads to the same rows.
 */
export function originalConfig(c: OriginalOuter, kept: Record<string, unknown>, ssm: Record<string, unknown>): Record<string, unknown> {
  const k = kept;
  const multiple =
    typeof k.pad_vocab_size_multiple === 'number' && c.vocabSize % k.pad_vocab_size_multiple === 0
      ? k.pad_vocab_size_multiple
      : c.vocabSize % 8 === 0
        ? 8
        : 1;
  const keptVocab =
    typeof k.vocab_size === 'number' && Math.ceil(k.vocab_size / multiple) * multiple === c.vocabSize ? k.vocab_size : c.vocabSize;
  return {
    d_intermediate: 0,
    attn_layer_idx: [],
    attn_cfg: {},
    rms_norm: true,
    fused_add_norm: true,
    ...k,
    d_model: c.dModel,
    n_layer: c.nLayer,
    vocab_size: keptVocab,
    ssm_cfg: ssm,
    residual_in_fp32: c.residualInFp32,
    pad_vocab_size_multiple: multiple,
    tie_embeddings: c.tieWordEmbeddings,
  };
}
