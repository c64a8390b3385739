/**
 * Measurement kernels for `frugal bench` (src/bench/speed-machine.ts). No reference twin: they
 * compute nothing a model uses, they only exercise the machine the way the real kernels do.
 */
import { hsum } from './vmath';

/**
 * out[0] = Σ x (n) over `passes` passes: a pure streaming read, to measure memory bandwidth.
 * Eight independent accumulators of 4 lanes (128 bytes per iteration) keep the adds off the
 * critical path, so the loop runs at the speed loads arrive. The sum is stored so the reads cannot
 * be optimised away. Threads split the range into pieces and sum their own.
 */
export function readBandwidth(out: usize, x: usize, n: i32, passes: i32): void {
  const body = n & ~31;
  const end = x + (<usize>body << 2);
  let total = f32x4.splat(0);
  for (let p = 0; p < passes; p++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    for (let q = x; q < end; q += 128) {
      a0 = f32x4.add(a0, v128.load(q));
      a1 = f32x4.add(a1, v128.load(q, 16));
      a2 = f32x4.add(a2, v128.load(q, 32));
      a3 = f32x4.add(a3, v128.load(q, 48));
      a4 = f32x4.add(a4, v128.load(q, 64));
      a5 = f32x4.add(a5, v128.load(q, 80));
      a6 = f32x4.add(a6, v128.load(q, 96));
      a7 = f32x4.add(a7, v128.load(q, 112));
    }
    const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
    total = f32x4.add(total, s);
  }
  let t = hsum(total);
  for (let i = body; i < n; i++) t += load<f32>(x + (<usize>i << 2)) * <f32>passes;
  store<f32>(out, t);
}
