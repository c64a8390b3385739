import type { QFormat, QWeight, Tensor, Weight } from '../../tensor/index.js';
import { QBLOCK } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import * as op from '../../ops/ops.js';
import type { Rng } from '../../io/rng.js';
import type { MambaConfig } from './config.js';
import { mambaConfigToHF } from './config.js';
import { mambaParamSpecs } from './params.js';
import { initValues } from '../init.js';
import { lmLogits, lmLoss } from '../lm.js';
import type { ModelState, ParamSpec, ParamTable, TrainableModel } from '../types.js';
import { MambaRunner } from './runner.js';
import { inputError } from '../../io/errors.js';

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
  inProj: Weight;
  inProjBias: Tensor | null;
  convW: Tensor;
  convB: Tensor | null;
  xProj: Weight;
  dtProj: Weight;
  dtProjBias: Tensor;
  Alog: Tensor;
  D: Tensor;
  outProj: Weight;
  outProjBias: Tensor | null;
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
  readonly qweights: Map<string, QWeight> = new Map();
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
    this.params = new Map();
    for (const s of this.specs) {
      const format = quant.get(s.name);
      if (format) {
        const [N, K] = s.shape;
        if (s.shape.length !== 2 || K % QBLOCK !== 0) {
          throw inputError(`${s.name} [${s.shape}] cannot be stored quantised: its rows are not a multiple of ${QBLOCK}`);
        }
        this.qweights.set(s.name, {
          kind: 'quant',
          format,
          shape: [N, K],
          q: e.persistent(format === 'q8' ? [N, K] : [N, K / 2], format === 'q8' ? 'i8' : 'u8'),
          scales: e.persistent([N, K / QBLOCK]),
        });
        continue;
      }
      const t = e.persistent(s.shape);
      t.requiresGrad = true;
      this.params.set(s.name, t);
    }
    const p = (name: string): Tensor => this.params.get(name) as Tensor;
    const w = (name: string): Weight => (this.qweights.get(name) ?? this.params.get(name)) as Weight;
    const opt = (name: string): Tensor | null => this.params.get(name) ?? null;
    this.layers = [];
    for (let i = 0; i < config.nLayer; i++) {
      const m = `backbone.layers.${i}.mixer`;
      this.layers.push({
        norm: p(`backbone.layers.${i}.norm.weight`),
        inProj: w(`${m}.in_proj.weight`),
        inProjBias: opt(`${m}.in_proj.bias`),
        convW: p(`${m}.conv1d.weight`),
        convB: opt(`${m}.conv1d.bias`),
        xProj: w(`${m}.x_proj.weight`),
        dtProj: w(`${m}.dt_proj.weight`),
        dtProjBias: p(`${m}.dt_proj.bias`),
        Alog: p(`${m}.A_log`),
        D: p(`${m}.D`),
        outProj: w(`${m}.out_proj.weight`),
        outProjBias: opt(`${m}.out_proj.bias`),
      });
    }
    this.embed = w('backbone.embeddings.weight');
    this.normF = p('backbone.norm_f.weight');
    this.head = config.tieWordEmbeddings ? this.embed : w('lm_head.weight');
  }

  /** Reference initialisation, drawn in parameter-table order from `rng`. */
  init(rng: Rng): this {
    if (this.qweights.size > 0) throw new Error('init: quantised models are made by quantising a trained one');
    for (const s of this.specs) initValues((this.params.get(s.name) as Tensor).floats(), s.shape, s.init, rng);
    this.weightsChanged();
    return this;
  }

  /** Call after parameters change (optimiser step, load) so cached derived weights are rebuilt. */
  weightsChanged(): void {
    this.runner?.invalidate();
  }

  hfConfig(): Record<string, unknown> {
    const c = mambaConfigToHF(this.config);
    if (this.qweights.size > 0) c.quantization_config = quantizationConfig(this.qweights);
    return c;
  }

  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    for (const q of this.qweights.values()) n += q.shape[0] * q.shape[1];
    return n;
  }

  /** Logits (B, L, V) for ids (B·L), differentiable. */
  forward(ids: Int32Array, B: number, L: number): Tensor {
    const e = this.e,
      c = this.config;
    if (ids.length !== B * L) throw new Error(`forward: ${ids.length} ids for B=${B}, L=${L}`);
    const idT = e.ids(ids, [B, L]);
    let h = op.embedding(e, this.embed, idT); // (B, L, D)
    for (const ly of this.layers) h = op.add(e, h, this.mixer(ly, op.rmsnorm(e, h, ly.norm, c.layerNormEpsilon)));
    return lmLogits(e, h, this.normF, c.layerNormEpsilon, this.head); // (B, L, V)
  }

  /** Mean next-token cross-entropy (nats) of targets (B·L) given ids (B·L). */
  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor {
    return lmLoss(this, ids, targets, B, L);
  }

  /** The Mamba block's mixer on u (B, L, D) -> (B, L, D). */
  private mixer(ly: MambaLayer, u: Tensor): Tensor {
    const e = this.e,
      { dInner: ED, dState: N, dtRank: R } = this.config;
    const xz = op.linear(e, u, ly.inProj, ly.inProjBias); // (B, L, 2ED)
    const x = op.sliceLast(e, xz, 0, ED); // (B, L, ED)
    const z = op.sliceLast(e, xz, ED, ED); // (B, L, ED)
    const xc = op.silu(e, op.conv1d(e, x, ly.convW, ly.convB)); // (B, L, ED)
    const xdbl = op.linear(e, xc, ly.xProj, null); // (B, L, R + 2N)
    const dt = op.sliceLast(e, xdbl, 0, R); // (B, L, R)
    const Bm = op.sliceLast(e, xdbl, R, N); // (B, L, N)
    const Cm = op.sliceLast(e, xdbl, R + N, N); // (B, L, N)
    const delta = op.softplus(e, op.linear(e, dt, ly.dtProj, ly.dtProjBias)); // (B, L, ED)
    const A = op.negExp(e, ly.Alog); // (ED, N)
    const y = op.selectiveScan(e, xc, delta, A, Bm, Cm, ly.D); // (B, L, ED)
    const gated = op.mul(e, y, op.silu(e, z)); // (B, L, ED)
    return op.linear(e, gated, ly.outProj, ly.outProjBias); // (B, L, D)
  }

  private getRunner(): MambaRunner {
    if (!this.runner) this.runner = new MambaRunner(this);
    return this.runner;
  }

  createState(B: number): ModelState {
    return this.getRunner().createState(B);
  }
  savedStateShapes(B: number): Map<string, number[]> {
    return this.getRunner().savedStateShapes(B);
  }
  step(ids: Int32Array, state: ModelState): Float32Array {
    return this.getRunner().step(ids, state);
  }
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array {
    return this.getRunner().prefill(ids, L, state);
  }
}
