import type { Tensor } from '../tensor/index.js';
import type { Engine } from '../ops/index.js';
import { panelable, toPanels, toRows } from '../ops/panels.js';

/**
 * Which weights of a model inference holds in panels of four rows (src/ops/panels.ts): the
 * projections every family runs through `linearInto` (Mamba's in_proj, x_proj and out_proj;
 * attention's q/k/v/o; the MLP's gate/up/down) and the token table / head, read by `linearInto`
 * and `embeddingInto`. Mamba-1's dt_proj stays in rows: its fused decoding kernel reads it as
 * rows. The first inference call moves them (about a copy of the weights, once); a taped product
 * moves a weight back when training resumes.
 */
const PANEL_WEIGHTS = /(^|\.)(in_proj|x_proj|out_proj|[qkvo]_proj|gate_proj|up_proj|down_proj)\.weight$/;
const TABLES = /^(backbone\.embeddings\.weight|model\.embed_tokens\.weight|lm_head\.weight)$/;

interface HasParams {
  readonly e: Engine;
  readonly params: ReadonlyMap<string, Tensor>;
}

const lists = new WeakMap<ReadonlyMap<string, Tensor>, { size: number; tensors: Tensor[] }>();

/** The weights of `model` that inference holds in panels (worked out once per parameter table). */
export function panelWeights(model: HasParams): readonly Tensor[] {
  const hit = lists.get(model.params);
  if (hit && hit.size === model.params.size) return hit.tensors;
  const tensors = [...model.params]
    .filter(([name, t]) => (PANEL_WEIGHTS.test(name) || TABLES.test(name)) && panelable(model.e, t))
    .map(([, t]) => t);
  lists.set(model.params, { size: model.params.size, tensors });
  return tensors;
}

/** Before an inference pass: the panel weights into panels (a flag check each once they are). */
export function inferenceLayout(model: HasParams): void {
  for (const t of panelWeights(model)) if (!t.panels) toPanels(model.e, t);
}

/** Every weight of `model` back in the row layout (before reading or writing them as rows). */
export function rowLayout(model: HasParams): void {
  for (const t of model.params.values()) toRows(t);
}
