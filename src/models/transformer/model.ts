import type { Tensor } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import { causalAttention, rope, swiglu } from '../../ops/attention.js';
import type { Rng } from '../../io/rng.js';
import type { LlamaConfig } from './config.js';
import { llamaConfigToHF } from './config.js';
import { llamaParamSpecs } from './params.js';
import { initValues } from '../init.js';
import { lmLogits, lmLoss } from '../lm.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from '../types.js';
import { TransformerRunner } from './runner.js';
import { inferenceLayout } from '../panels.js';

/** Parameters of one decoder layer, looked up once by name (biases null when the config has none). */
export interface LlamaLayer {
  inNorm: Tensor; // (D)
  q: Tensor;
  qBias: Tensor | null; // (H·hd, D)
  k: Tensor;
  kBias: Tensor | null; // (Hkv·hd, D)
  v: Tensor;
  vBias: Tensor | null; // (Hkv·hd, D)
  o: Tensor;
  oBias: Tensor | null; // (D, H·hd)
  postNorm: Tensor; // (D)
  gate: Tensor;
  gateBias: Tensor | null; // (F, D)
  up: Tensor;
  upBias: Tensor | null; // (F, D)
  down: Tensor;
  downBias: Tensor | null; // (D, F)
}

/**
 * The GPT-style decoder-only baseline (transformers' LlamaForCausalLM):
 *   embedding → n_layer × [h += o(attn(rope(q), rope(k), v) of RMSNorm(h)); h += down(silu(gate)·up) of RMSNorm(h)]
 *   → RMSNorm → lm_head (tied by default)
 * `forward` is the parallel, differentiable pass; `step` / `prefill` run the KV-cache path in
 * runner.ts, which keeps the keys and values of every past token (memory grows with context).
 */
export class TransformerLM implements TrainableModel {
  readonly e: Engine;
  readonly config: LlamaConfig;
  readonly specs: readonly ParamSpec[];
  readonly params: ParamTable;
  readonly layers: LlamaLayer[];
  readonly embed: Tensor;
  readonly norm: Tensor;
  readonly head: Tensor;
  private runner: TransformerRunner | null = null;

  /** Allocate parameters (zero-filled) for `config`; fill them with `init` or by loading. */
  constructor(e: Engine, config: LlamaConfig) {
    this.e = e;
    this.config = config;
    this.specs = Object.freeze(llamaParamSpecs(config));
    this.params = new Map();
    for (const s of this.specs) {
      const t = e.persistent(s.shape);
      t.requiresGrad = true;
      this.params.set(s.name, t);
    }
    const p = (name: string): Tensor => this.params.get(name) as Tensor;
    const opt = (name: string): Tensor | null => this.params.get(name) ?? null;
    this.layers = [];
    for (let i = 0; i < config.nLayer; i++) {
      const l = `model.layers.${i}`,
        a = `${l}.self_attn`,
        m = `${l}.mlp`;
      this.layers.push({
        inNorm: p(`${l}.input_layernorm.weight`),
        q: p(`${a}.q_proj.weight`),
        qBias: opt(`${a}.q_proj.bias`),
        k: p(`${a}.k_proj.weight`),
        kBias: opt(`${a}.k_proj.bias`),
        v: p(`${a}.v_proj.weight`),
        vBias: opt(`${a}.v_proj.bias`),
        o: p(`${a}.o_proj.weight`),
        oBias: opt(`${a}.o_proj.bias`),
        postNorm: p(`${l}.post_attention_layernorm.weight`),
        gate: p(`${m}.gate_proj.weight`),
        gateBias: opt(`${m}.gate_proj.bias`),
        up: p(`${m}.up_proj.weight`),
        upBias: opt(`${m}.up_proj.bias`),
        down: p(`${m}.down_proj.weight`),
        downBias: opt(`${m}.down_proj.bias`),
      });
    }
    this.embed = p('model.embed_tokens.weight');
    this.norm = p('model.norm.weight');
    this.head = config.tieWordEmbeddings ? this.embed : p('lm_head.weight');
  }

  /** Reference initialisation, drawn in parameter-table order from `rng`. */
  init(rng: Rng): this {
    for (const s of this.specs) {
      const t = this.params.get(s.name) as Tensor;
      t.panels = false; // drawn in the row layout (ops/panels.ts)
      initValues(t.floats(), s.shape, s.init, rng);
    }
    this.weightsChanged();
    return this;
  }

  /** Nothing is derived from the weights at present; kept for the TrainableModel contract. */
  weightsChanged(): void {
    /* the KV-cache path reads the parameters directly */
  }

  hfConfig(): Record<string, unknown> {
    return llamaConfigToHF(this.config);
  }

  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** Logits (B, L, V) for ids (B·L) at positions 0 .. L-1, differentiable. */
  forward(ids: Int32Array, B: number, L: number): Tensor {
    const e = this.e,
      c = this.config;
    if (ids.length !== B * L) throw new Error(`forward: ${ids.length} ids for B=${B}, L=${L}`);
    let h = op.embedding(e, this.embed, e.ids(ids, [B, L])); // (B, L, D)
    for (const ly of this.layers) {
      h = op.add(e, h, this.attention(ly, op.rmsnorm(e, h, ly.inNorm, c.rmsNormEps)));
      h = op.add(e, h, this.mlp(ly, op.rmsnorm(e, h, ly.postNorm, c.rmsNormEps)));
    }
    return lmLogits(e, h, this.norm, c.rmsNormEps, this.head); // (B, L, V)
  }

  /** The final-norm hidden states (B, L, D) of embedded inputs h (B, L, D), differentiable (continuous inputs, task heads). */
  hiddenForward(h: Tensor): Tensor {
    const e = this.e,
      c = this.config;
    for (const ly of this.layers) {
      h = op.add(e, h, this.attention(ly, op.rmsnorm(e, h, ly.inNorm, c.rmsNormEps)));
      h = op.add(e, h, this.mlp(ly, op.rmsnorm(e, h, ly.postNorm, c.rmsNormEps)));
    }
    return op.rmsnorm(e, h, this.norm, c.rmsNormEps);
  }

  /**
   * One embedded input (B, D) per stream: the final-norm hidden state (B, D), advancing `state`.
   * With `window`, the KV cache is a ring of that many rows (a sliding window: constant memory and
   * time per token; keys keep their absolute rotary positions, so only relative distances count).
   */
  hiddenStep(x: Float32Array, state: ModelState, window = Infinity): Float32Array {
    return this.getRunner().stepVectors(x, state, window);
  }

  /** Mean next-token cross-entropy (nats) of targets (B·L) given ids (B·L). */
  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor {
    return lmLoss(this, ids, targets, B, L);
  }

  /** Self-attention on x (B, L, D) -> (B, L, D). */
  private attention(ly: LlamaLayer, x: Tensor): Tensor {
    const e = this.e,
      { nHead: H, nKvHead: Hkv, ropeTheta } = this.config;
    const q = rope(e, op.linear(e, x, ly.q, ly.qBias), H, ropeTheta); // (B, L, H·hd)
    const k = rope(e, op.linear(e, x, ly.k, ly.kBias), Hkv, ropeTheta); // (B, L, Hkv·hd)
    const v = op.linear(e, x, ly.v, ly.vBias); // (B, L, Hkv·hd)
    const a = causalAttention(e, q, k, v, H, Hkv); // (B, L, H·hd)
    return op.linear(e, a, ly.o, ly.oBias); // (B, L, D)
  }

  /** SwiGLU MLP on x (B, L, D) -> (B, L, D). */
  private mlp(ly: LlamaLayer, x: Tensor): Tensor {
    const e = this.e;
    const g = swiglu(e, op.linear(e, x, ly.gate, ly.gateBias), op.linear(e, x, ly.up, ly.upBias)); // (B, L, F)
    return op.linear(e, g, ly.down, ly.downBias); // (B, L, D)
  }

  private getRunner(): TransformerRunner {
    inferenceLayout(this); // the weights in the layout inference reads (models/panels.ts)
    if (!this.runner) this.runner = new TransformerRunner(this);
    return this.runner;
  }

  createState(B: number, tokens = 0): ModelState {
    return this.getRunner().createState(B, tokens);
  }
  savedStateShapes(B: number, position: number): Map<string, number[]> {
    return this.getRunner().savedStateShapes(B, position);
  }
  step(ids: Int32Array, state: ModelState): Float32Array {
    return this.getRunner().step(ids, state);
  }
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    return this.getRunner().prefill(ids, L, state);
  }
  /** Grow the KV cache of `state` to hold `tokens` positions now (exactly), instead of doubling on demand. */
  reserve(state: ModelState, tokens: number): void {
    this.getRunner().reserve(state, tokens);
  }
}
