import type { Tensor, Weight } from '../../tensor/index.js';
import type { Engine, QuantScratch } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import { linearInto, SCAN_CHUNK } from '../../ops/ops.js';
import { dtSoftplus } from '../../ops/ssd.js';
import { mamba3Scan, negHeavyTail, rmsnormRuns, sigmoid } from '../../ops/mamba3.js';
import type { ModelState } from '../types.js';
import type { BlockRunner, Buffers } from '../stack.js';
import type { Mamba3Config } from './config.js';
import { mamba3InProjDim } from './config.js';

/**
 * The Mamba-3 SISO mixer (state-spaces mamba3.py):
 *   [z | x | B | C | dt | a | λ | angles] = in_proj(u);  B, C = RMSNorm(B), RMSNorm(C)
 *   Δ = softplus(dt + dt_bias);  A = −max(heavyTail(a), A_floor);  λ = sigmoid(λ)
 *   y = Mamba3Scan(x, A·Δ, Δ, λ, B, C, B_bias, C_bias, angles) + D·x  (kernels/ref/mamba3.ts)
 *   out = out_proj(y ⊙ silu(z))
 * The B and C norms' epsilon is the reference's fixed 1e-5.
 */
export interface Mamba3Mixer {
  inProj: Weight;
  dtBias: Tensor;
  Bbias: Tensor;
  Cbias: Tensor;
  Bnorm: Tensor;
  Cnorm: Tensor;
  D: Tensor;
  outProj: Weight;
}

type Lookups = { p(name: string): Tensor; w(name: string): Weight };

export function mamba3MixerParams(l: Lookups, m: string): Mamba3Mixer {
  return {
    inProj: l.w(`${m}.in_proj.weight`),
    dtBias: l.p(`${m}.dt_bias`),
    Bbias: l.p(`${m}.B_bias`),
    Cbias: l.p(`${m}.C_bias`),
    Bnorm: l.p(`${m}.B_norm.weight`),
    Cnorm: l.p(`${m}.C_norm.weight`),
    D: l.p(`${m}.D`),
    outProj: l.w(`${m}.out_proj.weight`),
  };
}

const BC_EPS = 1e-5;

/** Column offsets of in_proj's parts. */
function parts(c: Mamba3Config) {
  const { dInner: ED, nGroups: G, dState: N, nHeads: H } = c,
    GN = G * N;
  return {
    z: 0,
    x: ED,
    B: 2 * ED,
    C: 2 * ED + GN,
    dt: 2 * ED + 2 * GN,
    a: 2 * ED + 2 * GN + H,
    trap: 2 * ED + 2 * GN + 2 * H,
    ang: 2 * ED + 2 * GN + 3 * H,
  };
}

/** The taped mixer on u (B, L, D) -> (B, L, D). */
export function mamba3Mixer(e: Engine, c: Mamba3Config, ly: Mamba3Mixer, u: Tensor): Tensor {
  const { dInner: ED, nHeads: H, nGroups: G, dState: N, nAngles: S } = c,
    o = parts(c),
    GN = G * N;
  const proj = op.linear(e, u, ly.inProj, null); // (B, L, 2ED + 2GN + 3H + S)
  const z = op.sliceLast(e, proj, o.z, ED),
    x = op.sliceLast(e, proj, o.x, ED); // (B, L, ED)
  const Bn = rmsnormRuns(e, op.sliceLast(e, proj, o.B, GN), ly.Bnorm, BC_EPS); // (B, L, G·N)
  const Cn = rmsnormRuns(e, op.sliceLast(e, proj, o.C, GN), ly.Cnorm, BC_EPS); // (B, L, G·N)
  const dt = dtSoftplus(e, op.sliceLast(e, proj, o.dt, H), ly.dtBias, 0, Infinity); // (B, L, H)
  const adt = op.mul(e, negHeavyTail(e, op.sliceLast(e, proj, o.a, H), c.aFloor), dt); // (B, L, H)
  const lam = sigmoid(e, op.sliceLast(e, proj, o.trap, H)); // (B, L, H)
  const ang = op.sliceLast(e, proj, o.ang, S); // (B, L, S)
  const y = mamba3Scan(e, x, adt, dt, lam, Bn, Cn, ly.Bbias, ly.Cbias, ang, ly.D, H, G, SCAN_CHUNK); // (B, L, ED)
  return op.linear(e, op.mul(e, y, op.silu(e, z)), ly.outProj, null); // (B, L, D)
}

export function mamba3ProductWidth(c: Mamba3Config): number {
  return Math.max(c.dModel, c.dInner);
}

/**
 * The inference path of one Mamba-3 mixer (layer i): its state is the rotary angles angle.{i}
 * (B, H, S), the SSM state ssm.{i} (B, H, P, N), and the previous token's turned B and x,
 * kprev.{i} (B, H, N) and vprev.{i} (B, H, P), which the trapezoidal update reads.
 */
export class Mamba3BlockRunner implements BlockRunner {
  constructor(
    private readonly e: Engine,
    private readonly c: Mamba3Config,
    private readonly ly: Mamba3Mixer,
    readonly norm: Tensor,
    private readonly i: number,
  ) {}

  stateShapes(B: number): [string, number[]][] {
    // a recurrent state: the same whatever the tokens
    const { nHeads: H, headDim: P, dState: N, nAngles: S } = this.c,
      i = this.i;
    return [
      [`angle.${i}`, [B, H, S]],
      [`ssm.${i}`, [B, H, P, N]],
      [`kprev.${i}`, [B, H, N]],
      [`vprev.${i}`, [B, H, P]],
    ];
  }

  run(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, L: number, state: ModelState): void {
    const c = this.c,
      e = this.e,
      k = e.k,
      ly = this.ly,
      M = B * L,
      o = parts(c);
    const { dInner: ED, nHeads: H, headDim: P, nGroups: G, dState: N, nAngles: S } = c,
      IP = mamba3InProjDim(c),
      GN = G * N;
    const proj = buf('m3.proj', [M, IP]),
      z = buf('m3.z', [M, ED]),
      x = buf('m3.x', [M, ED]),
      Bm = buf('m3.B', [M, GN]),
      Cm = buf('m3.C', [M, GN]);
    const rB = buf('m3.rstdB', [M * G]),
      rC = buf('m3.rstdC', [M * G]),
      ddt = buf('m3.ddt', [M, H]),
      dt = buf('m3.dt', [M, H]);
    const a = buf('m3.a', [M, H]),
      adt = buf('m3.adt', [M, H]),
      tr = buf('m3.trap', [M, H]),
      ang = buf('m3.ang', [M, S]);
    const y = buf('m3.y', [M, ED]),
      gate = buf('m3.gate', [M, ED]);
    const st = (name: string) => state.tensors.get(`${name}.${this.i}`) as Tensor;
    linearInto(e, proj, u, ly.inProj, null, M, q);
    k.sliceColumns(z, proj, M, IP, o.z, ED);
    k.sliceColumns(x, proj, M, IP, o.x, ED);
    k.sliceColumns(Bm, proj, M, IP, o.B, GN);
    k.sliceColumns(Cm, proj, M, IP, o.C, GN);
    k.rmsnormForward(Bm, rB, Bm, ly.Bnorm, M * G, N, BC_EPS);
    k.rmsnormForward(Cm, rC, Cm, ly.Cnorm, M * G, N, BC_EPS);
    k.sliceColumns(ddt, proj, M, IP, o.dt, H);
    k.dtSoftplusForward(dt, ddt, ly.dtBias, M, H, 0, Infinity);
    k.sliceColumns(a, proj, M, IP, o.a, H);
    k.negHeavyTailForward(a, a, c.aFloor, M * H);
    k.mul(adt, a, dt, M * H);
    k.sliceColumns(tr, proj, M, IP, o.trap, H);
    k.sigmoidForward(tr, tr, M * H);
    k.sliceColumns(ang, proj, M, IP, o.ang, S);
    k.mamba3ScanForward(
      y,
      st('ssm'),
      st('angle'),
      st('kprev'),
      st('vprev'),
      null,
      x,
      adt,
      dt,
      tr,
      Bm,
      Cm,
      ly.Bbias,
      ly.Cbias,
      ang,
      ly.D,
      buf('m3.work', [2 * N]),
      B,
      L,
      H,
      P,
      G,
      N,
      S,
      SCAN_CHUNK,
    );
    k.siluForward(gate, z, M * ED);
    k.mul(y, y, gate, M * ED);
    linearInto(e, out, y, ly.outProj, null, M, q);
  }
}
