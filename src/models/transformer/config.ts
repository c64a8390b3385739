import { inputError } from '../../io/errors.js';

/**
 * The GPT-style baseline's configuration (Llama architecture: pre-RMSNorm, rotary attention,
 * SwiGLU MLP): the shape legend of every tensor in the model. Field names are frugal's;
 * `llamaConfigFromHF` / `llamaConfigToHF` translate transformers' LlamaConfig keys.
 */
export interface LlamaConfig {
  readonly modelType: 'llama';
  readonly dModel: number; // D, hidden_size
  readonly nLayer: number;
  readonly nHead: number; // H, query heads
  readonly nKvHead: number; // Hkv, key/value heads (H for multi-head, fewer for grouped-query)
  readonly headDim: number; // hd, hidden_size / H unless head_dim says otherwise
  readonly intermediateSize: number; // F, SwiGLU width
  readonly vocabSize: number; // V: rows of the output head, padding included
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxPositionEmbeddings: number; // kept for the config; rotary positions have no hard limit
  readonly attentionBias: boolean; // q/k/v/o projection biases
  readonly mlpBias: boolean; // gate/up/down projection biases
  readonly tieWordEmbeddings: boolean;
  readonly initializerRange: number; // init-only
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** 'byte' when the checkpoint has no tokenizer.json (frugal's byte-level default). */
  readonly tokenizer: 'byte' | 'file';
}

export type LlamaOptions = Partial<Omit<LlamaConfig, 'modelType'>> & { dModel: number; nLayer: number };

const OPTION_KEYS = new Set([
  'dModel',
  'nLayer',
  'nHead',
  'nKvHead',
  'headDim',
  'intermediateSize',
  'vocabSize',
  'rmsNormEps',
  'ropeTheta',
  'maxPositionEmbeddings',
  'attentionBias',
  'mlpBias',
  'tieWordEmbeddings',
  'initializerRange',
  'padTokenId',
  'bosTokenId',
  'eosTokenId',
  'tokenizer',
]);

function positiveInt(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw inputError(`${where}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}
function positiveNum(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw inputError(`${where}: ${key} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}
function bool(v: unknown, key: string, where: string): boolean {
  if (typeof v !== 'boolean') throw inputError(`${where}: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
function tokenId(v: unknown, key: string, where: string): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw inputError(`${where}: ${key} must be a token id or null, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Heads by default: the head size closest to 64 (that of most Llama models) among those that
 * divide D evenly into heads of an even size (rotary embeddings rotate pairs). 1 when none does.
 */
export function defaultHeads(dModel: number): number {
  let best = 1,
    bestGap = Infinity;
  for (let h = 1; h <= dModel; h++) {
    const hd = dModel / h;
    if (!Number.isInteger(hd) || hd % 2 !== 0) continue;
    const gap = Math.abs(Math.log(hd / 64));
    if (gap < bestGap) {
      best = h;
      bestGap = gap;
    }
  }
  return best;
}

/** SwiGLU width by default: 8D/3 (same parameters as a 4D GELU MLP), rounded up to a multiple of 32. */
export function defaultIntermediate(dModel: number): number {
  return 32 * Math.ceil((8 * dModel) / 3 / 32);
}

/** Build a frozen config from frugal's own options (strict: an unknown key is an error that names it). */
export function createLlamaConfig(o: LlamaOptions, where = 'model options'): LlamaConfig {
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw inputError(`${where}: unknown option '${k}'`);
  const dModel = positiveInt(o.dModel, 'dModel', where);
  const nHead = positiveInt(o.nHead ?? defaultHeads(dModel), 'nHead', where);
  const nKvHead = positiveInt(o.nKvHead ?? nHead, 'nKvHead', where);
  if (o.headDim === undefined && dModel % nHead !== 0)
    throw inputError(`${where}: hidden size ${dModel} is not divisible by ${nHead} heads; choose --heads to divide it`);
  const headDim = positiveInt(o.headDim ?? dModel / nHead, 'headDim', where);
  if (headDim % 2 !== 0)
    throw inputError(`${where}: the head size ${headDim} must be even for rotary embeddings; choose another number of heads`);
  if (nHead % nKvHead !== 0) throw inputError(`${where}: ${nHead} attention heads are not a multiple of ${nKvHead} key/value heads`);
  const c: LlamaConfig = {
    modelType: 'llama',
    dModel,
    nLayer: positiveInt(o.nLayer, 'nLayer', where),
    nHead,
    nKvHead,
    headDim,
    intermediateSize: positiveInt(o.intermediateSize ?? defaultIntermediate(dModel), 'intermediateSize', where),
    vocabSize: positiveInt(o.vocabSize ?? 256, 'vocabSize', where),
    rmsNormEps: positiveNum(o.rmsNormEps ?? 1e-6, 'rmsNormEps', where),
    ropeTheta: positiveNum(o.ropeTheta ?? 10000, 'ropeTheta', where),
    maxPositionEmbeddings: positiveInt(o.maxPositionEmbeddings ?? 2048, 'maxPositionEmbeddings', where),
    attentionBias: bool(o.attentionBias ?? false, 'attentionBias', where),
    mlpBias: bool(o.mlpBias ?? false, 'mlpBias', where),
    tieWordEmbeddings: bool(o.tieWordEmbeddings ?? true, 'tieWordEmbeddings', where),
    initializerRange: positiveNum(o.initializerRange ?? 0.02, 'initializerRange', where),
    padTokenId: tokenId(o.padTokenId, 'padTokenId', where),
    bosTokenId: tokenId(o.bosTokenId, 'bosTokenId', where),
    eosTokenId: tokenId(o.eosTokenId, 'eosTokenId', where),
    tokenizer: o.tokenizer ?? 'byte',
  };
  return Object.freeze(c);
}

/**
 * Keys of transformers' LlamaConfig (and the PretrainedConfig keys every config.json carries).
 * Init-only and training-only keys are accepted; keys outside this list produce a warning.
 */
const HF_KNOWN = new Set([
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'hidden_act',
  'max_position_embeddings',
  'initializer_range',
  'rms_norm_eps',
  'use_cache',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'pretraining_tp',
  'tie_word_embeddings',
  'rope_theta',
  'rope_scaling',
  'rope_parameters',
  'attention_bias',
  'attention_dropout',
  'mlp_bias',
  'head_dim',
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
  'chunk_size_feed_forward',
  'pruned_heads',
  'problem_type',
  'id2label',
  'label2id',
  'task_specific_params',
  'tokenizer_class',
  'prefix',
  'sep_token_id',
  'decoder_start_token_id',
  'max_length',
  'min_length',
  'do_sample',
  'num_beams',
  'temperature',
  'top_k',
  'top_p',
  'repetition_penalty',
  'num_return_sequences',
  'quantization_config',
  'frugal',
]);

export interface LlamaParseResult {
  config: LlamaConfig;
  warnings: string[];
}

/** Rotary settings from rope_scaling (transformers 4.x) or rope_parameters (5.x): only the default rotation is supported. */
function ropeThetaOf(o: Record<string, unknown>, file: string): number | undefined {
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const r = o[key];
    if (r === undefined || r === null) continue;
    if (typeof r !== 'object') throw inputError(`${file}: ${key} must be an object or null`);
    const rr = r as Record<string, unknown>;
    const kind = rr.rope_type ?? rr.type ?? 'default';
    if (kind !== 'default')
      throw inputError(`${file}: ${key} type '${String(kind)}' is not supported (frugal implements the default rotary embedding)`);
    if (typeof rr.rope_theta === 'number') return rr.rope_theta;
  }
  return typeof o.rope_theta === 'number' ? o.rope_theta : undefined;
}

/** Read a transformers LlamaConfig object leniently (documented keys accepted, unknown ones warned about). */
export function llamaConfigFromHF(j: unknown, file: string): LlamaParseResult {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw inputError(`${file}: config.json must be a JSON object`);
  const o = j as Record<string, unknown>;
  const warnings = Object.keys(o)
    .filter((k) => !HF_KNOWN.has(k))
    .map((k) => `${file}: unknown config key '${k}' ignored`);
  if (o.model_type !== 'llama') throw inputError(`${file}: model_type '${String(o.model_type)}' is not supported here (expected 'llama')`);
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu')
    throw inputError(`${file}: hidden_act '${String(o.hidden_act)}' is not supported (Llama's MLP uses 'silu')`);
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size', 'num_attention_heads', 'intermediate_size']) {
    if (o[k] === undefined) throw inputError(`${file}: missing required key '${k}'`);
  }
  if (typeof o.attention_dropout === 'number' && o.attention_dropout > 0) {
    warnings.push(`${file}: attention_dropout ${o.attention_dropout} ignored (frugal trains without attention dropout)`);
  }
  const frugal = (typeof o.frugal === 'object' && o.frugal !== null ? o.frugal : {}) as Record<string, unknown>;
  const opt = <T>(k: string): T | undefined => (o[k] === undefined || o[k] === null ? undefined : (o[k] as T));
  const config = createLlamaConfig(
    {
      dModel: o.hidden_size as number,
      nLayer: o.num_hidden_layers as number,
      vocabSize: o.vocab_size as number,
      nHead: o.num_attention_heads as number,
      intermediateSize: o.intermediate_size as number,
      nKvHead: opt('num_key_value_heads'),
      headDim: opt('head_dim'),
      rmsNormEps: opt('rms_norm_eps'),
      ropeTheta: ropeThetaOf(o, file),
      maxPositionEmbeddings: opt('max_position_embeddings'),
      attentionBias: opt('attention_bias'),
      mlpBias: opt('mlp_bias'),
      // LlamaConfig's own default is an untied head
      tieWordEmbeddings: opt('tie_word_embeddings') ?? false,
      initializerRange: opt('initializer_range'),
      padTokenId: opt('pad_token_id'),
      bosTokenId: opt('bos_token_id'),
      eosTokenId: opt('eos_token_id'),
      tokenizer: frugal.tokenizer === 'byte' ? 'byte' : 'file',
    },
    file,
  );
  return { config, warnings };
}

/** The config.json transformers' LlamaForCausalLM.from_pretrained expects, plus frugal's own block. */
export function llamaConfigToHF(c: LlamaConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayer,
    num_attention_heads: c.nHead,
    num_key_value_heads: c.nKvHead,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxPositionEmbeddings,
    initializer_range: c.initializerRange,
    rms_norm_eps: c.rmsNormEps,
    use_cache: true,
    pad_token_id: c.padTokenId,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    pretraining_tp: 1,
    tie_word_embeddings: c.tieWordEmbeddings,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    attention_bias: c.attentionBias,
    attention_dropout: 0.0,
    mlp_bias: c.mlpBias,
    torch_dtype: 'float32',
    frugal: { tokenizer: c.tokenizer },
  };
}
