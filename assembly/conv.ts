/**
 * Causal depthwise conv1d, channels last, f32x4 over channels. Same contracts as
 * src/kernels/ref/conv.ts. Kernel widths K ≤ 4 (Mamba uses 4) take a sliding-window path that
 * keeps the K weight vectors and the last K input vectors in locals (a kernel narrower than 4 is
 * treated as width 4 with leading zero taps); wider kernels take a plain loop. Channels beyond the
 * last multiple of 4 run scalar.
 */

/** Gather w[c..c+3, k] (w is (C, K)) into one vector; zero when k is out of [0, K). */
@inline function wcol(w: usize, c: i32, k: i32, K: i32): v128 {
  if (k < 0 || k >= K) return f32x4.splat(0);
  const rowW = <usize>K << 2;
  const p = w + (<usize>c * <usize>K + <usize>k) * 4;
  let v = v128.load32_zero(p);
  v = v128.load32_lane(p + rowW, v, 1);
  v = v128.load32_lane(p + 2 * rowW, v, 2);
  v = v128.load32_lane(p + 3 * rowW, v, 3);
  return v;
}

@inline function wcolAdd(w: usize, c: i32, k: i32, K: i32, v: v128): void {
  if (k < 0 || k >= K) return;
  const rowW = <usize>K << 2;
  const p = w + (<usize>c * <usize>K + <usize>k) * 4;
  store<f32>(p, load<f32>(p) + f32x4.extract_lane(v, 0));
  store<f32>(p + rowW, load<f32>(p + rowW) + f32x4.extract_lane(v, 1));
  store<f32>(p + 2 * rowW, load<f32>(p + 2 * rowW) + f32x4.extract_lane(v, 2));
  store<f32>(p + 3 * rowW, load<f32>(p + 3 * rowW) + f32x4.extract_lane(v, 3));
}

export function conv1dForward(out: usize, x: usize, w: usize, bias: usize, B: i32, L: i32, C: i32, K: i32): void {
  conv1dPrefill(out, x, 0, w, bias, B, L, C, K);
}

/**
 * Rows per block of the sliding-window prefill (see conv1dPrefill): 8 keeps a power-of-two row
 * stride (C = 1024, 2048: every row in one L1 set) within the set's ways; 16 did not.
 */
const TB: i32 = 8;

/** x_r of channels c..c+3: row r of x, or for r < 0 the state's slot K + r (zeros without a state or past its start). */
@inline function xrow(xb: usize, sb: usize, state: usize, r: i32, c: i32, K: i32, rowC: usize): v128 {
  if (r >= 0) return v128.load(xb + <usize>r * rowC + (<usize>c << 2));
  return state ? wcol(sb, c, K + r, K) : f32x4.splat(0);
}

/**
 * The conv of a prefill that continues from the recurrent state (B, C, K) (slot K−1 the newest):
 * inputs before t = 0 come from it instead of zeros; state 0 means zeros (conv1dForward). The
 * sliding window simply starts filled with the state's last inputs.
 */
export function conv1dPrefill(out: usize, x: usize, state: usize, w: usize, bias: usize, B: i32, L: i32, C: i32, K: i32): void {
  const rowC = <usize>C << 2;
  const C4 = C & ~3;
  for (let b = 0; b < B; b++) {
    const xb = x + <usize>b * <usize>L * rowC, ob = out + <usize>b * <usize>L * rowC;
    const sb = state + <usize>b * <usize>C * (<usize>K << 2);
    if (K <= 4) {
      // TB rows at a time for every channel group: rows C·4 bytes apart share a few L1 sets (at
      // C = 1536 a whole column walk thrashed them), and TB rows stay cached for the next group
      for (let t0 = 0; t0 < L; t0 += TB) {
        const t1 = min<i32>(L, t0 + TB);
        for (let c = 0; c < C4; c += 4) {
          const co = <usize>c << 2;
          const bv = v128.load(bias + co);
          // taps aligned to the right: w3 multiplies x_t, w2 x_{t-1}, ...
          const w0 = wcol(w, c, K - 4, K), w1 = wcol(w, c, K - 3, K), w2 = wcol(w, c, K - 2, K), w3 = wcol(w, c, K - 1, K);
          let x0 = xrow(xb, sb, state, t0 - 3, c, K, rowC),
            x1 = xrow(xb, sb, state, t0 - 2, c, K, rowC),
            x2 = xrow(xb, sb, state, t0 - 1, c, K, rowC);
          let px = xb + <usize>t0 * rowC + co, po = ob + <usize>t0 * rowC + co;
          for (let t = t0; t < t1; t++) {
            const x3 = v128.load(px);
            const s = f32x4.add(f32x4.add(bv, f32x4.mul(w0, x0)),
              f32x4.add(f32x4.mul(w1, x1), f32x4.add(f32x4.mul(w2, x2), f32x4.mul(w3, x3))));
            v128.store(po, s);
            x0 = x1; x1 = x2; x2 = x3;
            px += rowC; po += rowC;
          }
        }
      }
    } else {
      for (let c = 0; c < C4; c += 4) {
        const co = <usize>c << 2;
        const bv = v128.load(bias + co);
        for (let t = 0; t < L; t++) {
          let s = bv;
          for (let k = 0; k < K; k++) {
            const tt = t - (K - 1) + k;
            if (tt >= 0) s = f32x4.add(s, f32x4.mul(wcol(w, c, k, K), v128.load(xb + <usize>tt * rowC + co)));
            else if (state) s = f32x4.add(s, f32x4.mul(wcol(w, c, k, K), wcol(sb, c, K + tt, K)));
          }
          v128.store(ob + <usize>t * rowC + co, s);
        }
      }
    }
    for (let c = C4; c < C; c++) {
      const co = <usize>c << 2;
      for (let t = 0; t < L; t++) {
        let s = load<f32>(bias + co);
        for (let k = 0; k < K; k++) {
          const tt = t - (K - 1) + k, wk = load<f32>(w + (<usize>c * <usize>K + <usize>k) * 4);
          if (tt >= 0) s += wk * load<f32>(xb + <usize>tt * rowC + co);
          else if (state) s += wk * load<f32>(sb + (<usize>c * <usize>K + <usize>(K + tt)) * 4);
        }
        store<f32>(ob + <usize>t * rowC + co, s);
      }
    }
  }
}

export function conv1dBackward(dx: usize, dw: usize, dbias: usize, dout: usize, x: usize, w: usize,
  B: i32, L: i32, C: i32, K: i32): void {
  const rowC = <usize>C << 2;
  const C4 = C & ~3;
  for (let c = 0; c < C4; c += 4) {
    const co = <usize>c << 2;
    let db = f32x4.splat(0);
    if (K <= 4) {
      const w0 = wcol(w, c, K - 4, K), w1 = wcol(w, c, K - 3, K), w2 = wcol(w, c, K - 2, K), w3 = wcol(w, c, K - 1, K);
      let dw0 = f32x4.splat(0), dw1 = f32x4.splat(0), dw2 = f32x4.splat(0), dw3 = f32x4.splat(0);
      for (let b = 0; b < B; b++) {
        const base = <usize>b * <usize>L * rowC + co;
        // weights and bias: dw_k += g_t · x_{t-3+k}
        let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0);
        let px = x + base, pg = dout + base;
        for (let t = 0; t < L; t++) {
          const x3 = v128.load(px), g = v128.load(pg);
          db = f32x4.add(db, g);
          dw0 = f32x4.add(dw0, f32x4.mul(g, x0));
          dw1 = f32x4.add(dw1, f32x4.mul(g, x1));
          dw2 = f32x4.add(dw2, f32x4.mul(g, x2));
          dw3 = f32x4.add(dw3, f32x4.mul(g, x3));
          x0 = x1; x1 = x2; x2 = x3;
          px += rowC; pg += rowC;
        }
        // inputs: dx_t += w3·g_t + w2·g_{t+1} + w1·g_{t+2} + w0·g_{t+3}  (g = 0 past L), walked backwards
        let g1 = f32x4.splat(0), g2 = f32x4.splat(0), g3 = f32x4.splat(0); // g_{t+1}, g_{t+2}, g_{t+3}
        if (L > 0) {
          let pd = dx + base + <usize>(L - 1) * rowC;
          pg = dout + base + <usize>(L - 1) * rowC;
          for (let t = L - 1; t >= 0; t--) {
            const g0 = v128.load(pg);
            const s = f32x4.add(f32x4.add(f32x4.mul(w3, g0), f32x4.mul(w2, g1)), f32x4.add(f32x4.mul(w1, g2), f32x4.mul(w0, g3)));
            v128.store(pd, f32x4.add(v128.load(pd), s));
            g3 = g2; g2 = g1; g1 = g0;
            pd -= rowC; pg -= rowC;
          }
        }
      }
      wcolAdd(dw, c, K - 4, K, dw0);
      wcolAdd(dw, c, K - 3, K, dw1);
      wcolAdd(dw, c, K - 2, K, dw2);
      wcolAdd(dw, c, K - 1, K, dw3);
    } else {
      for (let b = 0; b < B; b++) {
        const base = <usize>b * <usize>L * rowC + co;
        for (let t = 0; t < L; t++) {
          const g = v128.load(dout + base + <usize>t * rowC);
          db = f32x4.add(db, g);
          const kLo = max<i32>(0, K - 1 - t);
          for (let k = kLo; k < K; k++) {
            const tt = t - (K - 1) + k;
            const xo = base + <usize>tt * rowC;
            wcolAdd(dw, c, k, K, f32x4.mul(g, v128.load(x + xo)));
            v128.store(dx + xo, f32x4.add(v128.load(dx + xo), f32x4.mul(g, wcol(w, c, k, K))));
          }
        }
      }
    }
    v128.store(dbias + co, f32x4.add(v128.load(dbias + co), db));
  }
  for (let c = C4; c < C; c++) {
    const co = <usize>c << 2;
    for (let b = 0; b < B; b++) {
      const base = <usize>b * <usize>L * rowC + co;
      for (let t = 0; t < L; t++) {
        const g = load<f32>(dout + base + <usize>t * rowC);
        store<f32>(dbias + co, load<f32>(dbias + co) + g);
        for (let k = 0; k < K; k++) {
          const tt = t - (K - 1) + k;
          if (tt >= 0) {
            const xo = base + <usize>tt * rowC;
            const pw = (<usize>c * <usize>K + <usize>k) * 4;
            store<f32>(dw + pw, load<f32>(dw + pw) + g * load<f32>(x + xo));
            store<f32>(dx + xo, load<f32>(dx + xo) + g * load<f32>(w + pw));
          }
        }
      }
    }
  }
}

/**
 * One recurrent step: state (B, C, K) shifted left with x appended, out = bias + Σ_k w·state.
 * Width 4 uses one vector per channel; other widths run scalar.
 */
export function conv1dStep(out: usize, state: usize, x: usize, w: usize, bias: usize, B: i32, C: i32, K: i32): void {
  if (K <= 0) {
    for (let i = 0, n = B * C; i < n; i++) {
      const c = i % C;
      store<f32>(out + (<usize>i << 2), load<f32>(bias + (<usize>c << 2)));
    }
    return;
  }
  const rowK = <usize>K << 2;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const i = <usize>b * <usize>C + <usize>c;
      convChannelStep(out + (i << 2), state + i * rowK, w + <usize>c * rowK, load<f32>(x + (i << 2)),
        load<f32>(bias + (<usize>c << 2)), K);
    }
  }
}

/**
 * One channel's step (K ≥ 1): its window ps (K) shifted left with xv appended, *po = bias + Σ w·window.
 * The fused decoding step (mamba1.ts) runs the same, so both compute the same bits.
 */
@inline export function convChannelStep(po: usize, ps: usize, pw: usize, xv: f32, bias: f32, K: i32): void {
  const rowK = <usize>K << 2;
  if (K == 4) {
    const s = f32x4.replace_lane(f32x4.shuffle(v128.load(ps), v128.load(ps), 1, 2, 3, 0), 3, xv);
    v128.store(ps, s);
    const p = f32x4.mul(s, v128.load(pw));
    // same order as a sequential sum is not required; bias + lanes
    const t = f32x4.add(p, f32x4.shuffle(p, p, 2, 3, 0, 1));
    const sum = f32x4.extract_lane(f32x4.add(t, f32x4.shuffle(t, t, 1, 0, 3, 2)), 0);
    store<f32>(po, bias + sum);
  } else {
    for (let k = 0; k < K - 1; k++) {
      const o = <usize>k << 2;
      store<f32>(ps + o, load<f32>(ps + o + 4));
    }
    store<f32>(ps + rowK - 4, xv);
    let s = bias;
    for (let k = 0; k < K; k++) {
      const o = <usize>k << 2;
      s += load<f32>(pw + o) * load<f32>(ps + o);
    }
    store<f32>(po, s);
  }
}
