import type { QFormat, QWeight, Tensor, Weight } from '../../tensor/index.js';
import { QBLOCK } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import type { Rng } from '../../io/rng.js';
import type { MambaConfig } from './config.js';
import { mambaConfigToHF } from './config.js';
import { mambaParamSpecs } from './params.js';
import { allocateWeights, countParameters, initWeights, lookups } from '../stack.js';
import { lmLogits, lmLoss } from '../lm.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from '../types.js';
import { MambaRunner } from './runner.js';

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

/** Parameters of one layer, looked up once by name. */
export interface MambaLayer {
  norm: Tensor;
  inProj: Weight; inProjBias: Tensor | null;
  convW: Tensor; convB: Tensor | null;
  xProj: Weight;
  dtProj: Weight; dtProjBias: Tensor;
  Alog: Tensor; D: Tensor;
  outProj: Weight; outProjBias: Tensor | null;
}

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
  private runner: MambaRunner | null = null;

  /**
   * Allocate parameters (zero-filled) for `config`; fill them with `init` or by loading. Names in
   * `quant` are allocated block-quantised instead of f32 (loading a quantised checkpoint).
   */
  constructor(e: Engine, config: MambaConfig, quant: ReadonlyMap<string, QFormat> = new Map()) {
    this.e = e;
    this.config = config;
    this.specs = Object.freeze(mambaParamSpecs(config));
    ({ params: this.params, qweights: this.qweights } = allocateWeights(e, this.specs, quant));
    const { p, opt } = lookups(this);
    this.layers = Array.from({ length: config.nLayer }, (_, i) => {
      const m = `backbone.layers.${i}.mixer`;
      return {
        norm: p(`backbone.layers.${i}.norm.weight`), ...this.projections(i),
        inProjBias: opt(`${m}.in_proj.bias`), convW: p(`${m}.conv1d.weight`), convB: opt(`${m}.conv1d.bias`),
        dtProjBias: p(`${m}.dt_proj.bias`), Alog: p(`${m}.A_log`), D: p(`${m}.D`), outProjBias: opt(`${m}.out_proj.bias`),
      };
    });
    this.normF = p('backbone.norm_f.weight');
    this.embed = lookups(this).w('backbone.embeddings.weight');
    this.head = config.tieWordEmbeddings ? this.embed : lookups(this).w('lm_head.weight');
  }

  /** Layer i's four projections, f32 or quantised, by name. */
  private projections(i: number): Pick<MambaLayer, 'inProj' | 'xProj' | 'dtProj' | 'outProj'> {
    const { w } = lookups(this), m = `backbone.layers.${i}.mixer`;
    return { inProj: w(`${m}.in_proj.weight`), xProj: w(`${m}.x_proj.weight`), dtProj: w(`${m}.dt_proj.weight`), outProj: w(`${m}.out_proj.weight`) };
  }

  /** Re-read the weights by name after quantisation replaced some of them (quant.ts). */
  relink(): void {
    this.layers.forEach((ly, i) => Object.assign(ly, this.projections(i)));
    this.embed = lookups(this).w('backbone.embeddings.weight');
    this.head = this.config.tieWordEmbeddings ? this.embed : lookups(this).w('lm_head.weight');
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

  /** Logits (B, L, V) for ids (B·L), differentiable. */
  forward(ids: Int32Array, B: number, L: number): Tensor {
    const e = this.e, c = this.config;
    if (ids.length !== B * L) throw new Error(`forward: ${ids.length} ids for B=${B}, L=${L}`);
    const idT = e.ids(ids, [B, L]);
    let h = op.embedding(e, this.embed, idT);                                  // (B, L, D)
    for (const ly of this.layers) h = op.add(e, h, this.mixer(ly, op.rmsnorm(e, h, ly.norm, c.layerNormEpsilon)));
    return lmLogits(e, h, this.normF, c.layerNormEpsilon, this.head);         // (B, L, V)
  }

  /** Mean next-token cross-entropy (nats) of targets (B·L) given ids (B·L). */
  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor {
    return lmLoss(this, ids, targets, B, L);
  }

  /** The Mamba block's mixer on u (B, L, D) -> (B, L, D). */
  private mixer(ly: MambaLayer, u: Tensor): Tensor {
    const e = this.e, { dInner: ED, dState: N, dtRank: R } = this.config;
    const xz = op.linear(e, u, ly.inProj, ly.inProjBias);                      // (B, L, 2ED)
    const x = op.sliceLast(e, xz, 0, ED);                                      // (B, L, ED)
    const z = op.sliceLast(e, xz, ED, ED);                                     // (B, L, ED)
    const xc = op.silu(e, op.conv1d(e, x, ly.convW, ly.convB));                // (B, L, ED)
    const xdbl = op.linear(e, xc, ly.xProj, null);                             // (B, L, R + 2N)
    const dt = op.sliceLast(e, xdbl, 0, R);                                    // (B, L, R)
    const Bm = op.sliceLast(e, xdbl, R, N);                                    // (B, L, N)
    const Cm = op.sliceLast(e, xdbl, R + N, N);                                // (B, L, N)
    const delta = op.softplus(e, op.linear(e, dt, ly.dtProj, ly.dtProjBias));  // (B, L, ED)
    const A = op.negExp(e, ly.Alog);                                           // (ED, N)
    const y = op.selectiveScan(e, xc, delta, A, Bm, Cm, ly.D);                 // (B, L, ED)
    const gated = op.mul(e, y, op.silu(e, z));                                 // (B, L, ED)
    return op.linear(e, gated, ly.outProj, ly.outProjBias);                    // (B, L, D)
  }

  private getRunner(): MambaRunner {
    if (!this.runner) this.runner = new MambaRunner(this);
    return this.runner;
  }

  createState(B: number): ModelState { return this.getRunner().createState(B); }
  savedStateShapes(B: number): Map<string, number[]> { return this.getRunner().savedStateShapes(B); }
  step(ids: Int32Array, state: ModelState): Float32Array { return this.getRunner().step(ids, state); }
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array { return this.getRunner().prefill(ids, L, state); }
}
