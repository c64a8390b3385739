import type { Tensor, Weight } from '../tensor/index.js';
import type { Engine } from '../ops/index.js';
import * as op from '../ops/ops.js';

/** What both language models share around their blocks: the final norm and head, and the loss. */

/** logits (B, L, V) from the last hidden states h (B, L, D): the final RMSNorm, then the head. */
export function lmLogits(e: Engine, h: Tensor, norm: Tensor, eps: number, head: Weight): Tensor {
  return op.linear(e, op.rmsnorm(e, h, norm, eps), head, null);
}

/** Mean next-token cross-entropy (nats) of a model's logits for ids (B·L) against targets (B·L). */
export function lmLoss(
  m: { e: Engine; forward(ids: Int32Array, B: number, L: number): Tensor },
  ids: Int32Array,
  targets: Int32Array,
  B: number,
  L: number,
): Tensor {
  return op.crossEntropy(m.e, m.forward(ids, B, L), m.e.ids(targets, [B * L]));
}
