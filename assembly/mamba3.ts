/**
 * Mamba-3's recurrent scan forward, f32x4 over the state dimension: the twins of mamba3ScanForward
 * (SISO) and mamba3MimoScanForward (MIMO: R ranks, half-split turns) in src/kernels/ref/mamba3.ts
 * (read it for the math and the shapes). Pointers are byte offsets; `hck` = 0 skips the chunk
 * checkpoints; `work` holds 2RN floats (the turned C, then the turned B, of the current token;
 * SISO: R = 1). Angles are kept in [0, 2π), so a plain quadrant reduction serves sin and cos (no
 * tables: the module has no data of its own); tanh comes from the vector exp.
 */
import { sexp, ldN, stN, hsum } from './vmath';

export const PI: f32 = 3.14159265358979323846;
const TWO_PI: f32 = 6.28318530717958647692;
// π/2 split into three parts (Cody–Waite), each exact in f32 products with small multiples
const DP1: f32 = 1.5703125;
const DP2: f32 = 4.837512969970703125e-4;
const DP3: f32 = 7.54978995489188216e-8;

/** sin(x) (q = 0) or cos(x) (q = 1) for moderate |x|: reduce by π/2, Cephes sinf/cosf polynomials. */
@inline export function sinQuadrant(x: f32, q: i32): f32 {
  const jf = nearest<f32>(x * <f32>0.63661977236758134308);
  const r = x - jf * DP1 - jf * DP2 - jf * DP3;
  const z = r * r;
  const s = r + r * z * (<f32>-1.6666654611e-1 + z * (<f32>8.3321608736e-3 + z * <f32>-1.9515295891e-4));
  const c = <f32>1.0 - <f32>0.5 * z + z * z * (<f32>4.166664568298827e-2 + z * (<f32>-1.388731625493765e-3 + z * <f32>2.443315711809948e-5));
  const j = (<i32>jf + q) & 3;
  return j == 0 ? s : j == 1 ? c : j == 2 ? -s : -c;
}

@inline export function tanhf(x: f32): f32 {
  // 1 − 2/(e^{2x} + 1): exact enough for |x| ≤ 9, ±1 beyond (e^{2x} overflows to inf or rounds to 0)
  return <f32>1.0 - <f32>2.0 / (sexp(<f32>2.0 * x) + <f32>1.0);
}

/** w[0..N) = src + bias, f32x4 over the state. */
@inline function biased(w: usize, src: usize, bias: usize, N: i32): void {
  for (let n = 0; n < N; n += 4) {
    const o = <usize>n << 2, c = N - n;
    stN(w + o, f32x4.add(ldN(src + o, c), ldN(bias + o, c)), c);
  }
}

/**
 * Turn the m vectors of N floats at w by θ: the pairs (2i, 2i+1), or (i, i + N/2) with `halves`,
 * by θ[i], i < S. Each angle's sine and cosine serve all m vectors (MIMO's ranks, C and B alike).
 */
@inline function turnAll(w: usize, th: usize, m: i32, N: i32, S: i32, halves: bool): void {
  const step = halves ? N >> 1 : 1;
  for (let i = 0; i < S; i++) {
    const t = load<f32>(th + (<usize>i << 2)), cs = sinQuadrant(t, 1), sn = sinQuadrant(t, 0);
    const i0 = halves ? i : 2 * i;
    for (let j = 0; j < m; j++) {
      const p0 = w + (<usize>(j * N + i0) << 2), p1 = p0 + (<usize>step << 2), a = load<f32>(p0), b = load<f32>(p1);
      store<f32>(p0, a * cs - b * sn);
      store<f32>(p1, a * sn + b * cs);
    }
  }
}

/** θ[0..S) += π·tanh(a)·Δ, kept in [0, 2π). */
@inline function advanceAngles(th: usize, a: usize, dtv: f32, S: i32): void {
  for (let i = 0; i < S; i++) {
    const v = load<f32>(th + (<usize>i << 2)) + PI * tanhf(load<f32>(a + (<usize>i << 2))) * dtv;
    store<f32>(th + (<usize>i << 2), v - TWO_PI * floor<f32>(v / TWO_PI));
  }
}

/** One head's checkpoint at ck: h (PN floats), θ (S), k_{t−1} (KN), v_{t−1} (VP). */
@inline function saveCheckpoint(ck: usize, h: usize, th: usize, kp: usize, vp: usize, PN: i32, S: i32, KN: i32, VP: i32): void {
  memory.copy(ck, h, <usize>PN << 2);
  memory.copy(ck + (<usize>PN << 2), th, <usize>S << 2);
  memory.copy(ck + (<usize>(PN + S) << 2), kp, <usize>KN << 2);
  memory.copy(ck + (<usize>(PN + S + KN) << 2), vp, <usize>VP << 2);
}

export function mamba3ScanForward(y: usize, h: usize, th: usize, kp: usize, vp: usize, hck: usize, x: usize, adt: usize, dt: usize,
  trap: usize, Bn: usize, Cn: usize, Bb: usize, Cb: usize, ang: usize, D: usize, work: usize,
  B: i32, L: i32, H: i32, P: i32, G: i32, N: i32, S: i32, chunk: i32): void {
  const nC = (L + chunk - 1) / chunk, PN = P * N, W = PN + S + N + P, hpg = H / G;
  const q = work, k = work + (<usize>N << 2);
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const g = hh / hpg, bh = b * H + hh;
      const ph = h + (<usize>(bh * PN) << 2), pth = th + (<usize>(bh * S) << 2), pkp = kp + (<usize>(bh * N) << 2), pvp = vp + (<usize>(bh * P) << 2);
      const Dh = load<f32>(D + (<usize>hh << 2));
      for (let t = 0; t < L; t++) {
        if (hck != 0 && t % chunk == 0) saveCheckpoint(hck + (<usize>(((b * nC + t / chunk) * H + hh) * W) << 2), ph, pth, pkp, pvp, PN, S, N, P);
        const r = (b * L + t) * H + hh, ro = <usize>r << 2;
        const dtv = load<f32>(dt + ro), lam = load<f32>(trap + ro);
        advanceAngles(pth, ang + (<usize>((b * L + t) * S) << 2), dtv, S);
        const bo = (<usize>(((b * L + t) * G + g) * N)) << 2, hb = (<usize>(hh * N)) << 2;
        biased(q, Cn + bo, Cb + hb, N);
        biased(k, Bn + bo, Bb + hb, N);
        turnAll(work, pth, 2, N, S, false);
        const al = sexp(load<f32>(adt + ro)), be = (<f32>1.0 - lam) * dtv * al, ga = lam * dtv;
        const alv = f32x4.splat(al);
        const px = x + (<usize>(r * P) << 2), py = y + (<usize>(r * P) << 2);
        for (let p = 0; p < P; p++) {
          const xv = load<f32>(px + (<usize>p << 2)), bvp = f32x4.splat(be * load<f32>(pvp + (<usize>p << 2))), gx = f32x4.splat(ga * xv);
          const hp = ph + (<usize>(p * N) << 2);
          let acc = f32x4.splat(0);
          for (let n = 0; n < N; n += 4) {
            const o = <usize>n << 2, c = N - n;
            const hn = f32x4.add(f32x4.add(f32x4.mul(alv, ldN(hp + o, c)), f32x4.mul(bvp, ldN(pkp + o, c))), f32x4.mul(gx, ldN(k + o, c)));
            stN(hp + o, hn, c);
            acc = f32x4.add(acc, f32x4.mul(hn, ldN(q + o, c)));
          }
          store<f32>(py + (<usize>p << 2), hsum(acc) + Dh * xv);
        }
        memory.copy(pkp, k, <usize>N << 2);
        memory.copy(pvp, px, <usize>P << 2);
      }
    }
  }
}

/**
 * Mamba-3 MIMO's scan forward (R ranks; `halves` picks the half-split turns), the twin of
 * mamba3MimoScanForward in src/kernels/ref/mamba3.ts: o, v (B, L, H, R, P); Bn, Cn (B, L, R, G, N);
 * Bb, Cb (H, R, N); states kp (B, H, R, N), vp (B, H, R, P); work 2RN floats (the turned C of every
 * rank, then the turned B). Per channel p the state row is first decayed, then each rank's two
 * outer-product terms are added in the reference's order, then read out by each rank's q.
 */
export function mamba3MimoScanForward(o: usize, h: usize, th: usize, kp: usize, vp: usize, hck: usize, v: usize, adt: usize, dt: usize,
  trap: usize, Bn: usize, Cn: usize, Bb: usize, Cb: usize, ang: usize, D: usize, work: usize,
  B: i32, L: i32, H: i32, P: i32, G: i32, N: i32, S: i32, R: i32, chunk: i32, halves: bool): void {
  const nC = (L + chunk - 1) / chunk, PN = P * N, RN = R * N, RP = R * P, W = PN + S + RN + RP;
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const bh = b * H + hh;
      const ph = h + (<usize>(bh * PN) << 2), pth = th + (<usize>(bh * S) << 2), pkp = kp + (<usize>(bh * RN) << 2), pvp = vp + (<usize>(bh * RP) << 2);
      for (let t = 0; t < L; t++) {
        if (hck != 0 && t % chunk == 0) saveCheckpoint(hck + (<usize>(((b * nC + t / chunk) * H + hh) * W) << 2), ph, pth, pkp, pvp, PN, S, RN, RP);
        mimoToken(o + (<usize>(((b * L + t) * H + hh) * RP) << 2), ph, pth, pkp, pvp, work, v, adt, dt, trap, Bn, Cn, Bb, Cb, ang, D,
          b, t, hh, L, H, P, G, N, S, R, halves);
      }
    }
  }
}

/**
 * One token t of head hh in batch b: advance the MIMO state (h, θ, k_{t−1}, v_{t−1} at ph, pth,
 * pkp, pvp) in place and write the R·P outputs at py; work: 2RN floats, left holding the turned C
 * and B of the token (the backward keeps the C).
 */
@inline export function mimoToken(py: usize, ph: usize, pth: usize, pkp: usize, pvp: usize, work: usize, v: usize, adt: usize, dt: usize,
  trap: usize, Bn: usize, Cn: usize, Bb: usize, Cb: usize, ang: usize, D: usize,
  b: i32, t: i32, hh: i32, L: i32, H: i32, P: i32, G: i32, N: i32, S: i32, R: i32, halves: bool): void {
  const RN = R * N, RP = R * P, g = hh / (H / G), k = work + (<usize>RN << 2);
  const r0 = (b * L + t) * H + hh, ro = <usize>r0 << 2;
  const dtv = load<f32>(dt + ro), lam = load<f32>(trap + ro);
  advanceAngles(pth, ang + (<usize>((b * L + t) * S) << 2), dtv, S);
  for (let r = 0; r < R; r++) {
    const bo = (<usize>((((b * L + t) * R + r) * G + g) * N)) << 2, hb = (<usize>((hh * R + r) * N)) << 2, wo = <usize>(r * N) << 2;
    biased(work + wo, Cn + bo, Cb + hb, N);
    biased(k + wo, Bn + bo, Bb + hb, N);
  }
  turnAll(work, pth, 2 * R, N, S, halves);
  const al = sexp(load<f32>(adt + ro)), be = (<f32>1.0 - lam) * dtv * al, ga = lam * dtv, Dh = load<f32>(D + (<usize>hh << 2));
  const px = v + (<usize>(r0 * RP) << 2);
  for (let p = 0; p < P; p++) mimoRow(py, ph + (<usize>(p * N) << 2), work, pkp, pvp, px, al, be, ga, Dh, p, P, N, R);
  memory.copy(pkp, k, <usize>RN << 2);
  memory.copy(pvp, px, <usize>RP << 2);
}

/** State row p (N floats at hp) advanced by one token, then o[r·P + p] = h_p·q_r + D·v_{r,p} for every rank. */
@inline function mimoRow(py: usize, hp: usize, q: usize, pkp: usize, pvp: usize, px: usize, al: f32, be: f32, ga: f32, Dh: f32,
  p: i32, P: i32, N: i32, R: i32): void {
  const alv = f32x4.splat(al), k = q + (<usize>(R * N) << 2);
  for (let n = 0; n < N; n += 4) {
    const o = <usize>n << 2, c = N - n;
    stN(hp + o, f32x4.mul(alv, ldN(hp + o, c)), c);
  }
  for (let r = 0; r < R; r++) {
    const bv = f32x4.splat(be * load<f32>(pvp + (<usize>(r * P + p) << 2))), gx = f32x4.splat(ga * load<f32>(px + (<usize>(r * P + p) << 2)));
    const kr = pkp + (<usize>(r * N) << 2), qr = k + (<usize>(r * N) << 2);
    for (let n = 0; n < N; n += 4) {
      const o = <usize>n << 2, c = N - n;
      stN(hp + o, f32x4.add(ldN(hp + o, c), f32x4.add(f32x4.mul(bv, ldN(kr + o, c)), f32x4.mul(gx, ldN(qr + o, c)))), c);
    }
  }
  for (let r = 0; r < R; r++) {
    const qr = q + (<usize>(r * N) << 2), at = <usize>(r * P + p) << 2;
    let acc = f32x4.splat(0);
    for (let n = 0; n < N; n += 4) {
      const o = <usize>n << 2, c = N - n;
      acc = f32x4.add(acc, f32x4.mul(ldN(hp + o, c), ldN(qr + o, c)));
    }
    store<f32>(py + at, hsum(acc) + Dh * load<f32>(px + at));
  }
}
