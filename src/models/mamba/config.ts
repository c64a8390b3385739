import { inputError } from '../../io/errors.js';

/**
 * Mamba-1 configuration: the shape legend of every tensor in the model.
 * Field names are frugal's; `fromHF` / `toHF` translate transformers' MambaConfig keys.
 */
export interface MambaConfig {
  readonly modelType: 'mamba';
  readonly dModel: number; // D
  readonly nLayer: number;
  readonly dState: number; // N in the paper
  readonly dConv: number; // K, causal conv kernel
  readonly expand: number;
  readonly dInner: number; // ED = expand · D
  readonly dtRank: number; // R = ceil(D / 16) by default
  readonly vocabSize: number; // V: rows of the output head, padding included
  readonly layerNormEpsilon: number;
  readonly useBias: boolean; // in_proj / out_proj bias
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
  dModel: number;
  nLayer: number;
  dInner?: number;
  dtRank?: number | 'auto';
};

const OPTION_KEYS = new Set([
  'dModel',
  'nLayer',
  'dState',
  'dConv',
  'expand',
  'dInner',
  'dtRank',
  'vocabSize',
  'layerNormEpsilon',
  'useBias',
  'useConvBias',
  'tieWordEmbeddings',
  'initializerRange',
  'timeStepMin',
  'timeStepMax',
  'timeStepFloor',
  'timeStepScale',
  'rescalePrenormResidual',
  'residualInFp32',
  'padTokenId',
  'bosTokenId',
  'eosTokenId',
  'tokenizer',
]);

const MAX_LAYERS = 65536;

export function positiveInt(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw inputError(`${where}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function finiteNum(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw inputError(`${where}: ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function bool(v: unknown, key: string, where: string): boolean {
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
  // published Mamba models have up to 64 layers; far more is a forged or broken config, refused before any table is built
  if (c.nLayer > MAX_LAYERS) throw inputError(`${where}: ${c.nLayer} layers is over the ${MAX_LAYERS} frugal accepts`);
  if (!(c.timeStepMin > 0 && c.timeStepMax >= c.timeStepMin)) throw inputError(`${where}: need 0 < time_step_min <= time_step_max`);
  return Object.freeze(c);
}

/**
 * Parameters of a model of config `c`, counted from the shape legend without building the table
 * (params.ts lists the same shapes): a forged config with 2^31 layers must be refused by arithmetic,
 * not by listing its layers.
 */
export function mambaParameterCount(c: MambaConfig): number {
  const { dModel: D, dInner: ED, dState: N, dConv: K, dtRank: R, vocabSize: V } = c;
  const layer =
    D +
    2 * ED * D +
    (c.useBias ? 2 * ED + D : 0) +
    ED * K +
    (c.useConvBias ? ED : 0) +
    (R + 2 * N) * ED +
    ED * R +
    ED +
    ED * N +
    ED +
    D * ED;
  return V * D * (c.tieWordEmbeddings ? 1 : 2) + c.nLayer * layer + D;
}

/**
 * Keys of transformers' MambaConfig and of the PretrainedConfig every config.json may carry
 * (https://huggingface.co/docs/transformers/model_doc/mamba, .../main_classes/configuration).
 * Init-only keys are accepted and kept; keys outside this list produce a warning, never an error.
 */
/**
 * Keys of the PretrainedConfig every transformers config.json may carry, the ones left in the
 * published state-spaces *-hf configs by their conversion from the original layout, and frugal's
 * own block (tokenizer kind, the original-layout config kept for a lossless round trip).
 */
export const PRETRAINED_KEYS: readonly string[] = [
  'tie_word_embeddings',
  'model_type',
  'architectures',
  'torch_dtype',
  'dtype',
  'transformers_version',
  '_name_or_path',
  'name_or_path',
  'return_dict',
  'output_hidden_states',
  'output_attentions',
  'torchscript',
  'use_return_dict',
  'is_encoder_decoder',
  'is_decoder',
  'add_cross_attention',
  'cross_attention_hidden_size',
  'tie_encoder_decoder',
  'chunk_size_feed_forward',
  'pruned_heads',
  'problem_type',
  'id2label',
  'label2id',
  'num_labels',
  'finetuning_task',
  'task_specific_params',
  'tokenizer_class',
  'prefix',
  'sep_token_id',
  'decoder_start_token_id',
  'max_length',
  'min_length',
  'do_sample',
  'early_stopping',
  'num_beams',
  'num_beam_groups',
  'diversity_penalty',
  'temperature',
  'top_k',
  'top_p',
  'typical_p',
  'repetition_penalty',
  'length_penalty',
  'no_repeat_ngram_size',
  'encoder_no_repeat_ngram_size',
  'bad_words_ids',
  'num_return_sequences',
  'output_scores',
  'return_dict_in_generate',
  'forced_bos_token_id',
  'forced_eos_token_id',
  'remove_invalid_values',
  'exponential_decay_length_penalty',
  'suppress_tokens',
  'begin_suppress_tokens',
  'use_bfloat16',
  'quantization_config',
  'pad_vocab_size_multiple',
  'fused_add_norm',
  'rms_norm',
  'n_layer',
  'd_model',
  'frugal',
];

/**
 * Keys of transformers' MambaConfig (https://huggingface.co/docs/transformers/model_doc/mamba) and
 * PRETRAINED_KEYS. Init-only keys are accepted and kept; keys outside this list produce a warning,
 * never an error.
 */
const HF_KNOWN = new Set([
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
  'use_bias',
  'use_conv_bias',
  'hidden_act',
  'initializer_range',
  'residual_in_fp32',
  'time_step_rank',
  'time_step_scale',
  'time_step_min',
  'time_step_max',
  'time_step_init_scheme',
  'time_step_floor',
  'rescale_prenorm_residual',
  'use_cache',
  'use_mambapy',
  'intermediate_size',
  ...PRETRAINED_KEYS,
]);

export type CheckpointLayout = 'hf' | 'original';

export interface HFParseResult {
  config: MambaConfig;
  warnings: string[];
  layout: CheckpointLayout;
  /** The state-spaces config.json as read, when the checkpoint is in the original layout. */
  original?: Record<string, unknown>;
}

/** Typed getters over a config object whose errors name the config key and file. */
export function reader(o: Record<string, unknown>, file: string) {
  const has = (k: string) => o[k] !== undefined && o[k] !== null;
  return {
    has,
    int: (k: string, d?: number): number | undefined => {
      if (!has(k)) return d;
      const v = o[k];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
        throw inputError(`${file}: '${k}' must be a positive integer, got ${JSON.stringify(v)}`);
      return v;
    },
    num: (k: string, d?: number): number | undefined => {
      if (!has(k)) return d;
      const v = o[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw inputError(`${file}: '${k}' must be a number, got ${JSON.stringify(v)}`);
      return v;
    },
    flag: (k: string, d?: boolean): boolean | undefined => {
      if (!has(k)) return d;
      const v = o[k];
      if (typeof v !== 'boolean') throw inputError(`${file}: '${k}' must be true or false, got ${JSON.stringify(v)}`);
      return v;
    },
    /** Token ids are informational for frugal: a malformed one falls back to 0 with a warning. */
    tokenId: (k: string, warnings: string[]): number | undefined => {
      if (!has(k)) return undefined;
      const v = Array.isArray(o[k]) ? (o[k] as unknown[])[0] : o[k];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
      warnings.push(`${file}: '${k}' is ${JSON.stringify(o[k])}, not a token id; using 0`);
      return 0;
    },
  };
}

/**
 * The token ids and tokenizer kind every Hugging Face config.json of frugal's models carries (ids
 * are informational: a malformed one falls back to 0 with a warning; `frugal.tokenizer` says byte).
 */
export function tokenFields(o: Record<string, unknown>, r: ReturnType<typeof reader>, warnings: string[]) {
  const frugal = (typeof o.frugal === 'object' && o.frugal !== null ? o.frugal : {}) as Record<string, unknown>;
  return {
    padTokenId: r.tokenId('pad_token_id', warnings),
    bosTokenId: r.tokenId('bos_token_id', warnings),
    eosTokenId: r.tokenId('eos_token_id', warnings),
    tokenizer: frugal.tokenizer === 'byte' ? ('byte' as const) : ('file' as const),
  };
}

export function asObject(j: unknown, file: string): Record<string, unknown> {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw inputError(`${file}: config.json must be a JSON object`);
  return j as Record<string, unknown>;
}

/** Which published layout a Mamba config.json follows: transformers' (hidden_size) or state-spaces' (d_model). */
export function mambaLayout(j: Record<string, unknown>): CheckpointLayout {
  return j.model_type === undefined && j.hidden_size === undefined && j.d_model !== undefined ? 'original' : 'hf';
}

/** Read a Mamba config.json in either published layout. */
export function mambaConfigFromJson(j: unknown, file: string): HFParseResult {
  const o = asObject(j, file);
  return mambaLayout(o) === 'original' ? mambaConfigFromOriginal(o, file) : mambaConfigFromHF(o, file);
}

/**
 * Read a transformers MambaConfig object leniently (documented keys accepted, unknown ones warned
 * about). Absent keys take transformers' defaults (use_bias true, initializer_range 0.1, ...) so
 * a config means what it means to MambaForCausalLM.
 */
export function mambaConfigFromHF(j: unknown, file: string): HFParseResult {
  const o = asObject(j, file);
  const warnings = Object.keys(o)
    .filter((k) => !HF_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  if (o.model_type !== undefined && o.model_type !== 'mamba') {
    throw inputError(`${file}: model_type '${String(o.model_type)}' is not supported here (expected 'mamba')`);
  }
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu') {
    throw inputError(`${file}: hidden_act '${String(o.hidden_act)}' is not supported (Mamba uses 'silu')`);
  }
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size']) {
    if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}' (is this a Mamba config.json?)`);
  }
  const r = reader(o, file);
  const rank = o.time_step_rank;
  if (rank !== undefined && rank !== null && rank !== 'auto') r.int('time_step_rank');
  const config = createMambaConfig(
    {
      dModel: r.int('hidden_size') as number,
      nLayer: r.int('num_hidden_layers') as number,
      vocabSize: r.int('vocab_size'),
      dState: r.int('state_size', 16),
      dConv: r.int('conv_kernel', 4),
      expand: r.int('expand', 2),
      dInner: r.int('intermediate_size'),
      dtRank: rank === undefined || rank === null ? 'auto' : (rank as number | 'auto'),
      layerNormEpsilon: r.num('layer_norm_epsilon', 1e-5),
      useBias: r.flag('use_bias', true),
      useConvBias: r.flag('use_conv_bias', true),
      tieWordEmbeddings: r.flag('tie_word_embeddings', true),
      initializerRange: r.num('initializer_range', 0.1),
      timeStepMin: r.num('time_step_min', 0.001),
      timeStepMax: r.num('time_step_max', 0.1),
      timeStepFloor: r.num('time_step_floor', 1e-4),
      timeStepScale: r.num('time_step_scale', 1.0),
      rescalePrenormResidual: r.flag('rescale_prenorm_residual', false),
      residualInFp32: r.flag('residual_in_fp32', true),
      ...tokenFields(o, r, warnings),
    },
    file,
  );
  return { config, warnings, layout: 'hf' };
}

/** mamba_ssm's MambaConfig (models/config_mamba.py) and the Mamba block's ssm_cfg (modules/mamba_simple.py). */
export const ORIGINAL_KNOWN: ReadonlySet<string> = new Set([
  'd_model',
  'd_intermediate',
  'n_layer',
  'vocab_size',
  'ssm_cfg',
  'attn_layer_idx',
  'attn_cfg',
  'rms_norm',
  'residual_in_fp32',
  'fused_add_norm',
  'pad_vocab_size_multiple',
  'tie_embeddings',
]);
const SSM_KNOWN = new Set([
  'd_state',
  'd_conv',
  'expand',
  'dt_rank',
  'dt_min',
  'dt_max',
  'dt_init',
  'dt_scale',
  'dt_init_floor',
  'conv_bias',
  'bias',
  'use_fast_path',
  'layer',
]);

/** Read a state-spaces (mamba_ssm) config.json: d_model, n_layer, ssm_cfg, vocab padded to a multiple. */
export function mambaConfigFromOriginal(o: Record<string, unknown>, file: string): HFParseResult {
  const warnings = Object.keys(o)
    .filter((k) => !ORIGINAL_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  const ssmRaw = o.ssm_cfg ?? {};
  if (typeof ssmRaw !== 'object' || ssmRaw === null || Array.isArray(ssmRaw)) throw inputError(`${file}: 'ssm_cfg' must be an object`);
  const ssm = ssmRaw as Record<string, unknown>;
  warnings.push(
    ...Object.keys(ssm)
      .filter((k) => !SSM_KNOWN.has(k))
      .map((k) => `${file}: unknown ssm_cfg key '${k}' ignored`),
  );
  if (ssm.layer !== undefined && ssm.layer !== 'Mamba1') {
    throw inputError(`${file}: ssm_cfg.layer '${String(ssm.layer)}' is not supported (frugal runs Mamba1, Mamba2 and Mamba3 blocks)`);
  }
  const r = reader(o, file),
    s = reader(ssm, `${file} ssm_cfg`);
  if (r.has('d_intermediate') && o.d_intermediate !== 0)
    throw inputError(
      `${file}: d_intermediate ${JSON.stringify(o.d_intermediate)} adds MLP blocks, which Mamba-1 checkpoints frugal runs do not have`,
    );
  if (Array.isArray(o.attn_layer_idx) && o.attn_layer_idx.length > 0)
    throw inputError(`${file}: attn_layer_idx names attention layers; hybrid checkpoints are not supported`);
  if (r.flag('rms_norm', true) === false)
    throw inputError(`${file}: rms_norm false (LayerNorm) is not supported; Mamba checkpoints use RMSNorm`);
  for (const k of ['d_model', 'n_layer', 'vocab_size']) if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}'`);
  const multiple = r.int('pad_vocab_size_multiple', 8) as number;
  const vocab = r.int('vocab_size') as number;
  const rank = ssm.dt_rank;
  if (rank !== undefined && rank !== 'auto') s.int('dt_rank');
  const config = createMambaConfig(
    {
      dModel: r.int('d_model') as number,
      nLayer: r.int('n_layer') as number,
      vocabSize: Math.ceil(vocab / multiple) * multiple, // mamba_ssm pads the embedding and head rows
      dState: s.int('d_state', 16),
      dConv: s.int('d_conv', 4),
      expand: s.int('expand', 2),
      dtRank: rank === undefined ? 'auto' : (rank as number | 'auto'),
      layerNormEpsilon: 1e-5, // mamba_ssm's RMSNorm default; the original config has no key for it
      useBias: s.flag('bias', false),
      useConvBias: s.flag('conv_bias', true),
      tieWordEmbeddings: r.flag('tie_embeddings', true),
      initializerRange: 0.02, // mamba_ssm _init_weights
      timeStepMin: s.num('dt_min', 0.001),
      timeStepMax: s.num('dt_max', 0.1),
      timeStepFloor: s.num('dt_init_floor', 1e-4),
      timeStepScale: s.num('dt_scale', 1.0),
      rescalePrenormResidual: true,
      residualInFp32: r.flag('residual_in_fp32', true),
      tokenizer: 'file',
    },
    file,
  );
  return { config, warnings, layout: 'original', original: o };
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

/**
 * A state-spaces (mamba_ssm MambaLMHeadModel) config.json for `c`. When `kept` (the original
 * config read earlier) is given, its keys and spellings are kept wherever they still describe `c`,
 * so original -> HF -> original gives back the same file.
 */
export function mambaConfigToOriginal(c: MambaConfig, kept?: Record<string, unknown>): Record<string, unknown> {
  const k = kept ?? {};
  const keptSsm = (typeof k.ssm_cfg === 'object' && k.ssm_cfg !== null ? k.ssm_cfg : {}) as Record<string, unknown>;
  const ssm: Record<string, unknown> = { ...keptSsm };
  const put = (o: Record<string, unknown>, key: string, value: unknown, dflt: unknown, same = (a: unknown) => a === value) => {
    if (o[key] !== undefined ? !same(o[key]) : kept === undefined || value !== dflt) o[key] = value;
  };
  put(ssm, 'd_state', c.dState, 16);
  put(ssm, 'd_conv', c.dConv, 4);
  put(ssm, 'expand', c.expand, 2);
  const auto = Math.ceil(c.dModel / 16);
  put(
    ssm,
    'dt_rank',
    c.dtRank === auto && kept === undefined ? 'auto' : c.dtRank,
    'auto',
    (a) => a === c.dtRank || (a === 'auto' && c.dtRank === auto),
  );
  if (ssm.dt_rank === auto && kept !== undefined && keptSsm.dt_rank === undefined) delete ssm.dt_rank;
  put(ssm, 'dt_min', c.timeStepMin, 0.001);
  put(ssm, 'dt_max', c.timeStepMax, 0.1);
  put(ssm, 'dt_scale', c.timeStepScale, 1.0);
  put(ssm, 'dt_init_floor', c.timeStepFloor, 1e-4);
  put(ssm, 'conv_bias', c.useConvBias, true);
  put(ssm, 'bias', c.useBias, false);
  const multiple =
    typeof k.pad_vocab_size_multiple === 'number' && c.vocabSize % k.pad_vocab_size_multiple === 0
      ? k.pad_vocab_size_multiple
      : c.vocabSize % 8 === 0
        ? 8
        : 1;
  // keep the unpadded vocabulary size when it still pads to the same number of rows
  const keptVocab =
    typeof k.vocab_size === 'number' && Math.ceil(k.vocab_size / multiple) * multiple === c.vocabSize ? k.vocab_size : c.vocabSize;
  const out: Record<string, unknown> = { ...k };
  out.d_model = c.dModel;
  out.n_layer = c.nLayer;
  out.vocab_size = keptVocab;
  out.ssm_cfg = ssm;
  put(out, 'rms_norm', true, true);
  put(out, 'residual_in_fp32', c.residualInFp32, true);
  put(out, 'fused_add_norm', true, true, () => true);
  put(out, 'pad_vocab_size_multiple', multiple, 8);
  put(out, 'tie_embeddings', c.tieWordEmbeddings, true);
  return out;
}
