import type { DType, QFormat, QWeight, Tensor, Weight } from '../tensor/index.js';
import { prepBytes, QBLOCK } from '../tensor/index.js';
import type { Engine, QuantScratch } from '../ops/index.js';
import * as op from '../ops/ops.js';
import { embeddingInto, linearInto } from '../ops/ops.js';
import { inputError } from '../io/errors.js';
import { checkTokenIds } from '../io/tokenids.js';
import type { Rng } from '../io/rng.js';
import { initValues } from './init.js';
import { lmLogits } from './lm.js';
import { advance } from './transformer/runner.js';
import type { ModelState, ParamSpec, ParamTable } from './types.js';

/**
 * What the residual language models share (Mamba-2, Mamba-3, the hybrids): the parameter table
 * allocated once (f32, or block-quantised for inference), the taped forward
 *   embedding → blocks × [h = h + f(RMSNorm(h))] → RMSNorm → head
 * and one inference runner over the same blocks, where each block's mixer runs on buffers kept per
 * batch size (decoding) or allocated for one pass (prefill) and advances its part of the state.
 */

/** Parameters by name: f32 tensors (trainable) and block-quantised weights (inference only). */
export interface Weights {
  params: ParamTable;
  qweights: Map<string, QWeight>;
}

/**
 * Allocate every parameter of `specs` zero-filled; names in `quant` are stored block-quantised
 * (loading a quantised checkpoint).
 */
export function allocateWeights(e: Engine, specs: readonly ParamSpec[], quant: ReadonlyMap<string, QFormat>): Weights {
  const params: ParamTable = new Map(),
    qweights = new Map<string, QWeight>();
  for (const s of specs) {
    const format = quant.get(s.name);
    if (format) {
      const [N, K] = s.shape;
      if (s.shape.length !== 2 || K % QBLOCK !== 0)
        throw inputError(`${s.name} [${s.shape}] cannot be stored quantised: its rows are not a multiple of ${QBLOCK}`);
      qweights.set(s.name, {
        kind: 'quant',
        format,
        shape: [N, K],
        q: e.persistent(format === 'q8' ? [N, K] : [N, K / 2], format === 'q8' ? 'i8' : 'u8'),
        scales: e.persistent([N, K / QBLOCK]),
      });
      continue;
    }
    const t = e.persistent(s.shape);
    t.requiresGrad = true;
    params.set(s.name, t);
  }
  return { params, qweights };
}

/** Typed lookups into a Weights: a required f32 tensor, a weight (f32 or quantised), an optional tensor. */
export function lookups(w: Weights) {
  return {
    p: (name: string): Tensor => {
      const t = w.params.get(name);
      if (!t) throw new Error(`no parameter ${name}`);
      return t;
    },
    w: (name: string): Weight => {
      const t = w.qweights.get(name) ?? w.params.get(name);
      if (!t) throw new Error(`no weight ${name}`);
      return t;
    },
    opt: (name: string): Tensor | null => w.params.get(name) ?? null,
  };
}

/** Fill every f32 parameter by its init rule, in table order. */
export function initWeights(w: Weights, specs: readonly ParamSpec[], rng: Rng): void {
  if (w.qweights.size > 0) throw new Error('init: quantised models are made by quantising a trained one');
  for (const s of specs) {
    const t = w.params.get(s.name) as Tensor;
    t.panels = false; // drawn in the row layout (ops/panels.ts)
    initValues(t.floats(), s.shape, s.init, rng);
  }
}

export function countParameters(w: Weights): number {
  let n = 0;
  for (const t of w.params.values()) n += t.size;
  for (const q of w.qweights.values()) n += q.shape[0] * q.shape[1];
  return n;
}

/** A residual block for the taped forward: h = h + f(RMSNorm(h; norm)). */
export interface Block {
  norm: Tensor;
  f(u: Tensor): Tensor;
}

/** The LM's ends: embedding table, final norm and head, and the norms' epsilon. */
export interface LmEnds {
  embed: Weight;
  normF: Tensor;
  head: Weight;
  eps: number;
  vocabSize: number;
  dModel: number;
}

/** Logits (B, L, V) for ids (B·L), differentiable. */
export function stackForward(e: Engine, ends: LmEnds, blocks: readonly Block[], ids: Int32Array, B: number, L: number): Tensor {
  if (ids.length !== B * L) throw new Error(`forward: ${ids.length} ids for B=${B}, L=${L}`);
  let h = op.embedding(e, ends.embed, e.ids(ids, [B, L])); // (B, L, D)
  for (const b of blocks) h = op.add(e, h, b.f(op.rmsnorm(e, h, b.norm, ends.eps)));
  return lmLogits(e, h, ends.normF, ends.eps, ends.head); // (B, L, V)
}

/** The blocks and the final norm on embedded inputs h (B, L, D), differentiable: the hidden states (B, L, D) a task head reads. */
export function stackHidden(e: Engine, ends: LmEnds, blocks: readonly Block[], h: Tensor): Tensor {
  for (const b of blocks) h = op.add(e, h, b.f(op.rmsnorm(e, h, b.norm, ends.eps)));
  return op.rmsnorm(e, h, ends.normF, ends.eps);
}

/**
 * out (B·L, C) = the causal depthwise conv of x (B·L, C) over time, continuing from the window
 * `state` (B, C, K) of the last K inputs, which then holds the new last K. One token (decoding)
 * runs conv1dStep, which is conv1dPrefill + conv1dFillState at L = 1 (its reference twin is, to
 * the bit) with a SIMD twin, since decoding runs it once per token and layer.
 */
export function convContinue(
  e: Engine,
  out: Tensor,
  x: Tensor,
  state: Tensor,
  w: Tensor,
  bias: Tensor,
  B: number,
  L: number,
  C: number,
  K: number,
): void {
  if (L === 1) {
    e.k.conv1dStep(out, state, x, w, bias, B, C, K);
    return;
  }
  e.k.conv1dPrefill(out, x, state, w, bias, B, L, C, K);
  e.k.conv1dFillState(state, x, B, L, C, K);
}

/** a and b have the same dimensions (a plain loop: this runs for every buffer of every decoding step) */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rows a new KV cache starts with (it doubles when full); recurrent states do not grow. */
export const INITIAL_ROWS = 64;

/** Working buffers of one pass over M = B·L rows, by name; blocks of one kind share theirs. */
export type Buffers = (name: string, shape: number[], dtype?: DType) => Tensor;

/** The inference side of a block: its state tensors, and its f on u (M, D) -> out (M, D). */
export interface BlockRunner {
  norm: Tensor;
  /**
   * The state tensors this block keeps for B streams (empty for a block without state). A block
   * whose state grows with the tokens (a KV cache) sizes it by `rows`: the capacity to allocate,
   * or the tokens consumed when a state file stores it; a recurrent state ignores it.
   */
  stateShapes(B: number, rows: number): [string, number[]][];
  /** out (M, D) = f(u (M, D)) for B streams of L tokens, continuing from and advancing its state. */
  run(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, L: number, state: ModelState): void;
  /** Forget values derived from the weights (after an optimiser step or a load). */
  invalidate?(): void;
}

/**
 * One inference path for a stack of blocks: `prefill` runs L tokens per stream in one pass over
 * buffers allocated in a scope, `step` is a prefill of one token over buffers kept per batch size;
 * both continue from and advance the state. `kmax` is the widest input of any product (the q8
 * scratch of quantised weights).
 */
export class StackRunner {
  private readonly stepBuffers = new Map<number, Map<string, Tensor>>();

  constructor(
    private readonly e: Engine,
    private readonly ends: () => LmEnds,
    private readonly blocks: readonly BlockRunner[],
    private readonly kmax: number,
  ) {}

  invalidate(): void {
    for (const b of this.blocks) b.invalidate?.();
  }

  /** A zeroed state for B streams, with room for `tokens` tokens in any KV cache (at least INITIAL_ROWS). */
  createState(B: number, tokens = 0): ModelState {
    const tensors = new Map<string, Tensor>();
    for (const [name, shape] of this.savedStateShapes(B, Math.max(INITIAL_ROWS, tokens))) tensors.set(name, this.e.persistent(shape));
    return { batch: B, tensors, position: 0 };
  }

  savedStateShapes(B: number, position: number): Map<string, number[]> {
    return new Map(this.blocks.flatMap((b) => b.stateShapes(B, position)));
  }

  /** One token for each of the first ids.length streams of `state` (≤ its batch); logits (B, V). */
  step(ids: Int32Array, state: ModelState): Float32Array {
    const B = ids.length;
    if (B < 1 || B > state.batch) throw new Error(`step: ${ids.length} ids for a state of batch ${state.batch}`);
    checkTokenIds(ids, this.ends().vocabSize, 'step');
    return this.pass(this.keptBuffers(state), state.batch, ids, B, 1, state);
  }

  /**
   * One embedded input x (B, D) per stream instead of a token (continuous inputs): the final-norm
   * hidden state (B, D) of each stream, for a task head. Same buffers and blocks as `step`.
   */
  stepVectors(x: Float32Array, state: ModelState): Float32Array {
    const D = this.ends().dModel,
      B = x.length / D;
    if (!Number.isInteger(B) || B < 1 || B > state.batch)
      throw new Error(`stepVectors: ${x.length} values for a state of batch ${state.batch}`);
    return this.pass(this.keptBuffers(state), state.batch, x, B, 1, state, true);
  }

  private keptBuffers(state: ModelState): Buffers {
    let cache = this.stepBuffers.get(state.batch);
    if (!cache) {
      cache = new Map();
      this.stepBuffers.set(state.batch, cache);
    }
    const kept = cache; // sized for the state's batch; the first B rows are used
    // by name: a step asks for the same shapes every time (new ones only when the active streams change)
    const buf: Buffers = (name, shape, dtype) => {
      let t = kept.get(name);
      if (!t || t.dtype !== (dtype ?? this.e.dtype) || !sameShape(t.shape, shape)) {
        t?.dispose();
        t = this.e.persistent(shape, dtype);
        kept.set(name, t);
      }
      return t;
    };
    return buf;
  }

  /** L tokens for each stream of `state` (ids (B·L), stream-major) in one pass; logits (B, V) of the last. */
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    const B = state.batch;
    if (ids.length !== B * L) throw new Error(`prefill: ${ids.length} ids for batch ${B} × ${L} tokens`);
    if (L === 0) throw new Error('prefill: needs at least one token');
    checkTokenIds(ids, this.ends().vocabSize, 'prefill');
    return this.e.scope(() => {
      const made = new Map<string, Tensor>();
      const buf: Buffers = (name, shape, dtype) => {
        const key = `${name}:${shape.join('x')}:${dtype ?? ''}`;
        let t = made.get(key);
        if (!t) {
          t = this.e.zeros(shape, dtype);
          made.set(key, t);
        }
        return t;
      };
      return this.pass(buf, B * L, ids, B, L, state);
    });
  }

  /**
   * ids (B·L), or embedded inputs (B·L, D), through every block from `state`, which it advances;
   * logits (B, V) of each stream's last token, or with `hidden` its final-norm hidden state (B, D).
   */
  private pass(
    buf: Buffers,
    M: number,
    ids: Int32Array | Float32Array,
    B: number,
    L: number,
    state: ModelState,
    hidden = false,
  ): Float32Array {
    const { embed, normF, head, eps, vocabSize: V, dModel: D } = this.ends(),
      k = this.e.k,
      rows = B * L;
    const idT = buf('ids', [M], 'i32'),
      h = buf('h', [M, D]),
      u = buf('u', [M, D]),
      rstd = buf('rstd', [M]),
      out = buf('out', [M, D]);
    const kq = Math.ceil(this.kmax / QBLOCK) * QBLOCK;
    const q: QuantScratch = {
      qx: buf('qx', [M, kq], 'i8'),
      sx: buf('sx', [M, kq / QBLOCK]),
      prep: () => buf('qprep', [prepBytes(M, kq)], 'u8'),
    };
    if (ids instanceof Int32Array) {
      idT.ints().set(ids);
      embeddingInto(this.e, h, embed, idT, rows);
    } else h.data().set(ids);
    this.blocks.forEach((b, i) => {
      if (i === 0) k.rmsnormForward(u, rstd, h, b.norm, rows, D, eps); // later blocks: fused below
      b.run(buf, q, u, out, B, L, state);
      // the residual add, fused with the next block's norm; norm_f runs on the last rows only
      if (i + 1 < this.blocks.length) k.addRmsnormForward(h, u, rstd, h, out, this.blocks[i + 1].norm, rows, D, eps);
      else k.add(h, h, out, rows * D);
    });
    const last = buf('last', [state.batch, D]),
      lastU = buf('lastU', [state.batch, D]),
      lastR = buf('lastRstd', [state.batch]);
    const logits = buf('logits', [state.batch, V]);
    if (L > 1) {
      const hv = h.floats(),
        lv = last.floats();
      for (let b = 0; b < B; b++) lv.set(hv.subarray((b * L + L - 1) * D, (b * L + L) * D), b * D);
    }
    k.rmsnormForward(lastU, lastR, L > 1 ? last : h, normF, B, D, eps); // one token: h holds just the last rows
    if (hidden) {
      advance(state, B, L);
      return Float32Array.from(lastU.floats().subarray(0, B * D));
    }
    linearInto(this.e, logits, lastU, head, null, B, q);
    advance(state, B, L);
    return logits.floats().slice(0, B * V) as Float32Array;
  }
}

/**
 * What the Mamba-1 and Mamba-2 block runners share: A = −exp(A_log), computed once per weight
 * version (invalidate() after a change), and a zero conv bias for a checkpoint without one.
 */
export class SsmBlockBase {
  private A: Tensor | null = null;
  private zero: Tensor | null = null;

  constructor(protected readonly e: Engine) {}

  invalidate(): void {
    this.A?.dispose();
    this.A = null;
  }

  protected decay(Alog: Tensor): Tensor {
    if (!this.A) {
      this.A = this.e.persistent(Alog.shape);
      this.e.k.negExpForward(this.A, Alog, Alog.size);
    }
    return this.A;
  }

  protected convBias(bias: Tensor | null, C: number): Tensor {
    if (bias) return bias;
    if (!this.zero) this.zero = this.e.persistent([C]);
    return this.zero;
  }
}
