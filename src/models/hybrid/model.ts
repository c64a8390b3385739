import type { QFormat, QWeight, Tensor, Weight } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { Rng } from '../../io/rng.js';
import type { HybridConfig, LayerType } from './config.js';
import { hybridConfigToHF } from './config.js';
import { hybridParamSpecs } from './params.js';
import { AttentionBlockRunner, MlpBlockRunner, attentionBlock, attentionParams, mlpBlock, mlpParams } from './attention.js';
import type { AttentionParams, MlpParams } from './attention.js';
import { Mamba2BlockRunner, mamba2Mixer, mamba2MixerParams } from '../mamba2/mixer.js';
import type { Mamba2Mixer } from '../mamba2/mixer.js';
import { MambaBlockRunner, mambaMixer, mambaMixerParams } from '../mamba/runner.js';
import type { MambaMixer } from '../mamba/runner.js';
import { lmLoss } from '../lm.js';
import { quantizationConfig } from '../backbone.js';
import { StackRunner, allocateWeights, countParameters, initWeights, lookups, stackForward } from '../stack.js';
import type { Block, BlockRunner, LmEnds } from '../stack.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from '../types.js';
import { inferenceLayout } from '../panels.js';

/** One layer's mixer, by its type. */
export type HybridMixer = { type: 'mamba2'; p: Mamba2Mixer } | { type: 'mamba'; p: MambaMixer } | { type: 'attention'; p: AttentionParams };

export interface HybridLayer {
  inNorm: Tensor;
  mixer: HybridMixer;
  ffNorm: Tensor;
  mlp: MlpParams;
}

/**
 * A hybrid language model in Bamba's layout (transformers' BambaForCausalLM):
 *   embed_tokens → n_layer × [h += mixer(RMSNorm(h)); h += MLP(RMSNorm(h))] → final_layernorm → lm_head
 * each mixer a Mamba-2 block, a Mamba-1 block (frugal only) or attention, per `layerTypes`.
 * Its state holds each state-space layer's conv window and SSM state and each attention layer's
 * KV cache, which grows with the tokens.
 */
export class HybridLM implements TrainableModel {
  readonly e: Engine;
  readonly config: HybridConfig;
  readonly specs: readonly ParamSpec[];
  readonly params: ParamTable;
  readonly qweights: Map<string, QWeight>;
  readonly layers: HybridLayer[];
  embed!: Weight;
  readonly normF: Tensor;
  head!: Weight;
  private runner: StackRunner | null = null;

  constructor(e: Engine, config: HybridConfig, quant: ReadonlyMap<string, QFormat> = new Map()) {
    this.e = e;
    this.config = config;
    this.specs = Object.freeze(hybridParamSpecs(config));
    ({ params: this.params, qweights: this.qweights } = allocateWeights(e, this.specs, quant));
    this.layers = config.layerTypes.map((type, i) => this.layer(type, i));
    this.normF = lookups(this).p('model.final_layernorm.weight');
    this.relinkEnds();
  }

  private layer(type: LayerType, i: number): HybridLayer {
    const l = lookups(this),
      p = `model.layers.${i}`;
    const mixer: HybridMixer =
      type === 'mamba2'
        ? { type, p: mamba2MixerParams(l, `${p}.mamba`) }
        : type === 'mamba'
          ? { type, p: mambaMixerParams(l, `${p}.mamba`) }
          : { type, p: attentionParams(l, `${p}.self_attn`) };
    return {
      inNorm: l.p(`${p}.input_layernorm.weight`),
      mixer,
      ffNorm: l.p(`${p}.pre_ff_layernorm.weight`),
      mlp: mlpParams(l, `${p}.feed_forward`),
    };
  }

  private relinkEnds(): void {
    const l = lookups(this);
    this.embed = l.w('model.embed_tokens.weight');
    this.head = this.config.tieWordEmbeddings ? this.embed : l.w('lm_head.weight');
  }

  init(rng: Rng): this {
    initWeights(this, this.specs, rng);
    this.weightsChanged();
    return this;
  }

  weightsChanged(): void {
    this.runner?.invalidate();
  }

  /** Re-read the weights by name after quantisation replaced some of them (quant.ts). */
  relink(): void {
    this.config.layerTypes.forEach((type, i) => {
      this.layers[i] = this.layer(type, i);
    });
    this.relinkEnds();
    this.runner = null;
  }

  hfConfig(): Record<string, unknown> {
    const c = hybridConfigToHF(this.config);
    if (this.qweights.size > 0) c.quantization_config = quantizationConfig(this.qweights);
    return c;
  }

  get parameterCount(): number {
    return countParameters(this);
  }

  private ends(): LmEnds {
    const c = this.config;
    return { embed: this.embed, normF: this.normF, head: this.head, eps: c.rmsNormEps, vocabSize: c.vocabSize, dModel: c.dModel };
  }

  /** Logits (B, L, V) for ids (B·L) at positions 0 .. L−1, differentiable. */
  forward(ids: Int32Array, B: number, L: number): Tensor {
    const e = this.e,
      c = this.config;
    const mix =
      (m: HybridMixer) =>
      (u: Tensor): Tensor =>
        m.type === 'mamba2'
          ? mamba2Mixer(e, c.mamba2, m.p, u)
          : m.type === 'mamba'
            ? mambaMixer(e, c.mamba, m.p, u)
            : attentionBlock(e, c, m.p, u);
    const blocks: Block[] = this.layers.flatMap((ly) => [
      { norm: ly.inNorm, f: mix(ly.mixer) },
      { norm: ly.ffNorm, f: (u: Tensor) => mlpBlock(e, ly.mlp, u) },
    ]);
    return stackForward(e, this.ends(), blocks, ids, B, L);
  }

  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor {
    return lmLoss(this, ids, targets, B, L);
  }

  private getRunner(): StackRunner {
    inferenceLayout(this); // the weights in the layout inference reads (models/panels.ts)
    if (!this.runner) {
      const e = this.e,
        c = this.config;
      const blocks: BlockRunner[] = this.layers.flatMap((ly, i) => {
        const m = ly.mixer;
        const mixer =
          m.type === 'mamba2'
            ? new Mamba2BlockRunner(e, c.mamba2, m.p, ly.inNorm, i)
            : m.type === 'mamba'
              ? new MambaBlockRunner(e, c.mamba, m.p, ly.inNorm, i)
              : new AttentionBlockRunner(e, c, m.p, ly.inNorm, i);
        return [mixer, new MlpBlockRunner(e, c.intermediateSize, ly.mlp, ly.ffNorm)];
      });
      const kmax = Math.max(c.dModel, c.mamba2.dInner, c.mamba.dInner, c.mamba.dtRank, c.nHead * c.headDim, c.intermediateSize);
      this.runner = new StackRunner(e, () => this.ends(), blocks, kmax);
    }
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
}
