import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';
import { ssdWorkSize } from '../kernels/ssd-work.js';

/**
 * Differentiable ops of Mamba-2 (kernels in kernels/ref/ssd.ts and kernels/ref/mamba2.ts, gradient
 * rules in grads.ts). Shapes use the legend: B batch, L sequence, H heads of P channels
 * (ED = H·P), G groups of B/C, N state size, Q chunk length.
 */

function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}

/** Δ = clamp(softplus(dt + bias), lo, hi): dt (…, H), bias (H) -> (…, H) */
export function dtSoftplus(e: Engine, dt: Tensor, bias: Tensor, lo: number, hi: number): Tensor {
  const H = bias.size,
    rows = dt.size / H;
  if (lastDim(dt) !== H) throw new Error(`dtSoftplus: dt [${dt.shape}] does not end in ${H} heads`);
  const out = e.empty(dt.shape);
  e.k.dtSoftplusForward(out, dt, bias, rows, H, lo, hi);
  e.tape?.record('dtSoftplus', out, [dt, bias], [], { rows, H, lo, hi });
  return out;
}

/** RMSNorm of y ⊙ silu(z) over groups of gs channels, times w: y, z (…, D), w (D) -> (…, D). Saves rstd (rows, D/gs). */
export function gatedRmsnorm(e: Engine, y: Tensor, z: Tensor, w: Tensor, gs: number, eps: number): Tensor {
  const D = lastDim(y),
    rows = y.size / D;
  if (z.size !== y.size || w.size !== D || D % gs !== 0)
    throw new Error(`gatedRmsnorm: y [${y.shape}], z [${z.shape}], w [${w.shape}], groups of ${gs} do not fit`);
  const out = e.zeros(y.shape),
    rstd = e.zeros([rows, D / gs]);
  e.k.gatedRmsnormForward(out, rstd, y, z, w, rows, D, gs, eps);
  e.tape?.record('gatedRmsnorm', out, [y, z, w], [rstd], { rows, D, gs });
  return out;
}

/** The longest chunk the models run the SSD in on a CPU (see cpuChunk in models/mamba2/mixer.ts). */
export const SSD_CPU_CHUNK = 64;

/** Sizes of an SSD call, checked against each other. */
export interface SsdDims {
  B: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
}

/** The dims of x (B, L, H·P), delta (B, L, H), Bm (B, L, G·N) for H heads and G groups, or an error naming the mismatch. */
export function ssdDims(x: Tensor, delta: Tensor, Bm: Tensor, Cm: Tensor, H: number, G: number): SsdDims {
  const [B, L, ED] = x.shape,
    P = ED / H,
    N = Bm.shape[2] / G;
  const ok =
    x.shape.length === 3 &&
    Number.isInteger(P) &&
    Number.isInteger(N) &&
    H % G === 0 &&
    delta.size === B * L * H &&
    Bm.size === B * L * G * N &&
    Cm.size === Bm.size;
  if (!ok)
    throw new Error(`ssd: x [${x.shape}], delta [${delta.shape}], B [${Bm.shape}], C [${Cm.shape}] do not fit ${H} heads in ${G} groups`);
  return { B, L, H, P, G, N };
}

/**
 * The chunked SSD: y (B, L, H·P) from x (B, L, H·P), delta (B, L, H), A (H), Bm, Cm (B, L, G·N),
 * D (H), starting from h0 (B, H, P, N) or zeros, in chunks of Q tokens. Saves the state entering
 * every chunk (B, ceil(L/Q), H, P, N) for the backward.
 */
export function ssd(
  e: Engine,
  x: Tensor,
  delta: Tensor,
  A: Tensor,
  Bm: Tensor,
  Cm: Tensor,
  D: Tensor,
  h0: Tensor | null,
  H: number,
  G: number,
  Q: number,
): Tensor {
  const { B, L, P, N } = ssdDims(x, delta, Bm, Cm, H, G);
  const y = e.zeros(x.shape),
    h = e.zeros([B, H, P, N]),
    hck = e.zeros([B, Math.ceil(L / Q), H, P, N]);
  if (h0) h.floats().set(h0.floats());
  e.k.ssdChunkForward(y, h, hck, x, delta, A, Bm, Cm, D, e.zeros([ssdWorkSize(B, H, P, N, Q)]), B, L, H, P, G, N, Q);
  e.tape?.record('ssd', y, [x, delta, A, Bm, Cm, D, h0], [hck], { B, L, H, P, G, N, Q });
  return y;
}

/**
 * Rotary embedding of the first rd channels of each head (partial rotary; rd = hd is `rope`):
 * x (B, L, heads·hd) for positions pos0 .. pos0+L−1 -> (B, L, heads·hd).
 */
export function ropePartial(e: Engine, x: Tensor, heads: number, rd: number, theta: number, pos0 = 0): Tensor {
  const [B, L, C] = x.shape,
    hd = C / heads;
  if (x.shape.length !== 3 || !Number.isInteger(hd) || rd % 2 !== 0 || rd > hd)
    throw new Error(`ropePartial: [${x.shape}] does not split into ${heads} heads with ${rd} rotated channels`);
  const out = e.zeros(x.shape);
  e.k.ropePartialForward(out, x, B, L, heads, hd, rd, pos0, theta);
  e.tape?.record('ropePartial', out, [x], [], { B, L, H: heads, hd, rd, pos0, theta });
  return out;
}
