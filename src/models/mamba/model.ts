import type { QFormat, QWeight, Tensor, Weight } from '../../tensor/index.js';
import { QBLOCK } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { Rng } from '../../io/rng.js';
import type { MambaConfig } from './config.js';
import { mambaConfigToHF } from './config.js';
import { mambaParamSpecs } from './params.js';
import { StackRunner, allocateWeights, countParameters, initWeights, lookups, stackForward } from '../stack.js';
import type { LmEnds } from '../stack.js';
import { lmLoss } from '../lm.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from '../types.js';
import { MambaBlockRunner, mambaMixer, mambaMixerParams, mambaProductWidth } from './runner.js';
import type { MambaMixer } from './runner.js';

/** SUFFIX of the tensor holding a quantised weight's block scales, beside the weight's HF name. */
export const SCALE_SUFFIX = '_scale';

/**
 * The `quantization_config` block of a quantised checkpoint's config.json: which weights are
 * block-quantised and how (tensor `<name>` holds int8 values, q8, or packed nibbles, q4; tensor
 * `<name>_scale` the f32 scale of each block of 32).
 */
export function quantizationConfig(q: ReadonlyMap<string, QWeight>): Record<string, unknown> {
  const formats = new Set([...q.values()].map((w) => w.format));
  return {
    quant_method: 'frugal',
    format: formats.has('q4') ? 'q4' : 'q8',
    group_size: QBLOCK,
    scale_suffix: SCALE_SUFFIX,
    modules: Object.fromEntries([...q].map(([n, w]) => [n, w.format])),
  };
}

/** Parameters of one layer: the block norm and the mixer. */
export interface MambaLayer extends MambaMixer { norm: Tensor }

/**
 * Mamba-1 language model (Gu & Dao 2023; transformers' MambaForCausalLM):
 *   embedding → n_layer × [h = h + mixer(RMSNorm(h))] → RMSNorm → lm_head (tied by default)
 * `forward` is the parallel pass (differentiable); `step` / `prefill` are the recurrent
 * inference paths in runner.ts, with buffers allocated once per batch size.
 */
export class MambaLM implements TrainableModel {
  readonly e: Engine;
  readonly config: MambaConfig;
  readonly specs: readonly ParamSpec[];
  /** f32 parameters (the trainable ones); quantised weights live in `qweights` instead. */
  readonly params: ParamTable;
  /** Weights stored block-quantised (inference only), by HF name. */
  readonly qweights: Map<string, QWeight>;
  readonly layers: MambaLayer[];
  embed: Weight;
  readonly normF: Tensor;
  head: Weight;
  private runner: StackRunner | null = null;

  /**
   * Allocate parameters (zero-filled) for `config`; fill them with `init` or by loading. Names in
   * `quant` are allocated block-quantised instead of f32 (loading a quantised checkpoint).
   */
  constructor(e: Engine, config: MambaConfig, quant: ReadonlyMap<string, QFormat> = new Map()) {
    this.e = e;
    this.config = config;
    this.specs = Object.freeze(mambaParamSpecs(config));
    ({ params: this.params, qweights: this.qweights } = allocateWeights(e, this.specs, quant));
    const l = lookups(this);
    this.layers = Array.from({ length: config.nLayer }, (_, i) => ({
      norm: l.p(`backbone.layers.${i}.norm.weight`), ...mambaMixerParams(l, `backbone.layers.${i}.mixer`),
    }));
    this.normF = l.p('backbone.norm_f.weight');
    this.embed = l.w('backbone.embeddings.weight');
    this.head = config.tieWordEmbeddings ? this.embed : l.w('lm_head.weight');
  }

  /** Re-read the weights by name after quantisation replaced some of them (quant.ts). */
  relink(): void {
    const l = lookups(this);
    this.layers.forEach((ly, i) => Object.assign(ly, mambaMixerParams(l, `backbone.layers.${i}.mixer`)));
    this.embed = l.w('backbone.embeddings.weight');
    this.head = this.config.tieWordEmbeddings ? this.embed : l.w('lm_head.weight');
    this.runner = null;
  }

  /** Reference initialisation, drawn in parameter-table order from `rng`. */
  init(rng: Rng): this {
    initWeights(this, this.specs, rng);
    this.weightsChanged();
    return this;
  }

  /** Call after parameters change (optimiser step, load) so cached derived weights are rebuilt. */
  weightsChanged(): void { this.runner?.invalidate(); }

  hfConfig(): Record<string, unknown> {
    const c = mambaConfigToHF(this.config);
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
    const blocks = this.layers.map((ly) => ({ norm: ly.norm, f: (u: Tensor) => mambaMixer(this.e, this.config, ly, u) }));
    return stackForward(this.e, this.ends(), blocks, ids, B, L);
  }

  /** Mean next-token cross-entropy (nats) of targets (B·L) given ids (B·L). */
  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor {
    return lmLoss(this, ids, targets, B, L);
  }

  private getRunner(): StackRunner {
    if (!this.runner) {
      const blocks = this.layers.map((ly, i) => new MambaBlockRunner(this.e, this.config, ly, ly.norm, i));
      this.runner = new StackRunner(this.e, () => this.ends(), blocks, mambaProductWidth(this.config));
    }
    return this.runner;
  }

  createState(B: number): ModelState { return this.getRunner().createState(B); }
  savedStateShapes(B: number): Map<string, number[]> { return this.getRunner().savedStateShapes(B, 0); }
  step(ids: Int32Array, state: ModelState): Float32Array { return this.getRunner().step(ids, state); }
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array { return this.getRunner().prefill(ids, L, state); }
}
