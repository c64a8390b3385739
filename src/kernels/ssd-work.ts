/**
 * Floats of the `work` buffer the chunked SSD kernels need (src/kernels/ref/ssd.ts and the SIMD
 * twins in assembly/ssd.ts): for one chunk of one group, 6 vectors of Q, 5 matrices of Q², 5 of
 * Q·P, 5 of Q·N and 2 states P·N, plus (B, H, P, N) for the state gradients the backward carries
 * from chunk to chunk. Kept outside ref/ so the kernel list, which is every multi-argument
 * function exported there, does not take it for a kernel.
 */
export function ssdWorkSize(B: number, H: number, P: number, N: number, Q: number): number {
  return 6 * Q + 5 * Q * Q + 5 * Q * P + 5 * Q * N + 2 * P * N + B * H * P * N;
}
