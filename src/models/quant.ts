import type { QFormat, QWeight, Tensor, Weight } from '../tensor/index.js';
import { QBLOCK, isQuant, weightByteLength } from '../tensor/index.js';
import { inputError } from '../io/errors.js';
import type { MambaLM } from './mamba/model.js';
import type { ParamSpec } from './types.js';

/**
 * Quantising a Mamba model for inference (following llama.cpp's choices): the big
 * projections (in_proj, x_proj, out_proj, dt_proj when its rows are a multiple of the block) and
 * the embedding/head go to q8 or q4; A_log, D, conv weights, norms, biases and the recurrent state
 * stay f32, because quantising those hurts Mamba most. With q4 the embedding/head stays at q8
 * (higher precision, as llama.cpp keeps its output tensor).
 */
/** Names of the weights that may be quantised (see quantPlan). */
const QUANTISABLE =
  /^(backbone\.layers\.\d+\.mixer\.(in_proj|x_proj|out_proj|dt_proj)\.weight|backbone\.embeddings\.weight|lm_head\.weight)$/;

export function quantPlan(specs: readonly ParamSpec[], format: QFormat): Map<string, QFormat> {
  const plan = new Map<string, QFormat>();
  for (const s of specs) {
    if (s.shape.length !== 2 || s.shape[1] % QBLOCK !== 0) continue;
    const n = s.name;
    if (/\.mixer\.(in_proj|x_proj|out_proj|dt_proj)\.weight$/.test(n)) plan.set(n, format);
    else if (n === 'backbone.embeddings.weight' || n === 'lm_head.weight') plan.set(n, 'q8');
  }
  return plan;
}

/** Quantise one f32 (N, K) tensor into a new QWeight (K a multiple of 32). */
export function quantizeTensor(model: MambaLM, t: Tensor, format: QFormat): QWeight {
  const e = model.e,
    [N, K] = t.shape;
  if (K % QBLOCK !== 0) throw inputError(`cannot quantise a tensor of shape [${t.shape}]: its rows are not a multiple of ${QBLOCK}`);
  const q = e.persistent(format === 'q8' ? [N, K] : [N, K / 2], format === 'q8' ? 'i8' : 'u8');
  const scales = e.persistent([N, K / QBLOCK]);
  if (format === 'q8') e.k.quantizeQ8(q, scales, t, N, K);
  else e.k.quantizeQ4(q, scales, t, N, K);
  return { kind: 'quant', format, shape: [N, K], q, scales };
}

/** Quantise a loaded f32 model in place (inference only afterwards). */
export function quantizeModel(model: MambaLM, format: QFormat): void {
  if (model.qweights.size > 0) throw inputError('this model is already quantised; quantise the f32 checkpoint instead');
  const plan = quantPlan(model.specs, format);
  const swap = new Map<Weight, QWeight>();
  for (const [name, f] of plan) {
    const t = model.params.get(name) as Tensor;
    const qw = quantizeTensor(model, t, f);
    model.qweights.set(name, qw);
    model.params.delete(name);
    swap.set(t, qw);
  }
  const sub = (w: Weight): Weight => swap.get(w) ?? w;
  for (const ly of model.layers) {
    ly.inProj = sub(ly.inProj);
    ly.xProj = sub(ly.xProj);
    ly.dtProj = sub(ly.dtProj);
    ly.outProj = sub(ly.outProj);
  }
  model.embed = sub(model.embed);
  model.head = sub(model.head);
  for (const t of swap.keys()) if (!isQuant(t)) t.dispose();
  model.weightsChanged();
}

/** Bytes of weights a decoding step reads (each distinct weight once; a tied head counts once). */
export function weightBytes(model: MambaLM): number {
  const seen = new Set<Weight>();
  let bytes = 0;
  const add = (w: Weight | null) => {
    if (w && !seen.has(w)) {
      seen.add(w);
      bytes += weightByteLength(w);
    }
  };
  for (const t of model.params.values()) add(t);
  for (const q of model.qweights.values()) add(q);
  return bytes;
}

/**
 * The quantised weights a config.json declares (its `quantization_config` block, written by
 * `frugal quantize`), by HF name; empty for an f32 checkpoint.
 */
export function quantMapFromConfig(json: unknown, file: string): Map<string, QFormat> {
  const out = new Map<string, QFormat>();
  const qc = (json as Record<string, unknown> | null)?.quantization_config;
  if (qc === undefined || qc === null) return out;
  const o = qc as Record<string, unknown>;
  if (typeof qc !== 'object' || o.quant_method !== 'frugal') {
    throw inputError(
      `${file}: quantization_config with quant_method '${String(o.quant_method)}' is not supported (frugal reads its own q8/q4 checkpoints)`,
    );
  }
  if (o.group_size !== QBLOCK) throw inputError(`${file}: quantization_config.group_size must be ${QBLOCK}`);
  const modules = o.modules as Record<string, unknown> | undefined;
  if (typeof modules !== 'object' || modules === null)
    throw inputError(`${file}: quantization_config.modules must map tensor names to q8 or q4`);
  for (const [name, f] of Object.entries(modules)) {
    if (!QUANTISABLE.test(name)) throw inputError(`${file}: quantization_config.modules names '${name}', which frugal never quantises`);
    if (f !== 'q8' && f !== 'q4') throw inputError(`${file}: quantization_config.modules['${name}'] is '${String(f)}', expected q8 or q4`);
    out.set(name, f);
  }
  return out;
}
