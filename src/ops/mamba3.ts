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
 * The Mamba-3 scan from a zero state (kernels/ref/mamba3.ts): o (B, L, H·R·P) from v (B, L, H·R·P),
 * adt, dt, trap (B, L, H), Bn, Cn (B, L, R·G·N), Bb, Cb (H·R·N), ang (B, L, S), D (H); R ranks
 * (SISO: R 1, pairwise turns; MIMO: `halves`, MIMO's half-split turns). Saves the state at the start
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
  R = 1,
  halves = false,
): Tensor {
  const [B, L] = x.shape,
    P = x.size / (B * L * H * R),
    N = Bb.size / (H * R),
    S = ang.size / (B * L);
  if (
    !Number.isInteger(P) ||
    !Number.isInteger(N) ||
    Bn.size !== B * L * R * G * N ||
    Cn.size !== Bn.size ||
    adt.size !== B * L * H ||
    !Number.isInteger(S)
  ) {
    throw new Error(
      `mamba3Scan: x [${x.shape}], B [${Bn.shape}], biases [${Bb.shape}], angles [${ang.shape}] do not fit ${H} heads of ${R} ranks in ${G} groups`,
    );
  }
  const y = e.zeros(x.shape),
    hck = e.zeros([B, Math.ceil(L / chunk), H, P * N + S + R * N + R * P]);
  const state = [e.zeros([B, H, P, N]), e.zeros([B, H, S]), e.zeros([B, H, R, N]), e.zeros([B, H, R, P])] as const,
    work = e.zeros([2 * R * N]);
  if (R === 1 && !halves) {
    e.k.mamba3ScanForward(y, ...state, hck, x, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D, work, B, L, H, P, G, N, S, chunk);
  } else {
    e.k.mamba3MimoScanForward(y, ...state, hck, x, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D, work, B, L, H, P, G, N, S, R, chunk, halves);
  }
  e.tape?.record('mamba3Scan', y, [x, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D], [hck], { B, L, H, P, G, N, S, R, chunk, halves });
  return y;
}

/** MIMO's up-projection: out (…, H, R, P) = x (…, H·P) ⊙ w (H, R, P), broadcast over the ranks. */
export function mimoUp(e: Engine, x: Tensor, w: Tensor): Tensor {
  const [H, R, P] = w.shape,
    M = x.size / (H * P);
  if (!Number.isInteger(M)) throw new Error(`mimoUp: x [${x.shape}] is not a whole number of ${H} heads of ${P}`);
  const out = e.zeros([...x.shape.slice(0, -1), H * R * P]);
  e.k.mimoUpForward(out, x, w, M, H, R, P);
  e.tape?.record('mimoUp', out, [x, w], [], { M, H, R, P });
  return out;
}

/** MIMO's down-projection: out (…, H·P) = Σ_r o (…, H, R, P) ⊙ w (H, R, P). */
export function mimoDown(e: Engine, o: Tensor, w: Tensor): Tensor {
  const [H, R, P] = w.shape,
    M = o.size / (H * R * P);
  if (!Number.isInteger(M)) throw new Error(`mimoDown: o [${o.shape}] is not a whole number of ${H} heads of ${R} ranks of ${P}`);
  const out = e.zeros([...o.shape.slice(0, -1), H * P]);
  e.k.mimoDownForward(out, o, w, M, H, R, P);
  e.tape?.record('mimoDown', out, [o, w], [], { M, H, R, P });
  return out;
}
