/**
 * AdamW with decoupled weight decay, f32x4. Same contract as src/kernels/ref/optim.ts. The scalar
 * hyper-parameters arrive as f64 so that 1−β1 and 1−β2 are formed before rounding to f32.
 */
import { ldN, stN } from './vmath';

export function adamwStep(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64,
  eps: f64, wd: f64, bc1: f64, bc2: f64): void {
  const b1 = f32x4.splat(<f32>beta1), omb1 = f32x4.splat(<f32>(1.0 - beta1));
  const b2 = f32x4.splat(<f32>beta2), omb2 = f32x4.splat(<f32>(1.0 - beta2));
  const ibc1 = f32x4.splat(<f32>(1.0 / bc1)), ibc2 = f32x4.splat(<f32>(1.0 / bc2));
  const lrv = f32x4.splat(<f32>lr), epsv = f32x4.splat(<f32>eps), wdv = f32x4.splat(<f32>wd);
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const gi = ldN(g + o, c);
    const mi = f32x4.add(f32x4.mul(b1, ldN(m + o, c)), f32x4.mul(omb1, gi));
    const vi = f32x4.add(f32x4.mul(b2, ldN(v + o, c)), f32x4.mul(f32x4.mul(omb2, gi), gi));
    stN(m + o, mi, c);
    stN(v + o, vi, c);
    const pi = ldN(p + o, c);
    const upd = f32x4.add(
      f32x4.div(f32x4.mul(mi, ibc1), f32x4.add(f32x4.sqrt(f32x4.mul(vi, ibc2)), epsv)),
      f32x4.mul(wdv, pi));
    stN(p + o, f32x4.sub(pi, f32x4.mul(lrv, upd)), c);
  }
}
