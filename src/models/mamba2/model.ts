import type { QFormat, QWeight, Tensor, Weight } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { Rng } from '../../io/rng.js';
import type { Mamba2Config } from './config.js';
import { mamba2ConfigToHF } from './config.js';
import { mamba2ParamSpecs } from './params.js';
import { Mamba2BlockRunner, mamba2Mixer, mamba2MixerParams, mamba2ProductWidth } from './mixer.js';
import type { Mamba2Mixer } from './mixer.js';
import { lmLoss } from '../lm.js';
import { quantizationConfig } from '../mamba/model.js';
import { StackRunner, allocateWeights, countParameters, initWeights, lookups, stackForward } from '../stack.js';
import type { LmEnds } from '../stack.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from '../types.js';

/** Parameters of one layer: the block norm and the mixer. */
export interface Mamba2Layer extends Mamba2Mixer { norm: Tensor }

/**
 * Mamba-2 language model (Dao & Gu 2024; transformers' Mamba2ForCausalLM, state-spaces
 * MambaLMHeadModel with ssm_cfg.layer "Mamba2"):
 *   embedding → n_layer × [h = h + mixer(RMSNorm(h))] → RMSNorm → lm_head (tied by default for
 *   frugal's own models; transformers' Mamba2Config defaults to untied)
 * `forward` trains with the chunked SSD; `step` / `prefill` run the recurrent path (stack.ts).
 */
export class Mamba2LM implements TrainableModel {
  readonly e: Engine;
  readonly config: Mamba2Config;
  readonly specs: readonly ParamSpec[];
  readonly params: ParamTable;
  /** Weights stored block-quantised (inference only), by HF name. */
  readonly qweights: Map<string, QWeight>;
  readonly layers: Mamba2Layer[];
  embed: Weight;
  readonly normF: Tensor;
  head: Weight;
  private runner: StackRunner | null = null;

  constructor(e: Engine, config: Mamba2Config, quant: ReadonlyMap<string, QFormat> = new Map()) {
    this.e = e;
    this.config = config;
    this.specs = Object.freeze(mamba2ParamSpecs(config));
    ({ params: this.params, qweights: this.qweights } = allocateWeights(e, this.specs, quant));
    const l = lookups(this);
    this.layers = Array.from({ length: config.nLayer }, (_, i) => ({
      norm: l.p(`backbone.layers.${i}.norm.weight`), ...mamba2MixerParams(l, `backbone.layers.${i}.mixer`),
    }));
    this.embed = l.w('backbone.embeddings.weight');
    this.normF = l.p('backbone.norm_f.weight');
    this.head = config.tieWordEmbeddings ? this.embed : l.w('lm_head.weight');
  }

  /** Reference initialisation, drawn in parameter-table order from `rng`. */
  init(rng: Rng): this {
    initWeights(this, this.specs, rng);
    this.weightsChanged();
    return this;
  }

  weightsChanged(): void { this.runner?.invalidate(); }

  /** Re-read the layers' weights after quantisation swapped some of them (quant.ts). */
  relink(): void {
    const l = lookups(this);
    this.layers.forEach((ly, i) => Object.assign(ly, mamba2MixerParams(l, `backbone.layers.${i}.mixer`)));
    this.embed = l.w('backbone.embeddings.weight');
    this.head = this.config.tieWordEmbeddings ? this.embed : l.w('lm_head.weight');
    this.runner = null;
  }

  hfConfig(): Record<string, unknown> {
    const c = mamba2ConfigToHF(this.config);
    if (this.qweights.size > 0) c.quantization_config = quantizationConfig(this.qweights);
    return c;
  }

  get parameterCount(): number { return countParameters(this); }

  private ends(): LmEnds {
    const c = this.config;
    return { embed: this.embed, normF: this.normF, head: this.head, eps: c.layerNormEpsilon, vocabSize: c.vocabSize, dModel: c.dModel };
  }

  /** Logits (B, L, V) for ids (B·L), differentiable. */
  forward(ids: Int32Array, B: number, L: number): Tensor {
    const blocks = this.layers.map((ly) => ({ norm: ly.norm, f: (u: Tensor) => mamba2Mixer(this.e, this.config, ly, u) }));
    return stackForward(this.e, this.ends(), blocks, ids, B, L);
  }

  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor { return lmLoss(this, ids, targets, B, L); }

  private getRunner(): StackRunner {
    if (!this.runner) {
      const blocks = this.layers.map((ly, i) => new Mamba2BlockRunner(this.e, this.config, ly, ly.norm, i));
      this.runner = new StackRunner(this.e, () => this.ends(), blocks, mamba2ProductWidth(this.config));
    }
    return this.runner;
  }

  createState(B: number): ModelState { return this.getRunner().createState(B); }
  savedStateShapes(B: number): Map<string, number[]> { return this.getRunner().savedStateShapes(B, 0); }
  step(ids: Int32Array, state: ModelState): Float32Array { return this.getRunner().step(ids, state); }
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array { return this.getRunner().prefill(ids, L, state); }
}
