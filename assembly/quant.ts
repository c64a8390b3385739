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

/** i32x4 partial sums of the exact dot product of two 16-value int8 vectors. */
@inline function dot16(a: v128, b: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b)));
}

@inline function hsumf(v: v128): f32 {
  const t = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(t, f32x4.shuffle(t, t, 1, 0, 3, 2)), 0);
}

/** out (M, N) rows `ldo` floats apart = qx (M, K) @ qw (N, K)^T, q8 weights. */
export function matmulQ8Strided(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  const nb = K / QK;
  for (let i = 0; i < M; i++) {
    const px = qx + <usize>i * <usize>K, psx = sx + ((<usize>i * <usize>nb) << 2);
    const po = out + ((<usize>i * <usize>ldo) << 2);
    let j = 0;
    for (; j + 2 <= N; j += 2) {
      const pw0 = qw + <usize>j * <usize>K, pw1 = pw0 + <usize>K;
      const ps0 = sw + ((<usize>j * <usize>nb) << 2), ps1 = ps0 + ((<usize>nb) << 2);
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * QK;
        const x0 = v128.load(px + o), x1 = v128.load(px + o + 16);
        const s0 = i32x4.add(dot16(x0, v128.load(pw0 + o)), dot16(x1, v128.load(pw0 + o + 16)));
        const s1 = i32x4.add(dot16(x0, v128.load(pw1 + o)), dot16(x1, v128.load(pw1 + o + 16)));
        const dx = load<f32>(psx + (<usize>b << 2));
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(load<f32>(ps0 + (<usize>b << 2)) * dx)));
        acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(s1), f32x4.splat(load<f32>(ps1 + (<usize>b << 2)) * dx)));
      }
      store<f32>(po + (<usize>j << 2), hsumf(acc0));
      store<f32>(po + (<usize>(j + 1) << 2), hsumf(acc1));
    }
    for (; j < N; j++) {
      const pw0 = qw + <usize>j * <usize>K, ps0 = sw + ((<usize>j * <usize>nb) << 2);
      let acc0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * QK;
        const s0 = i32x4.add(dot16(v128.load(px + o), v128.load(pw0 + o)), dot16(v128.load(px + o + 16), v128.load(pw0 + o + 16)));
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(load<f32>(ps0 + (<usize>b << 2)) * load<f32>(psx + (<usize>b << 2)))));
      }
      store<f32>(po + (<usize>j << 2), hsumf(acc0));
    }
  }
}

export function matmulQ8(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulQ8Strided(out, qx, sx, qw, sw, M, N, K, N);
}

/** out (M, N) rows `ldo` floats apart = qx (M, K) @ qw (N, K)^T, q4 weights (nibbles). */
export function matmulQ4Strided(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  const nb = K / QK;
  const rowW = <usize>K >> 1;
  for (let i = 0; i < M; i++) {
    const px = qx + <usize>i * <usize>K, psx = sx + ((<usize>i * <usize>nb) << 2);
    const po = out + ((<usize>i * <usize>ldo) << 2);
    let j = 0;
    for (; j + 2 <= N; j += 2) {
      const pw0 = qw + <usize>j * rowW, pw1 = pw0 + rowW;
      const ps0 = sw + ((<usize>j * <usize>nb) << 2), ps1 = ps0 + ((<usize>nb) << 2);
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * QK, ow = <usize>b * (QK / 2);
        const x0 = v128.load(px + o), x1 = v128.load(px + o + 16);
        const s0 = i32x4.add(dot16(x0, unpack4lo(pw0 + ow)), dot16(x1, unpack4hi(pw0 + ow)));
        const s1 = i32x4.add(dot16(x0, unpack4lo(pw1 + ow)), dot16(x1, unpack4hi(pw1 + ow)));
        const dx = load<f32>(psx + (<usize>b << 2));
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(load<f32>(ps0 + (<usize>b << 2)) * dx)));
        acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(s1), f32x4.splat(load<f32>(ps1 + (<usize>b << 2)) * dx)));
      }
      store<f32>(po + (<usize>j << 2), hsumf(acc0));
      store<f32>(po + (<usize>(j + 1) << 2), hsumf(acc1));
    }
    for (; j < N; j++) {
      const pw0 = qw + <usize>j * rowW, ps0 = sw + ((<usize>j * <usize>nb) << 2);
      let acc0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const o = <usize>b * QK, ow = <usize>b * (QK / 2);
        const s0 = i32x4.add(dot16(v128.load(px + o), unpack4lo(pw0 + ow)), dot16(v128.load(px + o + 16), unpack4hi(pw0 + ow)));
        acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(load<f32>(ps0 + (<usize>b << 2)) * load<f32>(psx + (<usize>b << 2)))));
      }
      store<f32>(po + (<usize>j << 2), hsumf(acc0));
    }
  }
}

export function matmulQ4(out: usize, qx: usize, sx: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulQ4Strided(out, qx, sx, qw, sw, M, N, K, N);
}
