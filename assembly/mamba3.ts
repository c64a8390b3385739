/**
 * Mamba-3 SISO's recurrent scan forward, f32x4 over the state dimension: the twin of
 * mamba3ScanForward in src/kernels/ref/mamba3.ts (read it for the math and the shapes). Pointers
 * are byte offsets; `hck` = 0 skips the chunk checkpoints; `work` holds 2N floats (the turned C
 * and B of the current token). Angles are kept in [0, 2π), so a plain quadrant reduction serves
 * sin and cos (no tables: the module has no data of its own); tanh comes from the vector exp.
 */
import { sexp, ldN, stN, hsum } from './vmath';

const PI: f32 = 3.14159265358979323846;
const TWO_PI: f32 = 6.28318530717958647692;
// π/2 split into three parts (Cody–Waite), each exact in f32 products with small multiples
const DP1: f32 = 1.5703125;
const DP2: f32 = 4.837512969970703125e-4;
const DP3: f32 = 7.54978995489188216e-8;

/** sin(x) (q = 0) or cos(x) (q = 1) for moderate |x|: reduce by π/2, Cephes sinf/cosf polynomials. */
@inline function sinQuadrant(x: f32, q: i32): f32 {
  const jf = nearest<f32>(x * <f32>0.63661977236758134308);
  const r = x - jf * DP1 - jf * DP2 - jf * DP3;
  const z = r * r;
  const s = r + r * z * (<f32>-1.6666654611e-1 + z * (<f32>8.3321608736e-3 + z * <f32>-1.9515295891e-4));
  const c = <f32>1.0 - <f32>0.5 * z + z * z * (<f32>4.166664568298827e-2 + z * (<f32>-1.388731625493765e-3 + z * <f32>2.443315711809948e-5));
  const j = (<i32>jf + q) & 3;
  return j == 0 ? s : j == 1 ? c : j == 2 ? -s : -c;
}

@inline function tanhf(x: f32): f32 {
  // 1 − 2/(e^{2x} + 1): exact enough for |x| ≤ 9, ±1 beyond (e^{2x} overflows to inf or rounds to 0)
  return <f32>1.0 - <f32>2.0 / (sexp(<f32>2.0 * x) + <f32>1.0);
}

/** w[0..N) = R(θ)(src + bias): the pairs (2i, 2i+1), i < S, turned by θ[i]. */
@inline function turned(w: usize, src: usize, bias: usize, th: usize, N: i32, S: i32): void {
  for (let n = 0; n < N; n += 4) {
    const o = <usize>n << 2, c = N - n;
    stN(w + o, f32x4.add(ldN(src + o, c), ldN(bias + o, c)), c);
  }
  for (let i = 0; i < S; i++) {
    const t = load<f32>(th + (<usize>i << 2)), cs = sinQuadrant(t, 1), sn = sinQuadrant(t, 0);
    const p = w + (<usize>(2 * i) << 2), a = load<f32>(p), b = load<f32>(p, 4);
    store<f32>(p, a * cs - b * sn);
    store<f32>(p, a * sn + b * cs, 4);
  }
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
        if (hck != 0 && t % chunk == 0) {
          const ck = hck + (<usize>(((b * nC + t / chunk) * H + hh) * W) << 2);
          memory.copy(ck, ph, <usize>PN << 2);
          memory.copy(ck + (<usize>PN << 2), pth, <usize>S << 2);
          memory.copy(ck + (<usize>(PN + S) << 2), pkp, <usize>N << 2);
          memory.copy(ck + (<usize>(PN + S + N) << 2), pvp, <usize>P << 2);
        }
        const r = (b * L + t) * H + hh, ro = <usize>r << 2;
        const dtv = load<f32>(dt + ro), lam = load<f32>(trap + ro);
        const pa = ang + (<usize>((b * L + t) * S) << 2);
        for (let i = 0; i < S; i++) {
          const v = load<f32>(pth + (<usize>i << 2)) + PI * tanhf(load<f32>(pa + (<usize>i << 2))) * dtv;
          store<f32>(pth + (<usize>i << 2), v - TWO_PI * floor<f32>(v / TWO_PI));
        }
        const bo = (<usize>(((b * L + t) * G + g) * N)) << 2, hb = (<usize>(hh * N)) << 2;
        turned(q, Cn + bo, Cb + hb, pth, N, S);
        turned(k, Bn + bo, Bb + hb, pth, N, S);
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
