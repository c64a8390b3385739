import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';
import { GRAD_RULES } from './grads.js';
import type { OpName } from './grads.js';

/** One recorded op: its output, inputs (null for an absent optional input), saved tensors, sizes. */
export interface Node {
  op: OpName;
  out: Tensor;
  inputs: readonly (Tensor | null)[];
  saved: readonly Tensor[];
  attrs: Readonly<Record<string, number>>;
}

/**
 * Reverse-mode autodiff over whole ops. Forward ops append nodes while `engine.tape` is set;
 * `backward` seeds d(loss) = 1 and applies each node's rule from GRAD_RULES in reverse order.
 * Rules accumulate into input gradients, so a tensor used twice gets both contributions.
 */
export class Tape {
  readonly nodes: Node[] = [];

  record(e: Engine, op: OpName, out: Tensor, inputs: readonly (Tensor | null)[], saved: readonly Tensor[] = [],
    attrs: Record<string, number> = {}): void {
    if (!inputs.some((t) => t !== null && t.requiresGrad)) return;
    out.requiresGrad = true;
    this.nodes.push({ op, out, inputs, saved, attrs });
    void e;
  }

  backward(e: Engine, loss: Tensor): void {
    if (loss.size !== 1) throw new Error(`backward needs a scalar loss, got shape [${loss.shape}]`);
    this.backwardFrom(e, loss, [1]);
  }

  /** Back-propagate a given output gradient `seed` (same size as `out`) through the recorded ops. */
  backwardFrom(e: Engine, out: Tensor, seed: ArrayLike<number>): void {
    e.gradOf(out).set(seed);
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (node.out.grad) GRAD_RULES[node.op](e, node, node.out.grad);
    }
  }
}

/**
 * Record `fn` on a fresh tape, run backward from the scalar it returns, and release every
 * intermediate tensor. Parameter gradients (allocated beforehand) accumulate. Returns the loss.
 */
export function valueAndGrad(e: Engine, fn: () => Tensor): number {
  const tape = new Tape();
  const prev = e.tape;
  e.tape = tape;
  try {
    return e.scope(() => {
      const loss = fn();
      const value = loss.data()[0];
      e.tape = null;
      tape.backward(e, loss);
      return value;
    });
  } finally {
    e.tape = prev;
  }
}
