import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';
import { isWasm } from '../kernels/backend.js';
import { attentionForwardBlocked } from './attention-blocked.js';

/**
 * Differentiable ops of the transformer baseline (kernels in kernels/ref/attention.ts, gradient
 * rules in grads.ts). Shapes use the legend: B batch, L sequence, H query heads, Hkv key/value
 * heads, hd head size, F MLP width.
 */

function dims3(op: string, t: Tensor): [number, number, number] {
  if (t.shape.length !== 3) throw new Error(`${op}: expected a (B, L, C) tensor, got [${t.shape}]`);
  return [t.shape[0], t.shape[1], t.shape[2]];
}

/**
 * Rotary position embedding of x (B, L, heads·hd) for positions pos0 .. pos0+L-1 (rotate_half
 * convention of Hugging Face Llama) -> (B, L, heads·hd).
 */
export function rope(e: Engine, x: Tensor, heads: number, theta: number, pos0 = 0): Tensor {
  const [B, L, C] = dims3('rope', x),
    hd = C / heads;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`rope: ${C} channels do not split into ${heads} heads of an even size`);
  const out = e.zeros(x.shape);
  e.k.ropeForward(out, x, B, L, heads, hd, pos0, theta);
  e.tape?.record('rope', out, [x], [], { B, L, H: heads, hd, pos0, theta });
  return out;
}

/**
 * Causal softmax attention: q (B, L, H·hd), k and v (B, L, Hkv·hd) -> (B, L, H·hd), positions
 * 0 .. L-1 of each stream. Saves the per-row log-sum-exp (B, H, L) for the backward.
 */
export function causalAttention(e: Engine, q: Tensor, k: Tensor, v: Tensor, H: number, Hkv: number): Tensor {
  const [B, L, C] = dims3('causalAttention', q),
    hd = C / H;
  if (!Number.isInteger(hd) || H % Hkv !== 0) throw new Error(`causalAttention: ${C} channels, ${H} heads and ${Hkv} kv heads do not fit`);
  for (const t of [k, v]) {
    if (t.shape[0] !== B || t.shape[1] !== L || t.shape[2] !== Hkv * hd) {
      throw new Error(`causalAttention: keys/values [${t.shape}] do not match queries [${q.shape}] with ${Hkv} kv heads`);
    }
  }
  const out = e.zeros(q.shape),
    lse = e.zeros([B, H, L]);
  // the wasm backend runs the products on its SIMD matmuls (attention-blocked.ts); ref runs the spec
  if (isWasm(e.k.kind)) attentionForwardBlocked(e, out, lse, q, k, v, { B, L, H, Hkv, hd });
  else e.k.attentionForward(out, lse, q, k, v, B, L, H, Hkv, hd);
  e.tape?.record('attention', out, [q, k, v], [lse], { B, L, H, Hkv, hd });
  return out;
}

/** SwiGLU gate of Llama's MLP: silu(gate) ⊙ up, both (…, F) -> (…, F) */
export function swiglu(e: Engine, gate: Tensor, up: Tensor): Tensor {
  if (gate.size !== up.size) throw new Error(`swiglu: shapes [${gate.shape}] and [${up.shape}] differ`);
  const out = e.empty(gate.shape);
  e.k.swigluForward(out, gate, up, gate.size);
  e.tape?.record('swiglu', out, [gate, up], [], { n: gate.size });
  return out;
}
