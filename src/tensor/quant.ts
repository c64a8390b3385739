import type { Tensor } from './tensor.js';

/** Block-quantised weight formats (src/kernels/ref/quant.ts documents them). */
export type QFormat = 'q8' | 'q4';
export const QFORMATS: readonly QFormat[] = ['q8', 'q4'];
export const QBLOCK = 32;

/**
 * A quantised 2-D weight (N, K): `q` holds int8 values (q8, N·K bytes) or packed nibbles (q4,
 * N·K/2 bytes), `scales` one f32 per block of 32 along K (N, K/32). Inference only: no gradient.
 * `packed`: q and scales hold the same values in the layout the products read (groups of four
 * rows, src/kernels/ref/quant4x4.ts) instead of the row layout checkpoints keep.
 */
export interface QWeight {
  readonly kind: 'quant';
  readonly format: QFormat;
  readonly shape: readonly [number, number];
  readonly q: Tensor;
  readonly scales: Tensor;
  packed?: boolean;
}

/** Bytes a product with a packed weight needs to prepare `rows` activation rows of length K (288 a block). */
export function prepBytes(rows: number, K: number): number {
  return rows * (K / QBLOCK) * 288;
}

export type Weight = Tensor | QWeight;

export function isQuant(w: Weight | null): w is QWeight {
  return w !== null && (w as QWeight).kind === 'quant';
}

/** Bytes a product with this weight reads. */
export function weightByteLength(w: Weight): number {
  return isQuant(w) ? w.q.byteLength + w.scales.byteLength : w.byteLength;
}

export function disposeWeight(w: Weight): void {
  if (isQuant(w)) {
    w.q.dispose();
    w.scales.dispose();
  } else w.dispose();
}
