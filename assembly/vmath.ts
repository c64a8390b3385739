/**
 * f32x4 elementary functions and small SIMD helpers shared by the kernels. No static data, no
 * allocation: everything lives in locals.
 */

// ---------------------------------------------------------------- partial loads / stores

/** Load `cnt` (1..4) consecutive f32 at p into the low lanes, the other lanes zero. */
@inline export function ldN(p: usize, cnt: i32): v128 {
  if (cnt >= 4) return v128.load(p);
  let v = v128.load32_zero(p);
  if (cnt > 1) v = v128.load32_lane(p, v, 1, 4);
  if (cnt > 2) v = v128.load32_lane(p, v, 2, 8);
  return v;
}

/** Store the low `cnt` (1..4) lanes of v at p. */
@inline export function stN(p: usize, v: v128, cnt: i32): void {
  if (cnt >= 4) { v128.store(p, v); return; }
  v128.store32_lane(p, v, 0);
  if (cnt > 1) v128.store32_lane(p, v, 1, 4);
  if (cnt > 2) v128.store32_lane(p, v, 2, 8);
}

/** Sum of the four lanes. */
@inline export function hsum(v: v128): f32 {
  const t = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(t, f32x4.shuffle(t, t, 1, 0, 3, 2)), 0);
}

/** Maximum of the four lanes. */
@inline export function hmax(v: v128): f32 {
  const t = f32x4.pmax(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(t, f32x4.shuffle(t, t, 1, 0, 3, 2)), 0);
}

/**
 * c + a·b per lane. The default build rounds twice (mul, then add): every page and Node compute
 * the same bits with it. The opt-in relaxed-SIMD build
 * (build/kernels-relaxed.wasm, compiled with ASC_FEATURE_RELAXED_SIMD) lets the engine fuse them
 * (one rounding where the CPU has FMA), so its results differ in the last bits.
 */
@inline export function fmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** [Σa, ·, Σb, ·]: two horizontal sums in one shuffle network (lanes 0 and 2). */
@inline export function hsum2(a: v128, b: v128): v128 {
  const s = f32x4.add(f32x4.shuffle(a, b, 0, 1, 4, 5), f32x4.shuffle(a, b, 2, 3, 6, 7));
  return f32x4.add(s, f32x4.shuffle(s, s, 1, 0, 3, 2));
}

/** [Σv0, Σv1, Σv2, Σv3]: four horizontal sums packed into one vector. */
@inline export function hsum4(v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const s01 = f32x4.add(f32x4.shuffle(v0, v1, 0, 4, 1, 5), f32x4.shuffle(v0, v1, 2, 6, 3, 7));
  const s23 = f32x4.add(f32x4.shuffle(v2, v3, 0, 4, 1, 5), f32x4.shuffle(v2, v3, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(s01, s23, 0, 1, 4, 5), f32x4.shuffle(s01, s23, 2, 3, 6, 7));
}

// ---------------------------------------------------------------- exp

/**
 * Five Horner steps p = p·r + k with the next five coefficients of a table at `k` (broadcast
 * loads, see vexp2Neg for why): the shared middle of vexp's and vexp2Neg's polynomials.
 */
@inline function horner5(p: v128, r: v128, k: usize): v128 {
  p = f32x4.add(f32x4.mul(p, r), v128.load32_splat(k));
  p = f32x4.add(f32x4.mul(p, r), v128.load32_splat(k, 4));
  p = f32x4.add(f32x4.mul(p, r), v128.load32_splat(k, 8));
  p = f32x4.add(f32x4.mul(p, r), v128.load32_splat(k, 12));
  return f32x4.add(f32x4.mul(p, r), v128.load32_splat(k, 16));
}

/** vexp's constants: the clamps, log2 e, the rounding constant, ln 2 in two parts, the polynomial's coefficients; EXP_I the exponent's offset and bias. */
const EXP_C = memory.data<f32>([-104.0, 89.0, 1.44269504088896341, 12582912.0, 0.693359375, -2.12194440e-4,
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, 1.0]);
const EXP_I = memory.data<i32>([0x4b400000, 127]);

/** r = x − fn·ln 2 by Cody–Waite (ln 2 in two parts, so r is exact), fn = round(x·log2 e) as a float. */
@inline function cwRest(x: v128, fn: v128): v128 {
  const r = f32x4.sub(x, f32x4.mul(fn, v128.load32_splat(EXP_C, 16)));
  return f32x4.sub(r, f32x4.mul(fn, v128.load32_splat(EXP_C, 20)));
}

/** e^r from the polynomial's last Horner value p: p·r² + r + 1. */
@inline function expTail(p: v128, r: v128): v128 {
  return f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), v128.load32_splat(EXP_C, 48));
}

/**
 * e^r for x = fn·ln2 + r: vexp's reduction (cwRest) and the degree-7 (Cephes) polynomial for e^r,
 * its Horner steps those of enHorner.
 */
@inline function expReduced(x: v128, fn: v128): v128 {
  const r = cwRest(x, fn);
  return expTail(horner5(v128.load32_splat(EXP_C, 24), r, EXP_C + 28), r);
}

/**
 * e^x lane-wise. Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-7 (Cephes)
 * polynomial for e^r, and the scale 2^n applied as 2^(n>>1)·2^(n-(n>>1)) so that results down in
 * the subnormal range are rounded once and exactly, and overflow gives +inf. x is clamped to
 * [-104, 89] first (e^-104 rounds to 0, e^89 overflows to inf); NaN propagates.
 * Error: at most 1 ulp from the correctly rounded result (checked on every 7th f32 bit pattern with
 * |x| < 104, subnormal results included).
 */
@inline export function vexp(x0: v128): v128 {
  // constants by broadcast loads at their uses (see vexp2Neg below for why)
  const c = EXP_C;
  let x = f32x4.pmax(x0, v128.load32_splat(c));
  x = f32x4.pmin(x, v128.load32_splat(c, 4));
  // n = round(x·log2 e) by the 1.5·2^23 trick: the sum's low mantissa bits hold n (|n| < 2^22)
  const tm = f32x4.add(f32x4.mul(x, v128.load32_splat(c, 8)), v128.load32_splat(c, 12));
  const p = expReduced(x, f32x4.sub(tm, v128.load32_splat(c, 12)));
  const n = i32x4.sub(tm, v128.load32_splat(EXP_I));
  const n1 = i32x4.shr_s(n, 1);
  const n2 = i32x4.sub(n, n1);
  const bias = v128.load32_splat(EXP_I, 4);
  const s1 = i32x4.shl(i32x4.add(n1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(n2, bias), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/** vexp2Neg's constants: the clamp, the rounding constant (1.5·2^23 + 127: see below), the polynomial's coefficients, highest first. */
const EXP2_NEG = memory.data<f32>([-126.0, 12583039.0, 1.3276474783197045e-3, 9.675540961325169e-3, 5.550714209675789e-2,
  2.4022118747234344e-1, 6.931471228599548e-1, 1.0000001192092896]);

/**
 * 2^y for y ≤ 0, the scan's decay e^(Δ·A) as 2^(Δ·A·log2 e) with A·log2 e formed once per channel:
 * y = n + r with n = round(y) and r = y − n exact in [−1/2, 1/2], 2^r by a degree-5 polynomial
 * (relative-error minimax, its coefficients then tuned in f32: at most 2.6 ulp as evaluated in
 * f32 over [−1/2, 1/2]), then 2^n in one step, y clamped at −126 (2^−126, the smallest normal f32:
 * a factor on the state that small changes nothing). n is rounded by adding 1.5·2^23 + 127, so the
 * sum's bits end in n + 127, which is already the biased exponent: shifted left by 23 they are 2^n.
 * No Cody–Waite reduction and no overflow clamp: 17 operations a vector with the product, where
 * vexp takes 32. Its results differ from vexp's by the rounding of A·log2 e and of the polynomial
 * (a few ulps of the factor), well inside the scan twins' tolerance.
 *
 * Its constants are read from memory by a broadcast load where each is used. In a loop that also
 * keeps many vectors live (the scan's 16 states and their decay factors), an engine that hoists
 * splatted constants out of the loop runs out of the 16 vector registers and spills (Chromium's
 * V8 did: the scan ran 1.3× slower in the page than in Node), one that rebuilds them at each use
 * does not; a load at the use is what both handle alike (V8 folds it into the instruction).
 */
@inline export function vexp2Neg(y0: v128): v128 {
  const c = EXP2_NEG;
  const y = f32x4.pmax(y0, v128.load32_splat(c));
  const tm = f32x4.add(y, v128.load32_splat(c, 4));
  const r = f32x4.sub(y, f32x4.sub(tm, v128.load32_splat(c, 4)));
  const p = horner5(v128.load32_splat(c, 8), r, c + 12);
  return f32x4.mul(p, i32x4.shl(tm, 23));
}

/** vexpNeg's constants: the rounding constant 1.5·2^23 + 192 (see below), 2^−65, −0 (the sign bit). */
const EXP_NEG = memory.data<f32>([12583104.0, 2.710505431213761e-20, -0.0]);

/**
 * e^x lane-wise for x ≤ 0: vexp's reduction and polynomial, with the scaling of vexp2Neg. The
 * rounding constant 1.5·2^23 + 192 leaves n + 192 in the sum's low bits, so a shift makes 2^(n+65),
 * a normal number for every n ≥ −150 (x ≥ −104); p·2^(n+65) is exact and the product with 2^−65
 * rounds once, subnormal results included. 192 is even, as vexp's rounding constant is, so n
 * rounds the same way: the same bits as vexp for every x ≤ 0, in 25 operations instead of 32.
 */
@inline export function vexpNeg(x0: v128): v128 {
  const s = f32x4.pmax(x0, v128.load32_splat(EXP_C));
  const tm = enRound(s), r = enRest(s, tm);
  return enEnd(horner5(enFirst(), r, EXP_C + 28), r, tm);
}

/** A·log2 e: the per-channel factor vexp2Neg's argument Δ·A·log2 e is formed from. */
@inline export function log2eTimes(a: v128): v128 {
  return f32x4.mul(a, f32x4.splat(1.44269504088896341));
}

/** Scalar e^x through the vector routine (same numerics as vexp). */
@inline export function sexp(x: f32): f32 {
  return f32x4.extract_lane(vexp(f32x4.splat(x)), 0);
}

// ---------------------------------------------------------------- log, log1p (musl logf/log1pf)

const Lg1: f32 = 0.66666662693;
const Lg2: f32 = 0.40000972152;
const Lg3: f32 = 0.28498786688;
const Lg4: f32 = 0.24279078841;
const LN2_HI: f32 = 6.9313812256e-01;
const LN2_LO: f32 = 9.0580006145e-06;

/** log(1+f) + k·ln2, vlog's tail; f in [sqrt(2)/2-1, sqrt(2)-1]. */
@inline function logTail(f: v128, k: v128): v128 {
  const s = f32x4.div(f, f32x4.add(f32x4.splat(2.0), f));
  const z = f32x4.mul(s, s);
  const w = f32x4.mul(z, z);
  const t1 = f32x4.mul(w, f32x4.add(f32x4.splat(Lg2), f32x4.mul(w, f32x4.splat(Lg4))));
  const t2 = f32x4.mul(z, f32x4.add(f32x4.splat(Lg1), f32x4.mul(w, f32x4.splat(Lg3))));
  const R = f32x4.add(t2, t1);
  const hfsq = f32x4.mul(f32x4.mul(f32x4.splat(0.5), f), f);
  const dk = f32x4.convert_i32x4_s(k);
  let res = f32x4.mul(s, f32x4.add(hfsq, R));
  res = f32x4.add(res, f32x4.mul(dk, f32x4.splat(LN2_LO)));
  res = f32x4.sub(res, hfsq);
  res = f32x4.add(res, f);
  return f32x4.add(res, f32x4.mul(dk, f32x4.splat(LN2_HI)));
}

/** Natural log lane-wise for positive normal inputs (about 1 ulp). */
@inline export function vlog(x: v128): v128 {
  let ix = i32x4.add(x, i32x4.splat(0x3f800000 - 0x3f3504f3));
  const k = i32x4.sub(i32x4.shr_u(ix, 23), i32x4.splat(0x7f));
  ix = i32x4.add(v128.and(ix, i32x4.splat(0x007fffff)), i32x4.splat(0x3f3504f3));
  const f = f32x4.sub(ix, f32x4.splat(1.0));
  return logTail(f, k);
}

/** Scalar log through the vector routine. */
@inline export function slog(x: f32): f32 {
  return f32x4.extract_lane(vlog(f32x4.splat(x)), 0);
}

// ---------------------------------------------------------------- sigmoid family

/**
 * Overflow-free sigmoid: with e = exp(-|x|) (≤ 1), s = 1/(1+e) for x ≥ 0 and e/(1+e) for x < 0.
 * Also returns 1-s computed the same way (no cancellation). `e` is passed in so callers that also
 * need it (softplus) compute exp once.
 */
@inline export function vsigmoidFromE(x: v128, e: v128): v128 {
  const pos = f32x4.ge(x, f32x4.splat(0.0));
  return f32x4.div(v128.bitselect(f32x4.splat(1.0), e, pos), f32x4.add(f32x4.splat(1.0), e));
}

@inline export function vOneMinusSigmoidFromE(x: v128, e: v128): v128 {
  const pos = f32x4.ge(x, f32x4.splat(0.0));
  return f32x4.div(v128.bitselect(e, f32x4.splat(1.0), pos), f32x4.add(f32x4.splat(1.0), e));
}

/** e^−|x| lane-wise: vexpNeg of x with its sign bit set (the same bits as vexp(−|x|)). */
@inline export function vexpNegAbs(x: v128): v128 {
  return vexpNeg(v128.or(x, v128.load32_splat(EXP_NEG, 8)));
}

/** log1p(e)/e on [0, 1]: a degree-8 relative-error minimax polynomial, coefficients tuned in f32, highest first. */
const LOG1P_UNIT = memory.data<f32>([5.23269223049283e-3, -2.9505236074328423e-2, 7.822597771883011e-2, -1.3663245737552643e-1,
  1.9106003642082214e-1, -2.4842976033687592e-1, 3.3319091796875e-1, -4.999949634075165e-1, 1.0]);

/**
 * log(1+e) lane-wise for e in [0, 1] (softplus's e = e^−|x|): e·P(e) with no division and no
 * range reduction, at most 2.1 ulp (1.75e−7 relative) from log1p of the f32 e as evaluated in f32 (on a
 * fine grid of [0, 1] and down to 1e−30: tools/poly_coefficients.py), exact as e → 0 (P(0) = 1).
 */
@inline export function vlog1pUnit(e: v128): v128 {
  const q = horner5(lpFirst(), e, LOG1P_UNIT + 4); // lpHorner steps 0..4
  return lpEnd(lpHorner(lpHorner(lpHorner(q, e, 5), e, 6), e, 7), e);
}

/**
 * vexpNegAbs and vlog1pUnit in stages, for kernels that run four of them in lock step (one stage
 * of each before the next). Each is a chain of some twenty dependent operations: written one after
 * another, four such chains do not fit the core's scheduler together, so each runs at its own
 * latency; interleaved they overlap, and a softplus or SiLU pass runs 1.3–1.5× faster
 * (tools/ab-builds.mjs). vexpNeg and vlog1pUnit are built from the same stages, so the same bits:
 * e^−|x| = enEnd(p, r, tm) with s = enAbs(x), tm = enRound(s), r = enRest(s, tm) and p five
 * enHorner steps from enFirst(); log1p(e) = lpEnd(q, e) with q eight lpHorner steps from lpFirst().
 */
@inline export function enAbs(x: v128): v128 {
  return f32x4.pmax(v128.or(x, v128.load32_splat(EXP_NEG, 8)), v128.load32_splat(EXP_C));
}
@inline export function enRound(s: v128): v128 {
  return f32x4.add(f32x4.mul(s, v128.load32_splat(EXP_C, 8)), v128.load32_splat(EXP_NEG));
}
@inline export function enRest(s: v128, tm: v128): v128 {
  return cwRest(s, f32x4.sub(tm, v128.load32_splat(EXP_NEG)));
}
@inline export function enFirst(): v128 {
  return v128.load32_splat(EXP_C, 24);
}
/** Step i (0..4) of e^r's polynomial (horner5 from EXP_C + 28 runs all five). */
@inline export function enHorner(p: v128, r: v128, i: usize): v128 {
  return f32x4.add(f32x4.mul(p, r), v128.load32_splat(EXP_C + 28 + (i << 2)));
}
@inline export function enEnd(p: v128, r: v128, tm: v128): v128 {
  return f32x4.mul(f32x4.mul(expTail(p, r), i32x4.shl(tm, 23)), v128.load32_splat(EXP_NEG, 4));
}
@inline export function lpFirst(): v128 {
  return v128.load32_splat(LOG1P_UNIT);
}
/** Step i (0..7) of log1p(e)/e's polynomial. */
@inline export function lpHorner(q: v128, e: v128, i: usize): v128 {
  return f32x4.add(f32x4.mul(q, e), v128.load32_splat(LOG1P_UNIT + 4 + (i << 2)));
}
@inline export function lpEnd(q: v128, e: v128): v128 {
  return f32x4.mul(q, e);
}

/** softplus(x) = max(x, 0) + log1p(e^−|x|) lane-wise, overflow-free, with no division. */
@inline export function vsoftplus(x: v128): v128 {
  return f32x4.add(f32x4.pmax(x, f32x4.splat(0)), vlog1pUnit(vexpNegAbs(x)));
}
