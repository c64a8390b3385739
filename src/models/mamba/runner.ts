import type { Tensor, Weight } from '../../tensor/index.js';
import { isQuant } from '../../tensor/index.js';
import type { Engine, QuantScratch } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import { linearInto, SCAN_CHUNK } from '../../ops/ops.js';
import { dtSoftplus } from '../../ops/ssd.js';
import { swiglu } from '../../ops/attention.js';
import type { ModelState } from '../types.js';
import { SsmBlockBase, convContinue } from '../stack.js';
import type { BlockRunner, Buffers } from '../stack.js';
import type { MambaConfig } from './config.js';

/** Parameters of one Mamba-1 mixer, looked up once by name (projections f32 or quantised). */
export interface MambaMixer {
  inProj: Weight;
  inProjBias: Tensor | null;
  convW: Tensor;
  convB: Tensor | null;
  xProj: Weight;
  dtProj: Weight;
  dtProjBias: Tensor;
  Alog: Tensor;
  D: Tensor;
  outProj: Weight;
  outProjBias: Tensor | null;
}

type Lookups = { p(name: string): Tensor; w(name: string): Weight; opt(name: string): Tensor | null };

/** The mixer's parameters under prefix m (e.g. backbone.layers.0.mixer). */
export function mambaMixerParams(l: Lookups, m: string): MambaMixer {
  return {
    inProj: l.w(`${m}.in_proj.weight`),
    inProjBias: l.opt(`${m}.in_proj.bias`),
    convW: l.p(`${m}.conv1d.weight`),
    convB: l.opt(`${m}.conv1d.bias`),
    xProj: l.w(`${m}.x_proj.weight`),
    dtProj: l.w(`${m}.dt_proj.weight`),
    dtProjBias: l.p(`${m}.dt_proj.bias`),
    Alog: l.p(`${m}.A_log`),
    D: l.p(`${m}.D`),
    outProj: l.w(`${m}.out_proj.weight`),
    outProjBias: l.opt(`${m}.out_proj.bias`),
  };
}

/**
 * The Mamba block's mixer (Gu & Dao 2023), taped, on u (B, L, D) -> (B, L, D):
 *   [x | z] = in_proj(u);  x = silu(conv1d(x));  [dt | B | C] = x_proj(x);  Δ = softplus(dt_proj(dt))
 *   y = scan(x, Δ, A = −exp(A_log), B, C) + D·x;  out = out_proj(y ⊙ silu(z))
 */
export function mambaMixer(e: Engine, c: MambaConfig, ly: MambaMixer, u: Tensor): Tensor {
  const { dInner: ED, dState: N, dtRank: R } = c;
  const xz = op.linear(e, u, ly.inProj, ly.inProjBias); // (B, L, 2ED)
  const x = op.sliceLast(e, xz, 0, ED); // (B, L, ED)
  const z = op.sliceLast(e, xz, ED, ED); // (B, L, ED)
  const xc = op.silu(e, op.conv1d(e, x, ly.convW, ly.convB)); // (B, L, ED)
  const xdbl = op.linear(e, xc, ly.xProj, null); // (B, L, R + 2N)
  const dt = op.sliceLast(e, xdbl, 0, R); // (B, L, R)
  const Bm = op.sliceLast(e, xdbl, R, N); // (B, L, N)
  const Cm = op.sliceLast(e, xdbl, R + N, N); // (B, L, N)
  // the bias add and softplus run as one pass (Mamba-2's kernel with no clamp), as does the gate
  const delta = dtSoftplus(e, op.linear(e, dt, ly.dtProj, null), ly.dtProjBias, 0, Number.POSITIVE_INFINITY); // (B, L, ED)
  const A = op.negExp(e, ly.Alog); // (ED, N)
  const y = op.selectiveScan(e, xc, delta, A, Bm, Cm, ly.D); // (B, L, ED)
  const gated = swiglu(e, z, y); // y ⊙ silu(z): (B, L, ED)
  return op.linear(e, gated, ly.outProj, ly.outProjBias); // (B, L, D)
}

/** The widest input of the mixer's products (for the q8 scratch of quantised weights). */
export function mambaProductWidth(c: MambaConfig): number {
  return Math.max(c.dModel, c.dInner, c.dtRank);
}

/**
 * The recurrent inference path of one Mamba-1 mixer (layer i) on the shared buffers of a pass
 * (stack.ts): prefill runs L tokens per stream at once and decoding is the same pass at L = 1,
 * both continuing from and advancing the conv window conv.{i} (B, ED, K) and the SSM state ssm.{i}
 * (B, ED, N). A = −exp(A_log) is computed once per weight version.
 */
export class MambaBlockRunner extends SsmBlockBase implements BlockRunner {
  constructor(
    e: Engine,
    private readonly c: MambaConfig,
    private readonly ly: MambaMixer,
    readonly norm: Tensor,
    private readonly i: number,
  ) {
    super(e);
    this.convName = `conv.${i}`;
    this.ssmName = `ssm.${i}`;
  }

  private readonly convName: string;
  private readonly ssmName: string;

  stateShapes(B: number): [string, number[]][] {
    // a recurrent state: the same whatever the tokens
    const { dInner: ED, dConv: K, dState: N } = this.c;
    return [
      [`conv.${this.i}`, [B, ED, K]],
      [`ssm.${this.i}`, [B, ED, N]],
    ]; // last K conv inputs (oldest first), h
  }

  /** u (M, D) -> out (M, D), continuing from and advancing this layer's conv window and SSM state. */
  run(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, L: number, state: ModelState): void {
    // dt_proj runs inside the fused step, which has no quantised or adapted form of it
    if (L === 1 && !isQuant(this.ly.dtProj) && !this.e.lora.has(this.ly.dtProj)) {
      this.step(buf, q, u, out, B, state);
      return;
    }
    const { dInner: ED, dState: N, dtRank: R } = this.c,
      e = this.e,
      k = e.k,
      ly = this.ly,
      M = B * L;
    const xz = buf('m1.xz', [M, 2 * ED]),
      x = buf('m1.x', [M, ED]),
      xconv = buf('m1.xconv', [M, ED]);
    const xc = buf('m1.xc', [M, ED]),
      xdbl = buf('m1.xdbl', [M, R + 2 * N]),
      dt = buf('m1.dt', [M, R]);
    const Bm = buf('m1.B', [M, N]),
      Cm = buf('m1.C', [M, N]),
      dtp = buf('m1.dtp', [M, ED]),
      delta = buf('m1.delta', [M, ED]);
    const y = buf('m1.y', [M, ED]),
      gated = buf('m1.gated', [M, ED]);
    linearInto(e, xz, u, ly.inProj, ly.inProjBias, M, q); // (M, 2ED)
    k.sliceColumns(x, xz, M, 2 * ED, 0, ED); // z stays in xz: the gate reads it there
    convContinue(
      e,
      xconv,
      x,
      state.tensors.get(`conv.${this.i}`) as Tensor,
      ly.convW,
      this.convBias(ly.convB, this.c.dInner),
      B,
      L,
      ED,
      this.c.dConv,
    ); // (M, ED)
    k.siluForward(xc, xconv, M * ED);
    linearInto(e, xdbl, xc, ly.xProj, null, M, q); // (M, R + 2N)
    k.sliceColumns(dt, xdbl, M, R + 2 * N, 0, R);
    k.sliceColumns(Bm, xdbl, M, R + 2 * N, R, N);
    k.sliceColumns(Cm, xdbl, M, R + 2 * N, R + N, N);
    if (isQuant(ly.dtProj) || e.lora.has(ly.dtProj)) {
      linearInto(e, dtp, dt, ly.dtProj, ly.dtProjBias, M, q); // (M, ED)
      k.softplusForward(delta, dtp, M * ED);
    } else {
      k.matmulNT(dtp, dt, ly.dtProj, M, ED, R, 0); // (M, ED); its bias is added with the softplus
      k.mambaDeltaPrefill(delta, dtp, ly.dtProjBias, M, ED);
    }
    // no checkpoints (hck null), so the chunk length does not enter the arithmetic
    k.scanForward(
      y,
      state.tensors.get(`ssm.${this.i}`) as Tensor,
      null,
      xc,
      delta,
      this.decay(ly.Alog),
      Bm,
      Cm,
      ly.D,
      B,
      L,
      ED,
      N,
      SCAN_CHUNK,
    );
    k.mambaGatePrefill(gated, y, xz, M, ED); // y ⊙ silu(z)
    linearInto(e, out, gated, ly.outProj, ly.outProjBias, M, q); // (M, D)
  }

  /**
   * One token per stream (decoding): the products around two fused kernels, which read x, z, dt,
   * B and C in place and apply dt_proj, the softplus, the scan, D and the gate in one pass over the
   * channels; the same bits as run() at L = 1, in five calls instead of fifteen.
   */
  private step(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, state: ModelState): void {
    const { dInner: ED, dState: N, dtRank: R, dConv: K } = this.c,
      e = this.e,
      ly = this.ly;
    const xz = buf('m1.xz', [B, 2 * ED]),
      xc = buf('m1.xc', [B, ED]),
      xdbl = buf('m1.xdbl', [B, R + 2 * N]),
      delta = buf('m1.delta', [B, ED]),
      gated = buf('m1.gated', [B, ED]);
    linearInto(e, xz, u, ly.inProj, ly.inProjBias, B, q); // (B, 2ED)
    e.k.mambaConvStep(xc, state.tensors.get(this.convName) as Tensor, xz, ly.convW, this.convBias(ly.convB, ED), B, ED, K);
    linearInto(e, xdbl, xc, ly.xProj, null, B, q); // (B, R + 2N)
    const h = state.tensors.get(this.ssmName) as Tensor;
    e.k.mambaScanStep(gated, delta, h, xc, xdbl, xz, ly.dtProj as Tensor, ly.dtProjBias, this.decay(ly.Alog), ly.D, B, ED, N, R);
    linearInto(e, out, gated, ly.outProj, ly.outProjBias, B, q); // (B, D)
  }
}
