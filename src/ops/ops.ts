import type { Tensor, Weight, QWeight } from '../tensor/index.js';
import { isQuant, QBLOCK } from '../tensor/index.js';
import type { Engine } from './engine.js';

/**
 * Differentiable ops: each allocates its output in the current scope, runs one or two kernels, and
 * (while a tape records) saves what its gradient rule in grads.ts needs. Shapes use the legend:
 * rows = product of leading dims; B batch, L sequence, C/ED channels, N d_state, K kernel, V vocab.
 */

function lastDim(t: Tensor): number { return t.shape[t.shape.length - 1]; }
function rowsOf(t: Tensor): number { return t.size / lastDim(t); }
function withLast(t: Tensor, n: number): number[] { return [...t.shape.slice(0, -1), n]; }

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: shapes [${a.shape}] and [${b.shape}] differ`);
}

/**
 * y (rows, N) = x (rows, K) @ w (N, K)^T + b (N). A quantised w (inference only) quantises the
 * rows of x to q8 and runs the integer-dot kernels.
 */
export function linear(e: Engine, x: Tensor, w: Weight, b: Tensor | null): Tensor {
  if (isQuant(w)) return linearQuant(e, x, w, b);
  const [N, K] = w.shape, M = rowsOf(x);
  if (lastDim(x) !== K) throw new Error(`linear: input [${x.shape}] does not match weight [${w.shape}]`);
  const y = e.empty(withLast(x, N));
  e.k.matmulNT(y, x, w, M, N, K, 0);
  if (b) e.k.addBias(y, y, b, M, N);
  e.tape?.record(e, 'linear', y, [x, w, b], [], { M, N, K });
  return y;
}

/** y = x @ w^T (+ b) with a quantised weight: not differentiable with respect to w. */
export function linearQuant(e: Engine, x: Tensor, w: QWeight, b: Tensor | null): Tensor {
  const [N, K] = w.shape, M = rowsOf(x);
  if (lastDim(x) !== K) throw new Error(`linear: input [${x.shape}] does not match weight [${w.shape}]`);
  if (e.tape && x.requiresGrad) throw new Error('quantised weights are for inference: train the f32 model, then quantise');
  const y = e.empty(withLast(x, N));
  const qx = e.empty([M, K], 'i8'), sx = e.empty([M, K / QBLOCK]);
  e.k.quantizeQ8(qx, sx, x, M, K);
  if (w.format === 'q8') e.k.matmulQ8(y, qx, sx, w.q, w.scales, M, N, K);
  else e.k.matmulQ4(y, qx, sx, w.q, w.scales, M, N, K);
  if (b) e.k.addBias(y, y, b, M, N);
  return y;
}

/** out (n, D) = table (V, D)[ids (n)] */
export function embedding(e: Engine, table: Weight, ids: Tensor): Tensor {
  if (isQuant(table)) return embeddingQuant(e, table, ids);
  const [V, D] = table.shape, n = ids.size;
  checkIds(ids, V);
  const out = e.empty([...ids.shape, D]);
  e.k.embeddingForward(out, table, ids, n, D);
  e.tape?.record(e, 'embedding', out, [table], [ids], { n, D });
  return out;
}

function checkIds(ids: Tensor, V: number): void {
  const idv = ids.ints();
  for (let i = 0; i < idv.length; i++) {
    if (idv[i] < 0 || idv[i] >= V) throw new RangeError(`token id ${idv[i]} at position ${i} is outside the vocabulary [0, ${V})`);
  }
}

/** Rows of a quantised embedding table, dequantised (inference only). */
export function embeddingQuant(e: Engine, table: QWeight, ids: Tensor): Tensor {
  const [V, D] = table.shape, n = ids.size;
  checkIds(ids, V);
  const out = e.empty([...ids.shape, D]);
  if (table.format === 'q8') e.k.embeddingQ8(out, table.q, table.scales, ids, n, D);
  else e.k.embeddingQ4(out, table.q, table.scales, ids, n, D);
  return out;
}

/** out = x / rms(x) · w over the last dim; saves rstd (rows) */
export function rmsnorm(e: Engine, x: Tensor, w: Tensor, eps: number): Tensor {
  const D = lastDim(x), rows = rowsOf(x);
  const out = e.empty(x.shape), rstd = e.empty([rows]);
  e.k.rmsnormForward(out, rstd, x, w, rows, D, eps);
  e.tape?.record(e, 'rmsnorm', out, [x, w], [rstd], { rows, D });
  return out;
}

export function add(e: Engine, a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  const out = e.empty(a.shape);
  e.k.add(out, a, b, a.size);
  e.tape?.record(e, 'add', out, [a, b], [], { n: a.size });
  return out;
}

export function mul(e: Engine, a: Tensor, b: Tensor): Tensor {
  sameShape('mul', a, b);
  const out = e.empty(a.shape);
  e.k.mul(out, a, b, a.size);
  e.tape?.record(e, 'mul', out, [a, b], [], { n: a.size });
  return out;
}

export function silu(e: Engine, x: Tensor): Tensor {
  const out = e.empty(x.shape);
  e.k.siluForward(out, x, x.size);
  e.tape?.record(e, 'silu', out, [x], [], { n: x.size });
  return out;
}

export function softplus(e: Engine, x: Tensor): Tensor {
  const out = e.empty(x.shape);
  e.k.softplusForward(out, x, x.size);
  e.tape?.record(e, 'softplus', out, [x], [], { n: x.size });
  return out;
}

/** out = −exp(x)  (A = −exp(A_log)) */
export function negExp(e: Engine, x: Tensor): Tensor {
  const out = e.empty(x.shape);
  e.k.negExpForward(out, x, x.size);
  e.tape?.record(e, 'negExp', out, [x], [], { n: x.size });
  return out;
}

/** Columns [c0, c0+w) of the last dim */
export function sliceLast(e: Engine, x: Tensor, c0: number, w: number): Tensor {
  const C = lastDim(x), rows = rowsOf(x);
  if (c0 < 0 || c0 + w > C) throw new Error(`sliceLast: columns [${c0}, ${c0 + w}) outside [0, ${C})`);
  const out = e.empty(withLast(x, w));
  e.k.sliceColumns(out, x, rows, C, c0, w);
  e.tape?.record(e, 'sliceLast', out, [x], [], { rows, C, c0, w });
  return out;
}

/** Causal depthwise conv over time: x (B, L, C), w (C, 1, K), bias (C) or null -> (B, L, C) */
export function conv1d(e: Engine, x: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const [B, L, C] = x.shape, K = w.shape[w.shape.length - 1];
  if (w.size !== C * K) throw new Error(`conv1d: weight [${w.shape}] does not match ${C} channels`);
  const b = bias ?? e.empty([C]);
  const out = e.empty(x.shape);
  e.k.conv1dForward(out, x, w, b, B, L, C, K);
  e.tape?.record(e, 'conv1d', out, [x, w, bias], [], { B, L, C, K });
  return out;
}

/** Time steps saved per scan checkpoint: the backward recomputes at most this many states. */
export const SCAN_CHUNK = 16;

/**
 * Selective scan y (B, L, ED) from x, delta (B, L, ED), A (ED, N), Bm, Cm (B, L, N), D (ED),
 * starting from a zero state. Saves the chunk checkpoints (B, ceil(L/chunk), ED, N).
 */
export function selectiveScan(e: Engine, x: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, D: Tensor,
  chunk = SCAN_CHUNK): Tensor {
  const [B, L, ED] = x.shape, N = A.shape[1];
  const y = e.empty(x.shape);
  const h = e.empty([B, ED, N]);
  const hck = e.empty([B, Math.ceil(L / chunk), ED, N]);
  e.k.scanForward(y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk);
  e.tape?.record(e, 'scan', y, [x, delta, A, Bm, Cm, D], [hck], { B, L, ED, N, chunk });
  return y;
}

/**
 * out (n, C) = x (rows, C)[idx (n)]: the rows a loss reads (for example the answer positions of a
 * synthetic task). The gather is the embedding lookup with x as the table, so it shares that
 * kernel and gradient rule (d x[idx] += d out, repeated rows accumulate).
 */
export function gatherRows(e: Engine, x: Tensor, idx: Tensor): Tensor {
  const C = lastDim(x), rows = rowsOf(x), n = idx.size;
  checkIds(idx, rows);
  const out = e.empty([n, C]);
  e.k.embeddingForward(out, x, idx, n, C);
  e.tape?.record(e, 'embedding', out, [x], [idx], { n, D: C });
  return out;
}

/** Mean next-token cross-entropy (nats) of logits (rows, V) against targets (rows) -> (1) */
export function crossEntropy(e: Engine, logits: Tensor, targets: Tensor): Tensor {
  const V = lastDim(logits), rows = rowsOf(logits);
  if (targets.size !== rows) throw new Error(`crossEntropy: ${targets.size} targets for ${rows} rows`);
  checkIds(targets, V);
  const losses = e.empty([rows]), lse = e.empty([rows]), out = e.empty([1]);
  e.k.crossEntropyForward(losses, lse, logits, targets, rows, V);
  e.k.meanForward(out, losses, rows);
  e.tape?.record(e, 'crossEntropy', out, [logits], [lse, targets], { rows, V });
  return out;
}
