import type { Tensor } from '../tensor/index.js';
import { isWasm } from '../kernels/backend.js';
import type { Engine } from './engine.js';
import { packPanels4, unpackPanels4 } from '../kernels/ref/panels.js';

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
  relayout(t, true);
  t.panels = true;
}

/** Move `t` back to the row layout in place (no-op when it is there). */
export function toRows(t: Tensor): void {
  if (!t.panels) return;
  relayout(t, false);
  t.panels = false;
}

/**
 * Move t between the layouts in place, one panel at a time: panel p covers exactly the bytes of
 * rows 4p … 4p+3, so a 4K-float copy is all the scratch it needs (a whole-tensor temporary would
 * add the largest weight, the token table, to the heap's high-water mark for good). Each panel is
 * the reference kernels' layout of a 4-row matrix.
 */
function relayout(t: Tensor, toPanels: boolean): void {
  const [N, K] = t.shape,
    v = t.floats(),
    tmp = new Float32Array(4 * K);
  for (let o = 0; o < N * K; o += 4 * K) {
    const panel = v.subarray(o, o + 4 * K);
    tmp.set(panel);
    (toPanels ? packPanels4 : unpackPanels4)(panel, tmp, 4, K);
  }
}

/** The row-layout values of `t`: a copy when it is held in panels, else a view. */
export function rowValues(t: Tensor): Float32Array {
  const v = t.floats() as Float32Array;
  if (!t.panels) return v;
  const [N, K] = t.shape,
    out = new Float32Array(N * K);
  unpackPanels4(out, v, N, K);
  return out;
}
