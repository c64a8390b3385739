import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { attentionBackwardBlocked, attentionForwardBlocked, ATTENTION_TILE } from '../../src/ops/attention-blocked.js';
import { attentionBackward, attentionForward } from '../../src/kernels/ref/attention.js';
import { Rng } from '../../src/io/rng.js';

/**
 * The blocked training attention (matmul kernels, tiles of queries) against the reference kernels
 * it replaces on the wasm backend: forward output and log-sum-exp, and the three input gradients.
 */
interface Shape {
  B: number;
  L: number;
  H: number;
  Hkv: number;
  hd: number;
}

function compare(e: Engine, s: Shape, tol: number): void {
  const { B, L, H, Hkv, hd } = s,
    rng = Rng.fromSeed(L * 31 + H);
  const rnd = (n: number, scale: number) => Float64Array.from({ length: n }, () => rng.normal() * scale);
  const qv = rnd(B * L * H * hd, 1.5),
    kv = rnd(B * L * Hkv * hd, 1.5),
    vv = rnd(B * L * Hkv * hd, 1),
    dov = rnd(B * L * H * hd, 1);
  // reference, in float64
  const out = new Float64Array(qv.length),
    lse = new Float64Array(B * H * L);
  attentionForward(out, lse, qv, kv, vv, B, L, H, Hkv, hd);
  const dq = new Float64Array(qv.length).fill(0.25),
    dk = new Float64Array(kv.length).fill(0.25),
    dv = new Float64Array(vv.length).fill(0.25);
  attentionBackward(dq, dk, dv, dov, qv, kv, vv, out, lse, B, L, H, Hkv, hd);
  // blocked, on the engine under test (gradients start at 0.25: the backward must accumulate)
  const t = (values: Float64Array) => e.persistent([values.length]).set(values);
  const q = t(qv),
    k = t(kv),
    v = t(vv),
    dout = t(dov);
  const o = e.persistent([qv.length]),
    l = e.persistent([B * H * L]);
  attentionForwardBlocked(e, o, l, q, k, v, s);
  const gq = t(new Float64Array(qv.length).fill(0.25)),
    gk = t(new Float64Array(kv.length).fill(0.25)),
    gv = t(new Float64Array(vv.length).fill(0.25));
  attentionBackwardBlocked(e, gq, gk, gv, dout, q, k, v, o, l, s);
  const close = (name: string, got: Float64Array, want: Float64Array) => {
    let worst = 0,
      scale = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    expect(worst, `${name}: max error ${worst} against max |ref| ${scale}`).toBeLessThanOrEqual(tol * scale);
  };
  close('out', o.toFloat64(), out);
  close('lse', l.toFloat64(), lse);
  close('dq', gq.toFloat64(), dq);
  close('dk', gk.toFloat64(), dk);
  close('dv', gv.toFloat64(), dv);
}

const SHAPES: [string, Shape][] = [
  ['two tiles, grouped queries', { B: 2, L: ATTENTION_TILE + 6, H: 4, Hkv: 2, hd: 8 }],
  ['one token', { B: 3, L: 1, H: 1, Hkv: 1, hd: 4 }],
  ['a partial tile, one head', { B: 1, L: 13, H: 1, Hkv: 1, hd: 6 }],
];

describe('blocked causal attention against the reference kernels', () => {
  it.each(SHAPES)('float64 on the reference matmuls: %s', (_, s) => compare(new Engine({ kernels: 'ref', dtype: 'f64' }), s, 1e-12));
  it.each(SHAPES)('float32 on the wasm matmuls: %s', (_, s) => {
    const e = new Engine({ kernels: 'wasm' });
    try {
      compare(e, s, 1e-5);
    } finally {
      e.dispose();
    }
  });
});
