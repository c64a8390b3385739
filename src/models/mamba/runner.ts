import type { QWeight, Tensor, Weight } from '../../tensor/index.js';
import { isQuant, QBLOCK } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { ModelState } from '../types.js';
import type { MambaLM } from './model.js';
import { SCAN_CHUNK } from '../../ops/ops.js';
import { checkTokenIds } from '../../io/tokenids.js';

/** Working buffers of one decoding step for batch size B, allocated once and reused for every token. */
interface StepBuffers {
  ids: Tensor;                       // (B) i32
  h: Tensor;                         // (B, D) residual stream
  u: Tensor; rstd: Tensor;           // (B, D), (B)
  xz: Tensor;                        // (B, 2ED)
  x: Tensor; z: Tensor; xc: Tensor;  // (B, ED)
  xdbl: Tensor;                      // (B, R + 2N)
  dt: Tensor; Bm: Tensor; Cm: Tensor;// (B, R), (B, N), (B, N)
  delta: Tensor; y: Tensor;          // (B, ED)
  out: Tensor;                       // (B, D)
  logits: Tensor;                    // (B, V)
  qx: Tensor; sx: Tensor;            // (B, Kmax) i8, (B, Kmax/32): activations quantised for q8/q4 weights
}

/**
 * The recurrent inference paths of Mamba-1: `step` (one token per stream in O(1) time and memory)
 * and `prefill` (a parallel pass that leaves the state ready for `step`). Both call kernels
 * directly, outside any tape. A = −exp(A_log) is computed once per weight version.
 */
export class MambaRunner {
  private readonly m: MambaLM;
  private readonly e: Engine;
  private A: Tensor[] | null = null;       // per layer (ED, N)
  private zeroConvBias: Tensor | null = null;
  private buffers = new Map<number, StepBuffers>();

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
      tensors.set(`conv.${i}`, this.e.persistent([B, ED, K]));  // last K conv inputs, oldest first
      tensors.set(`ssm.${i}`, this.e.persistent([B, ED, N]));   // h
    }
    return { batch: B, tensors, position: 0 };
  }

  private stepBuffers(B: number): StepBuffers {
    let s = this.buffers.get(B);
    if (!s) {
      const { dModel: D, dInner: ED, dState: N, dtRank: R, vocabSize: V } = this.m.config;
      const p = (shape: number[]) => this.e.persistent(shape);
      const Kmax = Math.ceil(Math.max(D, ED, R) / QBLOCK) * QBLOCK;
      s = {
        qx: this.e.persistent([B, Kmax], 'i8'), sx: p([B, Kmax / QBLOCK]),
        ids: this.e.persistent([B], 'i32'), h: p([B, D]), u: p([B, D]), rstd: p([B]),
        xz: p([B, 2 * ED]), x: p([B, ED]), z: p([B, ED]), xc: p([B, ED]), xdbl: p([B, R + 2 * N]),
        dt: p([B, R]), Bm: p([B, N]), Cm: p([B, N]), delta: p([B, ED]), y: p([B, ED]), out: p([B, D]), logits: p([B, V]),
      };
      this.buffers.set(B, s);
    }
    return s;
  }

  /**
   * y (rows, N) = x (rows, K) W^T + b. A quantised W quantises x into the scratch qx/sx
   * (at least rows × K) first and runs the integer-dot kernel.
   */
  private linear(y: Tensor, x: Tensor, w: Weight, b: Tensor | null, rows: number, qx: Tensor | null = null, sx: Tensor | null = null): void {
    const [N, K] = w.shape, k = this.e.k;
    if (isQuant(w)) {
      if (!qx || !sx) throw new Error('linear: quantised weight without scratch');
      k.quantizeQ8(qx, sx, x, rows, K);
      if (w.format === 'q8') k.matmulQ8(y, qx, sx, w.q, w.scales, rows, N, K);
      else k.matmulQ4(y, qx, sx, w.q, w.scales, rows, N, K);
    } else {
      k.matmulNT(y, x, w, rows, N, K, 0);
    }
    if (b) k.addBias(y, y, b, rows, N);
  }

  /** out (n, D) = embedding rows of ids */
  private embedRows(out: Tensor, ids: Tensor, n: number): void {
    const t = this.m.embed, D = this.m.config.dModel, k = this.e.k;
    if (!isQuant(t)) k.embeddingForward(out, t, ids, n, D);
    else if ((t as QWeight).format === 'q8') k.embeddingQ8(out, t.q, t.scales, ids, n, D);
    else k.embeddingQ4(out, t.q, t.scales, ids, n, D);
  }

  /**
   * One token for each of the first ids.length streams of `state` (≤ its batch): batched decoding
   * keeps its active streams in the leading rows.
   */
  step(ids: Int32Array, state: ModelState): Float32Array {
    const B = ids.length, c = this.m.config, k = this.e.k;
    const { dModel: D, dInner: ED, dState: N, dtRank: R, dConv: K, vocabSize: V } = c;
    if (B < 1 || B > state.batch) throw new Error(`step: ${ids.length} ids for a state of batch ${state.batch}`);
    checkTokenIds(ids, V, 'step');
    const s = this.stepBuffers(state.batch), A = this.getA(); // sized for the state; the first B rows are used
    s.ids.ints().set(ids);
    this.embedRows(s.h, s.ids, B);
    const q = [s.qx, s.sx] as const;
    this.m.layers.forEach((ly, i) => {
      if (i === 0) k.rmsnormForward(s.u, s.rstd, s.h, ly.norm, B, D, c.layerNormEpsilon); // later layers: fused below
      this.linear(s.xz, s.u, ly.inProj, ly.inProjBias, B, ...q);
      k.sliceColumns(s.x, s.xz, B, 2 * ED, 0, ED);
      k.sliceColumns(s.z, s.xz, B, 2 * ED, ED, ED);
      k.conv1dStep(s.y, state.tensors.get(`conv.${i}`) as Tensor, s.x, ly.convW, this.convBias(ly.convB), B, ED, K);
      k.siluForward(s.xc, s.y, B * ED);
      this.linear(s.xdbl, s.xc, ly.xProj, null, B, ...q);
      k.sliceColumns(s.dt, s.xdbl, B, R + 2 * N, 0, R);
      k.sliceColumns(s.Bm, s.xdbl, B, R + 2 * N, R, N);
      k.sliceColumns(s.Cm, s.xdbl, B, R + 2 * N, R + N, N);
      this.linear(s.y, s.dt, ly.dtProj, ly.dtProjBias, B, ...q);
      k.softplusForward(s.delta, s.y, B * ED);
      k.scanStep(s.y, state.tensors.get(`ssm.${i}`) as Tensor, s.xc, s.delta, A[i], s.Bm, s.Cm, ly.D, B, ED, N);
      k.siluForward(s.x, s.z, B * ED);            // x is free again: reuse it for silu(z)
      k.mul(s.xc, s.y, s.x, B * ED);
      this.linear(s.out, s.xc, ly.outProj, ly.outProjBias, B, ...q);
      // residual add fused with the next norm (the next layer's, or norm_f after the last)
      const next = i + 1 < this.m.layers.length ? this.m.layers[i + 1].norm : this.m.normF;
      k.addRmsnormForward(s.h, s.u, s.rstd, s.h, s.out, next, B, D, c.layerNormEpsilon);
    });
    this.linear(s.logits, s.u, this.m.head, null, B, ...q);
    state.position += 1;
    return s.logits.floats().slice(0, B * V) as Float32Array;
  }

  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    const B = state.batch, c = this.m.config, e = this.e, k = e.k;
    const { dModel: D, dInner: ED, dState: N, dtRank: R, dConv: K, vocabSize: V } = c;
    if (ids.length !== B * L) throw new Error(`prefill: ${ids.length} ids for batch ${B} × ${L} tokens`);
    if (L === 0) throw new Error('prefill: needs at least one token');
    checkTokenIds(ids, V, 'prefill');
    const A = this.getA();
    const M = B * L;
    const out = e.scope(() => {
      const idT = e.ids(ids);
      const h = e.zeros([M, D]);
      const u = e.zeros([M, D]), rstd = e.zeros([M]), xz = e.zeros([M, 2 * ED]);
      const x = e.zeros([M, ED]), z = e.zeros([M, ED]), xc = e.zeros([M, ED]), tmp = e.zeros([M, ED]);
      const xdbl = e.zeros([M, R + 2 * N]), dt = e.zeros([M, R]), Bm = e.zeros([M, N]), Cm = e.zeros([M, N]);
      const delta = e.zeros([M, ED]), y = e.zeros([M, ED]), o = e.zeros([M, D]);
      const Kmax = Math.ceil(Math.max(D, ED, R) / QBLOCK) * QBLOCK;
      const q = [e.zeros([M, Kmax], 'i8'), e.zeros([M, Kmax / QBLOCK])] as const;
      this.embedRows(h, idT, M);
      this.m.layers.forEach((ly, i) => {
        const conv = state.tensors.get(`conv.${i}`) as Tensor, ssm = state.tensors.get(`ssm.${i}`) as Tensor;
        if (i === 0) k.rmsnormForward(u, rstd, h, ly.norm, M, D, c.layerNormEpsilon); // later layers: fused below
        this.linear(xz, u, ly.inProj, ly.inProjBias, M, ...q);
        k.sliceColumns(x, xz, M, 2 * ED, 0, ED);
        k.sliceColumns(z, xz, M, 2 * ED, ED, ED);
        k.conv1dPrefill(tmp, x, conv, ly.convW, this.convBias(ly.convB), B, L, ED, K);
        k.conv1dFillState(conv, x, B, L, ED, K);
        k.siluForward(xc, tmp, M * ED);
        this.linear(xdbl, xc, ly.xProj, null, M, ...q);
        k.sliceColumns(dt, xdbl, M, R + 2 * N, 0, R);
        k.sliceColumns(Bm, xdbl, M, R + 2 * N, R, N);
        k.sliceColumns(Cm, xdbl, M, R + 2 * N, R + N, N);
        this.linear(tmp, dt, ly.dtProj, ly.dtProjBias, M, ...q);
        k.softplusForward(delta, tmp, M * ED);
        k.scanForward(y, ssm, null, xc, delta, A[i], Bm, Cm, ly.D, B, L, ED, N, SCAN_CHUNK);
        k.siluForward(tmp, z, M * ED);
        k.mul(x, y, tmp, M * ED);
        this.linear(o, x, ly.outProj, ly.outProjBias, M, ...q);
        // residual add, fused with the next layer's norm (norm_f only runs on the last rows, below)
        if (i + 1 < this.m.layers.length) k.addRmsnormForward(h, u, rstd, h, o, this.m.layers[i + 1].norm, M, D, c.layerNormEpsilon);
        else k.add(h, h, o, M * D);
      });
      // only the last position of each stream needs logits
      const last = e.zeros([B, D]), lu = e.zeros([B, D]), lr = e.zeros([B]), logits = e.zeros([B, V]);
      const hv = h.floats(), lv = last.floats();
      for (let b = 0; b < B; b++) lv.set(hv.subarray((b * L + L - 1) * D, (b * L + L) * D), b * D);
      k.rmsnormForward(lu, lr, last, this.m.normF, B, D, c.layerNormEpsilon);
      this.linear(logits, lu, this.m.head, null, B, ...q);
      return Float32Array.from(logits.data());
    });
    state.position += L;
    return out;
  }
}
