import type { F } from './types.js';
import { sigmoid } from './elementwise.js';

/**
 * Mamba-3 (state-spaces modules/mamba3.py and the float64 step references of its tests), per
 * batch b and head h (group g = h / (H/G)), with P channels, state N, S rotary angles and R ranks
 * (R = 1 and pairwise turns: SISO; R ≥ 1 and half-split turns: MIMO):
 *   θ_t = θ_{t−1} + π·tanh(a_t)·Δ_t                       (S angles; a_t shared by the heads)
 *   q_{t,r} = R(θ_t)(C_{t,r} + C_bias_{h,r}),  k_{t,r} = R(θ_t)(B_{t,r} + B_bias_{h,r})
 *   α = exp(ADT_t),  β = (1 − λ_t)·Δ_t·α,  γ = λ_t·Δ_t        (λ = trapezoid weight in (0, 1))
 *   h_t = α·h_{t−1} + β·Σ_r v_{t−1,r} k_{t−1,r}ᵀ + γ·Σ_r v_{t,r} k_{t,r}ᵀ   (h ∈ R^{P×N})
 *   o_{t,r} = h_t q_{t,r} + D_h·v_{t,r}
 * R(θ) turns the pairs (2i, 2i+1) (SISO, `halves` false) or (i, i + N/2) (MIMO's kernels, `halves`
 * true) by θ[i], i < S; the other channels pass. v is the rank's input (SISO: x; MIMO: x ⊙ mimo_x,
 * made outside). The trapezoidal update mixes the previous token's input into the state, so the
 * state carries (h, θ, k_{t−1}, v_{t−1}); θ is kept reduced mod 2π, as the reference does.
 * Shapes: v, o (B, L, H, R, P); adt, dt, trap (B, L, H); Bn, Cn (B, L, R, G, N) (after their
 * RMSNorm); Bb, Cb (H, R, N); ang (B, L, S) (the raw angle projections); D (H); states h (B, H, P, N),
 * th (B, H, S), kp (B, H, R, N), vp (B, H, R, P). Checkpoints hck (B, nChunks, H, W) hold the four
 * states at the start of each chunk of `chunk` tokens, W = P·N + S + R·N + R·P; the backward
 * recomputes the states inside a chunk from them.
 */

const TWO_PI = 2 * Math.PI;

/** Sizes of one scan; `halves` picks MIMO's half-split turns. */
interface Dims {
  B: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
  S: number;
  R: number;
  halves: boolean;
}

/** The scan's inputs (shapes in the header). */
interface Inputs {
  x: F;
  adt: F;
  dt: F;
  trap: F;
  Bn: F;
  Cn: F;
  Bb: F;
  Cb: F;
  ang: F;
  D: F;
}

/** Floats of one head's checkpoint: h, θ, k_{t−1}, v_{t−1}. */
function ckWidth(d: Dims): number {
  return d.P * d.N + d.S + d.R * d.N + d.R * d.P;
}

/** The channel pair turned by angle i is (i0, i0 + step): (2i, 2i+1), or (i, i + N/2) with halves. */
function first(i: number, halves: boolean): number {
  return halves ? i : 2 * i;
}

/** out[o ..] (N) = R(θ)·(src + bias). */
function rotate(out: F, o: number, src: F, so: number, bias: F, bo: number, th: F, to: number, d: Dims): void {
  const N = d.N;
  for (let n = 0; n < N; n++) out[o + n] = src[so + n] + bias[bo + n];
  for (let i = 0; i < d.S; i++) {
    const c = Math.cos(th[to + i]),
      s = Math.sin(th[to + i]),
      i0 = first(i, d.halves),
      i1 = i0 + (d.halves ? N >> 1 : 1),
      a = out[o + i0],
      b = out[o + i1];
    out[o + i0] = a * c - b * s;
    out[o + i1] = a * s + b * c;
  }
}

/** Where one head's state lives: h, θ, k_{t−1}, v_{t−1} (arrays and offsets). */
interface HeadState {
  h: F;
  ho: number;
  th: F;
  to: number;
  kp: F;
  ko: number;
  vp: F;
  vo: number;
}

/**
 * One token t of head hh in batch b: advance the state in place and write o (R·P at oo). q holds
 * 2RN floats of scratch: the turned C of every rank, then the turned B.
 */
function stepHead(o: F, oo: number, s: HeadState, q: F, inp: Inputs, d: Dims, b: number, t: number, hh: number): void {
  const { L, H, P, G, N, S, R } = d,
    g = Math.floor(hh / (H / G)),
    r0 = (b * L + t) * H + hh,
    xo = r0 * R * P,
    ao = (b * L + t) * S,
    dtv = inp.dt[r0],
    lam = inp.trap[r0],
    RN = R * N;
  for (let i = 0; i < S; i++) {
    const v = s.th[s.to + i] + Math.PI * Math.tanh(inp.ang[ao + i]) * dtv;
    s.th[s.to + i] = v - TWO_PI * Math.floor(v / TWO_PI);
  }
  for (let r = 0; r < R; r++) {
    const bo = (((b * L + t) * R + r) * G + g) * N,
      hb = (hh * R + r) * N;
    rotate(q, r * N, inp.Cn, bo, inp.Cb, hb, s.th, s.to, d);
    rotate(q, RN + r * N, inp.Bn, bo, inp.Bb, hb, s.th, s.to, d); // k_{t,r}
  }
  const al = Math.exp(inp.adt[r0]),
    be = (1 - lam) * dtv * al,
    ga = lam * dtv,
    x = inp.x,
    Dh = inp.D[hh];
  const { h, ho, kp, ko, vp, vo } = s; // locals: the loops below are the scan's hot path
  for (let p = 0; p < P; p++) {
    const hp = ho + p * N;
    for (let n = 0; n < N; n++) h[hp + n] *= al;
    for (let r = 0; r < R; r++) {
      const bv = be * vp[vo + r * P + p],
        gx = ga * x[xo + r * P + p],
        kr = ko + r * N,
        qr = RN + r * N;
      for (let n = 0; n < N; n++) h[hp + n] += bv * kp[kr + n] + gx * q[qr + n];
    }
    for (let r = 0; r < R; r++) {
      let acc = 0;
      for (let n = 0; n < N; n++) acc += h[hp + n] * q[r * N + n];
      o[oo + r * P + p] = acc + Dh * x[xo + r * P + p];
    }
  }
  for (let k = 0; k < RN; k++) kp[ko + k] = q[RN + k];
  for (let k = 0; k < R * P; k++) vp[vo + k] = x[xo + k];
}

function saveCheckpoint(hck: F, o: number, h: F, th: F, kp: F, vp: F, bh: number, d: Dims): void {
  const PN = d.P * d.N,
    RN = d.R * d.N,
    RP = d.R * d.P,
    S = d.S;
  for (let k = 0; k < PN; k++) hck[o + k] = h[bh * PN + k];
  for (let k = 0; k < S; k++) hck[o + PN + k] = th[bh * S + k];
  for (let k = 0; k < RN; k++) hck[o + PN + S + k] = kp[bh * RN + k];
  for (let k = 0; k < RP; k++) hck[o + PN + S + RN + k] = vp[bh * RP + k];
}

function scanForward(o: F, h: F, th: F, kp: F, vp: F, hck: F | null, inp: Inputs, work: F, d: Dims, chunk: number): void {
  const { B, L, H, P, N, S, R } = d,
    nC = Math.ceil(L / chunk),
    W = ckWidth(d);
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const bh = b * H + hh,
        st: HeadState = { h, ho: bh * P * N, th, to: bh * S, kp, ko: bh * R * N, vp, vo: bh * R * P };
      for (let t = 0; t < L; t++) {
        if (hck !== null && t % chunk === 0) saveCheckpoint(hck, ((b * nC + t / chunk) * H + hh) * W, h, th, kp, vp, bh, d);
        stepHead(o, ((b * L + t) * H + hh) * R * P, st, work, inp, d, b, t, hh);
      }
    }
  }
}

/**
 * SISO: y (B, L, H, P) <- …; h, th, kp (B, H, N), vp (B, H, P) hold the state on entry and on exit;
 * hck receives the state at the start of each chunk (null to skip). work: 2N floats of scratch.
 */
export function mamba3ScanForward(
  y: F,
  h: F,
  th: F,
  kp: F,
  vp: F,
  hck: F | null,
  x: F,
  adt: F,
  dt: F,
  trap: F,
  Bn: F,
  Cn: F,
  Bb: F,
  Cb: F,
  ang: F,
  D: F,
  work: F,
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  S: number,
  chunk: number,
): void {
  const d: Dims = { B, L, H, P, G, N, S, R: 1, halves: false };
  scanForward(y, h, th, kp, vp, hck, { x, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D }, work, d, chunk);
}

/**
 * MIMO (and SISO with halves false, R 1): o (B, L, H, R, P) <- … from v (B, L, H, R, P); states as
 * the header says; work: 2RN floats of scratch.
 */
export function mamba3MimoScanForward(
  o: F,
  h: F,
  th: F,
  kp: F,
  vp: F,
  hck: F | null,
  v: F,
  adt: F,
  dt: F,
  trap: F,
  Bn: F,
  Cn: F,
  Bb: F,
  Cb: F,
  ang: F,
  D: F,
  work: F,
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  S: number,
  R: number,
  chunk: number,
  halves: boolean,
): void {
  scanForward(o, h, th, kp, vp, hck, { x: v, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D }, work, { B, L, H, P, G, N, S, R, halves }, chunk);
}

/** Gradients (shapes of the inputs), all ACCUMULATED. */
interface Grads {
  dx: F;
  dadt: F;
  ddt: F;
  dtrap: F;
  dBn: F;
  dCn: F;
  dBb: F;
  dCb: F;
  dang: F;
  dD: F;
}

/**
 * Gradients, all ACCUMULATED: dx (B, L, H, R, P), dadt, ddt, dtrap (B, L, H), dBn, dCn
 * (B, L, R, G, N), dBb, dCb (H, R, N), dang (B, L, S), dD (H), from dy (B, L, H, R, P) and the
 * forward's checkpoints. No gradient flows into the initial or from the final state. work:
 * mamba3WorkSize(P, N, S, R, chunk) floats of scratch (kernels/ssd-work.ts).
 */
export function mamba3MimoScanBackward(
  dx: F,
  dadt: F,
  ddt: F,
  dtrap: F,
  dBn: F,
  dCn: F,
  dBb: F,
  dCb: F,
  dang: F,
  dD: F,
  dy: F,
  x: F,
  adt: F,
  dt: F,
  trap: F,
  Bn: F,
  Cn: F,
  Bb: F,
  Cb: F,
  ang: F,
  D: F,
  hck: F,
  work: F,
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  S: number,
  R: number,
  chunk: number,
  halves: boolean,
): void {
  const d: Dims = { B, L, H, P, G, N, S, R, halves },
    gr: Grads = { dx, dadt, ddt, dtrap, dBn, dCn, dBb, dCb, dang, dD },
    inp: Inputs = { x, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D },
    nC = Math.ceil(L / chunk),
    W = ckWidth(d),
    PN = P * N,
    RN = R * N;
  // carved from work in mamba3WorkSize's order: per step of a chunk, the state after it (W floats:
  // h, θ, k, v; row 0 is the checkpoint) and its turned q (RN); the step's scratch; the carries
  let at = 0;
  const take = (n: number): F => {
    at += n;
    return work.subarray(at - n, at);
  };
  const rec = take((chunk + 1) * W),
    qs = take(chunk * RN),
    q = take(2 * RN),
    o = take(R * P);
  const c: Carry = { dh: take(PN), dkn: take(RN), dvn: take(R * P), dth: take(S), gm: take(PN), dq: take(RN), dk: take(RN) };
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      for (const a of [c.dh, c.dkn, c.dvn, c.dth]) a.fill(0);
      for (let ci = nC - 1; ci >= 0; ci--) {
        const t0 = ci * chunk,
          t1 = Math.min(L, t0 + chunk),
          ck = ((b * nC + ci) * H + hh) * W;
        for (let k = 0; k < W; k++) rec[k] = hck[ck + k];
        for (let t = t0; t < t1; t++) {
          const s = (t - t0 + 1) * W;
          for (let k = 0; k < W; k++) rec[s + k] = rec[s - W + k];
          stepHead(
            o,
            0,
            { h: rec, ho: s, th: rec, to: s + PN, kp: rec, ko: s + PN + S, vp: rec, vo: s + PN + S + RN },
            q,
            inp,
            d,
            b,
            t,
            hh,
          );
          for (let k = 0; k < RN; k++) qs[(t - t0) * RN + k] = q[k];
        }
        for (let t = t1 - 1; t >= t0; t--) backStep(t - t0, rec, qs, W, c, gr, dy, inp, d, b, t, hh);
      }
    }
  }
}

/**
 * SISO's backward (mamba3ScanForward's shapes: dx (B, L, H, P), dBn, dCn (B, L, G, N),
 * dBb, dCb (H, N)): mamba3MimoScanBackward with one rank and pairwise turns.
 */
export function mamba3ScanBackward(
  dx: F,
  dadt: F,
  ddt: F,
  dtrap: F,
  dBn: F,
  dCn: F,
  dBb: F,
  dCb: F,
  dang: F,
  dD: F,
  dy: F,
  x: F,
  adt: F,
  dt: F,
  trap: F,
  Bn: F,
  Cn: F,
  Bb: F,
  Cb: F,
  ang: F,
  D: F,
  hck: F,
  work: F,
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  S: number,
  chunk: number,
): void {
  mamba3MimoScanBackward(
    dx,
    dadt,
    ddt,
    dtrap,
    dBn,
    dCn,
    dBb,
    dCb,
    dang,
    dD,
    dy,
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
    hck,
    work,
    B,
    L,
    H,
    P,
    G,
    N,
    S,
    1,
    chunk,
    false,
  );
}

/** The backward's carries (gradients of h_t, k_t, v_t, θ_t from later tokens) and per-token scratch (G, dq, dk). */
interface Carry {
  dh: F;
  dkn: F;
  dvn: F;
  dth: F;
  gm: F;
  dq: F;
  dk: F;
}

/** One token of the backward, updating the carries to the previous token's. */
function backStep(
  j: number,
  rec: F,
  qs: F,
  W: number,
  carry: Carry,
  gr: Grads,
  dy: F,
  inp: Inputs,
  d: Dims,
  b: number,
  t: number,
  hh: number,
): void {
  const { dh, dkn, dvn, dth, gm, dq, dk } = carry;
  const { L, H, P, G, N, S, R } = d,
    x = inp.x,
    PN = P * N,
    RN = R * N,
    cur = (j + 1) * W,
    prev = j * W,
    r0 = (b * L + t) * H + hh,
    xo = r0 * R * P,
    g = Math.floor(hh / (H / G)),
    ao = (b * L + t) * S;
  const kt = cur + PN + S,
    th = cur + PN,
    kpv = prev + PN + S,
    vpv = prev + PN + S + RN,
    qo = j * RN;
  const dtv = inp.dt[r0],
    lam = inp.trap[r0],
    al = Math.exp(inp.adt[r0]),
    be = (1 - lam) * dtv * al,
    ga = lam * dtv,
    Dh = inp.D[hh];
  // G = dL/dh_t: carried + Σ_r dy_r q_rᵀ (o_r = h_t q_r)
  for (let p = 0; p < P; p++)
    for (let n = 0; n < N; n++) {
      let s = dh[p * N + n];
      for (let r = 0; r < R; r++) s += dy[xo + r * P + p] * qs[qo + r * N + n];
      gm[p * N + n] = s;
    }
  let dal = 0,
    dbe = 0,
    dga = 0,
    dDh = 0;
  dq.fill(0);
  for (let k = 0; k < RN; k++) dk[k] = dkn[k];
  for (let r = 0; r < R; r++) {
    for (let p = 0; p < P; p++) {
      const dyv = dy[xo + r * P + p],
        xv = x[xo + r * P + p];
      let gk = 0,
        gkp = 0;
      for (let n = 0; n < N; n++) {
        const gv = gm[p * N + n];
        dq[r * N + n] += rec[cur + p * N + n] * dyv;
        gk += gv * rec[kt + r * N + n];
        gkp += gv * rec[kpv + r * N + n];
        dk[r * N + n] += ga * gv * xv;
      }
      dbe += rec[vpv + r * P + p] * gkp;
      dga += xv * gk;
      dDh += dyv * xv;
      gr.dx[xo + r * P + p] += Dh * dyv + ga * gk + dvn[r * P + p];
      dvn[r * P + p] = be * gkp; // to v_{t−1,r}
    }
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let p = 0; p < P; p++) s += gm[p * N + n] * rec[vpv + r * P + p];
      dkn[r * N + n] = be * s; // to k_{t−1,r}
    }
  }
  for (let k = 0; k < PN; k++) {
    dal += gm[k] * rec[prev + k];
    dh[k] = al * gm[k];
  }
  gr.dD[hh] += dDh;
  gr.dadt[r0] += dal * al + dbe * be;
  gr.dtrap[r0] += -dbe * dtv * al + dga * dtv;
  let dd = dbe * (1 - lam) * al + dga * lam;
  // back through the rotations: the angle's share, then C + C_bias and B + B_bias
  for (let i = 0; i < S; i++) {
    const i0 = first(i, d.halves),
      i1 = i0 + (d.halves ? N >> 1 : 1),
      c = Math.cos(rec[th + i]),
      s = Math.sin(rec[th + i]);
    for (let r = 0; r < R; r++) {
      const m = r * N,
        q0 = qs[qo + m + i0],
        q1 = qs[qo + m + i1],
        k0 = rec[kt + m + i0],
        k1 = rec[kt + m + i1];
      dth[i] += -dq[m + i0] * q1 + dq[m + i1] * q0 - dk[m + i0] * k1 + dk[m + i1] * k0;
      const a = dq[m + i0],
        bq = dq[m + i1],
        ak = dk[m + i0],
        bk = dk[m + i1];
      dq[m + i0] = a * c + bq * s;
      dq[m + i1] = -a * s + bq * c;
      dk[m + i0] = ak * c + bk * s;
      dk[m + i1] = -ak * s + bk * c;
    }
  }
  for (let r = 0; r < R; r++) {
    const bo = (((b * L + t) * R + r) * G + g) * N,
      hb = (hh * R + r) * N;
    for (let n = 0; n < N; n++) {
      gr.dCn[bo + n] += dq[r * N + n];
      gr.dCb[hb + n] += dq[r * N + n];
      gr.dBn[bo + n] += dk[r * N + n];
      gr.dBb[hb + n] += dk[r * N + n];
    }
  }
  // θ_t = θ_{t−1} + π·tanh(a)·Δ: dth stays as the carry to θ_{t−1}
  for (let i = 0; i < S; i++) {
    const tn = Math.tanh(inp.ang[ao + i]);
    gr.dang[ao + i] += dth[i] * Math.PI * (1 - tn * tn) * dtv;
    dd += dth[i] * Math.PI * tn;
  }
  gr.ddt[r0] += dd;
}

/** out (n) = sigmoid(x): Mamba-3's trapezoid weight λ */
export function sigmoidForward(out: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]);
}

/** dx (n) += dout ⊙ s(1 − s) */
export function sigmoidBackward(dx: F, dout: F, x: F, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = sigmoid(x[i]);
    dx[i] += dout[i] * s * (1 - s);
  }
}

/**
 * Mamba-3's data-dependent decay rate: A = −max(f(x), floor) with the heavy-tail activation
 * f(x) = 1 + x for x ≥ 0 and 1/(1 − x) for x < 0 (positive, continuous, smooth at 0).
 * out (n) <- x (n)
 */
export function negHeavyTailForward(out: F, x: F, floor: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = -Math.max(v >= 0 ? 1 + v : 1 / (1 - v), floor);
  }
}

/** dx (n) += dout ⊙ (−f'(x)), zero where the floor holds: f' = 1 (x ≥ 0), 1/(1 − x)² (x < 0) */
export function negHeavyTailBackward(dx: F, dout: F, x: F, floor: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i],
      f = v >= 0 ? 1 + v : 1 / (1 - v);
    if (f >= floor) dx[i] -= dout[i] * (v >= 0 ? 1 : 1 / ((1 - v) * (1 - v)));
  }
}
