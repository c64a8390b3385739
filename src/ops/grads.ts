import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';
import { isWasm } from '../kernels/backend.js';
import type { InputGrads, OpName, OpNode } from './records.js';
import { attentionBackwardBlocked } from './attention-blocked.js';
import { inputGradInto, weightGradInto } from './ops.js';
import { mamba3WorkSize, ssdWorkSize } from '../kernels/ssd-work.js';

/**
 * Every gradient rule in one table, typed per op by OpRecords (records.ts). `dy` is the output's
 * gradient; each rule accumulates into the gradients of the inputs that require them
 * (d(input) += …) and returns those buffers, one entry per input (null where none is needed).
 */
export type Rule<O extends OpName> = (e: Engine, n: OpNode<O>, dy: Tensor) => InputGrads<O>;

/** The gradient buffer of t (allocated, zeroed, on first use), or null when t needs none. */
function gradOf(e: Engine, t: Tensor | null): Tensor | null {
  return t?.requiresGrad ? e.gradOf(t) : null;
}

/** MIMO's rank projections (ops/mamba3.ts): the gradients of their input and weights. */
function rankProjection(
  e: Engine,
  n: OpNode<'mimoUp' | 'mimoDown'>,
  dy: Tensor,
  backward: Engine['k']['mimoUpBackward'],
): InputGrads<'mimoUp' | 'mimoDown'> {
  const [x, w] = n.inputs,
    gx = gradOf(e, x),
    gw = gradOf(e, w),
    { M, H, R, P } = n.attrs;
  backward(gx, gw, dy, x, w, M, H, R, P);
  return [gx, gw];
}

export const GRAD_RULES: { readonly [O in OpName]: Rule<O> } = {
  // y = x W^T + b:  dx += dy W;  dW += dy^T x;  db += Σ_rows dy
  linear: (e, n, dy) => {
    const [x, w, b] = n.inputs,
      { M, N, K } = n.attrs;
    const gx = gradOf(e, x),
      gw = gradOf(e, w),
      gb = gradOf(e, b);
    if (gx) inputGradInto(e, gx, dy, w, M, N, K);
    if (gw) weightGradInto(e, gw, dy, x, M, N, K);
    if (gb) e.k.addBiasBackward(gb, dy, M, N);
    return [gx, gw, gb];
  },
  // y = x deq(W)^T + b with W frozen:  dx += dy deq(W) (dequantised for the product, then freed);  db += Σ_rows dy
  linearQuant: (e, n, dy) => {
    const [x, b] = n.inputs,
      [q, scales] = n.saved,
      { M, N, K, q4, packed } = n.attrs;
    const gx = gradOf(e, x),
      gb = gradOf(e, b);
    if (gx) {
      const w = e.zeros([N, K]);
      if (packed && q4) e.k.dequantizeQ4x4(w, q, scales, N, K);
      else if (packed) e.k.dequantizeQ8x4(w, q, scales, N, K);
      else if (q4) e.k.dequantizeQ4(w, q, scales, N, K);
      else e.k.dequantizeQ8(w, q, scales, N, K);
      e.k.matmulNN(gx, dy, w, M, K, N, 1);
    }
    if (gb) e.k.addBiasBackward(gb, dy, M, N);
    return [gx, gb];
  },
  // out = t Bᵀ with t = s·x Aᵀ:  dB += dyᵀ t;  dt = s·dy B;  dA += dtᵀ x;  dx += dt A
  lora: (e, n, dy) => {
    const [x, A, B] = n.inputs,
      [t] = n.saved,
      { M, N, K, r, scale } = n.attrs;
    const gx = gradOf(e, x),
      gA = gradOf(e, A),
      gB = gradOf(e, B);
    if (gB) e.k.matmulTN(gB, dy, t, N, r, M, 1);
    if (gx || gA) {
      const dt = e.zeros([M, r]);
      e.k.matmulNN(dt, dy, B, M, r, N, 0);
      e.k.scaleInPlace(dt, scale, M * r);
      if (gA) e.k.matmulTN(gA, dt, x, r, K, M, 1);
      if (gx) e.k.matmulNN(gx, dt, A, M, K, r, 1);
    }
    return [gx, gA, gB];
  },
  // out = table[ids]:  dtable[ids] += dout
  embedding: (e, n, dy) => {
    const gt = gradOf(e, n.inputs[0]);
    if (gt) e.k.embeddingBackward(gt, dy, n.saved[0], n.attrs.n, n.attrs.D);
    return [gt];
  },
  // see kernels/ref/norm.ts for the formula; the kernel writes both gradients, so scratch stands in for one not needed
  rmsnorm: (e, n, dy) => {
    const [x, w] = n.inputs,
      gx = gradOf(e, x),
      gw = gradOf(e, w);
    e.k.rmsnormBackward(gx ?? e.zeros(x.shape), gw ?? e.zeros(w.shape), dy, x, w, n.saved[0], n.attrs.rows, n.attrs.D);
    return [gx, gw];
  },
  // a + b:  da += dy; db += dy
  add: (e, n, dy) => {
    const [ga, gb] = n.inputs.map((t) => gradOf(e, t));
    if (ga) e.k.accumulate(ga, dy, n.attrs.n);
    if (gb) e.k.accumulate(gb, dy, n.attrs.n);
    return [ga, gb];
  },
  // a ⊙ b:  da += dy ⊙ b; db += dy ⊙ a
  mul: (e, n, dy) => {
    const [a, b] = n.inputs,
      ga = gradOf(e, a),
      gb = gradOf(e, b);
    if (ga) e.k.mulAccumulate(ga, dy, b, n.attrs.n);
    if (gb) e.k.mulAccumulate(gb, dy, a, n.attrs.n);
    return [ga, gb];
  },
  // silu'(x) = s(1 + x(1 − s))
  silu: (e, n, dy) => {
    const [x] = n.inputs,
      gx = gradOf(e, x);
    if (gx) e.k.siluBackward(gx, dy, x, n.attrs.n);
    return [gx];
  },
  // softplus'(x) = sigmoid(x)
  softplus: (e, n, dy) => {
    const [x] = n.inputs,
      gx = gradOf(e, x);
    if (gx) e.k.softplusBackward(gx, dy, x, n.attrs.n);
    return [gx];
  },
  // d(−exp x) = −exp x = out
  negExp: (e, n, dy) => {
    const gx = gradOf(e, n.inputs[0]);
    if (gx) e.k.negExpBackward(gx, dy, n.out, n.attrs.n);
    return [gx];
  },
  // columns scatter back
  sliceLast: (e, n, dy) => {
    const gx = gradOf(e, n.inputs[0]),
      { rows, C, c0, w } = n.attrs;
    if (gx) e.k.sliceColumnsBackward(gx, dy, rows, C, c0, w);
    return [gx];
  },
  // see kernels/ref/conv.ts
  conv1d: (e, n, dy) => {
    const [x, w, bias] = n.inputs,
      { B, L, C, K } = n.attrs;
    const gx = gradOf(e, x),
      gw = gradOf(e, w),
      gb = gradOf(e, bias);
    e.k.conv1dBackward(gx ?? e.zeros([B, L, C]), gw ?? e.zeros([C, K]), gb ?? e.zeros([C]), dy, x, w, B, L, C, K);
    return [gx, gw, gb];
  },
  // see kernels/ref/scan.ts
  scan: (e, n, dy) => {
    const { B, L, ED, N, chunk } = n.attrs,
      [x, delta, A, Bm, Cm, D] = n.inputs;
    const grads = n.inputs.map((t) => gradOf(e, t));
    const [dx, ddelta, dA, dB, dC, dD] = grads.map((g, i) => g ?? e.zeros(n.inputs[i].shape));
    const work = e.zeros([2 * chunk + 1, N]);
    e.k.scanBackward(dx, ddelta, dA, dB, dC, dD, null, dy, x, delta, A, Bm, Cm, D, n.saved[0], work, B, L, ED, N, chunk);
    return grads as InputGrads<'scan'>;
  },
  // mean CE:  dlogits += (dy / rows) · (softmax − onehot)
  crossEntropy: (e, n, dy) => {
    const [logits] = n.inputs,
      gl = gradOf(e, logits),
      { rows, V } = n.attrs;
    if (!gl) return [null];
    const scale = e.zeros([rows]);
    scale.data().fill(dy.data()[0] / rows);
    e.k.crossEntropyBackward(gl, scale, logits, n.saved[0], n.saved[1], rows, V);
    return [gl];
  },
  // mean distillation loss: see kernels/ref/loss.ts
  distill: (e, n, dy) => {
    const [logits] = n.inputs,
      gl = gradOf(e, logits),
      { rows, V, T, alpha } = n.attrs,
      [teacher, lseT, lse1, targets] = n.saved;
    if (!gl) return [null];
    const scale = e.zeros([rows]);
    scale.data().fill(dy.data()[0] / rows);
    e.k.distillBackward(gl, scale, logits, teacher, lseT, lse1, targets, rows, V, T, alpha);
    return [gl];
  },
  // rotation by −angle (kernels/ref/attention.ts)
  rope: (e, n, dy) => {
    const gx = gradOf(e, n.inputs[0]),
      { B, L, H, hd, pos0, theta } = n.attrs;
    if (gx) e.k.ropeBackward(gx, dy, B, L, H, hd, pos0, theta);
    return [gx];
  },
  // softmax recomputed from the saved log-sum-exp (kernels/ref/attention.ts)
  attention: (e, n, dy) => {
    const [q, k, v] = n.inputs,
      { B, L, H, Hkv, hd } = n.attrs;
    const grads = n.inputs.map((t) => gradOf(e, t));
    const [gq, gk, gv] = grads.map((g, i) => g ?? e.zeros(n.inputs[i].shape));
    // the wasm backend runs the products on its SIMD matmuls (attention-blocked.ts); ref runs the spec
    if (isWasm(e.k.kind)) attentionBackwardBlocked(e, gq, gk, gv, dy, q, k, v, n.out, n.saved[0], { B, L, H, Hkv, hd });
    else e.k.attentionBackward(gq, gk, gv, dy, q, k, v, n.out, n.saved[0], B, L, H, Hkv, hd);
    return grads as InputGrads<'attention'>;
  },
  // silu(gate) ⊙ up:  dgate += dy·up·silu'(gate);  dup += dy·silu(gate)
  swiglu: (e, n, dy) => {
    const [gate, up] = n.inputs,
      gg = gradOf(e, gate),
      gu = gradOf(e, up);
    e.k.swigluBackward(gg ?? e.zeros(gate.shape), gu ?? e.zeros(up.shape), dy, gate, up, n.attrs.n);
    return [gg, gu];
  },
  // Mamba-2 and the hybrids: see kernels/ref/mamba2.ts, ssd.ts and rotary.ts
  ropePartial: (e, n, dy) => {
    const gx = gradOf(e, n.inputs[0]),
      { B, L, H, hd, rd, pos0, theta } = n.attrs;
    if (gx) e.k.ropePartialBackward(gx, dy, B, L, H, hd, rd, pos0, theta);
    return [gx];
  },
  dtSoftplus: (e, n, dy) => {
    const [dt, bias] = n.inputs,
      gd = gradOf(e, dt),
      gb = gradOf(e, bias),
      { rows, H, lo, hi } = n.attrs;
    e.k.dtSoftplusBackward(gd ?? e.zeros(dt.shape), gb ?? e.zeros(bias.shape), dy, dt, bias, rows, H, lo, hi);
    return [gd, gb];
  },
  gatedRmsnorm: (e, n, dy) => {
    const [y, z, w] = n.inputs,
      { rows, D, gs } = n.attrs;
    const grads = n.inputs.map((t) => gradOf(e, t));
    const [gy, gz, gw] = grads.map((g, i) => g ?? e.zeros(n.inputs[i].shape));
    e.k.gatedRmsnormBackward(gy, gz, gw, dy, y, z, w, n.saved[0], rows, D, gs);
    return grads as InputGrads<'gatedRmsnorm'>;
  },
  // Mamba-3: see kernels/ref/mamba3.ts
  sigmoid: (e, n, dy) => {
    const [x] = n.inputs,
      gx = gradOf(e, x);
    if (gx) e.k.sigmoidBackward(gx, dy, x, n.attrs.n);
    return [gx];
  },
  negHeavyTail: (e, n, dy) => {
    const [x] = n.inputs,
      gx = gradOf(e, x);
    if (gx) e.k.negHeavyTailBackward(gx, dy, x, n.attrs.floor, n.attrs.n);
    return [gx];
  },
  mamba3Scan: (e, n, dy) => {
    const { B, L, H, P, G, N, S, R, chunk, halves } = n.attrs;
    const grads = n.inputs.map((t) => gradOf(e, t));
    const g = grads.map((t, i) => t ?? e.zeros(n.inputs[i].shape)) as Tensor[];
    e.k.mamba3MimoScanBackward(
      ...(g as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]),
      dy,
      ...n.inputs,
      n.saved[0],
      e.zeros([mamba3WorkSize(P, N, S, R, chunk)]),
      B,
      L,
      H,
      P,
      G,
      N,
      S,
      R,
      chunk,
      halves,
    );
    return grads as InputGrads<'mamba3Scan'>;
  },
  mimoUp: (e, n, dy) => rankProjection(e, n, dy, e.k.mimoUpBackward),
  mimoDown: (e, n, dy) => rankProjection(e, n, dy, e.k.mimoDownBackward),
  ssd: (e, n, dy) => {
    const { B, L, H, P, G, N, Q } = n.attrs,
      [x, delta, A, Bm, Cm, D] = n.inputs;
    const grads = n.inputs.map((t) => gradOf(e, t));
    const [dx, ddelta, dA, dB, dC, dD] = grads.slice(0, 6).map((g, i) => g ?? e.zeros((n.inputs[i] as Tensor).shape));
    e.k.ssdChunkBackward(
      dx,
      ddelta,
      dA,
      dB,
      dC,
      dD,
      grads[6],
      dy,
      x,
      delta,
      A,
      Bm,
      Cm,
      D,
      n.saved[0],
      e.zeros([ssdWorkSize(B, H, P, N, Q)]),
      B,
      L,
      H,
      P,
      G,
      N,
      Q,
    );
    return grads as InputGrads<'ssd'>;
  },
};
