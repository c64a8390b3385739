import type { Tensor, Weight } from '../../tensor/index.js';
import type { Engine, QuantScratch } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import { linearInto } from '../../ops/ops.js';
import { SSD_CPU_CHUNK, dtSoftplus, gatedRmsnorm, ssd } from '../../ops/ssd.js';
import { ssdWorkSize } from '../../kernels/ssd-work.js';
import type { ModelState } from '../types.js';
import { SsmBlockBase, convContinue } from '../stack.js';
import type { BlockRunner, Buffers } from '../stack.js';
import type { Mamba2Config } from './config.js';
import { convDim, inProjDim } from './config.js';

/**
 * The Mamba-2 mixer (state-spaces mamba2.py), shared by the Mamba-2 language model and the hybrids:
 *   [z | xBC | dt] = in_proj(u);  xBC = silu(conv1d(xBC));  [x | B | C] = xBC
 *   Δ = clamp(softplus(dt + dt_bias));  y = SSD(x, Δ, A = −exp(A_log), B, C) + D·x
 *   out = out_proj(RMSNorm_groups(y ⊙ silu(z)) · norm.weight)
 * `mamba2Mixer` is the taped forward (chunked SSD); `Mamba2BlockRunner` the inference path, which
 * continues from and advances the conv window conv.{i} (B, ED + 2GN, K) and the SSM state ssm.{i}
 * (B, H, P, N).
 */

/** Parameters of one mixer, looked up once by name. */
export interface Mamba2Mixer {
  inProj: Weight;
  inProjBias: Tensor | null;
  convW: Tensor;
  convB: Tensor | null;
  dtBias: Tensor;
  Alog: Tensor;
  D: Tensor;
  normW: Tensor;
  outProj: Weight;
  outProjBias: Tensor | null;
}

type Lookups = { p(name: string): Tensor; w(name: string): Weight; opt(name: string): Tensor | null };

/** The mixer's parameters under prefix m (e.g. backbone.layers.0.mixer). */
export function mamba2MixerParams(l: Lookups, m: string): Mamba2Mixer {
  return {
    inProj: l.w(`${m}.in_proj.weight`),
    inProjBias: l.opt(`${m}.in_proj.bias`),
    convW: l.p(`${m}.conv1d.weight`),
    convB: l.opt(`${m}.conv1d.bias`),
    dtBias: l.p(`${m}.dt_bias`),
    Alog: l.p(`${m}.A_log`),
    D: l.p(`${m}.D`),
    normW: l.p(`${m}.norm.weight`),
    outProj: l.w(`${m}.out_proj.weight`),
    outProjBias: l.opt(`${m}.out_proj.bias`),
  };
}

/** The taped mixer on u (B, L, D) -> (B, L, D). */
export function mamba2Mixer(e: Engine, c: Mamba2Config, ly: Mamba2Mixer, u: Tensor): Tensor {
  const { dInner: ED, nHeads: H, nGroups: G, dState: N } = c,
    CD = convDim(c),
    GN = G * N;
  const zxbcdt = op.linear(e, u, ly.inProj, ly.inProjBias); // (B, L, 2ED + 2GN + H)
  const z = op.sliceLast(e, zxbcdt, 0, ED); // (B, L, ED)
  const xBC = op.silu(e, op.conv1d(e, op.sliceLast(e, zxbcdt, ED, CD), ly.convW, ly.convB)); // (B, L, ED + 2GN)
  const dt = op.sliceLast(e, zxbcdt, ED + CD, H); // (B, L, H)
  const x = op.sliceLast(e, xBC, 0, ED); // (B, L, H·P)
  const Bm = op.sliceLast(e, xBC, ED, GN); // (B, L, G·N)
  const Cm = op.sliceLast(e, xBC, ED + GN, GN); // (B, L, G·N)
  const delta = dtSoftplus(e, dt, ly.dtBias, c.timeStepLimit[0], c.timeStepLimit[1]); // (B, L, H)
  const y = ssd(e, x, delta, op.negExp(e, ly.Alog), Bm, Cm, ly.D, null, H, G, cpuChunk(c)); // (B, L, ED)
  const normed = gatedRmsnorm(e, y, z, ly.normW, ED / G, c.layerNormEpsilon); // (B, L, ED)
  return op.linear(e, normed, ly.outProj, ly.outProjBias); // (B, L, D)
}

/**
 * The chunk length the SSD runs at here: the model's chunk_size, at most SSD_CPU_CHUNK. chunk_size
 * is a GPU kernel's tile and does not change the outputs (the chunked SSD is exact for any chunk
 * length, tested); on a CPU the O(Q²) work per token of the diagonal blocks makes Q = 64 about
 * twice as fast as the published 256 for training.
 */
export function cpuChunk(c: Mamba2Config): number {
  return Math.min(c.chunkSize, SSD_CPU_CHUNK);
}

/** The widest input of the mixer's products (for the q8 scratch of quantised weights). */
export function mamba2ProductWidth(c: Mamba2Config): number {
  return Math.max(c.dModel, c.dInner);
}

/** The inference path of one Mamba-2 mixer (layer i), on the shared buffers of a pass. */
export class Mamba2BlockRunner extends SsmBlockBase implements BlockRunner {
  constructor(
    e: Engine,
    private readonly c: Mamba2Config,
    private readonly ly: Mamba2Mixer,
    readonly norm: Tensor,
    private readonly i: number,
  ) {
    super(e);
  }

  stateShapes(B: number): [string, number[]][] {
    // a recurrent state: the same whatever the tokens
    const { nHeads: H, headDim: P, dState: N, dConv: K } = this.c;
    return [
      [`conv.${this.i}`, [B, convDim(this.c), K]],
      [`ssm.${this.i}`, [B, H, P, N]],
    ];
  }

  run(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, L: number, state: ModelState): void {
    const c = this.c,
      e = this.e,
      k = e.k,
      ly = this.ly,
      M = B * L;
    const { dInner: ED, nHeads: H, headDim: P, nGroups: G, dState: N, dConv: K } = c,
      CD = convDim(c),
      IP = inProjDim(c),
      GN = G * N;
    const zx = buf('m2.zxbcdt', [M, IP]),
      z = buf('m2.z', [M, ED]),
      xBC = buf('m2.xBC', [M, CD]),
      conv = buf('m2.conv', [M, CD]);
    const dt = buf('m2.dt', [M, H]),
      x = buf('m2.x', [M, ED]),
      Bm = buf('m2.B', [M, GN]),
      Cm = buf('m2.C', [M, GN]);
    const delta = buf('m2.delta', [M, H]),
      y = buf('m2.y', [M, ED]),
      normed = buf('m2.normed', [M, ED]),
      rstd = buf('m2.rstd', [M, G]);
    const convState = state.tensors.get(`conv.${this.i}`) as Tensor,
      h = state.tensors.get(`ssm.${this.i}`) as Tensor;
    linearInto(e, zx, u, ly.inProj, ly.inProjBias, M, q); // (M, IP)
    k.sliceColumns(z, zx, M, IP, 0, ED);
    k.sliceColumns(xBC, zx, M, IP, ED, CD);
    k.sliceColumns(dt, zx, M, IP, ED + CD, H);
    convContinue(e, conv, xBC, convState, ly.convW, this.convBias(ly.convB, CD), B, L, CD, K);
    k.siluForward(conv, conv, M * CD);
    k.sliceColumns(x, conv, M, CD, 0, ED);
    k.sliceColumns(Bm, conv, M, CD, ED, GN);
    k.sliceColumns(Cm, conv, M, CD, ED + GN, GN);
    k.dtSoftplusForward(delta, dt, ly.dtBias, M, H, c.timeStepLimit[0], c.timeStepLimit[1]);
    if (L === 1) k.ssdRecurrent(y, h, x, delta, this.decay(ly.Alog), Bm, Cm, ly.D, B, 1, H, P, G, N);
    else
      k.ssdChunkForward(
        y,
        h,
        null,
        x,
        delta,
        this.decay(ly.Alog),
        Bm,
        Cm,
        ly.D,
        buf('m2.work', [ssdWorkSize(B, H, P, N, cpuChunk(c))]),
        B,
        L,
        H,
        P,
        G,
        N,
        cpuChunk(c),
      );
    k.gatedRmsnormForward(normed, rstd, y, z, ly.normW, M, ED, ED / G, c.layerNormEpsilon);
    linearInto(e, out, normed, ly.outProj, ly.outProjBias, M, q); // (M, D)
  }
}
