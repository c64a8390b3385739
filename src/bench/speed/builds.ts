/**
 * `frugal bench --kernels wasm,wasm-relaxed`: the kernel builds side by side. The main sections
 * run on the first build listed; this section times every build on the same figures in interleaved
 * rounds (each round times every build back to back, so all of them see the same load from other
 * processes): frugal's GEMM peak, batch-1 decode and a prefill, at f32, q8 and q4, on 1 and all threads.
 */
import type { WasmKind } from '../../kernels/backend.js';
import { Engine } from '../../ops/index.js';
import { quantizeModel } from '../../models/quant.js';
import { median } from '../formulas.js';
import type { Spread } from '../formulas.js';
import { measureGemm } from './machine.js';
import { buildModel, decodeRate, prefillRate } from './models.js';
import type { ModelWeights, TokenCounter } from './models.js';
import type { BuildEntry, Precision, SpeedPlan } from './types.js';

/** One figure of every build, timed once per round. */
interface Figure {
  measure: BuildEntry['measure'];
  precision: Precision;
  threads: number;
  unit: BuildEntry['unit'];
  /** Sets the figure up on build `k` and returns the timing of one round. */
  open: (k: WasmKind) => { time: () => Spread; close: () => void };
}

function figures(plan: SpeedPlan, w: ModelWeights, count: TokenCounter): Figure[] {
  const secs = plan.roundSeconds,
    L = plan.prefillLens[0];
  const out: Figure[] = [];
  for (const T of plan.threads) {
    out.push({
      measure: 'gemm',
      precision: 'f32',
      threads: T,
      unit: 'GFLOP/s',
      open: (k) => {
        const e = new Engine({ kernels: k, threads: T });
        return { time: () => measureGemm(e, plan.gemmSize, secs), close: () => e.dispose() };
      },
    });
    for (const precision of ['f32', 'q8', 'q4'] as const) {
      const model = (k: WasmKind) => {
        const m = buildModel(w, T, k);
        if (precision !== 'f32') quantizeModel(m, precision);
        return m;
      };
      out.push({
        measure: 'decode',
        precision,
        threads: T,
        unit: 'tok/s',
        open: (k) => {
          const m = model(k);
          return { time: () => decodeRate(m, Math.max(2, plan.decodeTokens / 4), secs, count), close: () => m.e.dispose() };
        },
      });
      out.push({
        measure: `prefill-${L}`,
        precision,
        threads: T,
        unit: 'tok/s',
        open: (k) => {
          const m = model(k);
          return { time: () => prefillRate(m, L, secs, count), close: () => m.e.dispose() };
        },
      });
    }
  }
  return out;
}

/** Every figure of every build in `rounds` interleaved rounds; ratios against the first build. */
export function measureBuilds(
  builds: readonly WasmKind[],
  plan: SpeedPlan,
  w: ModelWeights,
  count: TokenCounter,
  log: (m: string) => void,
): BuildEntry[] {
  const out: BuildEntry[] = [];
  const rounds = plan.peerRounds;
  for (const f of figures(plan, w, count)) {
    const open = builds.map((k) => f.open(k));
    try {
      const values = builds.map(() => [] as number[]);
      for (let r = 0; r < rounds; r++) open.forEach((o, i) => values[i].push(o.time().median));
      const first = median(values[0]);
      builds.forEach((k, i) => {
        const v = values[i];
        const ratios = v.map((x, r) => x / values[0][r]);
        out.push({
          kernels: k,
          measure: f.measure,
          precision: f.precision,
          threads: f.threads,
          rounds,
          unit: f.unit,
          value: median(v),
          value_min: Math.min(...v),
          value_max: Math.max(...v),
          over_first: median(ratios),
        });
      });
      log(
        `builds: ${f.measure} ${f.precision} ${f.threads} thread${f.threads > 1 ? 's' : ''}: ` +
          builds.map((k, i) => `${k} ${median(values[i]).toFixed(1)} ${f.unit}`).join(', ') +
          ` (${builds.length > 1 ? `${builds[1]} ×${(median(values[1]) / first).toFixed(2)}` : 'one build'})`,
      );
    } finally {
      for (const o of open) o.close();
    }
  }
  return out;
}
