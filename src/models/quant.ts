import type { QFormat, QWeight, Tensor, Weight } from '../tensor/index.js';
import { QBLOCK, weightByteLength } from '../tensor/index.js';
import { inputError } from '../io/errors.js';
import type { Engine } from '../ops/index.js';
import type { ParamSpec, ParamTable, TrainableModel } from './types.js';
import { rowLayout } from './panels.js';

/**
 * Quantising a state-space model for inference (following llama.cpp's choices): the big
 * projections (Mamba's in_proj, x_proj, out_proj, dt_proj when its rows are a multiple of the
 * block; Mamba-2's in_proj and out_proj; a hybrid's attention and MLP projections) and the
 * embedding/head go to q8 or q4; A_log, D, dt_bias, conv weights, norms, biases and the
 * recurrent state stay f32, because quantising those hurts Mamba most. With q4 the
 * embedding/head stays at q8 (higher precision, as llama.cpp keeps its output tensor).
 */
const PROJECTION =
  /^(backbone|model)\.layers\.\d+\.((mixer|mamba)\.(in_proj|x_proj|out_proj|dt_proj)|self_attn\.[qkvo]_proj|feed_forward\.(gate|up|down)_proj)\.weight$/;
const TABLE = /^(backbone\.embeddings\.weight|model\.embed_tokens\.weight|lm_head\.weight)$/;

/** A model that can hold block-quantised weights: its f32 parameters, its quantised ones, and `relink` to re-read its layers after a swap. */
export interface QuantisableModel extends TrainableModel {
  readonly e: Engine;
  readonly specs: readonly ParamSpec[];
  readonly params: ParamTable;
  readonly qweights: Map<string, QWeight>;
  relink(): void;
}

export function quantPlan(specs: readonly ParamSpec[], format: QFormat): Map<string, QFormat> {
  const plan = new Map<string, QFormat>();
  for (const s of specs) {
    if (s.shape.length !== 2 || s.shape[1] % QBLOCK !== 0) continue;
    if (PROJECTION.test(s.name)) plan.set(s.name, format);
    else if (TABLE.test(s.name)) plan.set(s.name, 'q8');
  }
  return plan;
}

/** Quantise one f32 (N, K) tensor into a new QWeight (K a multiple of 32). */
export function quantizeTensor(model: { e: Engine }, t: Tensor, format: QFormat): QWeight {
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
export function quantizeModel(model: QuantisableModel, format: QFormat): void {
  if (model.qweights.size > 0) throw inputError('this model is already quantised; quantise the f32 checkpoint instead');
  rowLayout(model); // quantisation reads rows
  const replaced: Tensor[] = [];
  for (const [name, f] of quantPlan(model.specs, format)) {
    const t = model.params.get(name) as Tensor;
    model.qweights.set(name, quantizeTensor(model, t, f));
    model.params.delete(name);
    replaced.push(t);
  }
  model.relink();
  for (const t of replaced) t.dispose();
  packQuantWeights(model);
  model.weightsChanged();
}

/**
 * Repack, in place, the quantised projections of a model on the default wasm kernels into the
 * layout its products read fastest (groups of four rows, activations prepared once a product:
 * src/kernels/ref/quant4x4.ts), the same values giving the same bits. Lookup tables keep the row
 * layout (embeddings read rows), as do weights whose rows are not a multiple of 4, and the
 * relaxed-SIMD build, whose relaxed integer dots run on the row layout. Checkpoints are always
 * written in the row layout (modelStreamTensors unpacks).
 */
export function packQuantWeights(model: { e: Engine; qweights: ReadonlyMap<string, QWeight> }): void {
  const e = model.e;
  if (e.k.kind !== 'wasm') return;
  for (const [name, w] of model.qweights) {
    const [N, K] = w.shape;
    if (w.packed || !PROJECTION.test(name) || N % 4 !== 0) continue;
    e.scope(() => {
      const q = e.empty(w.q.shape, w.q.dtype),
        scales = e.empty([N, K / QBLOCK]);
      if (w.format === 'q4') e.k.repackQ4x4(q, scales, w.q, w.scales, N, K);
      else e.k.repackQ8x4(q, scales, w.q, w.scales, N, K);
      w.q.data().set(q.data());
      w.scales.data().set(scales.data());
    });
    w.packed = true;
  }
}

/** Bytes of weights a decoding step reads (each distinct weight once; a tied head counts once). */
export function weightBytes(model: { params: ParamTable; qweights: ReadonlyMap<string, QWeight> }): number {
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
    if (!PROJECTION.test(name) && !TABLE.test(name))
      throw inputError(`${file}: quantization_config.modules names '${name}', which frugal never quantises`);
    if (f !== 'q8' && f !== 'q4') throw inputError(`${file}: quantization_config.modules['${name}'] is '${String(f)}', expected q8 or q4`);
    out.set(name, f);
  }
  return out;
}
