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

/**
 * Floats of the `work` buffer of the Mamba-3 scan backward (src/kernels/ref/mamba3.ts, its SIMD
 * twin in assembly/mamba3-back.ts), in the order both carve it: the states after each step of a
 * chunk, row 0 the checkpoint ((chunk + 1)·W, W = PN + S + RN + RP), each step's turned C (chunk·RN),
 * one step's turned C and B (2RN) and outputs (RP), then the carried gradients of h, k_{t−1}, v_{t−1}
 * and θ (PN, RN, RP, S) and one token's dL/dh, dq, dk (PN, RN, RN).
 */
export function mamba3WorkSize(P: number, N: number, S: number, R: number, chunk: number): number {
  const PN = P * N,
    RN = R * N,
    RP = R * P;
  return (chunk + 1) * (PN + S + RN + RP) + chunk * RN + 2 * RN + RP + (PN + RN + RP + S) + (PN + 2 * RN);
}
