/**
 * Floats of the `work` buffer the chunked SSD kernels need (src/kernels/ref/ssd.ts, and their wasm
 * twins): (5Q + 3Q² + 3QP + PN) for one chunk of one head, plus (B, H, P, N) for the state
 * gradients the backward carries from chunk to chunk. Kept outside ref/ so the kernel list, which
 * is every multi-argument function exported there, does not take it for a kernel.
 */
export function ssdWorkSize(B: number, H: number, P: number, N: number, Q: number): number {
  return 5 * Q + 3 * Q * Q + 3 * Q * P + P * N + B * H * P * N;
}
