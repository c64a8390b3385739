import type { Tensor, DType } from '../../tensor/index.js';
import { QBLOCK } from '../../tensor/index.js';
import type { Engine, QuantScratch } from '../../ops/index.js';
import { embeddingInto, linearInto, SCAN_CHUNK } from '../../ops/ops.js';
import { checkTokenIds } from '../../io/tokenids.js';
import type { ModelState } from '../types.js';
import type { MambaLM, MambaLayer } from './model.js';

/**
 * Working buffers of one pass over M = B·L rows (B streams of L tokens), one job each. Decoding
 * keeps one set per batch size (persistent, M = B); a prefill allocates a set in a scope.
 */
interface PassBuffers {
  ids: Tensor; // (M) i32: the tokens
  h: Tensor; // (M, D) residual stream
  u: Tensor;
  rstd: Tensor; // (M, D) the current layer's normed input, (M) its 1/rms
  xz: Tensor; // (M, 2ED) in_proj output
  x: Tensor;
  z: Tensor; // (M, ED) its two halves
  xconv: Tensor; // (M, ED) causal conv of x over time
  xc: Tensor; // (M, ED) silu(xconv): the scan's input
  xdbl: Tensor; // (M, R + 2N) x_proj output
  dt: Tensor;
  Bm: Tensor;
  Cm: Tensor; // (M, R), (M, N), (M, N): its three parts
  dtp: Tensor; // (M, ED) dt_proj output
  delta: Tensor; // (M, ED) softplus(dtp): the step sizes
  y: Tensor; // (M, ED) scan output
  gate: Tensor; // (M, ED) silu(z)
  gated: Tensor; // (M, ED) y ⊙ silu(z)
  out: Tensor; // (M, D) out_proj output: the layer's residual update
  last: Tensor; // (B, D) each stream's last row of h
  lastU: Tensor;
  lastRstd: Tensor; // (B, D), (B): that row through norm_f
  logits: Tensor; // (B, V)
  q: QuantScratch; // (M, Kmax) i8, (M, Kmax/32): inputs of q8/q4 products
}

/**
 * The recurrent inference path of Mamba-1, one code path for both entries: `prefill` runs L tokens
 * per stream in parallel and `step` is a prefill of length 1 over persistent buffers. Both continue
 * from and advance the state (conv window and SSM state per layer), outside any tape, through the
 * same product and embedding helpers as the taped model. A = −exp(A_log) is computed once per
 * weight version.
 */
export class MambaRunner {
  private readonly m: MambaLM;
  private readonly e: Engine;
  private A: Tensor[] | null = null; // per layer (ED, N)
  private zeroConvBias: Tensor | null = null;
  private stepBuffers = new Map<number, PassBuffers>();

  constructor(m: MambaLM) {
    this.m = m;
    this.e = m.e;
  }

  invalidate(): void {
    if (this.A) for (const a of this.A) a.dispose();
    this.A = null;
  }

  private getA(): Tensor[] {
    if (!this.A) {
      this.A = this.m.layers.map((ly) => {
        const a = this.e.persistent(ly.Alog.shape);
        this.e.k.negExpForward(a, ly.Alog, ly.Alog.size);
        return a;
      });
    }
    return this.A;
  }

  private convBias(t: Tensor | null): Tensor {
    if (t) return t;
    if (!this.zeroConvBias) this.zeroConvBias = this.e.persistent([this.m.config.dInner]);
    return this.zeroConvBias;
  }

  createState(B: number): ModelState {
    const { nLayer, dInner: ED, dConv: K, dState: N } = this.m.config;
    const tensors = new Map<string, Tensor>();
    for (let i = 0; i < nLayer; i++) {
      tensors.set(`conv.${i}`, this.e.persistent([B, ED, K])); // last K conv inputs, oldest first
      tensors.set(`ssm.${i}`, this.e.persistent([B, ED, N])); // h
    }
    return { batch: B, tensors, position: 0 };
  }

  /** conv.i (B, ED, K) and ssm.i (B, ED, N), whole: a recurrent state does not grow with tokens. */
  savedStateShapes(B: number): Map<string, number[]> {
    const { nLayer, dInner: ED, dConv: K, dState: N } = this.m.config;
    const shapes = new Map<string, number[]>();
    for (let i = 0; i < nLayer; i++) {
      shapes.set(`conv.${i}`, [B, ED, K]);
      shapes.set(`ssm.${i}`, [B, ED, N]);
    }
    return shapes;
  }

  /** A full set of pass buffers for M rows and B streams, from `alloc` (scoped or persistent). */
  private buffers(M: number, B: number, alloc: (shape: number[], dtype?: DType) => Tensor): PassBuffers {
    const { dModel: D, dInner: ED, dState: N, dtRank: R, vocabSize: V } = this.m.config;
    const Kmax = Math.ceil(Math.max(D, ED, R) / QBLOCK) * QBLOCK; // the widest input of a product
    return {
      ids: alloc([M], 'i32'),
      h: alloc([M, D]),
      u: alloc([M, D]),
      rstd: alloc([M]),
      xz: alloc([M, 2 * ED]),
      x: alloc([M, ED]),
      z: alloc([M, ED]),
      xconv: alloc([M, ED]),
      xc: alloc([M, ED]),
      xdbl: alloc([M, R + 2 * N]),
      dt: alloc([M, R]),
      Bm: alloc([M, N]),
      Cm: alloc([M, N]),
      dtp: alloc([M, ED]),
      delta: alloc([M, ED]),
      y: alloc([M, ED]),
      gate: alloc([M, ED]),
      gated: alloc([M, ED]),
      out: alloc([M, D]),
      last: alloc([B, D]),
      lastU: alloc([B, D]),
      lastRstd: alloc([B]),
      logits: alloc([B, V]),
      q: { qx: alloc([M, Kmax], 'i8'), sx: alloc([M, Kmax / QBLOCK]) },
    };
  }

  /**
   * One token for each of the first ids.length streams of `state` (≤ its batch): batched decoding
   * keeps its active streams in the leading rows. Logits (B, V).
   */
  step(ids: Int32Array, state: ModelState): Float32Array {
    const B = ids.length;
    if (B < 1 || B > state.batch) throw new Error(`step: ${ids.length} ids for a state of batch ${state.batch}`);
    checkTokenIds(ids, this.m.config.vocabSize, 'step');
    let s = this.stepBuffers.get(state.batch); // sized for the state; the first B rows are used
    if (!s) {
      s = this.buffers(state.batch, state.batch, (shape, dtype) => this.e.persistent(shape, dtype));
      this.stepBuffers.set(state.batch, s);
    }
    return this.pass(s, ids, B, 1, state);
  }

  /** L tokens for each stream of `state` (ids (B·L), stream-major) in one parallel pass; logits (B, V) of the last. */
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    const B = state.batch;
    if (ids.length !== B * L) throw new Error(`prefill: ${ids.length} ids for batch ${B} × ${L} tokens`);
    if (L === 0) throw new Error('prefill: needs at least one token');
    checkTokenIds(ids, this.m.config.vocabSize, 'prefill');
    const e = this.e;
    return e.scope(() =>
      this.pass(
        this.buffers(B * L, B, (shape, dtype) => e.zeros(shape, dtype)),
        ids,
        B,
        L,
        state,
      ),
    );
  }

  /** ids (B·L) through every layer from `state`, which it advances; logits (B, V) of each stream's last token. */
  private pass(s: PassBuffers, ids: Int32Array, B: number, L: number, state: ModelState): Float32Array {
    const c = this.m.config,
      k = this.e.k,
      layers = this.m.layers,
      M = B * L;
    const { dModel: D, vocabSize: V, layerNormEpsilon: eps } = c;
    s.ids.ints().set(ids);
    embeddingInto(this.e, s.h, this.m.embed, s.ids, M);
    layers.forEach((ly, i) => {
      if (i === 0) k.rmsnormForward(s.u, s.rstd, s.h, ly.norm, M, D, eps); // later layers: fused below
      this.mixer(s, ly, i, B, L, state); // s.u -> s.out
      // the residual add, fused with the next layer's norm; norm_f runs on the last rows only
      if (i + 1 < layers.length) k.addRmsnormForward(s.h, s.u, s.rstd, s.h, s.out, layers[i + 1].norm, M, D, eps);
      else k.add(s.h, s.h, s.out, M * D);
    });
    const hv = s.h.floats(),
      lv = s.last.floats();
    for (let b = 0; b < B; b++) lv.set(hv.subarray((b * L + L - 1) * D, (b * L + L) * D), b * D);
    k.rmsnormForward(s.lastU, s.lastRstd, s.last, this.m.normF, B, D, eps);
    linearInto(this.e, s.logits, s.lastU, this.m.head, null, B, s.q);
    state.position += L;
    return s.logits.floats().slice(0, B * V) as Float32Array;
  }

  /** Layer i's mixer on s.u (M, D) -> s.out (M, D), continuing from and advancing its conv and SSM state. */
  private mixer(s: PassBuffers, ly: MambaLayer, i: number, B: number, L: number, state: ModelState): void {
    const { dInner: ED, dState: N, dtRank: R } = this.m.config,
      e = this.e,
      k = e.k,
      M = B * L;
    linearInto(e, s.xz, s.u, ly.inProj, ly.inProjBias, M, s.q); // (M, 2ED)
    k.sliceColumns(s.x, s.xz, M, 2 * ED, 0, ED);
    k.sliceColumns(s.z, s.xz, M, 2 * ED, ED, ED);
    this.conv(s.xconv, s.x, state.tensors.get(`conv.${i}`) as Tensor, ly, B, L); // (M, ED)
    k.siluForward(s.xc, s.xconv, M * ED);
    linearInto(e, s.xdbl, s.xc, ly.xProj, null, M, s.q); // (M, R + 2N)
    k.sliceColumns(s.dt, s.xdbl, M, R + 2 * N, 0, R);
    k.sliceColumns(s.Bm, s.xdbl, M, R + 2 * N, R, N);
    k.sliceColumns(s.Cm, s.xdbl, M, R + 2 * N, R + N, N);
    linearInto(e, s.dtp, s.dt, ly.dtProj, ly.dtProjBias, M, s.q); // (M, ED)
    k.softplusForward(s.delta, s.dtp, M * ED);
    // no checkpoints (hck null), so the chunk length does not enter the arithmetic
    k.scanForward(
      s.y,
      state.tensors.get(`ssm.${i}`) as Tensor,
      null,
      s.xc,
      s.delta,
      this.getA()[i],
      s.Bm,
      s.Cm,
      ly.D,
      B,
      L,
      ED,
      N,
      SCAN_CHUNK,
    );
    k.siluForward(s.gate, s.z, M * ED);
    k.mul(s.gated, s.y, s.gate, M * ED);
    linearInto(e, s.out, s.gated, ly.outProj, ly.outProjBias, M, s.q); // (M, D)
  }

  /**
   * xconv (B·L, ED) = the causal conv of x over time, continuing from the conv window `state`
   * (B, ED, K), which then holds the last K inputs. One token (decoding) runs conv1dStep, which
   * is conv1dPrefill + conv1dFillState at L = 1 (its reference twin is, to the bit) with a SIMD
   * twin, since decoding runs it once per token and layer.
   */
  private conv(xconv: Tensor, x: Tensor, state: Tensor, ly: MambaLayer, B: number, L: number): void {
    const { dInner: ED, dConv: K } = this.m.config,
      k = this.e.k,
      bias = this.convBias(ly.convB);
    if (L === 1) {
      k.conv1dStep(xconv, state, x, ly.convW, bias, B, ED, K);
      return;
    }
    k.conv1dPrefill(xconv, x, state, ly.convW, bias, B, L, ED, K);
    k.conv1dFillState(state, x, B, L, ED, K);
  }
}
