import type { QFormat, QWeight, Tensor, Weight } from '../tensor/index.js';
import type { Engine } from '../ops/index.js';
import type { Rng } from '../io/rng.js';
import { lmLoss } from './lm.js';
import { StackRunner, allocateWeights, countParameters, initWeights, lookups, stackForward, stackHidden } from './stack.js';
import type { BlockRunner, LmEnds } from './stack.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from './types.js';
import { QBLOCK } from '../tensor/index.js';
import { inferenceLayout } from './panels.js';

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

/** What the backbone needs of any config. */
export interface BackboneConfig {
  readonly modelType: string;
  readonly dModel: number;
  readonly nLayer: number;
  readonly vocabSize: number;
  readonly layerNormEpsilon: number;
  readonly tieWordEmbeddings: boolean;
}

type Lookups = ReturnType<typeof lookups>;

/** One kind of mixer: its parameters, its taped forward, its inference runner and its config.json. */
export interface MixerKind<C extends BackboneConfig, M> {
  specs(c: C): ParamSpec[];
  params(l: Lookups, prefix: string, c: C): M;
  taped(e: Engine, c: C, m: M, u: Tensor): Tensor;
  runner(e: Engine, c: C, m: M, norm: Tensor, layer: number): BlockRunner;
  /** The widest input of the mixer's products (the q8 scratch of quantised weights). */
  width(c: C): number;
  toHF(c: C): Record<string, unknown>;
}

/**
 * The state-space language models of state-spaces' MixerModel (Mamba-1, -2, -3), with transformers'
 * names: embedding → n_layer × [h = h + mixer(RMSNorm(h))] → RMSNorm → lm_head (absent when tied).
 * `forward` is the taped parallel pass; `step` / `prefill` the recurrent path of stack.ts.
 */
export class BackboneLM<C extends BackboneConfig, M> implements TrainableModel {
  readonly e: Engine;
  readonly config: C;
  readonly specs: readonly ParamSpec[];
  /** f32 parameters (the trainable ones); quantised weights live in `qweights` instead. */
  readonly params: ParamTable;
  /** Weights stored block-quantised (inference only), by HF name. */
  readonly qweights: Map<string, QWeight>;
  readonly layers: (M & { norm: Tensor })[];
  embed!: Weight;
  readonly normF: Tensor;
  head!: Weight;
  private runner: StackRunner | null = null;

  /** Parameters allocated zero-filled; `quant` names those stored block-quantised (loading a quantised checkpoint). */
  constructor(
    e: Engine,
    config: C,
    private readonly kind: MixerKind<C, M>,
    quant: ReadonlyMap<string, QFormat> = new Map(),
  ) {
    this.e = e;
    this.config = config;
    this.specs = Object.freeze(kind.specs(config));
    ({ params: this.params, qweights: this.qweights } = allocateWeights(e, this.specs, quant));
    const l = lookups(this);
    this.layers = Array.from({ length: config.nLayer }, (_, i) => ({
      ...kind.params(l, `backbone.layers.${i}.mixer`, config),
      norm: l.p(`backbone.layers.${i}.norm.weight`),
    }));
    this.normF = l.p('backbone.norm_f.weight');
    this.relink();
  }

  /** Reference initialisation, drawn in parameter-table order from `rng`. */
  init(rng: Rng): this {
    initWeights(this, this.specs, rng);
    this.weightsChanged();
    return this;
  }

  /** Call after parameters change (optimiser step, load) so values derived from them are rebuilt. */
  weightsChanged(): void {
    this.runner?.invalidate();
  }

  /** Re-read the weights by name (after quantisation replaced some of them, quant.ts). */
  relink(): void {
    const l = lookups(this);
    this.layers.forEach((ly, i) => Object.assign(ly, this.kind.params(l, `backbone.layers.${i}.mixer`, this.config)));
    this.embed = l.w('backbone.embeddings.weight');
    this.head = this.config.tieWordEmbeddings ? this.embed : l.w('lm_head.weight');
    this.runner = null;
  }

  hfConfig(): Record<string, unknown> {
    const c = this.kind.toHF(this.config);
    if (this.qweights.size > 0) c.quantization_config = quantizationConfig(this.qweights);
    return c;
  }

  get parameterCount(): number {
    return countParameters(this);
  }

  private ends(): LmEnds {
    const c = this.config;
    return { embed: this.embed, normF: this.normF, head: this.head, eps: c.layerNormEpsilon, vocabSize: c.vocabSize, dModel: c.dModel };
  }

  /** Logits (B, L, V) for ids (B·L), differentiable. */
  forward(ids: Int32Array, B: number, L: number): Tensor {
    const blocks = this.layers.map((ly) => ({ norm: ly.norm, f: (u: Tensor) => this.kind.taped(this.e, this.config, ly, u) }));
    return stackForward(this.e, this.ends(), blocks, ids, B, L);
  }

  /** The final-norm hidden states (B, L, D) of embedded inputs h (B, L, D), differentiable (continuous inputs, task heads). */
  hiddenForward(h: Tensor): Tensor {
    const blocks = this.layers.map((ly) => ({ norm: ly.norm, f: (u: Tensor) => this.kind.taped(this.e, this.config, ly, u) }));
    return stackHidden(this.e, this.ends(), blocks, h);
  }

  /** One embedded input (B, D) per stream: the final-norm hidden state (B, D), advancing `state`. */
  hiddenStep(x: Float32Array, state: ModelState): Float32Array {
    return this.getRunner().stepVectors(x, state);
  }

  /** Mean next-token cross-entropy (nats) of targets (B·L) given ids (B·L). */
  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor {
    return lmLoss(this, ids, targets, B, L);
  }

  /** The inference path, with the weights in the layout it reads (models/panels.ts). */
  private getRunner(): StackRunner {
    inferenceLayout(this);
    if (!this.runner) {
      const blocks = this.layers.map((ly, i) => this.kind.runner(this.e, this.config, ly, ly.norm, i));
      this.runner = new StackRunner(this.e, () => this.ends(), blocks, this.kind.width(this.config));
    }
    return this.runner;
  }

  createState(B: number): ModelState {
    return this.getRunner().createState(B);
  }
  savedStateShapes(B: number): Map<string, number[]> {
    return this.getRunner().savedStateShapes(B, 0);
  }
  step(ids: Int32Array, state: ModelState): Float32Array {
    return this.getRunner().step(ids, state);
  }
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    return this.getRunner().prefill(ids, L, state);
  }
}
