import { inputError } from '../../io/errors.js';

/**
 * Mamba-1 configuration: the shape legend of every tensor in the model.
 * Field names are frugal's; `fromHF` / `toHF` translate transformers' MambaConfig keys.
 */
export interface MambaConfig {
  readonly modelType: 'mamba';
  readonly dModel: number;          // D
  readonly nLayer: number;
  readonly dState: number;          // N in the paper
  readonly dConv: number;           // K, causal conv kernel
  readonly expand: number;
  readonly dInner: number;          // ED = expand · D
  readonly dtRank: number;          // R = ceil(D / 16) by default
  readonly vocabSize: number;       // V: rows of the output head, padding included
  readonly layerNormEpsilon: number;
  readonly useBias: boolean;        // in_proj / out_proj bias
  readonly useConvBias: boolean;
  readonly tieWordEmbeddings: boolean;
  // initialisation-only (kept so a saved config round-trips)
  readonly initializerRange: number;
  readonly timeStepMin: number;
  readonly timeStepMax: number;
  readonly timeStepFloor: number;
  readonly timeStepScale: number;
  readonly rescalePrenormResidual: boolean;
  readonly residualInFp32: boolean;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** 'byte' when the checkpoint has no tokenizer.json (frugal's byte-level default). */
  readonly tokenizer: 'byte' | 'file';
}

export type MambaOptions = Partial<Omit<MambaConfig, 'modelType' | 'dInner' | 'dtRank'>> & {
  dModel: number; nLayer: number; dInner?: number; dtRank?: number | 'auto';
};

const OPTION_KEYS = new Set(['dModel', 'nLayer', 'dState', 'dConv', 'expand', 'dInner', 'dtRank', 'vocabSize',
  'layerNormEpsilon', 'useBias', 'useConvBias', 'tieWordEmbeddings', 'initializerRange', 'timeStepMin', 'timeStepMax',
  'timeStepFloor', 'timeStepScale', 'rescalePrenormResidual', 'residualInFp32', 'padTokenId', 'bosTokenId',
  'eosTokenId', 'tokenizer']);

function positiveInt(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw inputError(`${where}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function finiteNum(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw inputError(`${where}: ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function bool(v: unknown, key: string, where: string): boolean {
  if (typeof v !== 'boolean') throw inputError(`${where}: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Build a frozen config from frugal's own options (strict: an unknown key is an error that names it). */
export function createMambaConfig(o: MambaOptions, where = 'model options'): MambaConfig {
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw inputError(`${where}: unknown option '${k}'`);
  const dModel = positiveInt(o.dModel, 'dModel', where);
  const expand = positiveInt(o.expand ?? 2, 'expand', where);
  const dtRank = o.dtRank === undefined || o.dtRank === 'auto' ? Math.ceil(dModel / 16) : positiveInt(o.dtRank, 'dtRank', where);
  const c: MambaConfig = {
    modelType: 'mamba',
    dModel,
    nLayer: positiveInt(o.nLayer, 'nLayer', where),
    dState: positiveInt(o.dState ?? 16, 'dState', where),
    dConv: positiveInt(o.dConv ?? 4, 'dConv', where),
    expand,
    dInner: positiveInt(o.dInner ?? expand * dModel, 'dInner', where),
    dtRank,
    vocabSize: positiveInt(o.vocabSize ?? 256, 'vocabSize', where),
    layerNormEpsilon: finiteNum(o.layerNormEpsilon ?? 1e-5, 'layerNormEpsilon', where),
    useBias: bool(o.useBias ?? false, 'useBias', where),
    useConvBias: bool(o.useConvBias ?? true, 'useConvBias', where),
    tieWordEmbeddings: bool(o.tieWordEmbeddings ?? true, 'tieWordEmbeddings', where),
    initializerRange: finiteNum(o.initializerRange ?? 0.02, 'initializerRange', where),
    timeStepMin: finiteNum(o.timeStepMin ?? 1e-3, 'timeStepMin', where),
    timeStepMax: finiteNum(o.timeStepMax ?? 0.1, 'timeStepMax', where),
    timeStepFloor: finiteNum(o.timeStepFloor ?? 1e-4, 'timeStepFloor', where),
    timeStepScale: finiteNum(o.timeStepScale ?? 1.0, 'timeStepScale', where),
    rescalePrenormResidual: bool(o.rescalePrenormResidual ?? true, 'rescalePrenormResidual', where),
    residualInFp32: bool(o.residualInFp32 ?? true, 'residualInFp32', where),
    padTokenId: o.padTokenId ?? 0,
    bosTokenId: o.bosTokenId ?? 0,
    eosTokenId: o.eosTokenId ?? 0,
    tokenizer: o.tokenizer ?? 'byte',
  };
  if (c.layerNormEpsilon <= 0) throw inputError(`${where}: layer_norm_epsilon must be > 0`);
  if (!(c.timeStepMin > 0 && c.timeStepMax >= c.timeStepMin)) throw inputError(`${where}: need 0 < time_step_min <= time_step_max`);
  return Object.freeze(c);
}

/**
 * Keys of transformers' MambaConfig (and the PretrainedConfig keys every config.json carries).
 * Init-only keys are accepted and kept; keys outside this list produce a warning, never an error.
 */
const HF_KNOWN = new Set([
  'vocab_size', 'hidden_size', 'state_size', 'num_hidden_layers', 'layer_norm_epsilon', 'pad_token_id',
  'bos_token_id', 'eos_token_id', 'expand', 'conv_kernel', 'use_bias', 'use_conv_bias', 'hidden_act',
  'initializer_range', 'residual_in_fp32', 'time_step_rank', 'time_step_scale', 'time_step_min', 'time_step_max',
  'time_step_init_scheme', 'time_step_floor', 'rescale_prenorm_residual', 'use_cache', 'use_mambapy',
  'intermediate_size', 'tie_word_embeddings', 'model_type', 'architectures', 'torch_dtype', 'dtype',
  'transformers_version', '_name_or_path', 'name_or_path', 'return_dict', 'output_hidden_states',
  'output_attentions', 'torchscript', 'use_return_dict', 'is_encoder_decoder', 'is_decoder', 'chunk_size_feed_forward',
  'pruned_heads', 'problem_type', 'id2label', 'label2id', 'task_specific_params', 'tokenizer_class',
  'prefix', 'sep_token_id', 'decoder_start_token_id', 'max_length', 'min_length', 'do_sample', 'num_beams',
  'temperature', 'top_k', 'top_p', 'repetition_penalty', 'num_return_sequences', 'pad_vocab_size_multiple',
  'quantization_config', 'frugal',
]);

export interface HFParseResult { config: MambaConfig; warnings: string[] }

/** Read a transformers MambaConfig object leniently (documented keys accepted, unknown ones warned about). */
export function mambaConfigFromHF(j: unknown, file: string): HFParseResult {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw inputError(`${file}: config.json must be a JSON object`);
  const o = j as Record<string, unknown>;
  const warnings = Object.keys(o).filter((k) => !HF_KNOWN.has(k)).map((k) => `${file}: unknown config key '${k}' ignored`);
  if (o.model_type !== undefined && o.model_type !== 'mamba') {
    throw inputError(`${file}: model_type '${String(o.model_type)}' is not supported here (expected 'mamba')`);
  }
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu') {
    throw inputError(`${file}: hidden_act '${String(o.hidden_act)}' is not supported (Mamba uses 'silu')`);
  }
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size']) {
    if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}'`);
  }
  const frugal = (typeof o.frugal === 'object' && o.frugal !== null ? o.frugal : {}) as Record<string, unknown>;
  const opt = <T>(k: string): T | undefined => (o[k] === undefined || o[k] === null ? undefined : o[k] as T);
  const config = createMambaConfig({
    dModel: o.hidden_size as number,
    nLayer: o.num_hidden_layers as number,
    vocabSize: o.vocab_size as number,
    dState: opt('state_size'),
    dConv: opt('conv_kernel'),
    expand: opt('expand'),
    dInner: opt('intermediate_size'),
    dtRank: opt('time_step_rank'),
    layerNormEpsilon: opt('layer_norm_epsilon'),
    useBias: opt('use_bias'),
    useConvBias: opt('use_conv_bias'),
    tieWordEmbeddings: opt('tie_word_embeddings'),
    initializerRange: opt('initializer_range'),
    timeStepMin: opt('time_step_min'),
    timeStepMax: opt('time_step_max'),
    timeStepFloor: opt('time_step_floor'),
    timeStepScale: opt('time_step_scale'),
    rescalePrenormResidual: opt('rescale_prenorm_residual'),
    residualInFp32: opt('residual_in_fp32'),
    padTokenId: opt('pad_token_id'),
    bosTokenId: opt('bos_token_id'),
    eosTokenId: opt('eos_token_id'),
    tokenizer: frugal.tokenizer === 'byte' ? 'byte' : 'file',
  }, file);
  return { config, warnings };
}

/** The config.json transformers' MambaForCausalLM.from_pretrained expects, plus frugal's own block. */
export function mambaConfigToHF(c: MambaConfig): Record<string, unknown> {
  return {
    architectures: ['MambaForCausalLM'],
    model_type: 'mamba',
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    intermediate_size: c.dInner,
    state_size: c.dState,
    num_hidden_layers: c.nLayer,
    layer_norm_epsilon: c.layerNormEpsilon,
    pad_token_id: c.padTokenId,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    expand: c.expand,
    conv_kernel: c.dConv,
    use_bias: c.useBias,
    use_conv_bias: c.useConvBias,
    hidden_act: 'silu',
    initializer_range: c.initializerRange,
    residual_in_fp32: c.residualInFp32,
    time_step_rank: c.dtRank,
    time_step_scale: c.timeStepScale,
    time_step_min: c.timeStepMin,
    time_step_max: c.timeStepMax,
    time_step_init_scheme: 'random',
    time_step_floor: c.timeStepFloor,
    rescale_prenorm_residual: c.rescalePrenormResidual,
    use_cache: true,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: 'float32',
    frugal: { tokenizer: c.tokenizer },
  };
}
