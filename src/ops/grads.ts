import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';
import type { Node } from './tape.js';
import { attentionBackwardBlocked } from './attention-blocked.js';

/**
 * Every gradient rule in one table. `dy` is the output's gradient; each rule accumulates into the
 * gradients of the inputs that require them (d(input) += …). Inputs: the order ops.ts records.
 */
type Rule = (e: Engine, n: Node, dy: Tensor) => void;

/** The gradient buffer of input i, or null when it needs none. */
function g(e: Engine, n: Node, i: number): Tensor | null {
  const t = n.inputs[i];
  return t && t.requiresGrad ? e.gradOf(t) : null;
}
function input(n: Node, i: number): Tensor { return n.inputs[i] as Tensor; }

export const GRAD_RULES = {
  // y = x W^T + b:  dx += dy W;  dW += dy^T x;  db += Σ_rows dy
  linear: (e, n, dy) => {
    const { M, N, K } = n.attrs, [gx, gw, gb] = [g(e, n, 0), g(e, n, 1), g(e, n, 2)];
    if (gx) e.k.matmulNN(gx, dy, input(n, 1), M, K, N, 1);
    if (gw) e.k.matmulTN(gw, dy, input(n, 0), N, K, M, 1);
    if (gb) e.k.addBiasBackward(gb, dy, M, N);
  },
  // out = table[ids]:  dtable[ids] += dout
  embedding: (e, n, dy) => { const gt = g(e, n, 0); if (gt) e.k.embeddingBackward(gt, dy, n.saved[0], n.attrs.n, n.attrs.D); },
  // see kernels/ref/norm.ts for the formula
  rmsnorm: (e, n, dy) => {
    const gx = g(e, n, 0) ?? e.empty(input(n, 0).shape), gw = g(e, n, 1) ?? e.empty(input(n, 1).shape);
    e.k.rmsnormBackward(gx, gw, dy, input(n, 0), input(n, 1), n.saved[0], n.attrs.rows, n.attrs.D);
  },
  // a + b:  da += dy; db += dy
  add: (e, n, dy) => { for (const i of [0, 1]) { const gi = g(e, n, i); if (gi) e.k.accumulate(gi, dy, n.attrs.n); } },
  // a ⊙ b:  da += dy ⊙ b; db += dy ⊙ a
  mul: (e, n, dy) => {
    const ga = g(e, n, 0), gb = g(e, n, 1);
    if (ga) e.k.mulAccumulate(ga, dy, input(n, 1), n.attrs.n);
    if (gb) e.k.mulAccumulate(gb, dy, input(n, 0), n.attrs.n);
  },
  // silu'(x) = s(1 + x(1 − s))
  silu: (e, n, dy) => { const gx = g(e, n, 0); if (gx) e.k.siluBackward(gx, dy, input(n, 0), n.attrs.n); },
  // softplus'(x) = sigmoid(x)
  softplus: (e, n, dy) => { const gx = g(e, n, 0); if (gx) e.k.softplusBackward(gx, dy, input(n, 0), n.attrs.n); },
  // d(−exp x) = −exp x = out
  negExp: (e, n, dy) => { const gx = g(e, n, 0); if (gx) e.k.negExpBackward(gx, dy, n.out, n.attrs.n); },
  // columns scatter back
  sliceLast: (e, n, dy) => {
    const gx = g(e, n, 0), { rows, C, c0, w } = n.attrs;
    if (gx) e.k.sliceColumnsBackward(gx, dy, rows, C, c0, w);
  },
  // see kernels/ref/conv.ts
  conv1d: (e, n, dy) => {
    const { B, L, C, K } = n.attrs;
    const gx = g(e, n, 0) ?? e.empty([B, L, C]), gw = g(e, n, 1) ?? e.empty([C, K]), gb = g(e, n, 2) ?? e.empty([C]);
    e.k.conv1dBackward(gx, gw, gb, dy, input(n, 0), input(n, 1), B, L, C, K);
  },
  // see kernels/ref/scan.ts; inputs x, delta, A, Bm, Cm, D
  scan: (e, n, dy) => {
    const { B, L, ED, N, chunk } = n.attrs;
    const [x, delta, A, Bm, Cm, D] = n.inputs as Tensor[];
    const grads = [0, 1, 2, 3, 4, 5].map((i) => g(e, n, i) ?? e.empty(input(n, i).shape));
    const work = e.empty([chunk + 1, N]);
    e.k.scanBackward(grads[0], grads[1], grads[2], grads[3], grads[4], grads[5], null,
      dy, x, delta, A, Bm, Cm, D, n.saved[0], work, B, L, ED, N, chunk);
  },
  // mean CE:  dlogits += (dy / rows) · (softmax − onehot)
  crossEntropy: (e, n, dy) => {
    const gl = g(e, n, 0), { rows, V } = n.attrs;
    if (!gl) return;
    const scale = e.empty([rows]);
    scale.data().fill(dy.data()[0] / rows);
    e.k.crossEntropyBackward(gl, scale, input(n, 0), n.saved[0], n.saved[1], rows, V);
  },
  // rotation by −angle (kernels/ref/attention.ts)
  rope: (e, n, dy) => {
    const gx = g(e, n, 0), { B, L, H, hd, pos0, theta } = n.attrs;
    if (gx) e.k.ropeBackward(gx, dy, B, L, H, hd, pos0, theta);
  },
  // softmax recomputed from the saved log-sum-exp; inputs q, k, v (kernels/ref/attention.ts)
  attention: (e, n, dy) => {
    const { B, L, H, Hkv, hd } = n.attrs;
    const [gq, gk, gv] = [0, 1, 2].map((i) => g(e, n, i) ?? e.empty(input(n, i).shape));
    if (e.k.kind === 'wasm') attentionBackwardBlocked(e, gq, gk, gv, dy, input(n, 0), input(n, 1), input(n, 2), n.out, n.saved[0], { B, L, H, Hkv, hd });
    else e.k.attentionBackward(gq, gk, gv, dy, input(n, 0), input(n, 1), input(n, 2), n.out, n.saved[0], B, L, H, Hkv, hd);
  },
  // silu(gate) ⊙ up:  dgate += dy·up·silu'(gate);  dup += dy·silu(gate)
  swiglu: (e, n, dy) => {
    const gg = g(e, n, 0) ?? e.empty(input(n, 0).shape), gu = g(e, n, 1) ?? e.empty(input(n, 1).shape);
    e.k.swigluBackward(gg, gu, dy, input(n, 0), input(n, 1), n.attrs.n);
  },
} satisfies Record<string, Rule>;

export type OpName = keyof typeof GRAD_RULES;
