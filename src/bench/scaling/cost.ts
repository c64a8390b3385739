import type { WorkCount } from '../../energy/index.js';
import type { MambaConfig } from '../../models/mamba/config.js';
import type { LlamaConfig } from '../../models/transformer/config.js';
import type { Mamba2Config } from '../../models/mamba2/config.js';

/**
 * Work of one decoded token, counted from the configuration, for the analytic energy estimate
 * (energy/analytic.ts): multiply-accumulates (elementwise operations — exp, silu, norms, softmax —
 * counted as one each) and bytes moved (every weight read once, float32; the recurrent state or the
 * KV cache read and the new entries written).
 */

const F32 = 4;

/** Mamba-1 decode step: independent of the context length. */
export function mambaDecodeWork(c: MambaConfig, parameters: number): WorkCount {
  const { dModel: D, dInner: ED, dState: N, dConv: K, dtRank: R, vocabSize: V } = c;
  const perLayer =
    D * 2 * ED + // in_proj
    ED * K + // causal conv, one step
    ED * (R + 2 * N) + // x_proj
    R * ED + // dt_proj
    ED * N * 4 + // scan: exp(Δ·A), h = dA·h + Δ·B·x, y = C·h
    ED * D + // out_proj
    8 * ED +
    3 * D; // silu ×2, softplus, gate, D·x, residual, RMSNorm
  const macs = c.nLayer * perLayer + D * V + 3 * D;
  const stateBytes = c.nLayer * ED * (K + N) * F32;
  return { macs, bytes: parameters * F32 + 2 * stateBytes };
}

/** Mamba-2 decode step: independent of the context length. */
export function mamba2DecodeWork(c: Mamba2Config, parameters: number): WorkCount {
  const { dModel: D, dInner: ED, dState: N, dConv: K, nHeads: H, nGroups: G, vocabSize: V } = c;
  const CD = ED + 2 * G * N,
    IP = ED + CD + H;
  const perLayer =
    D * IP + // in_proj
    CD * K + // causal conv, one step
    ED * N * 3 +
    H + // h = exp(Δ·A)·h + Δ·x·Bᵀ, y = h·C, one exp per head
    ED * D + // out_proj
    8 * ED +
    3 * D; // silu ×2, softplus, gated norm, D·x, residual, RMSNorm
  const macs = c.nLayer * perLayer + D * V + 3 * D;
  const stateBytes = c.nLayer * (CD * K + ED * N) * F32;
  return { macs, bytes: parameters * F32 + 2 * stateBytes };
}

/** Transformer decode step at `context` tokens already cached (the new token attends to context + 1). */
export function transformerDecodeWork(c: LlamaConfig, parameters: number, context: number): WorkCount {
  const { dModel: D, nHead: H, nKvHead: Hkv, headDim: hd, intermediateSize: F, vocabSize: V } = c;
  const m = context + 1;
  const perLayer =
    D * H * hd +
    2 * D * Hkv * hd +
    H * hd * D + // q, k, v, o projections
    (H + Hkv) * hd + // rotary embedding
    H * m * hd * 2 + // q·k over the cache, then p·v
    H * m * 3 + // softmax: max, exp, sum
    3 * D * F +
    2 * F + // SwiGLU MLP
    6 * D; // two RMSNorms, two residuals
  const macs = c.nLayer * perLayer + D * V + 3 * D;
  const kvRead = c.nLayer * 2 * Hkv * m * hd * F32,
    kvWrite = c.nLayer * 2 * Hkv * hd * F32;
  return { macs, bytes: parameters * F32 + kvRead + kvWrite };
}

/** Bytes the KV cache needs per token of context. */
export function kvBytesPerToken(c: LlamaConfig): number {
  return c.nLayer * 2 * c.nKvHead * c.headDim * F32;
}
