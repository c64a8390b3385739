import type { F } from './types.js';

/**
 * Partial rotary position embedding (GPT-NeoX's rotary_pct; transformers' partial_rotary_factor,
 * which Bamba sets to 0.5): the first rd channels of each head are rotated in Llama's rotate_half
 * layout with frequencies theta^(−2i/rd), i < rd/2; the other hd − rd channels pass unchanged.
 * With rd = hd it is ropeForward. Angles in float64, as ropeForward.
 * out, x (B, L, H, hd); out may alias x.
 */
export function ropePartialForward(
  out: F,
  x: F,
  B: number,
  L: number,
  H: number,
  hd: number,
  rd: number,
  pos0: number,
  theta: number,
): void {
  rotatePartial(out, x, B, L, H, hd, rd, pos0, theta, 1, false);
}

/** dx (B, L, H, hd) += Rᵀ·dout: the rotated channels turn back by −angle, the others pass. */
export function ropePartialBackward(
  dx: F,
  dout: F,
  B: number,
  L: number,
  H: number,
  hd: number,
  rd: number,
  pos0: number,
  theta: number,
): void {
  rotatePartial(dx, dout, B, L, H, hd, rd, pos0, theta, -1, true);
}

function rotatePartial(
  out: F,
  x: F,
  B: number,
  L: number,
  H: number,
  hd: number,
  rd: number,
  pos0: number,
  theta: number,
  sign: 1 | -1,
  acc: boolean,
): void {
  const half = rd >> 1;
  for (let t = 0; t < L; t++) {
    const p = pos0 + t;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const o = ((b * L + t) * H + h) * hd;
        for (let i = 0; i < half; i++) {
          const a = p * theta ** ((-2 * i) / rd),
            c = Math.cos(a),
            s = sign * Math.sin(a);
          const x1 = x[o + i],
            x2 = x[o + i + half];
          const y1 = x1 * c - x2 * s,
            y2 = x2 * c + x1 * s;
          if (acc) {
            out[o + i] += y1;
            out[o + i + half] += y2;
          } else {
            out[o + i] = y1;
            out[o + i + half] = y2;
          }
        }
        for (let i = rd; i < hd; i++) out[o + i] = acc ? out[o + i] + x[o + i] : x[o + i];
      }
    }
  }
}
