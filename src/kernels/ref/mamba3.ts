import type { F } from './types.js';
import { sigmoid } from './elementwise.js';

/**
 * Mamba-3 SISO (state-spaces modules/mamba3.py and the float64 step reference of its tests), per
 * batch b and head h (group g = h / (H/G)), with P channels, state N and S rotary angles:
 *   θ_t = θ_{t−1} + π·tanh(a_t)·Δ_t                       (S angles; a_t shared by the heads)
 *   q_t = R(θ_t)(C_t + C_bias_h),  k_t = R(θ_t)(B_t + B_bias_h)  (pairs (2i, 2i+1) turned by θ_t[i], i < S)
 *   α = exp(ADT_t),  β = (1 − λ_t)·Δ_t·α,  γ = λ_t·Δ_t        (λ = trapezoid weight in (0, 1))
 *   h_t = α·h_{t−1} + β·v_{t−1} k_{t−1}ᵀ + γ·v_t k_tᵀ          (h ∈ R^{P×N}, v_t = x_t)
 *   y_t = h_t q_t + D_h·v_t
 * The trapezoidal update mixes the previous token's input into the state, so the state carries
 * (h, θ, k_{t−1}, v_{t−1}); θ is kept reduced mod 2π, as the reference does. Shapes: x, y (B, L, H, P);
 * adt, dt, trap (B, L, H); Bn, Cn (B, L, G, N) (after their RMSNorm); Bb, Cb (H, N); ang (B, L, S)
 * (the raw angle projections); D (H); states h (B, H, P, N), th (B, H, S), kp (B, H, N), vp (B, H, P).
 * Checkpoints hck (B, nChunks, H, W) hold the four states at the start of each chunk of `chunk`
 * tokens, W = P·N + S + N + P; the backward recomputes the states inside a chunk from them.
 */

const TWO_PI = 2 * Math.PI;

/** Floats of one head's checkpoint: h, θ, k_{t−1}, v_{t−1}. */
function ckWidth(P: number, N: number, S: number): number {
  return P * N + S + N + P;
}

/** q (N) = R(θ)·(C + bias), in place on the pairs i < S. */
function rotate(out: F, o: number, src: F, so: number, bias: F, bo: number, th: F, to: number, N: number, S: number): void {
  for (let n = 0; n < N; n++) out[o + n] = src[so + n] + bias[bo + n];
  for (let i = 0; i < S; i++) {
    const c = Math.cos(th[to + i]),
      s = Math.sin(th[to + i]),
      a = out[o + 2 * i],
      b = out[o + 2 * i + 1];
    out[o + 2 * i] = a * c - b * s;
    out[o + 2 * i + 1] = a * s + b * c;
  }
}

/** One token of one head: advance (θ, h, k_{t−1}, v_{t−1}) stored at the given offsets; returns nothing, writes y. */
function stepHead(
  y: F,
  yo: number,
  h: F,
  ho: number,
  th: F,
  to: number,
  kp: F,
  ko: number,
  vp: F,
  vo: number,
  q: F,
  x: F,
  xo: number,
  a: number,
  dtv: number,
  lam: number,
  Bn: F,
  Cn: F,
  bo: number,
  Bb: F,
  Cb: F,
  hb: number,
  ang: F,
  ao: number,
  Dh: number,
  P: number,
  N: number,
  S: number,
): void {
  for (let i = 0; i < S; i++) {
    const v = th[to + i] + Math.PI * Math.tanh(ang[ao + i]) * dtv;
    th[to + i] = v - TWO_PI * Math.floor(v / TWO_PI);
  }
  rotate(q, 0, Cn, bo, Cb, hb, th, to, N, S);
  rotate(q, N, Bn, bo, Bb, hb, th, to, N, S); // k_t in q[N ..]
  const al = Math.exp(a),
    be = (1 - lam) * dtv * al,
    ga = lam * dtv;
  for (let p = 0; p < P; p++) {
    const hp = ho + p * N,
      xv = x[xo + p],
      vpv = vp[vo + p];
    let acc = 0;
    for (let n = 0; n < N; n++) {
      const hn = al * h[hp + n] + be * vpv * kp[ko + n] + ga * xv * q[N + n];
      h[hp + n] = hn;
      acc += hn * q[n];
    }
    y[yo + p] = acc + Dh * xv;
  }
  for (let n = 0; n < N; n++) kp[ko + n] = q[N + n];
  for (let p = 0; p < P; p++) vp[vo + p] = x[xo + p];
}

/**
 * y (B, L, H, P) <- …; h, th, kp, vp hold the state on entry and on exit; hck receives the state
 * at the start of each chunk (null to skip). work: 2N floats of scratch.
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
  const nC = Math.ceil(L / chunk),
    W = ckWidth(P, N, S),
    q = work; // (2N): the turned C and B of the current token
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const g = Math.floor(hh / (H / G)),
        bh = b * H + hh;
      for (let t = 0; t < L; t++) {
        if (hck !== null && t % chunk === 0) saveCheckpoint(hck, ((b * nC + t / chunk) * H + hh) * W, h, th, kp, vp, bh, P, N, S);
        const r = (b * L + t) * H + hh;
        stepHead(
          y,
          r * P,
          h,
          bh * P * N,
          th,
          bh * S,
          kp,
          bh * N,
          vp,
          bh * P,
          q,
          x,
          r * P,
          adt[r],
          dt[r],
          trap[r],
          Bn,
          Cn,
          ((b * L + t) * G + g) * N,
          Bb,
          Cb,
          hh * N,
          ang,
          (b * L + t) * S,
          D[hh],
          P,
          N,
          S,
        );
      }
    }
  }
}

function saveCheckpoint(hck: F, o: number, h: F, th: F, kp: F, vp: F, bh: number, P: number, N: number, S: number): void {
  const PN = P * N;
  for (let k = 0; k < PN; k++) hck[o + k] = h[bh * PN + k];
  for (let k = 0; k < S; k++) hck[o + PN + k] = th[bh * S + k];
  for (let k = 0; k < N; k++) hck[o + PN + S + k] = kp[bh * N + k];
  for (let k = 0; k < P; k++) hck[o + PN + S + N + k] = vp[bh * P + k];
}

/**
 * Gradients, all ACCUMULATED: dx (B, L, H, P), dadt, ddt, dtrap (B, L, H), dBn, dCn (B, L, G, N),
 * dBb, dCb (H, N), dang (B, L, S), dD (H), from dy and the forward's checkpoints. No gradient
 * flows into the initial or from the final state.
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
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  S: number,
  chunk: number,
): void {
  const nC = Math.ceil(L / chunk),
    W = ckWidth(P, N, S),
    PN = P * N;
  const T = dx.constructor as { new (n: number): F };
  // per step of a chunk, the state after it: h (PN), θ (S), k (N), v (P), and its q (N); row 0 is the checkpoint
  const rec = new T((chunk + 1) * W),
    qs = new T(chunk * N),
    q = new T(2 * N),
    y = new T(P);
  const dh = new T(PN),
    dkn = new T(N),
    dvn = new T(P),
    dth = new T(S),
    gm = new T(PN),
    dq = new T(N),
    dk = new T(N);
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const g = Math.floor(hh / (H / G));
      dh.fill(0);
      dkn.fill(0);
      dvn.fill(0);
      dth.fill(0);
      for (let c = nC - 1; c >= 0; c--) {
        const t0 = c * chunk,
          t1 = Math.min(L, t0 + chunk),
          ck = ((b * nC + c) * H + hh) * W;
        for (let k = 0; k < W; k++) rec[k] = hck[ck + k];
        for (let t = t0; t < t1; t++) {
          const s = (t - t0 + 1) * W,
            r = (b * L + t) * H + hh;
          for (let k = 0; k < W; k++) rec[s + k] = rec[s - W + k];
          stepHead(
            y,
            0,
            rec,
            s,
            rec,
            s + PN,
            rec,
            s + PN + S,
            rec,
            s + PN + S + N,
            q,
            x,
            r * P,
            adt[r],
            dt[r],
            trap[r],
            Bn,
            Cn,
            ((b * L + t) * G + g) * N,
            Bb,
            Cb,
            hh * N,
            ang,
            (b * L + t) * S,
            D[hh],
            P,
            N,
            S,
          );
          for (let n = 0; n < N; n++) qs[(t - t0) * N + n] = q[n];
        }
        for (let t = t1 - 1; t >= t0; t--) {
          backStep(
            t - t0,
            rec,
            qs,
            W,
            { dh, dkn, dvn, dth, gm, dq, dk },
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
            ang,
            D,
            b,
            t,
            hh,
            g,
            L,
            H,
            P,
            G,
            N,
            S,
          );
        }
      }
    }
  }
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
  ang: F,
  D: F,
  b: number,
  t: number,
  hh: number,
  g: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  S: number,
): void {
  const { dh, dkn, dvn, dth, gm, dq, dk } = carry;
  const PN = P * N,
    cur = (j + 1) * W,
    prev = j * W,
    r = (b * L + t) * H + hh,
    xo = r * P,
    bo = ((b * L + t) * G + g) * N,
    ao = (b * L + t) * S;
  const kt = cur + PN + S,
    th = cur + PN,
    kpv = prev + PN + S,
    vpv = prev + PN + S + N,
    qo = j * N;
  const dtv = dt[r],
    lam = trap[r],
    al = Math.exp(adt[r]),
    be = (1 - lam) * dtv * al,
    ga = lam * dtv;
  // G = dL/dh_t: carried + y_t = h_t q_t
  for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) gm[p * N + n] = dh[p * N + n] + dy[xo + p] * qs[qo + n];
  let dal = 0,
    dbe = 0,
    dga = 0,
    dDh = 0;
  dq.fill(0);
  for (let n = 0; n < N; n++) dk[n] = dkn[n];
  for (let p = 0; p < P; p++) {
    let gk = 0,
      gkp = 0;
    for (let n = 0; n < N; n++) {
      const gv = gm[p * N + n];
      dq[n] += rec[cur + p * N + n] * dy[xo + p];
      dal += gv * rec[prev + p * N + n];
      gk += gv * rec[kt + n];
      gkp += gv * rec[kpv + n];
      dk[n] += ga * gv * x[xo + p];
    }
    dbe += rec[vpv + p] * gkp;
    dga += x[xo + p] * gk;
    dDh += dy[xo + p] * x[xo + p];
    dx[xo + p] += D[hh] * dy[xo + p] + ga * gk + dvn[p];
    dvn[p] = be * gkp; // to v_{t−1} = x_{t−1}
  }
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let p = 0; p < P; p++) s += gm[p * N + n] * rec[vpv + p];
    dkn[n] = be * s; // to k_{t−1}
  }
  for (let k = 0; k < PN; k++) dh[k] = al * gm[k];
  dD[hh] += dDh;
  dadt[r] += dal * al + dbe * be;
  dtrap[r] += -dbe * dtv * al + dga * dtv;
  let dd = dbe * (1 - lam) * al + dga * lam;
  // back through the rotations: the angle's share, then C + C_bias and B + B_bias
  for (let i = 0; i < S; i++) {
    const q0 = qs[qo + 2 * i],
      q1 = qs[qo + 2 * i + 1],
      k0 = rec[kt + 2 * i],
      k1 = rec[kt + 2 * i + 1];
    dth[i] += -dq[2 * i] * q1 + dq[2 * i + 1] * q0 - dk[2 * i] * k1 + dk[2 * i + 1] * k0;
    const c = Math.cos(rec[th + i]),
      s = Math.sin(rec[th + i]);
    const a = dq[2 * i],
      bq = dq[2 * i + 1],
      ak = dk[2 * i],
      bk = dk[2 * i + 1];
    dq[2 * i] = a * c + bq * s;
    dq[2 * i + 1] = -a * s + bq * c;
    dk[2 * i] = ak * c + bk * s;
    dk[2 * i + 1] = -ak * s + bk * c;
  }
  for (let n = 0; n < N; n++) {
    dCn[bo + n] += dq[n];
    dCb[hh * N + n] += dq[n];
    dBn[bo + n] += dk[n];
    dBb[hh * N + n] += dk[n];
  }
  // θ_t = θ_{t−1} + π·tanh(a)·Δ: dth stays as the carry to θ_{t−1}
  for (let i = 0; i < S; i++) {
    const tn = Math.tanh(ang[ao + i]);
    dang[ao + i] += dth[i] * Math.PI * (1 - tn * tn) * dtv;
    dd += dth[i] * Math.PI * tn;
  }
  ddt[r] += dd;
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
