import type { Tensor } from '../tensor/index.js';
import type { Engine } from '../ops/index.js';
import type { ParamSpec, ParamTable } from '../models/types.js';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Readonly<AdamWOptions> = Object.freeze({ lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });

/**
 * AdamW with decoupled weight decay over a parameter table; the table's `decay` flag decides
 * which parameters decay (not A_log, D, norms or biases). Moments are persistent tensors in the
 * shared memory, saved with the checkpoint for resuming. Gradients are clipped by global norm.
 */
export class AdamW {
  readonly e: Engine;
  readonly specs: readonly ParamSpec[];
  readonly params: ParamTable;
  readonly m: Map<string, Tensor> = new Map();
  readonly v: Map<string, Tensor> = new Map();
  opts: AdamWOptions;
  step = 0;

  constructor(e: Engine, specs: readonly ParamSpec[], params: ParamTable, opts: Partial<AdamWOptions> = {}) {
    this.e = e;
    this.specs = specs;
    this.params = params;
    this.opts = { ...ADAMW_DEFAULTS, ...opts };
    for (const s of specs) {
      const p = params.get(s.name) as Tensor;
      this.m.set(s.name, e.persistent(p.shape));
      this.v.set(s.name, e.persistent(p.shape));
      if (!p.grad) p.grad = e.persistent(p.shape);
    }
  }

  zeroGrad(): void {
    for (const p of this.params.values()) p.grad?.zero();
  }

  /** Global L2 norm of all gradients. */
  gradNorm(): number {
    let s = 0;
    for (const p of this.params.values()) if (p.grad) s += this.e.k.sumSquares(p.grad, p.size);
    return Math.sqrt(s);
  }

  /**
   * Clip to `maxNorm` (0 disables), then update every parameter with learning rate `lr`.
   * Returns the gradient norm before clipping.
   */
  update(lr: number, maxNorm: number): number {
    const norm = this.gradNorm();
    if (!Number.isFinite(norm)) throw new Error(`gradient norm is ${norm} at step ${this.step + 1}: lower --lr or check the data`);
    const scale = maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
    this.step += 1;
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const bc1 = 1 - beta1 ** this.step,
      bc2 = 1 - beta2 ** this.step;
    for (const s of this.specs) {
      const p = this.params.get(s.name) as Tensor,
        g = p.grad as Tensor;
      if (scale !== 1) this.e.k.scaleInPlace(g, scale, g.size);
      this.e.k.adamwStep(
        p,
        g,
        this.m.get(s.name) as Tensor,
        this.v.get(s.name) as Tensor,
        p.size,
        lr,
        beta1,
        beta2,
        eps,
        s.decay ? weightDecay : 0,
        bc1,
        bc2,
      );
    }
    return norm;
  }
}

/** Linear warm-up to `peak` over `warmup` steps, then cosine decay to `minLr` at `total`. Step counts from 1. */
export function learningRate(step: number, peak: number, warmup: number, total: number, minLr = peak / 10): number {
  if (warmup > 0 && step <= warmup) return (peak * step) / warmup;
  if (step >= total) return minLr;
  const p = (step - warmup) / Math.max(1, total - warmup);
  return minLr + 0.5 * (peak - minLr) * (1 + Math.cos(Math.PI * p));
}
