import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';
import { GRAD_RULES } from './grads.js';
import type { Rule } from './grads.js';
import type { Node, OpName, OpNode, OpRecords } from './records.js';

export type { Node } from './records.js';

/**
 * Check what a gradient rule returned: one entry per input, and for each input that requires a
 * gradient exactly its gradient buffer (null for the others). A rule that forgets an input, or
 * returns a gradient for the wrong one, fails here instead of training silently wrong.
 */
export function checkRuleGrads(node: Node, grads: readonly (Tensor | null)[]): void {
  if (grads.length !== node.inputs.length) {
    throw new Error(`gradient rule '${node.op}' returned ${grads.length} gradients for ${node.inputs.length} inputs`);
  }
  node.inputs.forEach((t, i) => {
    const want = t?.requiresGrad ? t.grad : null;
    if (grads[i] !== want)
      throw new Error(
        `gradient rule '${node.op}': input ${i} ${want ? 'needs its gradient buffer' : 'needs no gradient'}, got ${grads[i] ? 'a tensor' : 'none'}`,
      );
  });
}

/**
 * Reverse-mode autodiff over whole ops. Forward ops append nodes while `engine.tape` is set;
 * `backward` seeds d(loss) = 1 and applies each node's rule from GRAD_RULES in reverse order.
 * Rules accumulate into input gradients, so a tensor used twice gets both contributions.
 */
export class Tape {
  readonly nodes: Node[] = [];

  record<O extends OpName>(
    op: O,
    out: Tensor,
    inputs: OpRecords[O]['inputs'],
    saved: OpRecords[O]['saved'],
    attrs: OpRecords[O]['attrs'],
  ): void {
    if (!inputs.some((t) => t?.requiresGrad)) return;
    out.requiresGrad = true;
    const node: OpNode<O> = { op, out, inputs, saved, attrs };
    this.nodes.push(node as Node);
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
      if (!node.out.grad) continue;
      // the table is indexed by the node's own op, so its rule takes this node (TypeScript cannot follow the correlation)
      const rule = GRAD_RULES[node.op] as Rule<OpName> as (e: Engine, n: Node, dy: Tensor) => readonly (Tensor | null)[];
      checkRuleGrads(node, rule(e, node, node.out.grad));
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
