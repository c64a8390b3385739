import type { HybridConfig } from './config.js';
import type { ParamSpec } from '../types.js';
import { mamba2MixerSpecs } from '../mamba2/params.js';
import { mambaMixerSpecs } from '../mamba/params.js';

/**
 * The one parameter table of a hybrid: transformers' BambaForCausalLM names and shapes
 * (model.layers.{i}.mamba.* for a state-space mixer, .self_attn.* for attention, .feed_forward.*
 * for the MLP), the state-space mixers' reference initialisation, and N(0, initializer_range) for
 * the attention and MLP projections and the embedding (transformers' _init_weights).
 */
export function hybridParamSpecs(c: HybridConfig): ParamSpec[] {
  const { dModel: D, nHead: H, nKvHead: Hkv, headDim: hd, intermediateSize: F, vocabSize: V } = c;
  const normal = { kind: 'normal' as const, std: c.initializerRange };
  const weight = (name: string, shape: number[]): ParamSpec => ({ name, shape, init: normal, decay: true });
  const bias = (on: boolean, name: string, n: number): ParamSpec[] =>
    on ? [{ name, shape: [n], init: { kind: 'zeros' }, decay: false }] : [];
  const ones = (name: string): ParamSpec => ({ name, shape: [D], init: { kind: 'ones' }, decay: false });
  const specs: ParamSpec[] = [weight('model.embed_tokens.weight', [V, D])];
  c.layerTypes.forEach((type, i) => {
    const p = `model.layers.${i}`,
      a = `${p}.self_attn`,
      f = `${p}.feed_forward`;
    specs.push(ones(`${p}.input_layernorm.weight`));
    if (type === 'mamba2') specs.push(...mamba2MixerSpecs(c.mamba2, `${p}.mamba`, c.nLayer));
    else if (type === 'mamba') specs.push(...mambaMixerSpecs(c.mamba, `${p}.mamba`, c.nLayer));
    else {
      specs.push(
        weight(`${a}.q_proj.weight`, [H * hd, D]),
        ...bias(c.attentionBias, `${a}.q_proj.bias`, H * hd),
        weight(`${a}.k_proj.weight`, [Hkv * hd, D]),
        ...bias(c.attentionBias, `${a}.k_proj.bias`, Hkv * hd),
        weight(`${a}.v_proj.weight`, [Hkv * hd, D]),
        ...bias(c.attentionBias, `${a}.v_proj.bias`, Hkv * hd),
        weight(`${a}.o_proj.weight`, [D, H * hd]),
        ...bias(c.attentionBias, `${a}.o_proj.bias`, D),
      );
    }
    specs.push(
      ones(`${p}.pre_ff_layernorm.weight`),
      weight(`${f}.gate_proj.weight`, [F, D]),
      ...bias(c.mlpBias, `${f}.gate_proj.bias`, F),
      weight(`${f}.up_proj.weight`, [F, D]),
      ...bias(c.mlpBias, `${f}.up_proj.bias`, F),
      weight(`${f}.down_proj.weight`, [D, F]),
      ...bias(c.mlpBias, `${f}.down_proj.bias`, D),
    );
  });
  specs.push(ones('model.final_layernorm.weight'));
  if (!c.tieWordEmbeddings) specs.push(weight('lm_head.weight', [V, D]));
  return specs;
}

/** Parameters of a hybrid from its config (bounded layer count; the table lists the same shapes). */
export function hybridParameterCount(c: HybridConfig): number {
  return hybridParamSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}
