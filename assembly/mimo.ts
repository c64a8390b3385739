/**
 * Mamba-3 MIMO's per-head rank projections, f32x4 over the head's channels: the twins of
 * src/kernels/ref/mimo.ts (read it for the math). Shapes: x (M, H, P), ranked (M, H, R, P),
 * w (H, R, P). Pointers are byte offsets; an optional gradient at offset 0 is skipped.
 */
import { ldN, stN } from './vmath';

/** out (M, H, R, P) (=, or += with acc) x (M, H, P) ⊙ w (H, R, P), broadcast over the ranks. */
@inline function up(out: usize, x: usize, w: usize, M: i32, H: i32, R: i32, P: i32, acc: bool): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++) {
      const xo = x + (<usize>((m * H + h) * P) << 2);
      for (let r = 0; r < R; r++) {
        const o = out + (<usize>(((m * H + h) * R + r) * P) << 2), wo = w + (<usize>((h * R + r) * P) << 2);
        for (let p = 0; p < P; p += 4) {
          const b = <usize>p << 2, c = P - p, v = f32x4.mul(ldN(xo + b, c), ldN(wo + b, c));
          stN(o + b, acc ? f32x4.add(ldN(o + b, c), v) : v, c);
        }
      }
    }
}

/** out (M, H, P) (=, or += with acc) Σ_r o (M, H, R, P) ⊙ w (H, R, P). */
@inline function down(out: usize, o: usize, w: usize, M: i32, H: i32, R: i32, P: i32, acc: bool): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++) {
      const yo = out + (<usize>((m * H + h) * P) << 2);
      for (let p = 0; p < P; p += 4) {
        const b = <usize>p << 2, c = P - p;
        let s = acc ? ldN(yo + b, c) : f32x4.splat(0);
        for (let r = 0; r < R; r++) {
          const oo = o + (<usize>(((m * H + h) * R + r) * P) << 2), wo = w + (<usize>((h * R + r) * P) << 2);
          s = f32x4.add(s, f32x4.mul(ldN(oo + b, c), ldN(wo + b, c)));
        }
        stN(yo + b, s, c);
      }
    }
}

/** dw (H, R, P) += Σ_m ranked (M, H, R, P) ⊙ plain (M, H, P). */
@inline function weightGrad(dw: usize, ranked: usize, plain: usize, M: i32, H: i32, R: i32, P: i32): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++) {
      const xo = plain + (<usize>((m * H + h) * P) << 2);
      for (let r = 0; r < R; r++) {
        const o = ranked + (<usize>(((m * H + h) * R + r) * P) << 2), wo = dw + (<usize>((h * R + r) * P) << 2);
        for (let p = 0; p < P; p += 4) {
          const b = <usize>p << 2, c = P - p;
          stN(wo + b, f32x4.add(ldN(wo + b, c), f32x4.mul(ldN(o + b, c), ldN(xo + b, c))), c);
        }
      }
    }
}

export function mimoUpForward(out: usize, x: usize, w: usize, M: i32, H: i32, R: i32, P: i32): void {
  up(out, x, w, M, H, R, P, false);
}

export function mimoUpBackward(dx: usize, dw: usize, dout: usize, x: usize, w: usize, M: i32, H: i32, R: i32, P: i32): void {
  if (dx != 0) down(dx, dout, w, M, H, R, P, true);
  if (dw != 0) weightGrad(dw, dout, x, M, H, R, P);
}

export function mimoDownForward(out: usize, o: usize, w: usize, M: i32, H: i32, R: i32, P: i32): void {
  down(out, o, w, M, H, R, P, false);
}

export function mimoDownBackward(dO: usize, dw: usize, dout: usize, o: usize, w: usize, M: i32, H: i32, R: i32, P: i32): void {
  if (dO != 0) up(dO, dout, w, M, H, R, P, true);
  if (dw != 0) weightGrad(dw, o, dout, M, H, R, P);
}
