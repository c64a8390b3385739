import type { LlamaConfig } from './config.js';
import type { ParamSpec } from '../types.js';

/**
 * The one parameter table of the transformer baseline: Hugging Face Llama names and shapes
 * (LlamaForCausalLM), the reference initialisation (transformers' LlamaPreTrainedModel._init_weights:
 * every Linear and the embedding N(0, initializer_range), biases zero, RMSNorm weights one), and
 * whether AdamW decays the parameter. Allocation, loading, saving, gradients and optimiser state
 * all iterate over this list; nothing else lists parameters.
 */
export function llamaParamSpecs(c: LlamaConfig): ParamSpec[] {
  const { dModel: D, nHead: H, nKvHead: Hkv, headDim: hd, intermediateSize: F, vocabSize: V } = c;
  const normal = { kind: 'normal' as const, std: c.initializerRange };
  const zeros = { kind: 'zeros' as const };
  const weight = (name: string, shape: number[]): ParamSpec => ({ name, shape, init: normal, decay: true });
  const bias = (on: boolean, name: string, n: number): ParamSpec[] => (on ? [{ name, shape: [n], init: zeros, decay: false }] : []);
  const specs: ParamSpec[] = [weight('model.embed_tokens.weight', [V, D])];
  for (let i = 0; i < c.nLayer; i++) {
    const p = `model.layers.${i}`,
      a = `${p}.self_attn`,
      m = `${p}.mlp`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [D], init: { kind: 'ones' }, decay: false },
      weight(`${a}.q_proj.weight`, [H * hd, D]),
      ...bias(c.attentionBias, `${a}.q_proj.bias`, H * hd),
      weight(`${a}.k_proj.weight`, [Hkv * hd, D]),
      ...bias(c.attentionBias, `${a}.k_proj.bias`, Hkv * hd),
      weight(`${a}.v_proj.weight`, [Hkv * hd, D]),
      ...bias(c.attentionBias, `${a}.v_proj.bias`, Hkv * hd),
      weight(`${a}.o_proj.weight`, [D, H * hd]),
      ...bias(c.attentionBias, `${a}.o_proj.bias`, D),
      { name: `${p}.post_attention_layernorm.weight`, shape: [D], init: { kind: 'ones' }, decay: false },
      weight(`${m}.gate_proj.weight`, [F, D]),
      ...bias(c.mlpBias, `${m}.gate_proj.bias`, F),
      weight(`${m}.up_proj.weight`, [F, D]),
      ...bias(c.mlpBias, `${m}.up_proj.bias`, F),
      weight(`${m}.down_proj.weight`, [D, F]),
      ...bias(c.mlpBias, `${m}.down_proj.bias`, D),
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [D], init: { kind: 'ones' }, decay: false });
  if (!c.tieWordEmbeddings) specs.push(weight('lm_head.weight', [V, D]));
  return specs;
}
