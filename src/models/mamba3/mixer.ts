import type { Tensor, Weight } from '../../tensor/index.js';
import type { Engine, QuantScratch } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import { linearInto, SCAN_CHUNK } from '../../ops/ops.js';
import { dtSoftplus } from '../../ops/ssd.js';
import { mamba3Scan, mimoDown, mimoUp, negHeavyTail, rmsnormRuns, sigmoid } from '../../ops/mamba3.js';
import type { ModelState } from '../types.js';
import type { BlockRunner, Buffers } from '../stack.js';
import type { Mamba3Config } from './config.js';
import { mamba3InProjDim } from './config.js';

/**
 * The Mamba-3 mixer (state-spaces mamba3.py):
 *   [z | x | B | C | dt | a | λ | angles] = in_proj(u);  B, C = RMSNorm(B), RMSNorm(C)
 *   Δ = softplus(dt + dt_bias);  A = −max(heavyTail(a), A_floor);  λ = sigmoid(λ)
 * SISO:
 *   y = Mamba3Scan(x, A·Δ, Δ, λ, B, C, B_bias, C_bias, angles) + D·x  (kernels/ref/mamba3.ts)
 *   out = out_proj(y ⊙ silu(z))
 * MIMO (R ranks; B and C hold R·G·N values, (r, g, n)):
 *   v_r = x ⊙ mimo_x[·, r],  o_r = Mamba3Scan(v, …)_r + D·v_r  (half-split turns)
 *   y = Σ_r o_r ⊙ silu(z ⊙ mimo_z[·, r]) ⊙ mimo_o[·, r];  out = out_proj(y)
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
  mimo: { x: Tensor; z: Tensor; o: Tensor } | null; // MIMO's rank projections (H, R, P)
}

type Lookups = { p(name: string): Tensor; w(name: string): Weight };

export function mamba3MixerParams(l: Lookups, m: string, c: Mamba3Config): Mamba3Mixer {
  return {
    mimo: c.isMimo ? { x: l.p(`${m}.mimo_x`), z: l.p(`${m}.mimo_z`), o: l.p(`${m}.mimo_o`) } : null,
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
    GN = c.mimoRank * G * N;
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
  const { dInner: ED, nHeads: H, nGroups: G, dState: N, nAngles: S, mimoRank: R } = c,
    o = parts(c),
    GN = R * G * N;
  const proj = op.linear(e, u, ly.inProj, null); // (B, L, 2ED + 2RGN + 3H + S)
  const z = op.sliceLast(e, proj, o.z, ED),
    x = op.sliceLast(e, proj, o.x, ED); // (B, L, ED)
  const Bn = rmsnormRuns(e, op.sliceLast(e, proj, o.B, GN), ly.Bnorm, BC_EPS); // (B, L, R·G·N)
  const Cn = rmsnormRuns(e, op.sliceLast(e, proj, o.C, GN), ly.Cnorm, BC_EPS); // (B, L, R·G·N)
  const dt = dtSoftplus(e, op.sliceLast(e, proj, o.dt, H), ly.dtBias, 0, Infinity); // (B, L, H)
  const adt = op.mul(e, negHeavyTail(e, op.sliceLast(e, proj, o.a, H), c.aFloor), dt); // (B, L, H)
  const lam = sigmoid(e, op.sliceLast(e, proj, o.trap, H)); // (B, L, H)
  const ang = op.sliceLast(e, proj, o.ang, S); // (B, L, S)
  const mm = ly.mimo;
  if (mm === null) {
    const y = mamba3Scan(e, x, adt, dt, lam, Bn, Cn, ly.Bbias, ly.Cbias, ang, ly.D, H, G, SCAN_CHUNK); // (B, L, ED)
    return op.linear(e, op.mul(e, y, op.silu(e, z)), ly.outProj, null); // (B, L, D)
  }
  const v = mimoUp(e, x, mm.x); // (B, L, H·R·P)
  const os = mamba3Scan(e, v, adt, dt, lam, Bn, Cn, ly.Bbias, ly.Cbias, ang, ly.D, H, G, SCAN_CHUNK, R, true); // (B, L, H·R·P)
  const y = mimoDown(e, op.mul(e, os, op.silu(e, mimoUp(e, z, mm.z))), mm.o); // (B, L, ED)
  return op.linear(e, y, ly.outProj, null); // (B, L, D)
}

export function mamba3ProductWidth(c: Mamba3Config): number {
  return Math.max(c.dModel, c.dInner);
}

/**
 * The inference path of one Mamba-3 mixer (layer i): its state is the rotary angles angle.{i}
 * (B, H, S), the SSM state ssm.{i} (B, H, P, N), and the previous token's turned B and input,
 * kprev.{i} (B, H, N) and vprev.{i} (B, H, P), which the trapezoidal update reads (MIMO: one per
 * rank, kprev (B, H, R, N) and vprev (B, H, R, P), the input after mimo_x).
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
    const { nHeads: H, headDim: P, dState: N, nAngles: S, mimoRank: R } = this.c,
      i = this.i,
      rank = this.c.isMimo ? [R] : [];
    return [
      [`angle.${i}`, [B, H, S]],
      [`ssm.${i}`, [B, H, P, N]],
      [`kprev.${i}`, [B, H, ...rank, N]],
      [`vprev.${i}`, [B, H, ...rank, P]],
    ];
  }

  run(buf: Buffers, q: QuantScratch, u: Tensor, out: Tensor, B: number, L: number, state: ModelState): void {
    const c = this.c,
      e = this.e,
      k = e.k,
      ly = this.ly,
      M = B * L,
      o = parts(c);
    const { dInner: ED, nHeads: H, headDim: P, nGroups: G, dState: N, nAngles: S, mimoRank: R } = c,
      IP = mamba3InProjDim(c),
      GN = R * G * N;
    const proj = buf('m3.proj', [M, IP]),
      z = buf('m3.z', [M, ED]),
      x = buf('m3.x', [M, ED]),
      Bm = buf('m3.B', [M, GN]),
      Cm = buf('m3.C', [M, GN]);
    const ddt = buf('m3.ddt', [M, H]),
      dt = buf('m3.dt', [M, H]);
    const a = buf('m3.a', [M, H]),
      adt = buf('m3.adt', [M, H]),
      tr = buf('m3.trap', [M, H]),
      ang = buf('m3.ang', [M, S]);
    const st = (name: string) => state.tensors.get(`${name}.${this.i}`) as Tensor;
    linearInto(e, proj, u, ly.inProj, null, M, q);
    k.sliceColumns(z, proj, M, IP, o.z, ED);
    k.sliceColumns(x, proj, M, IP, o.x, ED);
    k.sliceColumns(Bm, proj, M, IP, o.B, GN);
    k.sliceColumns(Cm, proj, M, IP, o.C, GN);
    k.rmsnormForward(Bm, buf('m3.rstdB', [M * R * G]), Bm, ly.Bnorm, M * R * G, N, BC_EPS);
    k.rmsnormForward(Cm, buf('m3.rstdC', [M * R * G]), Cm, ly.Cnorm, M * R * G, N, BC_EPS);
    k.sliceColumns(ddt, proj, M, IP, o.dt, H);
    k.dtSoftplusForward(dt, ddt, ly.dtBias, M, H, 0, Infinity);
    k.sliceColumns(a, proj, M, IP, o.a, H);
    k.negHeavyTailForward(a, a, c.aFloor, M * H);
    k.mul(adt, a, dt, M * H);
    k.sliceColumns(tr, proj, M, IP, o.trap, H);
    k.sigmoidForward(tr, tr, M * H);
    k.sliceColumns(ang, proj, M, IP, o.ang, S);
    const states = [st('ssm'), st('angle'), st('kprev'), st('vprev')] as const,
      work = buf('m3.work', [2 * R * N]),
      mm = ly.mimo;
    if (mm === null) {
      const y = buf('m3.y', [M, ED]),
        gate = buf('m3.gate', [M, ED]);
      k.mamba3ScanForward(y, ...states, null, x, adt, dt, tr, Bm, Cm, ly.Bbias, ly.Cbias, ang, ly.D, work, B, L, H, P, G, N, S, SCAN_CHUNK);
      k.siluForward(gate, z, M * ED);
      k.mul(y, y, gate, M * ED);
      linearInto(e, out, y, ly.outProj, null, M, q);
      return;
    }
    const v = buf('m3.v', [M, H * R * P]),
      os = buf('m3.o', [M, H * R * P]),
      zr = buf('m3.zr', [M, H * R * P]),
      y = buf('m3.y', [M, ED]);
    k.mimoUpForward(v, x, mm.x, M, H, R, P);
    k.mamba3MimoScanForward(
      os,
      ...states,
      null,
      v,
      adt,
      dt,
      tr,
      Bm,
      Cm,
      ly.Bbias,
      ly.Cbias,
      ang,
      ly.D,
      work,
      B,
      L,
      H,
      P,
      G,
      N,
      S,
      R,
      SCAN_CHUNK,
      true,
    );
    k.mimoUpForward(zr, z, mm.z, M, H, R, P);
    k.siluForward(zr, zr, M * H * R * P);
    k.mul(os, os, zr, M * H * R * P);
    k.mimoDownForward(y, os, mm.o, M, H, R, P);
    linearInto(e, out, y, ly.outProj, null, M, q);
  }
}
