import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';

/**
 * Differentiable ops of Mamba-3 (kernels in kernels/ref/mamba3.ts, gradient rules in grads.ts).
 * Shapes: B batch, L sequence, H heads of P channels, G groups of B/C, N state size, S rotary angles.
 */

/** out = sigmoid(x) elementwise (the trapezoid weight λ) */
export function sigmoid(e: Engine, x: Tensor): Tensor {
  const out = e.zeros(x.shape);
  e.k.sigmoidForward(out, x, x.size);
  e.tape?.record('sigmoid', out, [x], [], { n: x.size });
  return out;
}

/** A = −max(heavyTail(x), floor) elementwise (Mamba-3's data-dependent decay rate) */
export function negHeavyTail(e: Engine, x: Tensor, floor: number): Tensor {
  const out = e.zeros(x.shape);
  e.k.negHeavyTailForward(out, x, floor, x.size);
  e.tape?.record('negHeavyTail', out, [x], [], { n: x.size, floor });
  return out;
}

/** RMSNorm over consecutive runs of w.size values (B and C of every group, normalised apart): x (…) -> (…) */
export function rmsnormRuns(e: Engine, x: Tensor, w: Tensor, eps: number): Tensor {
  const D = w.size,
    rows = x.size / D;
  if (!Number.isInteger(rows)) throw new Error(`rmsnormRuns: [${x.shape}] is not a whole number of runs of ${D}`);
  const out = e.zeros(x.shape),
    rstd = e.zeros([rows]);
  e.k.rmsnormForward(out, rstd, x, w, rows, D, eps);
  e.tape?.record('rmsnorm', out, [x, w], [rstd], { rows, D });
  return out;
}

/**
 * The Mamba-3 SISO scan from a zero state: y (B, L, H·P) from x (B, L, H·P), adt, dt, trap
 * (B, L, H), Bn, Cn (B, L, G·N), Bb, Cb (H, N), ang (B, L, S), D (H). Saves the state at the start
 * of every chunk of `chunk` tokens for the backward.
 */
export function mamba3Scan(
  e: Engine,
  x: Tensor,
  adt: Tensor,
  dt: Tensor,
  trap: Tensor,
  Bn: Tensor,
  Cn: Tensor,
  Bb: Tensor,
  Cb: Tensor,
  ang: Tensor,
  D: Tensor,
  H: number,
  G: number,
  chunk: number,
): Tensor {
  const [B, L, ED] = x.shape,
    P = ED / H,
    N = Bb.size / H,
    S = ang.size / (B * L);
  if (!Number.isInteger(P) || Bn.size !== B * L * G * N || Cn.size !== Bn.size || adt.size !== B * L * H || !Number.isInteger(S)) {
    throw new Error(
      `mamba3Scan: x [${x.shape}], B [${Bn.shape}], biases [${Bb.shape}], angles [${ang.shape}] do not fit ${H} heads in ${G} groups`,
    );
  }
  const y = e.zeros(x.shape),
    hck = e.zeros([B, Math.ceil(L / chunk), H, P * N + S + N + P]);
  const state = [e.zeros([B, H, P, N]), e.zeros([B, H, S]), e.zeros([B, H, N]), e.zeros([B, H, P])];
  e.k.mamba3ScanForward(
    y,
    state[0],
    state[1],
    state[2],
    state[3],
    hck,
    x,
    adt,
    dt,
    trap,
    Bn,
    Cn,
    Bb,
    Cb,
    ang,
    D,
    e.zeros([2 * N]),
    B,
    L,
    H,
    P,
    G,
    N,
    S,
    chunk,
  );
  e.tape?.record('mamba3Scan', y, [x, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D], [hck], { B, L, H, P, G, N, S, chunk });
  return y;
}
