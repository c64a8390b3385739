/**
 * Block-quantised weights (q8 and q4, blocks of 32 along K) — twins of src/kernels/ref/quant.ts,
 * which documents the formats. Products quantise the activations to q8 per block (quantizeQ8 on
 * x first) and sum exact integer products of each block with i32x4.dot_i16x8_s, then scale.
 */
const QK: i32 = 32;

@inline function roundAway(v: f32): i32 {
  const a = Math.floor(Math.abs(<f64>v) + 0.5);
  const r = <i32>(v < 0 ? -a : a);
  return max<i32>(-127, min<i32>(127, r));
}

export function quantizeQ8(q: usize, scales: usize, x: usize, rows: i32, K: i32): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = (<usize>r * <usize>K + <usize>b * QK);
      const px = x + (o << 2);
      let m = f32x4.splat(0);
      for (let i = 0; i < QK; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(px + (<usize>i << 2))));
      const amax = max<f32>(max<f32>(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max<f32>(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      const d: f32 = amax / 127;
      const id: f32 = d != 0 ? <f32>1 / d : 0;
      store<f32>(scales + ((<usize>r * <usize>nb + <usize>b) << 2), d);
      for (let i = 0; i < QK; i++) store<i8>(q + o + i, <i8>roundAway(load<f32>(px + (<usize>i << 2)) * id));
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
 * i32x4 partial sums of the exact dot product of 32 int8 pairs (two vectors each). Products of
 * values in [-127, 127] are at most 16129, so two of them still fit an i16 lane (32258 < 32767):
 * extmul low/high, add, then widen pairwise — 5 instructions per 16 products.
 */
@inline function dot32(x0: v128, x1: v128, w0: v128, w1: v128): v128 {
  const a = i16x8.add(i16x8.extmul_low_i8x16_s(x0, w0), i16x8.extmul_high_i8x16_s(x0, w0));
  const b = i16x8.add(i16x8.extmul_low_i8x16_s(x1, w1), i16x8.extmul_high_i8x16_s(x1, w1));
  return i32x4.add(i32x4.extadd_pairwise_i16x8_s(a), i32x4.extadd_pairwise_i16x8_s(b));
}

@inline function hsumf(v: v128): f32 {
  const t = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(t, f32x4.shuffle(t, t, 1, 0, 3, 2)), 0);
}

/** acc + isum · (d_w · d_x) */
@inline function scaleAdd(acc: v128, isum: v128, dw: f32, dx: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(dw * dx)));
}

/**
 * out (M, N), rows `ldo` floats apart, = x (M, K) @ W (N, K)^T with W quantised (q8 when `four`
 * is false, q4 nibbles when true) and x quantised to q8. Four weight rows at a time share the
 * activation loads; taking them far apart keeps four independent streams of weight loads in flight.
 */
@inline function matmulQ(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32, four: bool): void {
  const nb = K / QK;
  const rowW: usize = four ? <usize>K >> 1 : <usize>K;
  const bw: usize = four ? QK / 2 : QK;                 // weight bytes per block
  const rowS = <usize>nb << 2;
  for (let i = 0; i < M; i++) {
    const px = qx + <usize>i * <usize>K, psx = sx + <usize>i * rowS;
    const po = out + ((<usize>i * <usize>ldo) << 2);
    // four far-apart weight rows (u, u+S, u+2S, u+3S) per pass: four memory streams in flight
    const S = (N & ~3) >> 2;
    const wS = <usize>S * rowW, sS = <usize>S * rowS;
    for (let u = 0; u < S; u++) {
      const pw = qw + <usize>u * rowW, ps = sw + <usize>u * rowS;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * QK, ow = <usize>b * bw, os = <usize>b << 2;
        const x0 = v128.load(px + o), x1 = v128.load(px + o + 16);
        const dx = load<f32>(psx + os);
        if (four) {
          a0 = scaleAdd(a0, dot32(x0, x1, unpack4lo(pw + ow), unpack4hi(pw + ow)), load<f32>(ps + os), dx);
          a1 = scaleAdd(a1, dot32(x0, x1, unpack4lo(pw + wS + ow), unpack4hi(pw + wS + ow)), load<f32>(ps + sS + os), dx);
          a2 = scaleAdd(a2, dot32(x0, x1, unpack4lo(pw + 2 * wS + ow), unpack4hi(pw + 2 * wS + ow)), load<f32>(ps + 2 * sS + os), dx);
          a3 = scaleAdd(a3, dot32(x0, x1, unpack4lo(pw + 3 * wS + ow), unpack4hi(pw + 3 * wS + ow)), load<f32>(ps + 3 * sS + os), dx);
        } else {
          a0 = scaleAdd(a0, dot32(x0, x1, v128.load(pw + ow), v128.load(pw + ow + 16)), load<f32>(ps + os), dx);
          a1 = scaleAdd(a1, dot32(x0, x1, v128.load(pw + wS + ow), v128.load(pw + wS + ow + 16)), load<f32>(ps + sS + os), dx);
          a2 = scaleAdd(a2, dot32(x0, x1, v128.load(pw + 2 * wS + ow), v128.load(pw + 2 * wS + ow + 16)), load<f32>(ps + 2 * sS + os), dx);
          a3 = scaleAdd(a3, dot32(x0, x1, v128.load(pw + 3 * wS + ow), v128.load(pw + 3 * wS + ow + 16)), load<f32>(ps + 3 * sS + os), dx);
        }
      }
      const pj = po + (<usize>u << 2), oS = <usize>S << 2;
      store<f32>(pj, hsumf(a0)); store<f32>(pj + oS, hsumf(a1)); store<f32>(pj + 2 * oS, hsumf(a2)); store<f32>(pj + 3 * oS, hsumf(a3));
    }
    let j = S << 2;
    for (; j < N; j++) {
      const pw = qw + <usize>j * rowW, ps = sw + <usize>j * rowS;
      let a0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * QK, ow = <usize>b * bw, os = <usize>b << 2;
        const x0 = v128.load(px + o), x1 = v128.load(px + o + 16);
        const w0 = four ? unpack4lo(pw + ow) : v128.load(pw + ow), w1 = four ? unpack4hi(pw + ow) : v128.load(pw + ow + 16);
        a0 = scaleAdd(a0, dot32(x0, x1, w0, w1), load<f32>(ps + os), load<f32>(psx + os));
      }
      store<f32>(po + (<usize>j << 2), hsumf(a0));
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
