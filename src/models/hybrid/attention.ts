import type { Tensor, Weight } from '../../tensor/index.js';
import type { Engine, QuantScratch } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import { linearInto } from '../../ops/ops.js';
import { causalAttention, swiglu } from '../../ops/attention.js';
import { ropePartial } from '../../ops/ssd.js';
import { INITIAL_CAPACITY, fitCaches, kvNames, prefillChunk, ropeStreams, streamPosition } from '../transformer/runner.js';
import type { ModelState } from '../types.js';
import type { BlockRunner, Buffers } from '../stack.js';
import type { HybridConfig } from './config.js';

/**
 * The hybrids' attention and MLP sub-blocks (Bamba's BambaAttention and BambaMLP): grouped-query
 * attention whose queries and keys turn their first rd channels per head by rotary embedding,
 * and a SwiGLU MLP. Taped forms for training; block runners for inference, the attention one
 * keeping a KV cache k.{i}.{b}.{g} / v.{i}.{b}.{g} (capacity, hd) per layer, stream and kv head,
 * as the transformer baseline does.
 */

type Lookups = { p(name: string): Tensor; w(name: string): Weight; opt(name: string): Tensor | null };

export interface AttentionParams {
  q: Weight;
  qBias: Tensor | null;
  k: Weight;
  kBias: Tensor | null;
  v: Weight;
  vBias: Tensor | null;
  o: Weight;
  oBias: Tensor | null;
}
export interface MlpParams {
  gate: Weight;
  gateBias: Tensor | null;
  up: Weight;
  upBias: Tensor | null;
  down: Weight;
  downBias: Tensor | null;
}

export function attentionParams(l: Lookups, a: string): AttentionParams {
  return {
    q: l.w(`${a}.q_proj.weight`),
    qBias: l.opt(`${a}.q_proj.bias`),
    k: l.w(`${a}.k_proj.weight`),
    kBias: l.opt(`${a}.k_proj.bias`),
    v: l.w(`${a}.v_proj.weight`),
    vBias: l.opt(`${a}.v_proj.bias`),
    o: l.w(`${a}.o_proj.weight`),
    oBias: l.opt(`${a}.o_proj.bias`),
  };
}

export function mlpParams(l: Lookups, f: string): MlpParams {
  return {
    gate: l.w(`${f}.gate_proj.weight`),
    gateBias: l.opt(`${f}.gate_proj.bias`),
    up: l.w(`${f}.up_proj.weight`),
    upBias: l.opt(`${f}.up_proj.bias`),
    down: l.w(`${f}.down_proj.weight`),
    downBias: l.opt(`${f}.down_proj.bias`),
  };
}

/** Taped attention on x (B, L, D) at positions 0 .. L−1 -> (B, L, D). */
export function attentionBlock(e: Engine, c: HybridConfig, a: AttentionParams, x: Tensor): Tensor {
  const { nHead: H, nKvHead: Hkv, rotaryDim: rd, ropeTheta } = c;
  const q = ropePartial(e, op.linear(e, x, a.q, a.qBias), H, rd, ropeTheta); // (B, L, H·hd)
  const k = ropePartial(e, op.linear(e, x, a.k, a.kBias), Hkv, rd, ropeTheta); // (B, L, Hkv·hd)
  const v = op.linear(e, x, a.v, a.vBias); // (B, L, Hkv·hd)
  return op.linear(e, causalAttention(e, q, k, v, H, Hkv), a.o, a.oBias); // (B, L, D)
}

/** Taped SwiGLU MLP on x (B, L, D) -> (B, L, D). */
export function mlpBlock(e: Engine, m: MlpParams, x: Tensor): Tensor {
  const g = swiglu(e, op.linear(e, x, m.gate, m.gateBias), op.linear(e, x, m.up, m.upBias)); // (B, L, F)
  return op.linear(e, g, m.down, m.downBias); // (B, L, D)
}

/** The MLP's inference side: no state. */
export class MlpBlockRunner implements BlockRunner {
  constructor(
    private readonly e: Engine,
    private readonly F: number,
    private readonly m: MlpParams,
    readonly norm: Tensor,
  ) {}

  stateShapes(): [string, number[]][] {
    return [];
  }

  run(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, L: number): void {
    const M = B * L,
      e = this.e,
      m = this.m;
    const gate = buf('mlp.gate', [M, this.F]),
      up = buf('mlp.up', [M, this.F]);
    linearInto(e, gate, u, m.gate, m.gateBias, M, q);
    linearInto(e, up, u, m.up, m.upBias, M, q);
    e.k.swigluForward(gate, gate, up, M * this.F);
    linearInto(e, out, gate, m.down, m.downBias, M, q);
  }
}

/**
 * Attention over a KV cache (layer i). New keys (after rotary) and values are appended first;
 * then each head's queries attend over the cache in chunks of rows (the score block stays
 * bounded), S = Q·Kᵀ/sqrt(hd) → causal max shift → exp → row sums and S·V on the matmul kernels.
 */
export class AttentionBlockRunner implements BlockRunner {
  private readonly scratch = new Map<string, Tensor>();
  private readonly names: string[][] = [];

  constructor(
    private readonly e: Engine,
    private readonly c: HybridConfig,
    private readonly a: AttentionParams,
    readonly norm: Tensor,
    private readonly i: number,
  ) {}

  /** k.i.b.g and v.i.b.g with `rows` rows: the capacity when allocating, the live tokens when saving. */
  stateShapes(B: number, rows: number): [string, number[]][] {
    const out: [string, number[]][] = [];
    for (let b = 0; b < B; b++)
      for (let g = 0; g < this.c.nKvHead; g++) for (const n of kvNames(this.i, b, g)) out.push([n, [rows, this.c.headDim]]);
    return out;
  }

  /** A persistent working buffer of at least `size` floats (contents undefined on reuse). */
  private buf(name: string, size: number, fill?: number): Tensor {
    let t = this.scratch.get(name);
    if (!t || t.size < size) {
      t?.dispose();
      t = this.e.persistent([Math.max(size, 1)]);
      if (fill !== undefined) t.data().fill(fill);
      this.scratch.set(name, t);
    }
    return t;
  }

  /** Make the first B streams' caches of this layer hold their next L tokens (doubling, as the transformer's), keeping the live rows. */
  private reserve(state: ModelState, B: number, L: number): void {
    const names = (b: number) => {
      this.names[b] ??= Array.from({ length: this.c.nKvHead }, (_, g) => kvNames(this.i, b, g)).flat(); // made once: each step asks
      return this.names[b];
    };
    fitCaches(
      this.e,
      state,
      B,
      names,
      (b) => streamPosition(state, b) + L,
      (rows, n) => Math.max(n, 2 * rows, INITIAL_CAPACITY),
    );
  }

  run(buf: Buffers, qs: QuantScratch, u: Tensor, out: Tensor, B: number, L: number, state: ModelState): void {
    const { nHead: H, nKvHead: Hkv, headDim: hd, rotaryDim: rd, ropeTheta } = this.c,
      e = this.e,
      k = e.k,
      a = this.a,
      M = B * L;
    this.reserve(state, B, L);
    const q = buf('at.q', [M, H * hd]),
      kk = buf('at.k', [M, Hkv * hd]),
      v = buf('at.v', [M, Hkv * hd]),
      attn = buf('at.out', [M, H * hd]);
    linearInto(e, q, u, a.q, a.qBias, M, qs);
    linearInto(e, kk, u, a.k, a.kBias, M, qs);
    linearInto(e, v, u, a.v, a.vBias, M, qs);
    const tmp = this.buf('rope', L * H * hd);
    ropeStreams(q, tmp, B, L * H * hd, state, (t, nb, p) => k.ropePartialForward(t, t, nb, L, H, hd, rd, p, ropeTheta));
    ropeStreams(kk, tmp, B, L * Hkv * hd, state, (t, nb, p) => k.ropePartialForward(t, t, nb, L, Hkv, hd, rd, p, ropeTheta));
    for (let b = 0; b < B; b++) {
      const pos0 = streamPosition(state, b);
      for (let g = 0; g < Hkv; g++) {
        const [kn, vn] = kvNames(this.i, b, g);
        k.kvAppend(state.tensors.get(kn) as Tensor, kk, b * L, L, Hkv, hd, g, pos0);
        k.kvAppend(state.tensors.get(vn) as Tensor, v, b * L, L, Hkv, hd, g, pos0);
      }
      for (let hh = 0; hh < H; hh++) {
        for (let r0 = 0; r0 < L; ) {
          const C = Math.min(L - r0, prefillChunk(pos0 + L));
          this.attend(attn, q, state, b, hh, r0, C, pos0 + r0 + C, L);
          r0 += C;
        }
      }
    }
    linearInto(e, out, attn, a.o, a.oBias, M, qs);
  }

  /** attn rows b·L + r0 … + C, head hh: softmax(Q Kᵀ / sqrt(hd), causal) V over the first n cached positions. */
  private attend(attn: Tensor, q: Tensor, state: ModelState, b: number, hh: number, r0: number, C: number, n: number, L: number): void {
    const k = this.e.k,
      { nHead: H, nKvHead: Hkv, headDim: hd } = this.c;
    const [kn, vn] = kvNames(this.i, b, Math.floor(hh / (H / Hkv)));
    const Qh = this.buf('Qh', C * hd),
      S = this.buf('S', C * n),
      z = this.buf('z', C),
      Oh = this.buf('Oh', C * hd),
      ones = this.buf('ones', n, 1);
    k.gatherHead(Qh, q, b * L + r0, C, H, hd, hh, 1 / Math.sqrt(hd)); // (C, hd)
    k.matmulNT(S, Qh, state.tensors.get(kn) as Tensor, C, n, hd, 0); // (C, n) scores
    k.causalMaxShift(S, C, n, n - C + 1);
    k.expForward(S, S, C * n);
    k.matmulNT(z, S, ones, C, 1, n, 0); // (C) row sums
    k.matmulNN(Oh, S, state.tensors.get(vn) as Tensor, C, hd, n, 0); // (C, hd)
    k.scatterHead(attn, Oh, z, b * L + r0, C, H, hd, hh);
  }
}
