/**
 * Mamba-3's scan backward (SISO: R 1 with pairwise turns; MIMO: R ranks, half-split turns), f32x4
 * over the state: the twin of mamba3MimoScanBackward in src/kernels/ref/mamba3.ts (read it for the
 * math and the shapes). Per chunk, from its checkpoint, the forward's token step recomputes and
 * keeps every state; then the tokens run backward, carrying the gradients of h, k_{t−1}, v_{t−1}
 * and θ. All gradients ACCUMULATE. work: mamba3WorkSize(P, N, S, R, chunk) floats (kernels/ssd-work.ts),
 * carved in the same order as the reference.
 */
import { ldN, stN, hsum, sexp } from './vmath';
import { PI, sinQuadrant, tanhf, mimoToken } from './mamba3';

@inline function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}

@inline function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function addTo(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) + v);
}

/** dst[0..n) += src[0..n), f32x4. */
@inline function accumulateInto(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(dst + o, f32x4.add(ldN(dst + o, c), ldN(src + o, c)), c);
  }
}

export function mamba3MimoScanBackward(dx: usize, dadt: usize, ddt: usize, dtrap: usize, dBn: usize, dCn: usize, dBb: usize, dCb: usize,
  dang: usize, dD: usize, dy: usize, x: usize, adt: usize, dt: usize, trap: usize, Bn: usize, Cn: usize, Bb: usize, Cb: usize, ang: usize,
  D: usize, hck: usize, work: usize, B: i32, L: i32, H: i32, P: i32, G: i32, N: i32, S: i32, R: i32, chunk: i32, halves: bool): void {
  const nC = (L + chunk - 1) / chunk, PN = P * N, RN = R * N, RP = R * P, W = PN + S + RN + RP;
  // work as the reference carves it: rec, qs, q, o, then the carries dh, dkn, dvn, dth and gm, dq, dk
  const rec = work, qs = rec + (<usize>((chunk + 1) * W) << 2), q = qs + (<usize>(chunk * RN) << 2), o = q + (<usize>(2 * RN) << 2);
  const dh = o + (<usize>RP << 2), dth = dh + (<usize>(PN + RN + RP) << 2), dq = dth + (<usize>(S + PN) << 2), dk = dq + (<usize>RN << 2);
  const hpg = H / G;
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      zero(dh, PN + RN + RP + S); // the four carries lie in a row
      for (let ci = nC - 1; ci >= 0; ci--) {
        const t0 = ci * chunk, t1 = min(L, t0 + chunk);
        memory.copy(rec, hck + (<usize>(((b * nC + ci) * H + hh) * W) << 2), <usize>W << 2);
        for (let t = t0; t < t1; t++) {
          const s = rec + (<usize>((t - t0 + 1) * W) << 2);
          memory.copy(s, s - (<usize>W << 2), <usize>W << 2);
          mimoToken(o, s, s + (<usize>PN << 2), s + (<usize>(PN + S) << 2), s + (<usize>(PN + S + RN) << 2), q, x, adt, dt, trap,
            Bn, Cn, Bb, Cb, ang, D, b, t, hh, L, H, P, G, N, S, R, halves);
          memory.copy(qs + (<usize>((t - t0) * RN) << 2), q, <usize>RN << 2);
        }
        for (let t = t1 - 1; t >= t0; t--) {
          const j = t - t0, cur = rec + (<usize>((j + 1) * W) << 2);
          const dd = backToken(rec, qs, dh, j, W, dx, dadt, dtrap, dy, x, adt, dt, trap, D, dD, b, t, hh, L, H, P, N, S, R);
          backTurns(dq, dk, dth, qs + (<usize>(j * RN) << 2), cur + (<usize>(PN + S) << 2), cur + (<usize>PN << 2), N, S, R, halves);
          backAngles(dang, ddt, dth, ang, dt, dd, (b * L + t) * H + hh, (b * L + t) * S, S);
          const g = hh / hpg;
          for (let r = 0; r < R; r++) {
            const bo = (<usize>((((b * L + t) * R + r) * G + g) * N)) << 2, hb = (<usize>((hh * R + r) * N)) << 2, m = <usize>(r * N) << 2;
            accumulateInto(dCn + bo, dq + m, N);
            accumulateInto(dCb + hb, dq + m, N);
            accumulateInto(dBn + bo, dk + m, N);
            accumulateInto(dBb + hb, dk + m, N);
          }
        }
      }
    }
  }
}

/**
 * Token t (step j of its chunk) back through the state update and the read-out: dx, dD, dadt,
 * dtrap; leaves dq and dk (before the turns) in the scratch, the carries of h, k and v moved to
 * token t − 1, and returns Δ's share through α, β and γ.
 */
@inline function backToken(rec: usize, qs: usize, dh: usize, j: i32, W: i32, dx: usize, dadt: usize, dtrap: usize, dy: usize, x: usize,
  adt: usize, dt: usize, trap: usize, D: usize, dD: usize, b: i32, t: i32, hh: i32, L: i32, H: i32, P: i32, N: i32, S: i32, R: i32): f32 {
  const PN = P * N, RN = R * N, RP = R * P;
  const dkn = dh + (<usize>PN << 2), dvn = dkn + (<usize>RN << 2), gm = dvn + (<usize>(RP + S) << 2), dq = gm + (<usize>PN << 2), dk = dq + (<usize>RN << 2);
  const cur = rec + (<usize>((j + 1) * W) << 2), prev = rec + (<usize>(j * W) << 2);
  const kt = cur + (<usize>(PN + S) << 2), kpv = prev + (<usize>(PN + S) << 2), vpv = prev + (<usize>(PN + S + RN) << 2);
  const qo = qs + (<usize>(j * RN) << 2);
  const r0 = (b * L + t) * H + hh, ro = <usize>r0 << 2, xo = <usize>(r0 * RP) << 2;
  const dtv = load<f32>(dt + ro), lam = load<f32>(trap + ro), al = sexp(load<f32>(adt + ro));
  const be = (<f32>1.0 - lam) * dtv * al, ga = lam * dtv, Dh = load<f32>(D + (<usize>hh << 2));
  // G = dL/dh_t: the carry + Σ_r dy_r q_rᵀ
  for (let p = 0; p < P; p++) {
    const row = <usize>(p * N) << 2;
    for (let n = 0; n < N; n += 4) {
      const o = <usize>n << 2, c = N - n;
      let s = ldN(dh + row + o, c);
      for (let r = 0; r < R; r++) s = f32x4.add(s, f32x4.mul(f32x4.splat(ld(dy + xo, r * P + p)), ldN(qo + (<usize>(r * N) << 2) + o, c)));
      stN(gm + row + o, s, c);
    }
  }
  zero(dq, RN);
  memory.copy(dk, dkn, <usize>RN << 2);
  let dbe: f32 = 0, dga: f32 = 0, dDh: f32 = 0;
  for (let r = 0; r < R; r++) {
    const m = <usize>(r * N) << 2;
    for (let p = 0; p < P; p++) {
      const dyv = ld(dy + xo, r * P + p), xv = ld(x + xo, r * P + p), row = <usize>(p * N) << 2;
      const dyvv = f32x4.splat(dyv), gxv = f32x4.splat(ga * xv);
      let gk = f32x4.splat(0), gkp = f32x4.splat(0);
      for (let n = 0; n < N; n += 4) {
        const o = <usize>n << 2, c = N - n, gv = ldN(gm + row + o, c);
        stN(dq + m + o, f32x4.add(ldN(dq + m + o, c), f32x4.mul(ldN(cur + row + o, c), dyvv)), c);
        gk = f32x4.add(gk, f32x4.mul(gv, ldN(kt + m + o, c)));
        gkp = f32x4.add(gkp, f32x4.mul(gv, ldN(kpv + m + o, c)));
        stN(dk + m + o, f32x4.add(ldN(dk + m + o, c), f32x4.mul(gxv, gv)), c);
      }
      const gks = hsum(gk), gkps = hsum(gkp);
      dbe += ld(vpv, r * P + p) * gkps;
      dga += xv * gks;
      dDh += dyv * xv;
      addTo(dx + xo, r * P + p, Dh * dyv + ga * gks + ld(dvn, r * P + p));
      store<f32>(dvn + (<usize>(r * P + p) << 2), be * gkps); // to v_{t−1,r}
    }
    // to k_{t−1,r}: be·Σ_p G[p, :]·v_{t−1,r,p}
    for (let n = 0; n < N; n += 4) {
      const o = <usize>n << 2, c = N - n;
      let s = f32x4.splat(0);
      for (let p = 0; p < P; p++) s = f32x4.add(s, f32x4.mul(ldN(gm + (<usize>(p * N) << 2) + o, c), f32x4.splat(ld(vpv, r * P + p))));
      stN(dkn + m + o, f32x4.mul(f32x4.splat(be), s), c);
    }
  }
  let dal = f32x4.splat(0);
  const alv = f32x4.splat(al);
  for (let k = 0; k < PN; k += 4) {
    const o = <usize>k << 2, c = PN - k, gv = ldN(gm + o, c);
    dal = f32x4.add(dal, f32x4.mul(gv, ldN(prev + o, c)));
    stN(dh + o, f32x4.mul(alv, gv), c);
  }
  addTo(dD, hh, dDh);
  addTo(dadt, r0, hsum(dal) * al + dbe * be);
  addTo(dtrap, r0, -dbe * dtv * al + dga * dtv);
  return dbe * (<f32>1.0 - lam) * al + dga * lam; // Δ's share through α, β and γ
}

/**
 * Back through the turns of token t: the angles' share into the carry dth, and dq, dk (N per rank)
 * turned back to the gradients of C + C_bias and B + B_bias. qo, kt: the token's turned q and k; th: θ_t.
 */
@inline function backTurns(dq: usize, dk: usize, dth: usize, qo: usize, kt: usize, th: usize, N: i32, S: i32, R: i32, halves: bool): void {
  const step = halves ? N >> 1 : 1;
  for (let i = 0; i < S; i++) {
    const i0 = halves ? i : 2 * i, i1 = i0 + step, tv = ld(th, i), c = sinQuadrant(tv, 1), s = sinQuadrant(tv, 0);
    let a: f32 = 0;
    for (let r = 0; r < R; r++) {
      const m = r * N, a0 = ld(dq, m + i0), b0 = ld(dq, m + i1), ak = ld(dk, m + i0), bk = ld(dk, m + i1);
      a += -a0 * ld(qo, m + i1) + b0 * ld(qo, m + i0) - ak * ld(kt, m + i1) + bk * ld(kt, m + i0);
      store<f32>(dq + (<usize>(m + i0) << 2), a0 * c + b0 * s);
      store<f32>(dq + (<usize>(m + i1) << 2), -a0 * s + b0 * c);
      store<f32>(dk + (<usize>(m + i0) << 2), ak * c + bk * s);
      store<f32>(dk + (<usize>(m + i1) << 2), -ak * s + bk * c);
    }
    addTo(dth, i, a);
  }
}

/** θ_t = θ_{t−1} + π·tanh(a)·Δ: dang and Δ's share (dd, its other shares) from dth, which stays the carry to θ_{t−1}. */
@inline function backAngles(dang: usize, ddt: usize, dth: usize, ang: usize, dt: usize, dd: f32, r0: i32, ao: i32, S: i32): void {
  const dtv = ld(dt, r0);
  for (let i = 0; i < S; i++) {
    const tn = tanhf(ld(ang, ao + i)), d = ld(dth, i);
    addTo(dang, ao + i, d * PI * (<f32>1.0 - tn * tn) * dtv);
    dd += d * PI * tn;
  }
  addTo(ddt, r0, dd);
}
