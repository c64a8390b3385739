import type { Tensor } from '../tensor/index.js';
import { isWasm } from '../kernels/backend.js';
import type { Engine } from './engine.js';

/**
 * Weights in panels of four rows (src/kernels/ref/panels.ts): the layout the wasm products read
 * fastest, the same values giving the same bits. Inference moves a model's projections and its
 * token table into it (models/panels.ts); anything that reads a weight as rows — a taped product
 * (training), a checkpoint writer, quantisation, an adapter merge — moves that weight back first,
 * so the row layout stays the only one outside inference.
 */

/** Whether `t` can be held in panels: a 2-D f32 weight with both sides multiples of 4, on wasm kernels that allow it. */
export function panelable(e: Engine, t: Tensor): boolean {
  return e.panels && isWasm(e.k.kind) && t.dtype === 'f32' && t.shape.length === 2 && t.shape[0] % 4 === 0 && t.shape[1] % 4 === 0;
}

/** Move `t` into panels in place (no-op when it is there or cannot be). */
export function toPanels(e: Engine, t: Tensor): void {
  if (t.panels || !panelable(e, t)) return;
  relayout(e, t, 'packPanels4');
  t.panels = true;
}

/** Move `t` back to the row layout in place (no-op when it is there). */
export function toRows(e: Engine, t: Tensor): void {
  if (!t.panels) return;
  relayout(e, t, 'unpackPanels4');
  t.panels = false;
}

function relayout(e: Engine, t: Tensor, kernel: 'packPanels4' | 'unpackPanels4'): void {
  const [N, K] = t.shape;
  e.scope(() => {
    const tmp = e.empty([N, K]);
    e.k[kernel](tmp, t, N, K);
    t.floats().set(tmp.floats());
  });
}

/** The row-layout values of `t`: a copy when it is held in panels, else a view. */
export function rowValues(e: Engine, t: Tensor): Float32Array {
  const v = t.floats() as Float32Array;
  if (!t.panels) return v;
  const [N, K] = t.shape,
    out = new Float32Array(N * K);
  e.scope(() => {
    const tmp = e.empty([N, K]);
    e.k.unpackPanels4(tmp, t, N, K);
    out.set(tmp.floats());
  });
  return out;
}
