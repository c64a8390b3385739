/**
 * Block-quantised weights (q8 and q4, blocks of 32 along K) — twins of src/kernels/ref/quant.ts,
 * which documents the formats. Products quantise the activations to q8 per block (quantizeQ8 on
 * x first) and sum exact integer products of each block with i32x4.dot_i16x8_s, then scale; the
 * relaxed-SIMD build takes its blocks with the relaxed integer dot instead (dotQ8Relaxed for q8
 * weights, dotQ4Relaxed for q4).
 */
const QK: i32 = 32;

/**
 * Four lanes of x·id rounded half away from zero and clamped to ±127, as the reference's roundAway.
 * Not floor(|v| + 0.5) in f32: that sum rounds up for the float just below 0.5. t = trunc(v) and
 * the fraction v − t are exact, so comparing |v − t| with 0.5 is; t ± 1 and the clamp are exact
 * integers in f32, which the 1.5·2^23 trick turns into i32 (the sum's low mantissa bits hold it),
 * cheaper than a saturating conversion.
 */
@inline function round4(v: v128): v128 {
  const t = f32x4.trunc(v);
  const up = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const step = v128.and(up, v128.or(v128.and(v, f32x4.splat(-0.0)), f32x4.splat(1.0))); // ±1 with v's sign where |frac| ≥ 0.5
  let r = f32x4.pmax(f32x4.splat(-127.0), f32x4.pmin(f32x4.splat(127.0), f32x4.add(t, step)));
  r = v128.and(r, f32x4.eq(v, v)); // NaN → 0, as the reference's Int8Array stores its NaN
  return i32x4.sub(f32x4.add(r, f32x4.splat(12582912.0)), i32x4.splat(0x4b400000));
}

/** Eight lanes of x·id at p (f32) as i16x8, each rounded as roundAway. */
@inline function round8(p: usize, id: v128): v128 {
  return i16x8.narrow_i32x4_s(round4(f32x4.mul(v128.load(p), id)), round4(f32x4.mul(v128.load(p, 16), id)));
}

/**
 * q8 rows: the scale and 32 rounded values of every block, four lanes at a time (activations are
 * quantised before every quantised product, so this runs once per row and product in prefill).
 */
export function quantizeQ8(q: usize, scales: usize, x: usize, rows: i32, K: i32): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = (<usize>r * <usize>K + <usize>b * QK);
      const px = x + (o << 2);
      // max |x| with pmax (one instruction; f32x4.max's NaN rules cost V8 about eight), and a NaN
      // anywhere in the block kept as the reference's Math.max keeps it
      let m = f32x4.splat(0), nan = i32x4.splat(0);
      for (let i = 0; i < QK; i += 4) {
        const v = v128.load(px + (<usize>i << 2));
        m = f32x4.pmax(m, f32x4.abs(v));
        nan = v128.or(nan, f32x4.ne(v, v));
      }
      m = f32x4.pmax(m, f32x4.shuffle(m, m, 2, 3, 0, 1));
      m = f32x4.pmax(m, f32x4.shuffle(m, m, 1, 0, 3, 2));
      const amax: f32 = v128.any_true(nan) ? NaN : f32x4.extract_lane(m, 0);
      const d: f32 = amax / 127;
      const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
      store<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2), d);
      v128.store(q + o, i8x16.narrow_i16x8_s(round8(px, id), round8(px + 32, id)));
      v128.store(q + o + 16, i8x16.narrow_i16x8_s(round8(px + 64, id), round8(px + 96, id)));
    }
  }
}

export function quantizeQ4(q: usize, scales: usize, x: usize, rows: i32, K: i32): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = <usize>r * <usize>K + <usize>b * QK;
      const px = x + (o << 2);
      let amax: f32 = 0, m: f32 = 0;
      for (let i = 0; i < QK; i++) {
        const v = load<f32>(px + (<usize>i << 2));
        if (Mathf.abs(v) > amax) { amax = Mathf.abs(v); m = v; }
      }
      const d: f32 = m / -8;
      const id: f32 = d != 0 ? <f32>1 / d : 0;
      store<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2), d);
      const qo = q + (o >> 1);
      for (let j = 0; j < QK / 2; j++) {
        const lo = min<i32>(15, <i32>Math.floor(<f64>(load<f32>(px + (<usize>j << 2)) * id) + 8.5));
        const hi = min<i32>(15, <i32>Math.floor(<f64>(load<f32>(px + (<usize>(j + QK / 2) << 2)) * id) + 8.5));
        store<u8>(qo + j, <u8>(lo | (hi << 4)));
      }
    }
  }
}

export function dequantizeQ8(out: usize, q: usize, scales: usize, rows: i32, K: i32): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = <usize>r * <usize>K + <usize>b * QK;
      const d = f32x4.splat(load<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2)));
      for (let i = 0; i < QK; i += 8) {
        const v = i16x8.extend_low_i8x16_s(v128.load64_zero(q + o + i));
        v128.store(out + ((o + i) << 2), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v)), d));
        v128.store(out + ((o + i + 4) << 2), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v)), d));
      }
    }
  }
}

/** 32 nibbles of one q4 block as two i8x16 vectors of values in [-8, 7] (elements 0-15, 16-31). */
@inline function unpack4lo(p: usize): v128 { return i8x16.sub(v128.and(v128.load(p), i8x16.splat(15)), i8x16.splat(8)); }
@inline function unpack4hi(p: usize): v128 { return i8x16.sub(i8x16.shr_u(v128.load(p), 4), i8x16.splat(8)); }

@inline function storeF32x16(out: usize, v: v128, d: v128): void {
  const a = i16x8.extend_low_i8x16_s(v), b = i16x8.extend_high_i8x16_s(v);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(a)), d));
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(a)), d), 16);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(b)), d), 32);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(b)), d), 48);
}

export function dequantizeQ4(out: usize, q: usize, scales: usize, rows: i32, K: i32): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = <usize>r * <usize>K + <usize>b * QK;
      const d = f32x4.splat(load<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2)));
      storeF32x16(out + (o << 2), unpack4lo(q + (o >> 1)), d);
      storeF32x16(out + ((o + 16) << 2), unpack4hi(q + (o >> 1)), d);
    }
  }
}

export function embeddingQ8(out: usize, q: usize, scales: usize, ids: usize, n: i32, D: i32): void {
  const nb = D / QK;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(ids + (<usize>i << 2));
    dequantizeQ8(out + ((<usize>i * <usize>D) << 2), q + <usize>r * <usize>D, scales + ((<usize>r * <usize>nb) << 2), 1, D);
  }
}

export function embeddingQ4(out: usize, q: usize, scales: usize, ids: usize, n: i32, D: i32): void {
  const nb = D / QK;
  for (let i = 0; i < n; i++) {
    const r = load<i32>(ids + (<usize>i << 2));
    dequantizeQ4(out + ((<usize>i * <usize>D) << 2), q + ((<usize>r * <usize>D) >> 1), scales + ((<usize>r * <usize>nb) << 2), 1, D);
  }
}

/**
 * i32x4 lane sums of the exact dot product of one block of 32 int8 pairs, each operand given as
 * four i16x8 quarters (elements 8q … 8q+7, sign-extended on load with v128.load8x8_s or widened from
 * unpacked nibbles). Lane ℓ sums the products at k ∈ {8q + 2ℓ, 8q + 2ℓ + 1 : q = 0…3}: the same
 * partition as the former extmul/extadd form, and integer sums are exact, so every output is bit
 * for bit what it was. i32x4.dot_i16x8_s is one pmaddwd on x86: 4 of them replace ≈ 20 instructions.
 */
@inline function dot4(x0: v128, x1: v128, x2: v128, x3: v128, w0: v128, w1: v128, w2: v128, w3: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(x0, w0), i32x4.dot_i16x8_s(x1, w1)),
    i32x4.add(i32x4.dot_i16x8_s(x2, w2), i32x4.dot_i16x8_s(x3, w3)),
  );
}

/** The q8 block at p (32 int8) against the four widened weight quarters. */
@inline function dotX(p: usize, w0: v128, w1: v128, w2: v128, w3: v128): v128 {
  return dot4(v128.load8x8_s(p), v128.load8x8_s(p + 8), v128.load8x8_s(p + 16), v128.load8x8_s(p + 24), w0, w1, w2, w3);
}

/** Widened activation quarters against the weight block at p (32 int8, or 16 bytes of q4 nibbles). */
@inline function dotW(x0: v128, x1: v128, x2: v128, x3: v128, p: usize, four: bool): v128 {
  if (four) {
    const lo = unpack4lo(p), hi = unpack4hi(p);
    return dot4(x0, x1, x2, x3, i16x8.extend_low_i8x16_s(lo), i16x8.extend_high_i8x16_s(lo), i16x8.extend_low_i8x16_s(hi), i16x8.extend_high_i8x16_s(hi));
  }
  return dot4(x0, x1, x2, x3, v128.load8x8_s(p), v128.load8x8_s(p + 8), v128.load8x8_s(p + 16), v128.load8x8_s(p + 24));
}

/**
 * The default build's q4 GEMV block: Σ(n − 8)·x = Σ n·x − 8·Σx, the nibbles n widened unsigned
 * as they load (v128.load8x8_u, then a mask or a shift: no byte unpacking, no −8 per weight row)
 * and `off` (q4OffsetI32) subtracted. The quarters and lanes are dot4's, so every lane sum is
 * exactly the one the widened n − 8 gives.
 */
@inline function dotNibbles(x0: v128, x1: v128, x2: v128, x3: v128, off: v128, p: usize): v128 {
  const b0 = v128.load8x8_u(p), b1 = v128.load8x8_u(p + 8), m = i16x8.splat(15);
  return i32x4.sub(dot4(x0, x1, x2, x3, v128.and(b0, m), v128.and(b1, m), i16x8.shr_u(b0, 4), i16x8.shr_u(b1, 4)), off);
}

/** 8·Σx of the widened q8 block (quarters x0…x3) in dot4's lanes: once per block for the GEMV's four weight rows. */
@inline function q4OffsetI32(x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return i32x4.dot_i16x8_s(i16x8.add(i16x8.add(x0, x1), i16x8.add(x2, x3)), i16x8.splat(8));
}

/**
 * [Σa, Σb, Σc, Σd]: the lane totals of four i32x4 block sums, exact. Products reduce each block's
 * integer dot to one total per output before scaling, so every output takes the same arithmetic
 * on every path and build: acc += f32(isum_b) · (d_w · d_x), block after block, in f32.
 */
@inline export function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7)); // a0+a2 b0+b2 a1+a3 b1+b3
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/** The total of one i32x4 block sum, exact. */
@inline export function hsumi(v: v128): i32 {
  const t = i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1);
}

/** Four f32 at p, p + step, p + 2·step, p + 3·step as one vector (four rows' block scales). */
@inline export function gather4(p: usize, step: usize): v128 {
  let v = v128.load32_zero(p);
  v = v128.load32_lane(p + step, v, 1);
  v = v128.load32_lane(p + 2 * step, v, 2);
  return v128.load32_lane(p + 3 * step, v, 3);
}

/** acc + f32(isum) · (dw · dx), lane by lane: four outputs' block b. */
@inline export function scaleAdd4(acc: v128, isum: v128, dw: v128, dx: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.mul(dw, dx)));
}

/** Lanes 0…3 of v to p, p + step, p + 2·step, p + 3·step. */
@inline export function scatter4(p: usize, step: usize, v: v128): void {
  v128.store32_lane(p, v, 0);
  v128.store32_lane(p + step, v, 1);
  v128.store32_lane(p + 2 * step, v, 2);
  v128.store32_lane(p + 3 * step, v, 3);
}

/**
 * The relaxed-SIMD build's q8 × q8 block dot (i32x4 lane sums, exact). The relaxed integer dot
 * takes its second operand as 7-bit: a lane in [0, 127] is read alike everywhere, one with the top
 * bit set may be read signed or unsigned. q8_0 weights span [−127, 127], so the weight's sign moves
 * to the activation: w·x = |w| · (sign(w)·x), with |w| ∈ [0, 127] the 7-bit operand and
 * sign(w)·x ∈ [−127, 127] the signed one (quantizeQ8 clamps to ±127, so negating x never wraps).
 * Pair sums stay within 2·127·127 < 2^15: x86's pmaddubsw does not saturate. Every product is
 * exact, so the integer sums equal the default build's; only their lane partition differs (lane ℓ
 * holds bytes 4ℓ…4ℓ+3 of each half), and the products total each block (sum4) before scaling, so
 * the outputs are the default build's bits.
 * i16x8.relaxed_dot_i8x16_i7x16_s then i32x4.extadd_pairwise_i16x8_s, not the fused
 * i32x4.relaxed_dot_i8x16_i7x16_add_s: Node 20's baseline compiler (Liftoff) returns wrong sums
 * for the fused form (doubled, or zero), and V8 lowers it to the same two steps without AVX-VNNI.
 * `mag` and `neg` are |w| and the sign masks (−1 where w < 0) of the block's two halves.
 */
@inline function dotQ8Relaxed(px: usize, mag0: v128, mag1: v128, neg0: v128, neg1: v128): v128 {
  const x0 = i8x16.sub(v128.xor(v128.load(px), neg0), neg0), x1 = i8x16.sub(v128.xor(v128.load(px, 16), neg1), neg1);
  return i32x4.add(
    i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(x0, mag0)),
    i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(x1, mag1)),
  );
}

/**
 * The relaxed-SIMD build's q4 × q8 block dot (i32x4 lane sums, exact), after llama.cpp: the nibble
 * n ∈ [0, 15] is the 7-bit operand as it is, and Σ(n − 8)·x = Σ n·x − 8·Σ x. `lo` and `hi` are
 * the block's nibbles (elements 0–15 and 16–31) as bytes, x0 and x1 the activation's halves and
 * `off` their q4Offset. Each i16 lane stays small: Σ n·x over its 4 elements is at most
 * 4·15·127 = 7620 in magnitude, the corrected sum 4·8·127 = 4064. Lane ℓ holds elements 4ℓ…4ℓ+3
 * of each half, as dotQ8Relaxed's. Two steps, not the fused form (see dotQ8Relaxed).
 */
@inline function dotQ4Relaxed(x0: v128, x1: v128, off: v128, lo: v128, hi: v128): v128 {
  const s = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.sub(s, off));
}

/** 8·Σx of the q8 block (halves x0, x1) in dotQ4Relaxed's i16 lanes: once per activation block. */
@inline function q4Offset(x0: v128, x1: v128): v128 {
  const e = i8x16.splat(8);
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, e), i16x8.relaxed_dot_i8x16_i7x16_s(x1, e));
}

/** Nibbles of the q4 block at p as bytes in [0, 15]: elements 0–15 (lo) and 16–31 (hi). */
@inline function nibblesLo(p: usize): v128 { return v128.and(v128.load(p), i8x16.splat(15)); }
@inline function nibblesHi(p: usize): v128 { return i8x16.shr_u(v128.load(p), 4); }

/** The q8 block at px against a q4 block's nibbles lo, hi (nibblesLo, nibblesHi), by dotQ4Relaxed. */
@inline function blockQ4Relaxed(px: usize, lo: v128, hi: v128): v128 {
  const x0 = v128.load(px), x1 = v128.load(px, 16);
  return dotQ4Relaxed(x0, x1, q4Offset(x0, x1), lo, hi);
}

/** The q8 block at px against the q8 weight block at pw, by dotQ8Relaxed. */
@inline function blockQ8Relaxed(px: usize, pw: usize): v128 {
  const w0 = v128.load(pw), w1 = v128.load(pw, 16);
  return dotQ8Relaxed(px, i8x16.abs(w0), i8x16.abs(w1), i8x16.lt_s(w0, i8x16.splat(0)), i8x16.lt_s(w1, i8x16.splat(0)));
}

/**
 * The i32x4 block sums (dot4's or the relaxed dots' lanes, exact) of the q8 activation block at px
 * against the weight block at pw: q8 bytes, or q4 nibbles when `four`.
 */
@inline function blockDot(px: usize, pw: usize, four: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return four ? blockQ4Relaxed(px, nibblesLo(pw), nibblesHi(pw)) : blockQ8Relaxed(px, pw);
  const x0 = v128.load8x8_s(px), x1 = v128.load8x8_s(px + 8), x2 = v128.load8x8_s(px + 16), x3 = v128.load8x8_s(px + 24);
  return dotW(x0, x1, x2, x3, pw, four);
}

/** One output of the GEMV or GEMM: weight row pw (scales ps) against the q8 row px (scales psx). */
@inline function dotRow(px: usize, psx: usize, pw: usize, ps: usize, nb: i32, four: bool): f32 {
  let a: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const o = <usize>b * QK, os = <usize>b << 2;
    a += <f32>hsumi(blockDot(px + o, pw + (four ? o >> 1 : o), four)) * (load<f32>(ps + os) * load<f32>(psx + os));
  }
  return a;
}

/**
 * Block b of one activation row against four weight rows pw, pw + wS, pw + 2wS, pw + 3wS (q8
 * bytes, or q4 nibbles when `four`): the four totals [isum_0 … isum_3], the activation's loads,
 * widening, magnitudes or offset taken once for the four rows.
 */
@inline function blockDotRows4(px: usize, pw: usize, wS: usize, four: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && !four) {
    // the product is symmetric: the activation block gives the magnitudes and signs
    const v0 = v128.load(px), v1 = v128.load(px, 16);
    const m0 = i8x16.abs(v0), m1 = i8x16.abs(v1), n0 = i8x16.lt_s(v0, i8x16.splat(0)), n1 = i8x16.lt_s(v1, i8x16.splat(0));
    return sum4(dotQ8Relaxed(pw, m0, m1, n0, n1), dotQ8Relaxed(pw + wS, m0, m1, n0, n1),
      dotQ8Relaxed(pw + 2 * wS, m0, m1, n0, n1), dotQ8Relaxed(pw + 3 * wS, m0, m1, n0, n1));
  }
  if (ASC_FEATURE_RELAXED_SIMD) {
    const x0 = v128.load(px), x1 = v128.load(px, 16), off = q4Offset(x0, x1);
    return sum4(dotQ4Relaxed(x0, x1, off, nibblesLo(pw), nibblesHi(pw)), dotQ4Relaxed(x0, x1, off, nibblesLo(pw + wS), nibblesHi(pw + wS)),
      dotQ4Relaxed(x0, x1, off, nibblesLo(pw + 2 * wS), nibblesHi(pw + 2 * wS)), dotQ4Relaxed(x0, x1, off, nibblesLo(pw + 3 * wS), nibblesHi(pw + 3 * wS)));
  }
  const x0 = v128.load8x8_s(px), x1 = v128.load8x8_s(px + 8), x2 = v128.load8x8_s(px + 16), x3 = v128.load8x8_s(px + 24);
  if (four) {
    const off = q4OffsetI32(x0, x1, x2, x3);
    return sum4(dotNibbles(x0, x1, x2, x3, off, pw), dotNibbles(x0, x1, x2, x3, off, pw + wS),
      dotNibbles(x0, x1, x2, x3, off, pw + 2 * wS), dotNibbles(x0, x1, x2, x3, off, pw + 3 * wS));
  }
  return sum4(dotW(x0, x1, x2, x3, pw, false), dotW(x0, x1, x2, x3, pw + wS, false),
    dotW(x0, x1, x2, x3, pw + 2 * wS, false), dotW(x0, x1, x2, x3, pw + 3 * wS, false));
}

/**
 * Decoding (one activation row): out[j] for every weight row j. Four far-apart weight rows (u,
 * u+S, u+2S, u+3S) per pass keep four independent streams of weight loads in flight, their block
 * totals and scales in the lanes of one vector.
 */
@inline function gemvQ(po: usize, px: usize, psx: usize, qw: usize, sw: usize, N: i32, K: i32, four: bool): void {
  const nb = K / QK;
  const rowW: usize = four ? <usize>K >> 1 : <usize>K;
  const rowS = <usize>nb << 2;
  const S = (N & ~3) >> 2;
  const wS = <usize>S * rowW, sS = <usize>S * rowS;
  for (let u = 0; u < S; u++) {
    const pw = qw + <usize>u * rowW, ps = sw + <usize>u * rowS;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const o = <usize>b * QK, os = <usize>b << 2;
      const isum = blockDotRows4(px + o, pw + (four ? o >> 1 : o), wS, four);
      acc = scaleAdd4(acc, isum, gather4(ps + os, sS), f32x4.splat(load<f32>(psx + os)));
    }
    scatter4(po + (<usize>u << 2), <usize>S << 2, acc);
  }
  for (let j = S << 2; j < N; j++) store<f32>(po + (<usize>j << 2), dotRow(px, psx, qw + <usize>j * rowW, sw + <usize>j * rowS, nb, four));
}

/**
 * The relaxed build's q4 GEMM tile: four activation rows against two weight rows (pw, pw + rowW)
 * at once, so each activation block's halves and q4Offset serve two weight rows, and each weight
 * block's nibbles four activation rows. Every output takes the GEMV's arithmetic (the same block
 * totals, scale and order), so it equals the GEMV's bit for bit. Outputs go to po and po + 4,
 * rows ldo apart.
 */
@inline function tile4x2Q4Relaxed(po: usize, ldo: usize, px: usize, psx: usize, pw: usize, ps: usize, rowW: usize, nb: i32, K: i32): void {
  const rowS = <usize>nb << 2, rowX = <usize>K;
  let a = f32x4.splat(0), c = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const o = <usize>b * QK, os = <usize>b << 2, p = pw + (o >> 1);
    const lo0 = nibblesLo(p), hi0 = nibblesHi(p), lo1 = nibblesLo(p + rowW), hi1 = nibblesHi(p + rowW);
    let x = px + o;
    let x0 = v128.load(x), x1 = v128.load(x, 16), off = q4Offset(x0, x1);
    const a0 = dotQ4Relaxed(x0, x1, off, lo0, hi0), c0 = dotQ4Relaxed(x0, x1, off, lo1, hi1);
    x += rowX; x0 = v128.load(x); x1 = v128.load(x, 16); off = q4Offset(x0, x1);
    const a1 = dotQ4Relaxed(x0, x1, off, lo0, hi0), c1 = dotQ4Relaxed(x0, x1, off, lo1, hi1);
    x += rowX; x0 = v128.load(x); x1 = v128.load(x, 16); off = q4Offset(x0, x1);
    const a2 = dotQ4Relaxed(x0, x1, off, lo0, hi0), c2 = dotQ4Relaxed(x0, x1, off, lo1, hi1);
    x += rowX; x0 = v128.load(x); x1 = v128.load(x, 16); off = q4Offset(x0, x1);
    const a3 = dotQ4Relaxed(x0, x1, off, lo0, hi0), c3 = dotQ4Relaxed(x0, x1, off, lo1, hi1);
    const dx = gather4(psx + os, rowS);
    a = scaleAdd4(a, sum4(a0, a1, a2, a3), f32x4.splat(load<f32>(ps + os)), dx);
    c = scaleAdd4(c, sum4(c0, c1, c2, c3), f32x4.splat(load<f32>(ps + rowS + os)), dx);
  }
  scatter4(po, ldo, a);
  scatter4(po + 4, ldo, c);
}

/**
 * Four activation rows (px, rows K bytes apart; scales psx, rows rowS apart) against weight rows
 * [j0, j1): each weight block is loaded and widened once for the four rows, whose block totals
 * and scales share the lanes of one vector. Outputs go to po + j, rows ldo apart.
 */
@inline function tile4Q(po: usize, ldo: usize, px: usize, psx: usize, qw: usize, sw: usize, j0: i32, j1: i32, K: i32, four: bool): void {
  const nb = K / QK;
  const rowW: usize = four ? <usize>K >> 1 : <usize>K;
  const rowS = <usize>nb << 2, rowX = <usize>K;
  let j = j0;
  if (ASC_FEATURE_RELAXED_SIMD && four) for (; j + 2 <= j1; j += 2) tile4x2Q4Relaxed(po + (<usize>j << 2), ldo, px, psx, qw + <usize>j * rowW, sw + <usize>j * rowS, rowW, nb, K);
  for (; j < j1; j++) {
    const pw = qw + <usize>j * rowW, ps = sw + <usize>j * rowS;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const o = <usize>b * QK, os = <usize>b << 2, p = px + o;
      let isum: v128;
      if (ASC_FEATURE_RELAXED_SIMD && !four) {
        // the weight block's magnitudes and signs, once for the four activation rows
        const v0 = v128.load(pw + o), v1 = v128.load(pw + o, 16);
        const m0 = i8x16.abs(v0), m1 = i8x16.abs(v1), n0 = i8x16.lt_s(v0, i8x16.splat(0)), n1 = i8x16.lt_s(v1, i8x16.splat(0));
        isum = sum4(dotQ8Relaxed(p, m0, m1, n0, n1), dotQ8Relaxed(p + rowX, m0, m1, n0, n1),
          dotQ8Relaxed(p + 2 * rowX, m0, m1, n0, n1), dotQ8Relaxed(p + 3 * rowX, m0, m1, n0, n1));
      } else if (ASC_FEATURE_RELAXED_SIMD) {
        // the weight block's nibbles, once for the four activation rows
        const lo = nibblesLo(pw + (o >> 1)), hi = nibblesHi(pw + (o >> 1));
        isum = sum4(blockQ4Relaxed(p, lo, hi), blockQ4Relaxed(p + rowX, lo, hi), blockQ4Relaxed(p + 2 * rowX, lo, hi), blockQ4Relaxed(p + 3 * rowX, lo, hi));
      } else {
        let w0: v128, w1: v128, w2: v128, w3: v128;
        if (four) {
          const lo = unpack4lo(pw + (o >> 1)), hi = unpack4hi(pw + (o >> 1));
          w0 = i16x8.extend_low_i8x16_s(lo); w1 = i16x8.extend_high_i8x16_s(lo);
          w2 = i16x8.extend_low_i8x16_s(hi); w3 = i16x8.extend_high_i8x16_s(hi);
        } else {
          w0 = v128.load8x8_s(pw + o); w1 = v128.load8x8_s(pw + o + 8);
          w2 = v128.load8x8_s(pw + o + 16); w3 = v128.load8x8_s(pw + o + 24);
        }
        isum = sum4(dotX(p, w0, w1, w2, w3), dotX(p + rowX, w0, w1, w2, w3), dotX(p + 2 * rowX, w0, w1, w2, w3), dotX(p + 3 * rowX, w0, w1, w2, w3));
      }
      acc = scaleAdd4(acc, isum, f32x4.splat(load<f32>(ps + os)), gather4(psx + os, rowS));
    }
    scatter4(po + (<usize>j << 2), ldo, acc);
  }
}

/** Weight rows kept hot in L2 while all activation rows pass them (≈ 128 KiB of weights). */
@inline function qBlock(rowW: usize): i32 {
  return max<i32>(4, <i32>(<usize>131072 / max<usize>(rowW, 1)));
}

/**
 * out (M, N), rows `ldo` floats apart, = x (M, K) @ W (N, K)^T with W quantised (q8 when `four`
 * is false, q4 nibbles when true) and x quantised to q8. One row is the decoding GEMV (gemvQ);
 * more run as a GEMM: blocks of weight rows stay in cache while the activation rows pass them four
 * at a time (tile4Q), the last M mod 4 one by one. Every output takes the same arithmetic on every
 * path (the block totals, scale and order), so any split over rows or columns is exact.
 */
@inline function matmulQ(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32, four: bool): void {
  const nb = K / QK;
  const rowS = <usize>nb << 2, rowO = <usize>ldo << 2;
  if (M == 1) {
    gemvQ(out, qx, sx, qw, sw, N, K, four);
    return;
  }
  const rowW: usize = four ? <usize>K >> 1 : <usize>K;
  const JB = qBlock(rowW);
  for (let j0 = 0; j0 < N; j0 += JB) {
    const j1 = min<i32>(N, j0 + JB);
    let i = 0;
    for (; i + 4 <= M; i += 4)
      tile4Q(out + <usize>i * rowO, rowO, qx + <usize>i * <usize>K, sx + <usize>i * rowS, qw, sw, j0, j1, K, four);
    for (; i < M; i++) {
      const po = out + <usize>i * rowO, px = qx + <usize>i * <usize>K, psx = sx + <usize>i * rowS;
      for (let j = j0; j < j1; j++) store<f32>(po + (<usize>j << 2), dotRow(px, psx, qw + <usize>j * rowW, sw + <usize>j * rowS, nb, four));
    }
  }
}

export function matmulQ8Strided(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  matmulQ(out, qx, sx, qw, sw, M, N, K, ldo, false);
}

export function matmulQ8(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulQ(out, qx, sx, qw, sw, M, N, K, N, false);
}

export function matmulQ4Strided(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  matmulQ(out, qx, sx, qw, sw, M, N, K, ldo, true);
}

export function matmulQ4(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulQ(out, qx, sx, qw, sw, M, N, K, N, true);
}

