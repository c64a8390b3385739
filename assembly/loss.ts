/**
 * Embedding lookup and softmax cross-entropy. Same contracts as src/kernels/ref/loss.ts; the id and
 * target arrays are byte offsets of i32 arrays.
 */
import { ldN, stN, vexp, hsum, hmax, slog } from './vmath';

/** out (n, D) <- table (V, D) rows at ids (n) */
export function embeddingForward(out: usize, table: usize, ids: usize, n: i32, D: i32): void {
  const rowD = <usize>D << 2;
  for (let i = 0; i < n; i++) {
    const id = <usize>load<i32>(ids + (<usize>i << 2));
    memory.copy(out + <usize>i * rowD, table + id * rowD, rowD);
  }
}

/** dtable (V, D) += scatter of dout (n, D) at ids */
export function embeddingBackward(dtable: usize, dout: usize, ids: usize, n: i32, D: i32): void {
  const rowD = <usize>D << 2;
  for (let i = 0; i < n; i++) {
    const pt = dtable + <usize>load<i32>(ids + (<usize>i << 2)) * rowD;
    const pg = dout + <usize>i * rowD;
    for (let j = 0; j < D; j += 4) {
      const o = <usize>j << 2, c = D - j;
      stN(pt + o, f32x4.add(ldN(pt + o, c), ldN(pg + o, c)), c);
    }
  }
}

/** losses (rows), lse (rows) <- logits (rows, V), targets (rows): max-shifted log-sum-exp. */
export function crossEntropyForward(losses: usize, lse: usize, logits: usize, targets: usize, rows: i32, V: i32): void {
  const rowV = <usize>V << 2;
  const V4 = V & ~3;
  for (let r = 0; r < rows; r++) {
    const p = logits + <usize>r * rowV;
    let m: f32 = -Infinity;
    if (V4 > 0) {
      let mv = v128.load(p);
      for (let v = 4; v < V4; v += 4) mv = f32x4.pmax(mv, v128.load(p + (<usize>v << 2)));
      m = hmax(mv);
    }
    for (let v = V4; v < V; v++) m = max<f32>(m, load<f32>(p + (<usize>v << 2)));
    const mvec = f32x4.splat(m);
    let sv = f32x4.splat(0);
    for (let v = 0; v < V4; v += 4) sv = f32x4.add(sv, vexp(f32x4.sub(v128.load(p + (<usize>v << 2)), mvec)));
    if (V4 < V) {
      // partial vector: lanes past V contribute exp(-inf) = 0
      let tail = f32x4.splat(-Infinity);
      for (let v = V4; v < V; v++) tail = f32x4.replace_lane(tail, 0, load<f32>(p + (<usize>v << 2))), tail = f32x4.shuffle(tail, tail, 1, 2, 3, 0);
      sv = f32x4.add(sv, vexp(f32x4.sub(tail, mvec)));
    }
    const l = m + slog(hsum(sv));
    store<f32>(lse + (<usize>r << 2), l);
    const tgt = <usize>load<i32>(targets + (<usize>r << 2));
    store<f32>(losses + (<usize>r << 2), l - load<f32>(p + (tgt << 2)));
  }
}

/** dlogits (rows, V) += dloss[r] · (softmax(logits) − onehot(target)) */
export function crossEntropyBackward(dlogits: usize, dloss: usize, logits: usize, lse: usize, targets: usize, rows: i32, V: i32): void {
  const rowV = <usize>V << 2;
  for (let r = 0; r < rows; r++) {
    const p = logits + <usize>r * rowV, pd = dlogits + <usize>r * rowV;
    const g = load<f32>(dloss + (<usize>r << 2));
    const gv = f32x4.splat(g), lv = f32x4.splat(load<f32>(lse + (<usize>r << 2)));
    for (let v = 0; v < V; v += 4) {
      const o = <usize>v << 2, c = V - v;
      stN(pd + o, f32x4.add(ldN(pd + o, c), f32x4.mul(gv, vexp(f32x4.sub(ldN(p + o, c), lv)))), c);
    }
    const pt = pd + (<usize>load<i32>(targets + (<usize>r << 2)) << 2);
    store<f32>(pt, load<f32>(pt) - g);
  }
}
