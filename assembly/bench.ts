/**
 * Measurement kernels for `frugal bench` (src/bench/speed/machine.ts). No reference twin: they
 * compute nothing a model uses, they only exercise the machine the way the real kernels do.
 */
import { hsum } from './vmath';

/**
 * out[0] = Σ x (n): a pure streaming read, to measure memory bandwidth. x is read as `streams`
 * equal parts walked side by side, 64 bytes of each per round: a single sequential stream leaves
 * the hardware prefetchers under-used (≈ 10 GB/s on one core of a Xeon where 16 streams reach
 * ≈ 14), and the weight reads of a GEMV are many streams too. Four accumulators keep the adds off
 * the critical path. The sum is stored so the reads cannot be optimised away; threads split x
 * into contiguous pieces and sum their own.
 */
export function readBandwidth(out: usize, x: usize, n: i32, streams: i32): void {
  const S = max<i32>(streams, 1);
  const part = <usize>((n / S) & ~15) << 2; // bytes per stream, a multiple of 64
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let o: usize = 0; o < part; o += 64) {
    for (let s = 0; s < S; s++) {
      const q = x + <usize>s * part + o;
      a0 = f32x4.add(a0, v128.load(q));
      a1 = f32x4.add(a1, v128.load(q, 16));
      a2 = f32x4.add(a2, v128.load(q, 32));
      a3 = f32x4.add(a3, v128.load(q, 48));
    }
  }
  let t = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (let i = <i32>((part * <usize>S) >> 2); i < n; i++) t += load<f32>(x + (<usize>i << 2));
  store<f32>(out, t);
}
