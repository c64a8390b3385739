import type { Tensor, Weight } from '../tensor/index.js';
import { isQuant, prepBytes, QBLOCK } from '../tensor/index.js';
import type { Engine } from './engine.js';
import { checkTokenIds } from '../io/tokenids.js';
import { isWasm } from '../kernels/backend.js';
import { toRows } from './panels.js';

/**
 * Differentiable ops: each allocates its output in the current scope, runs one or two kernels, and
 * (while a tape records) saves what its gradient rule in grads.ts needs. Shapes use the legend:
 * rows = product of leading dims; B batch, L sequence, C/ED channels, N d_state, K kernel, V vocab.
 */

function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}
function rowsOf(t: Tensor): number {
  return t.size / lastDim(t);
}
function withLast(t: Tensor, n: number): number[] {
  return [...t.shape.slice(0, -1), n];
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: shapes [${a.shape}] and [${b.shape}] differ`);
}

/**
 * Scratch of a product with a quantised weight: the input quantised to q8 per block, (rows, ≥ K)
 * int8 and (rows, ≥ K/32) f32, and for a packed weight its prepared form (≥ prepBytes(rows, K)
 * bytes), asked for only then.
 */
export interface QuantScratch {
  readonly qx: Tensor;
  readonly sx: Tensor;
  readonly prep: () => Tensor;
}

/**
 * A LoRA update of one weight W (N, K): W + scale · B A, with A (r, K), B (N, r). `dropout`
 * (training only) zeroes inputs of the update with that probability, drawn from `draw`.
 */
export interface LoraPair {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly scale: number;
  readonly dropout: number;
  readonly draw: (() => number) | null;
}

/**
 * y (rows, N) = x (rows, K) @ w (N, K)^T + b (N) [+ scale · (x Aᵀ) Bᵀ with a LoRA pair], outside
 * any tape: the one product the taped op, decoding and prefill all run. A quantised w first
 * quantises the rows of x into `scratch`, then runs the integer-dot kernel. The LoRA update is
 * added unmerged, so one base serves any adapter (f32 or quantised).
 */
export function linearInto(
  e: Engine,
  y: Tensor,
  x: Tensor,
  w: Weight,
  b: Tensor | null,
  rows: number,
  scratch: QuantScratch | null,
  lora: LoraPair | null = e.lora.get(w) ?? null,
): void {
  const [N, K] = w.shape,
    k = e.k;
  if (isQuant(w)) {
    if (!scratch) throw new Error('linear: a quantised weight needs scratch for its quantised input');
    k.quantizeQ8(scratch.qx, scratch.sx, x, rows, K);
    if (w.packed) {
      const prep = scratch.prep(),
        four = w.format === 'q4';
      (four ? k.prepQ4x4 : k.prepQ8x4)(prep, scratch.qx, scratch.sx, rows, K);
      (four ? k.matmulQ4x4 : k.matmulQ8x4)(y, prep, w.q, w.scales, rows, N, K);
    } else if (w.format === 'q8') k.matmulQ8(y, scratch.qx, scratch.sx, w.q, w.scales, rows, N, K);
    else k.matmulQ4(y, scratch.qx, scratch.sx, w.q, w.scales, rows, N, K);
  } else if (w.panels) {
    k.matmulNTP4(y, x, w, rows, N, K, 0);
  } else {
    k.matmulNT(y, x, w, rows, N, K, 0);
  }
  if (b) k.addBias(y, y, b, rows, N);
  if (lora) {
    const r = lora.A.shape[0];
    e.scope(() => {
      const t = e.zeros([rows, r]);
      k.matmulNT(t, x, lora.A, rows, r, K, 0);
      k.scaleInPlace(t, lora.scale, rows * r);
      k.matmulNT(y, t, lora.B, rows, N, r, 1); // y += t Bᵀ
    });
  }
}

/** out (n, D) = rows ids (n) of table (V, D), f32 or quantised (dequantised on the way), outside any tape. */
export function embeddingInto(e: Engine, out: Tensor, table: Weight, ids: Tensor, n: number): void {
  const D = table.shape[1];
  if (isQuant(table) && table.packed)
    throw new Error('embedding: a repacked weight cannot be a lookup table (only projections are repacked)');
  if (!isQuant(table)) (table.panels ? e.k.embeddingP4 : e.k.embeddingForward)(out, table, ids, n, D);
  else if (table.format === 'q8') e.k.embeddingQ8(out, table.q, table.scales, ids, n, D);
  else e.k.embeddingQ4(out, table.q, table.scales, ids, n, D);
}

/**
 * y (rows, N) = x (rows, K) @ w (N, K)^T + b (N) [+ the LoRA update of `lora`]. A quantised w
 * quantises the rows of x to q8 and runs the integer-dot kernels; it stays frozen, but gradients
 * flow through it to x (for adapters trained on a quantised base).
 */
export function linear(e: Engine, x: Tensor, w: Weight, b: Tensor | null, lora: LoraPair | null = e.lora.get(w) ?? null): Tensor {
  const [N, K] = w.shape,
    M = rowsOf(x);
  if (lastDim(x) !== K) throw new Error(`linear: input [${x.shape}] does not match weight [${w.shape}]`);
  const y = e.empty(withLast(x, N)); // every product kernel overwrites its output
  // the differentiable op reads rows (a weight being trained is updated as rows, and its forward keeps
  // the bits it has without inference): a weight inference moved to panels goes back first
  if (!isQuant(w) && w.panels) toRows(w);
  if (isQuant(w)) {
    const scratch = { qx: e.empty([M, K], 'i8'), sx: e.empty([M, K / QBLOCK]), prep: () => e.empty([prepBytes(M, K)], 'u8') };
    linearInto(e, y, x, w, b, M, scratch, null);
    e.tape?.record('linearQuant', y, [x, b], [w.q, w.scales], { M, N, K, q4: w.format === 'q4', packed: w.packed === true });
  } else {
    if (isWasm(e.k.kind) && M >= NN_MIN_ROWS) {
      productNN(e, y, x, w, M, N, K);
      if (b) e.k.addBias(y, y, b, M, N);
    } else linearInto(e, y, x, w, b, M, null, null);
    e.tape?.record('linear', y, [x, w, b], [], { M, N, K });
  }
  return lora ? add(e, y, loraUpdate(e, x, lora, N)) : y;
}

/** Rows from which the parallel forward runs its products as NN over a transposed weight (its cost is N·K, theirs M·N·K). */
const NN_MIN_ROWS = 16;

/**
 * y (M, N) = x (M, K) @ w (N, K)ᵀ as the NN product over wᵀ (K, N), its rows padded by 8 floats
 * (b rows a multiple of 4 KiB apart alias in L1): with the transpose counted, the training step of
 * `frugal bench` runs 1.07× faster than with the NT kernel's 2×4 tiles (672 against 722 ms at one
 * thread, `node tools/profile-train.mjs --threads 1` with each).
 */
function productNN(e: Engine, y: Tensor, x: Tensor, w: Tensor, M: number, N: number, K: number): void {
  const ldb = N + 8;
  e.scope(() => {
    const wt = e.empty([K, ldb]);
    e.k.transpose(wt, w, N, K, ldb);
    e.k.matmulNNStrided(y, x, wt, M, N, K, 0, K, ldb, N);
  });
}

/**
 * Whether rows `ld` floats apart alias in L1: a multiple of 256 bytes apart they fall in at most 16
 * of its 64 sets, so the NN/TN kernels' k-block of 256 rows of b (one cache line each) evicts itself
 * and is read from L2 again for every tile of rows.
 */
function aliases(ld: number): boolean {
  return ld % 64 === 0;
}

/**
 * x (rows, cols) copied, in the current scope, with rows of cols + 8 floats, for a product whose
 * operand's rows alias; with its row length. The kernels read the same values in the same order
 * from either, so the product's bits do not change.
 */
function padded(e: Engine, x: Tensor, rows: number, cols: number): [Tensor, number] {
  const ld = cols + 8,
    p = e.empty([rows, ld]);
  e.k.padRows(p, x, rows, cols, ld);
  return [p, ld];
}

/**
 * An operand is copied padded only when the product does at least this many FLOPs per float
 * copied (twice its other dimension): the copy costs about what 1.5% of the product's time saves.
 */
const PAD_MIN_FLOPS = 256;

/**
 * gx (M, K) += dy (M, N) @ w (N, K): the input gradient of a linear layer. A weight whose rows
 * alias (K a multiple of 64) is copied padded first. On the training step of `frugal bench` this
 * and the same for the weight gradient's operands (below) took the backward products from 85% to
 * 93% of the GEMM peak (`node tools/profile-train.mjs --threads 1`), the step 1.03× faster at 1
 * and 2 threads with the copies counted (`node tools/ab-train.mjs`).
 */
export function inputGradInto(e: Engine, gx: Tensor, dy: Tensor, w: Tensor, M: number, N: number, K: number): void {
  if (!isWasm(e.k.kind) || M < NN_MIN_ROWS || !aliases(K) || 2 * M < PAD_MIN_FLOPS) {
    e.k.matmulNN(gx, dy, w, M, K, N, 1);
    return;
  }
  e.scope(() => {
    const [wp, ldb] = padded(e, w, N, K);
    e.k.matmulNNStrided(gx, dy, wp, M, K, N, 1, N, ldb, K);
  });
}

/**
 * gw (N, K) += dy (M, N)ᵀ @ x (M, K): the weight gradient of a linear layer. When dy's rows lie a
 * multiple of 4 KiB apart (N a multiple of 1024, as Mamba-1's in_proj at d_inner 512) the TN
 * kernel's walk down them aliases in L1; dy is then transposed (rows padded) for the NN kernel,
 * about 1.5× faster with the transpose counted. Otherwise the TN kernel reads dy and x with their
 * rows padded where they alias and the product is large enough to pay for the copy.
 */
export function weightGradInto(e: Engine, gw: Tensor, dy: Tensor, x: Tensor, M: number, N: number, K: number): void {
  const padX = aliases(K) && 2 * N >= PAD_MIN_FLOPS,
    padDy = aliases(N) && 2 * K >= PAD_MIN_FLOPS;
  if (!isWasm(e.k.kind) || M < NN_MIN_ROWS || (N % 1024 !== 0 && !padX && !padDy)) {
    e.k.matmulTN(gw, dy, x, N, K, M, 1);
    return;
  }
  e.scope(() => {
    const [xb, ldb] = padX ? padded(e, x, M, K) : [x, K];
    if (N % 1024 === 0) {
      const lda = M + 8,
        dyT = e.empty([N, lda]);
      e.k.transpose(dyT, dy, M, N, lda);
      e.k.matmulNNStrided(gw, dyT, xb, N, K, M, 1, lda, ldb, K);
    } else {
      const [a, lda] = padDy ? padded(e, dy, M, N) : [dy, N];
      e.k.matmulTNStrided(gw, a, xb, N, K, M, 1, lda, ldb, K);
    }
  });
}

/** scale · (x Aᵀ) Bᵀ (rows, N) for x (rows, K): a LoRA pair's update, with its dropout while a tape records. */
export function loraUpdate(e: Engine, x: Tensor, lora: LoraPair, N: number): Tensor {
  const K = lastDim(x),
    M = rowsOf(x),
    r = lora.A.shape[0];
  if (lora.A.shape[1] !== K || lora.B.shape[0] !== N || lora.B.shape[1] !== r) {
    throw new Error(`lora: A [${lora.A.shape}] and B [${lora.B.shape}] do not fit a (${N}, ${K}) weight`);
  }
  let xin = x;
  if (lora.dropout > 0 && e.tape && lora.draw) {
    const keep = 1 - lora.dropout,
      mask = e.zeros(x.shape),
      m = mask.data();
    for (let i = 0; i < m.length; i++) m[i] = lora.draw() < keep ? 1 / keep : 0;
    xin = mul(e, x, mask);
  }
  const t = e.zeros([M, lora.A.shape[0]]),
    out = e.zeros(withLast(x, N));
  e.k.matmulNT(t, xin, lora.A, M, r, K, 0);
  e.k.scaleInPlace(t, lora.scale, M * r);
  e.k.matmulNT(out, t, lora.B, M, N, r, 0);
  e.tape?.record('lora', out, [xin, lora.A, lora.B], [t], { M, N, K, r, scale: lora.scale });
  return out;
}

/** out (n, D) = table (V, D)[ids (n)]; a quantised table (inference only) is dequantised row by row. */
export function embedding(e: Engine, table: Weight, ids: Tensor): Tensor {
  const [V, D] = table.shape;
  checkTokenIds(ids.ints(), V, 'embedding');
  const out = e.zeros([...ids.shape, D]);
  if (!isQuant(table) && table.panels) toRows(table); // as linear
  embeddingInto(e, out, table, ids, ids.size);
  if (!isQuant(table)) e.tape?.record('embedding', out, [table], [ids], { n: ids.size, D });
  return out;
}

/** out = x / rms(x) · w over the last dim; saves rstd (rows) */
export function rmsnorm(e: Engine, x: Tensor, w: Tensor, eps: number): Tensor {
  const D = lastDim(x),
    rows = rowsOf(x);
  const out = e.empty(x.shape),
    rstd = e.empty([rows]);
  e.k.rmsnormForward(out, rstd, x, w, rows, D, eps);
  e.tape?.record('rmsnorm', out, [x, w], [rstd], { rows, D });
  return out;
}

/** out = a ∘ b elementwise for the two-input ops (same size). */
function binary(e: Engine, op: 'add' | 'mul', a: Tensor, b: Tensor): Tensor {
  sameShape(op, a, b);
  const out = e.empty(a.shape);
  e.k[op](out, a, b, a.size);
  e.tape?.record(op, out, [a, b], [], { n: a.size });
  return out;
}

/** out = f(x) elementwise for the one-input ops, each with its forward kernel. */
const UNARY = { silu: 'siluForward', softplus: 'softplusForward', negExp: 'negExpForward' } as const;
function unary(e: Engine, op: keyof typeof UNARY, x: Tensor): Tensor {
  const out = e.empty(x.shape);
  e.k[UNARY[op]](out, x, x.size);
  e.tape?.record(op, out, [x], [], { n: x.size });
  return out;
}

export function add(e: Engine, a: Tensor, b: Tensor): Tensor {
  return binary(e, 'add', a, b);
}
export function mul(e: Engine, a: Tensor, b: Tensor): Tensor {
  return binary(e, 'mul', a, b);
}
export function silu(e: Engine, x: Tensor): Tensor {
  return unary(e, 'silu', x);
}
export function softplus(e: Engine, x: Tensor): Tensor {
  return unary(e, 'softplus', x);
}
/** out = −exp(x)  (A = −exp(A_log)) */
export function negExp(e: Engine, x: Tensor): Tensor {
  return unary(e, 'negExp', x);
}

/** Columns [c0, c0+w) of the last dim */
export function sliceLast(e: Engine, x: Tensor, c0: number, w: number): Tensor {
  const C = lastDim(x),
    rows = rowsOf(x);
  if (c0 < 0 || c0 + w > C) throw new Error(`sliceLast: columns [${c0}, ${c0 + w}) outside [0, ${C})`);
  const out = e.empty(withLast(x, w));
  e.k.sliceColumns(out, x, rows, C, c0, w);
  e.tape?.record('sliceLast', out, [x], [], { rows, C, c0, w });
  return out;
}

/** Causal depthwise conv over time: x (B, L, C), w (C, 1, K), bias (C) or null -> (B, L, C) */
export function conv1d(e: Engine, x: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const [B, L, C] = x.shape,
    K = w.shape[w.shape.length - 1];
  if (w.size !== C * K) throw new Error(`conv1d: weight [${w.shape}] does not match ${C} channels`);
  const b = bias ?? e.zeros([C]);
  const out = e.empty(x.shape);
  e.k.conv1dForward(out, x, w, b, B, L, C, K);
  e.tape?.record('conv1d', out, [x, w, bias], [], { B, L, C, K });
  return out;
}

/** Time steps saved per scan checkpoint: the backward recomputes at most this many states. */
export const SCAN_CHUNK = 16;

/**
 * Selective scan y (B, L, ED) from x, delta (B, L, ED), A (ED, N), Bm, Cm (B, L, N), D (ED),
 * starting from a zero state. Saves the chunk checkpoints (B, ceil(L/chunk), ED, N).
 */
export function selectiveScan(
  e: Engine,
  x: Tensor,
  delta: Tensor,
  A: Tensor,
  Bm: Tensor,
  Cm: Tensor,
  D: Tensor,
  chunk = SCAN_CHUNK,
): Tensor {
  const [B, L, ED] = x.shape,
    N = A.shape[1];
  const y = e.empty(x.shape);
  const h = e.zeros([B, ED, N]); // the starting state, read by the first step
  const hck = e.empty([B, Math.ceil(L / chunk), ED, N]); // every checkpoint is written
  e.k.scanForward(y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk);
  e.tape?.record('scan', y, [x, delta, A, Bm, Cm, D], [hck], { B, L, ED, N, chunk });
  return y;
}

/**
 * out (n, C) = x (rows, C)[idx (n)]: the rows a loss reads (for example the answer positions of a
 * synthetic task). The gather is the embedding lookup with x as the table, so it shares that
 * kernel and gradient rule (d x[idx] += d out, repeated rows accumulate).
 */
export function gatherRows(e: Engine, x: Tensor, idx: Tensor): Tensor {
  const C = lastDim(x),
    rows = rowsOf(x),
    n = idx.size;
  checkTokenIds(idx.ints(), rows, 'row indices');
  const out = e.zeros([n, C]);
  e.k.embeddingForward(out, x, idx, n, C);
  e.tape?.record('embedding', out, [x], [idx], { n, D: C });
  return out;
}

/** Mean next-token cross-entropy (nats) of logits (rows, V) against targets (rows) -> (1) */
export function crossEntropy(e: Engine, logits: Tensor, targets: Tensor): Tensor {
  const V = lastDim(logits),
    rows = rowsOf(logits);
  if (targets.size !== rows) throw new Error(`crossEntropy: ${targets.size} targets for ${rows} rows`);
  checkTokenIds(targets.ints(), V, 'targets');
  const losses = e.zeros([rows]),
    lse = e.zeros([rows]),
    out = e.zeros([1]);
  e.k.crossEntropyForward(losses, lse, logits, targets, rows, V);
  e.k.meanForward(out, losses, rows);
  e.tape?.record('crossEntropy', out, [logits], [lse, targets], { rows, V });
  return out;
}

/**
 * Mean distillation loss (1) of student logits (rows, V) against the teacher's logits (rows, V,
 * not differentiated) and the next tokens: alpha · T² · KL(softmax(teacher/T) ‖ softmax(logits/T))
 * + (1 − alpha) · cross-entropy. T² keeps the soft term's gradients on the scale of the hard one's.
 */
export function distillLoss(e: Engine, logits: Tensor, teacher: Tensor, targets: Tensor, T: number, alpha: number): Tensor {
  const V = lastDim(logits),
    rows = rowsOf(logits);
  sameShape('distill', logits, teacher);
  if (targets.size !== rows) throw new Error(`distill: ${targets.size} targets for ${rows} rows`);
  checkTokenIds(targets.ints(), V, 'targets');
  const losses = e.zeros([rows]),
    lseT = e.zeros([rows]),
    lse1 = e.zeros([rows]),
    out = e.zeros([1]);
  e.k.distillForward(losses, lseT, lse1, logits, teacher, targets, rows, V, T, alpha);
  e.k.meanForward(out, losses, rows);
  e.tape?.record('distill', out, [logits], [teacher, lseT, lse1, targets], { rows, V, T, alpha });
  return out;
}
