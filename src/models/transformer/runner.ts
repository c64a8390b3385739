import type { Tensor } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { ModelState } from '../types.js';
import type { TransformerLM } from './model.js';
import { embeddingInto, linearInto } from '../../ops/ops.js';
import { checkTokenIds } from '../../io/tokenids.js';

/** Cache rows a new state starts with; it doubles when a token does not fit (or grows exactly on `reserve`). */
export const INITIAL_CAPACITY = 64;

/** Queries per prefill chunk: the score block (chunk × context) stays near 2^24 floats (64 MiB), 16 to 512 rows. */
export function prefillChunk(context: number): number {
  return Math.max(16, Math.min(512, 16 * Math.floor((1 << 24) / Math.max(1, context) / 16)));
}

/** State tensor names of the cache of layer i, stream b, kv head g: each (capacity, hd). */
export function kvNames(i: number, b: number, g: number): [string, string] {
  return [`k.${i}.${b}.${g}`, `v.${i}.${b}.${g}`];
}

const KV_NAME = /^([kv]\.\d+)\.(\d+)\.(\d+)$/;

/** For a KV-cache tensor name (kvNames), its stream and the same tensor's name for stream b; null for any other state. */
export function kvStream(name: string): { stream: number; of(b: number): string } | null {
  const m = KV_NAME.exec(name);
  return m ? { stream: Number(m[2]), of: (b) => `${m[1]}.${b}.${m[3]}` } : null;
}

/** Stream b's position: its own when the state keeps one per stream (batched decoding), else the shared one. */
export function streamPosition(state: ModelState, b: number): number {
  return state.positions ? state.positions[b] : state.position;
}

/** The first B streams of `state` consumed L more tokens. */
export function advance(state: ModelState, B: number, L: number): void {
  state.position += L;
  if (state.positions) for (let b = 0; b < B; b++) state.positions[b] += L;
}

/**
 * rope(t, streams, pos0) on x, B streams of `size` floats each, each at its own position: one call
 * when they share it, else one per stream through `tmp` (≥ size floats), the same arithmetic.
 */
export function ropeStreams(
  x: Tensor,
  tmp: Tensor,
  B: number,
  size: number,
  state: ModelState,
  rope: (t: Tensor, streams: number, pos0: number) => void,
): void {
  if (!state.positions) {
    rope(x, B, state.position);
    return;
  }
  const xv = x.data(),
    tv = tmp.data();
  for (let b = 0; b < B; b++) {
    tv.set(xv.subarray(b * size, (b + 1) * size));
    rope(tmp, 1, state.positions[b]);
    xv.set(tv.subarray(0, size), b * size);
  }
}

/**
 * Make the caches of each of the first B streams (`names(b)`, each (rows, hd)) hold need(b) rows;
 * a short one becomes size(rows, need) rows, keeping its contents. Streams may differ in rows
 * (batched decoding hands each stream the cache its own prefill made).
 */
export function fitCaches(
  e: Engine,
  state: ModelState,
  B: number,
  names: (b: number) => string[],
  need: (b: number) => number,
  size: (rows: number, need: number) => number,
): void {
  for (let b = 0; b < B; b++) {
    const n = need(b);
    for (const name of names(b)) {
      const old = state.tensors.get(name) as Tensor;
      if (old.shape[0] >= n) continue;
      const t = e.persistent([size(old.shape[0], n), old.shape[1]]);
      e.k.copyInto(t, old, old.size);
      old.dispose();
      state.tensors.set(name, t);
    }
  }
}

/**
 * The KV-cache inference path of the transformer: `prefill` runs the tokens through every layer in
 * chunks (each chunk's queries attend to the whole cache plus the chunk, causally), and `step` is a
 * chunk of one token. Keys and values are kept after rotary embedding, one (capacity, hd) tensor per
 * layer, stream and kv head, so the attention products run on the SIMD matmul kernels without
 * copying the cache. Working buffers are persistent and grow on demand (allocated once per size).
 */
export class TransformerRunner {
  private readonly m: TransformerLM;
  private readonly e: Engine;
  private readonly scratch = new Map<string, Tensor>();
  private readonly names: string[][] = [];

  constructor(m: TransformerLM) {
    this.m = m;
    this.e = m.e;
  }

  /** Every layer's, stream's and kv head's cache, with room for max(INITIAL_CAPACITY, tokens) rows. */
  createState(B: number, tokens = 0): ModelState {
    const rows = Math.max(INITIAL_CAPACITY, tokens),
      hd = this.m.config.headDim;
    const tensors = new Map<string, Tensor>();
    for (const name of this.savedStateShapes(B, rows).keys()) tensors.set(name, this.e.persistent([rows, hd]));
    return { batch: B, tensors, position: 0 };
  }

  /** k.i.b.g and v.i.b.g: the first `position` rows (position, hd) of each cache hold the state. */
  savedStateShapes(B: number, position: number): Map<string, number[]> {
    const { nLayer, nKvHead, headDim } = this.m.config;
    const shapes = new Map<string, number[]>();
    for (let i = 0; i < nLayer; i++) {
      for (let b = 0; b < B; b++) {
        for (let g = 0; g < nKvHead; g++) for (const name of kvNames(i, b, g)) shapes.set(name, [position, headDim]);
      }
    }
    return shapes;
  }

  /** Grow the cache to exactly `tokens` rows now if it holds fewer. */
  reserve(state: ModelState, tokens: number): void {
    fitCaches(
      this.e,
      state,
      state.batch,
      (b) => this.streamNames(b),
      () => tokens,
      (_, n) => n,
    );
  }

  /** Every layer's and kv head's cache names of stream b (made once: each step asks). */
  private streamNames(b: number): string[] {
    let out = this.names[b];
    if (!out) {
      const { nLayer, nKvHead } = this.m.config;
      out = [];
      for (let i = 0; i < nLayer; i++) for (let g = 0; g < nKvHead; g++) out.push(...kvNames(i, b, g));
      this.names[b] = out;
    }
    return out;
  }

  /** A persistent working buffer of at least `size` elements (contents undefined on reuse). */
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

  /** One token for each of the first ids.length streams of `state` (≤ its batch); logits (B, V). */
  step(ids: Int32Array, state: ModelState): Float32Array {
    if (ids.length < 1 || ids.length > state.batch) throw new Error(`step: ${ids.length} ids for a state of batch ${state.batch}`);
    checkTokenIds(ids, this.m.config.vocabSize, 'step');
    return this.chunk(ids, 1, state, true, Infinity, ids.length) as Float32Array;
  }

  /** One embedded input x (B, D) per stream; the final-norm hidden state (B, D). A finite `window` makes the cache a ring of that many rows. */
  stepVectors(x: Float32Array, state: ModelState, window = Infinity): Float32Array {
    if (x.length !== state.batch * this.m.config.dModel)
      throw new Error(`stepVectors: ${x.length} values for a state of batch ${state.batch}`);
    return this.chunk(x, 1, state, true, window) as Float32Array;
  }

  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    const B = state.batch;
    if (ids.length !== B * L) throw new Error(`prefill: ${ids.length} ids for batch ${B} × ${L} tokens`);
    if (L === 0) throw new Error('prefill: needs at least one token');
    checkTokenIds(ids, this.m.config.vocabSize, 'prefill');
    let logits: Float32Array | null = null;
    for (let t0 = 0; t0 < L; ) {
      const C = Math.min(L - t0, prefillChunk(state.position + L - t0));
      const part = Int32Array.from({ length: B * C }, (_, i) => ids[Math.floor(i / C) * L + t0 + (i % C)]);
      logits = this.chunk(part, C, state, t0 + C === L);
      t0 += C;
    }
    return logits as Float32Array;
  }

  /** y (rows, N) = x (rows, K) Wᵀ + b */
  private linear(y: Tensor, x: Tensor, w: Tensor, b: Tensor | null, rows: number): void {
    linearInto(this.e, y, x, w, b, rows, null); // with the attached adapter's update of w, if any
  }

  /**
   * Run C new tokens per stream (ids (B·C), stream-major) through every layer at positions
   * position .. position+C-1, appending their keys and values; logits (B, V) of the last one.
   */
  private chunk(
    ids: Int32Array | Float32Array,
    C: number,
    state: ModelState,
    wantLogits: boolean,
    window = Infinity,
    B = state.batch,
  ): Float32Array | null {
    const c = this.m.config,
      k = this.e.k,
      M = B * C;
    const { dModel: D, nHead: H, nKvHead: Hkv, headDim: hd, intermediateSize: F, vocabSize: V } = c;
    const ring = Number.isFinite(window);
    // a ring (one token at a time): the new row goes to slot pos mod window, and the query sees every filled row
    if (ring && C !== 1) throw new Error('a sliding-window cache takes one token at a time');
    const seen = (b: number) => (ring ? Math.min(streamPosition(state, b) + 1, window) : streamPosition(state, b) + C),
      slot = (b: number) => (ring ? streamPosition(state, b) % window : streamPosition(state, b));
    fitCaches(
      this.e,
      state,
      B,
      (b) => this.streamNames(b),
      seen,
      (rows, n) => (ring ? window : Math.max(n, 2 * rows)),
    );
    const h = this.buf('h', M * D),
      u = this.buf('u', M * D),
      rstd = this.buf('rstd', M),
      o = this.buf('o', M * D);
    const q = this.buf('q', M * H * hd),
      kk = this.buf('k', M * Hkv * hd),
      v = this.buf('v', M * Hkv * hd);
    const attn = this.buf('attn', M * H * hd),
      gate = this.buf('gate', M * F),
      up = this.buf('up', M * F);
    if (ids instanceof Int32Array) {
      const ids32 = this.idsTensor(M);
      ids32.ints().set(ids);
      embeddingInto(this.e, h, this.m.embed, ids32, M); // the table may be held in panels
    } else h.data().set(ids);
    this.m.layers.forEach((ly, i) => {
      k.rmsnormForward(u, rstd, h, ly.inNorm, M, D, c.rmsNormEps);
      this.linear(q, u, ly.q, ly.qBias, M); // (B·C, H·hd)
      this.linear(kk, u, ly.k, ly.kBias, M); // (B·C, Hkv·hd)
      this.linear(v, u, ly.v, ly.vBias, M); // (B·C, Hkv·hd)
      const tmp = this.buf('rope', C * H * hd);
      ropeStreams(q, tmp, B, C * H * hd, state, (t, nb, p) => k.ropeForward(t, t, nb, C, H, hd, p, c.ropeTheta));
      ropeStreams(kk, tmp, B, C * Hkv * hd, state, (t, nb, p) => k.ropeForward(t, t, nb, C, Hkv, hd, p, c.ropeTheta));
      for (let b = 0; b < B; b++) {
        for (let g = 0; g < Hkv; g++) {
          const [kn, vn] = kvNames(i, b, g);
          k.kvAppend(state.tensors.get(kn) as Tensor, kk, b * C, C, Hkv, hd, g, slot(b));
          k.kvAppend(state.tensors.get(vn) as Tensor, v, b * C, C, Hkv, hd, g, slot(b));
        }
        for (let hh = 0; hh < H; hh++) this.attend(attn, q, state, i, b, hh, C, seen(b));
      }
      this.linear(o, attn, ly.o, ly.oBias, M); // (B·C, D)
      k.add(h, h, o, M * D);
      k.rmsnormForward(u, rstd, h, ly.postNorm, M, D, c.rmsNormEps);
      this.linear(gate, u, ly.gate, ly.gateBias, M); // (B·C, F)
      this.linear(up, u, ly.up, ly.upBias, M); // (B·C, F)
      k.swigluForward(gate, gate, up, M * F);
      this.linear(o, gate, ly.down, ly.downBias, M); // (B·C, D)
      k.add(h, h, o, M * D);
    });
    advance(state, B, C);
    if (!wantLogits) return null;
    // only the last position of each stream needs logits
    const last = this.buf('last', B * D),
      lu = this.buf('lu', B * D),
      logits = this.buf('logits', B * V);
    const hv = h.floats(),
      lv = last.floats();
    for (let b = 0; b < B; b++) lv.set(hv.subarray((b * C + C - 1) * D, (b * C + C) * D), b * D);
    k.rmsnormForward(lu, rstd, last, this.m.norm, B, D, c.rmsNormEps);
    if (!(ids instanceof Int32Array)) return Float32Array.from(lu.floats().subarray(0, B * D));
    this.linear(logits, lu, this.m.head, null, B);
    return Float32Array.from(logits.floats().subarray(0, B * V));
  }

  /**
   * attn (B·C, H, hd) rows of stream b, head hh = softmax(Q_h K_gᵀ / sqrt(hd), causal) · V_g over
   * the n cached positions, for the C queries at positions n-C .. n-1.
   */
  private attend(attn: Tensor, q: Tensor, state: ModelState, layer: number, b: number, hh: number, C: number, n: number): void {
    const k = this.e.k,
      { nHead: H, nKvHead: Hkv, headDim: hd } = this.m.config;
    const g = Math.floor(hh / (H / Hkv)),
      [kn, vn] = kvNames(layer, b, g);
    const Qh = this.buf('Qh', C * hd),
      S = this.buf('S', C * n),
      z = this.buf('z', C),
      Oh = this.buf('Oh', C * hd);
    const ones = this.buf('ones', n, 1); // (n) all ones, never written
    k.gatherHead(Qh, q, b * C, C, H, hd, hh, 1 / Math.sqrt(hd)); // (C, hd)
    k.matmulNT(S, Qh, state.tensors.get(kn) as Tensor, C, n, hd, 0); // (C, n) scores
    k.causalMaxShift(S, C, n, n - C + 1);
    k.expForward(S, S, C * n); // unnormalised probabilities
    k.matmulNT(z, S, ones, C, 1, n, 0); // (C) row sums
    k.matmulNN(Oh, S, state.tensors.get(vn) as Tensor, C, hd, n, 0); // (C, hd)
    k.scatterHead(attn, Oh, z, b * C, C, H, hd, hh);
  }

  private idsTensor(M: number): Tensor {
    let t = this.scratch.get('ids32');
    if (!t || t.size < M) {
      t?.dispose();
      t = this.e.persistent([M], 'i32');
      this.scratch.set('ids32', t);
    }
    return t;
  }
}
