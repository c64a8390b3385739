import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';

/**
 * `frugal bench` (the speed benchmark) on its hidden --tiny settings: the document has every
 * section and every entry field, all numbers finite, each median within its min and max, and the
 * derived figures consistent with the figures they come from. Timings are not asserted (they depend
 * on the machine); only what the benchmark reports and how its numbers relate.
 */
function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 }).status === 0;

type Doc = Record<string, unknown>;

/** Every field is present with a finite number (or a non-empty string where `strings` names it). */
function expectFields(where: string, entry: unknown, numbers: string[], strings: string[] = []): void {
  expect(typeof entry, where).toBe('object');
  const e = entry as Record<string, unknown>;
  for (const k of numbers) {
    expect(typeof e[k], `${where}.${k}`).toBe('number');
    expect(Number.isFinite(e[k]), `${where}.${k} = ${String(e[k])}`).toBe(true);
  }
  for (const k of strings) {
    expect(typeof e[k], `${where}.${k}`).toBe('string');
    expect((e[k] as string).length, `${where}.${k}`).toBeGreaterThan(0);
  }
}

/** The median `key` lies within `key`_min and `key`_max. */
function expectSpread(where: string, entry: unknown, key: string): void {
  const e = entry as Record<string, number>;
  expect(e[`${key}_min`], `${where}: ${key}_min ≤ ${key}`).toBeLessThanOrEqual(e[key]);
  expect(e[key], `${where}: ${key} ≤ ${key}_max`).toBeLessThanOrEqual(e[`${key}_max`]);
}

/** An interleaved fraction: finite, positive, min ≤ median ≤ max. */
function expectOrdered(where: string, x: Doc): void {
  const [lo, mid, hi] = [x.min, x.median, x.max] as number[];
  expect(lo, `${where}: min > 0`).toBeGreaterThan(0);
  expect(lo, `${where}: min ≤ median`).toBeLessThanOrEqual(mid);
  expect(mid, `${where}: median ≤ max`).toBeLessThanOrEqual(hi);
}

function entries(doc: Doc, key: string, nonEmpty = true): unknown[] {
  const a = doc[key];
  expect(Array.isArray(a), `${key} is an array`).toBe(true);
  if (nonEmpty) expect((a as unknown[]).length, `${key} entries`).toBeGreaterThan(0);
  return a as unknown[];
}

describe('frugal bench --tiny --json', () => {
  let r: ReturnType<typeof frugal>;
  let doc: Doc = {};
  beforeAll(() => {
    r = frugal('bench', '--tiny', '--json', '--kernels', 'wasm,wasm-relaxed');
    if (r.code === 0) doc = JSON.parse(r.stdout) as Doc;
  });

  it('exits 0 with only the JSON document on stdout and a summary line on stderr', () => {
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().startsWith('{')).toBe(true);
    expect(r.stderr).toMatch(/bench: \d+ tokens in [\d.]+ s, \d+ tok\/s, .*J\/token \((measured|estimated)\)/);
    expect(r.stderr).toMatch(/\| threads \|\s+read GB\/s/); // the table
  });

  it('has every section', () => {
    for (const k of ['machine', 'decode', 'prefill', 'train', 'streams', 'kernels', 'peers', 'peer_builds', 'skipped'])
      expect(doc, k).toHaveProperty(k);
  });

  it('machine: bandwidth, GEMM and threads, at 1 and all threads; CPU model, ISA, Node and V8; the CPU peak', () => {
    expectFields(
      'machine',
      doc.machine,
      [
        'bandwidth_gbs',
        'gemm_gflops',
        'threads',
        'logical_cpus',
        'bandwidth_bytes',
        'gemm_shape',
        'other_busy_before',
        'other_busy_during',
      ],
      ['cpu', 'node', 'v8'],
    );
    const m = doc.machine as Doc;
    expect(Array.isArray(m.isa)).toBe(true);
    expect(m.v8).toBe(process.versions.v8);
    const by = m.by_threads as unknown[];
    expect(by.map((p) => (p as Doc).threads)).toContain(1);
    by.forEach((p, i) => {
      expectFields(`machine.by_threads[${i}]`, p, [
        'threads',
        'bandwidth_gbs',
        'bandwidth_gbs_min',
        'bandwidth_gbs_max',
        'read_streams',
        'gemm_gflops',
        'gemm_gflops_min',
        'gemm_gflops_max',
      ]);
      expectSpread(`machine.by_threads[${i}] bandwidth`, p, 'bandwidth_gbs');
      expectSpread(`machine.by_threads[${i}] gemm`, p, 'gemm_gflops');
    });
    const pk = m.cpu_peak as Doc;
    expectFields(
      'machine.cpu_peak',
      pk,
      ['cores', 'ghz', 'vector_bits', 'datapath_bits', 'fma_units', 'flops_per_cycle', 'gflops'],
      ['model'],
    );
    expect(pk.gflops as number).toBeCloseTo((pk.cores as number) * (pk.ghz as number) * (pk.flops_per_cycle as number), 6);
    for (const k of ['detected', 'assumed']) expect((pk[k] as string[]).length, `cpu_peak.${k}`).toBeGreaterThan(0);
  });

  it('steady measurement: the ceilings again at the end, flags, peak RSS per figure', () => {
    const m = doc.machine as Doc;
    const before = (m.by_threads as Doc[]).map((p) => p.threads);
    expect((m.after as Doc[]).map((p) => p.threads)).toEqual(before);
    (m.after as Doc[]).forEach((p, i) => expectFields(`machine.after[${i}]`, p, ['bandwidth_gbs', 'gemm_gflops']));
    expect(['per-figure', 'process-peak']).toContain(m.rss_method);
    const flags = entries(doc, 'flags', false) as Doc[];
    for (const f of flags) expectFields('flag', f, [], ['kind', 'figure', 'detail']);
    for (const k of ['decode', 'prefill', 'streams', 'train'])
      for (const e of entries(doc, k) as Doc[]) expect(e.peak_rss_bytes as number, `${k} peak RSS`).toBeGreaterThan(1e6);
  });

  it('decode: f32, q8 and q4 at 1 and all threads, with the bandwidth bound', () => {
    const d = entries(doc, 'decode');
    d.forEach((e, i) => {
      expectFields(
        `decode[${i}]`,
        e,
        ['threads', 'tok_s', 'tok_s_min', 'tok_s_max', 'weight_bytes_per_token', 'bound_tok_s', 'bound_fraction'],
        ['model', 'precision'],
      );
      expectSpread(`decode[${i}]`, e, 'tok_s');
      const x = e as Doc,
        bw = ((doc.machine as Doc).by_threads as Doc[]).find((p) => p.threads === x.threads) as Doc;
      expect(x.bound_tok_s as number).toBeCloseTo(((bw.bandwidth_gbs_max as number) * 1e9) / (x.weight_bytes_per_token as number), 3);
      // measured again in alternation with reads of a buffer of its bytes per token: the fraction is its rounds' median
      const il = x.interleaved as Doc;
      expectFields(`decode[${i}].interleaved`, il, ['median', 'min', 'max', 'rounds'], ['ceiling']);
      expect(il.ceiling).toBe('read bandwidth');
      expect(il.rounds).toBe(2); // the tiny plan's rounds
      expectOrdered(`decode[${i}].interleaved`, il);
      expect(x.bound_fraction).toBe(il.median);
    });
    const seen = new Set(d.map((e) => `${(e as Doc).precision}@${(e as Doc).threads}`));
    for (const p of ['f32', 'q8', 'q4']) expect(seen, `decode ${p} at 1 thread`).toContain(`${p}@1`);
    const bytes = (p: string) => (d.find((e) => (e as Doc).precision === p) as Doc).weight_bytes_per_token as number;
    expect(bytes('q8')).toBeLessThan(bytes('f32'));
    expect(bytes('q4')).toBeLessThan(bytes('q8'));
  });

  it('names the kernel build of every section, and times both builds side by side', () => {
    expect(doc.kernel_build).toBe('wasm');
    expect(r.stderr).toMatch(/frugal bench \(tiny, \d+ s, kernels wasm\)/);
    const builds = entries(doc, 'builds') as Doc[];
    for (const [i, e] of builds.entries()) {
      expectFields(
        `builds[${i}]`,
        e,
        ['threads', 'rounds', 'value', 'value_min', 'value_max', 'over_first'],
        ['kernels', 'measure', 'precision', 'unit'],
      );
      expectSpread(`builds[${i}]`, e, 'value');
    }
    const key = (e: Doc) => `${String(e.measure)} ${String(e.precision)} ${String(e.threads)}`;
    const first = builds.filter((e) => e.kernels === 'wasm'),
      second = builds.filter((e) => e.kernels === 'wasm-relaxed');
    expect(second.map(key)).toEqual(first.map(key));
    expect(first.length + second.length).toBe(builds.length);
    for (const m of ['gemm', 'decode', 'prefill-8']) expect(first.map((e) => e.measure)).toContain(m);
    for (const e of first) expect(e.over_first).toBe(1);
  });

  it('prefill, train, streams and kernels entries carry every field', () => {
    entries(doc, 'prefill').forEach((e, i) => {
      expectFields(
        `prefill[${i}]`,
        e,
        ['threads', 'prompt_tokens', 'tok_s', 'tok_s_min', 'tok_s_max', 'over_steps', 'flops_per_token', 'of_gemm_peak', 'peak_rss_bytes'],
        ['precision'],
      );
      expectSpread(`prefill[${i}]`, e, 'tok_s');
      const x = e as Doc,
        gemm = (((doc.machine as Doc).by_threads as Doc[]).find((p) => p.threads === x.threads) as Doc).gemm_gflops_max as number;
      const il = x.interleaved as Doc | undefined;
      if (x.precision === 'f32' && x.prompt_tokens === 8) {
        // the f32 prefill of the shortest prompt, measured again in alternation with GEMM probes
        expect((il as Doc).ceiling).toBe('GEMM peak');
        expectOrdered(`prefill[${i}].interleaved`, il as Doc);
        expect(x.of_gemm_peak).toBe((il as Doc).median);
      } else {
        expect(il).toBeUndefined();
        expect(x.of_gemm_peak as number).toBeCloseTo(((x.tok_s as number) * (x.flops_per_token as number)) / (gemm * 1e9), 12);
      }
    });
    const pk = (doc.machine as Doc).cpu_peak as Doc;
    entries(doc, 'train').forEach((e, i) => {
      expectFields(
        `train[${i}]`,
        e,
        [
          'threads',
          'batch',
          'seq_len',
          'parameters',
          'tok_s',
          'tok_s_min',
          'tok_s_max',
          'flops_per_token',
          'flops_per_token_with_scan',
          'mfu',
          'mfu_with_scan',
          'of_gemm_peak',
          'of_gemm_peak_with_scan',
        ],
        ['model'],
      );
      const x = e as Doc,
        T = x.threads as number,
        tok = x.tok_s as number;
      const gemm = (((doc.machine as Doc).by_threads as Doc[]).find((p) => p.threads === T) as Doc).gemm_gflops_max as number;
      const cpu = Math.min(T, pk.cores as number) * (pk.ghz as number) * (pk.flops_per_cycle as number);
      expect(x.flops_per_token).toBe(6 * (x.parameters as number));
      expect(x.mfu as number).toBeCloseTo((tok * (x.flops_per_token as number)) / (cpu * 1e9), 12); // against the hardware
      expect(x.of_gemm_peak as number).toBeCloseTo((tok * (x.flops_per_token as number)) / (gemm * 1e9), 12); // against frugal's GEMM
      expect(x.mfu_with_scan as number).toBeGreaterThan(x.mfu as number);
    });
    const s = entries(doc, 'streams');
    s.forEach((e, i) => {
      expectFields(
        `streams[${i}]`,
        e,
        [
          'streams',
          'threads',
          'aggregate_tok_s',
          'aggregate_tok_s_min',
          'aggregate_tok_s_max',
          'over_one',
          'of_compute_bound',
          'peak_rss_bytes',
        ],
        ['model', 'precision'],
      );
      expectSpread(`streams[${i}]`, e, 'aggregate_tok_s');
      const il = (e as Doc).interleaved as Doc;
      expect(il.ceiling).toBe('GEMM peak');
      expect((e as Doc).of_compute_bound).toBe(il.median);
    });
    expect(s.map((e) => (e as Doc).streams)).toEqual(expect.arrayContaining([1]));
    entries(doc, 'kernels').forEach((e, i) => expectFields(`kernels[${i}]`, e, ['wasm_ms', 'ref_ms', 'wasm_over_ref'], ['name', 'shape']));
  });

  it('peers: PyTorch side by side when python3-torch is installed; llama.cpp skipped without --llama-bench', () => {
    const peers = entries(doc, 'peers', false);
    peers.forEach((e, i) => {
      expectFields(
        `peers[${i}]`,
        e,
        [
          'threads',
          'rounds',
          'tok_s',
          'tok_s_min',
          'tok_s_max',
          'frugal_tok_s',
          'frugal_tok_s_min',
          'frugal_tok_s_max',
          'ratio',
          'ratio_min',
          'ratio_max',
        ],
        ['name', 'measure', 'precision', 'detail'],
      );
      for (const k of ['tok_s', 'frugal_tok_s', 'ratio']) expectSpread(`peers[${i}]`, e, k);
      expect((e as Doc).rounds).toBe(2);
    });
    const skipped = entries(doc, 'skipped', false) as Doc[];
    expect(skipped.some((x) => x.what === 'llama.cpp' && /--llama-bench/.test(String(x.reason)))).toBe(true);
    if (hasTorch) {
      const measures = peers.filter((e) => (e as Doc).name === 'pytorch').map((e) => (e as Doc).measure);
      expect(measures).toEqual(expect.arrayContaining(['decode', 'prefill-8', 'train']));
      const train = peers.find((e) => (e as Doc).name === 'pytorch' && (e as Doc).measure === 'train') as Doc;
      expectFields('pytorch train', train, ['mfu', 'mfu_with_scan']);
      expectFields('peer_builds.pytorch', (doc.peer_builds as Doc).pytorch, [], ['torch', 'blas', 'python']);
    } else {
      expect(skipped.some((x) => x.what === 'pytorch')).toBe(true);
    }
  });
});

describe('frugal bench command line', () => {
  it('keeps `bench scaling` and its own --quick reachable', () => {
    const r = frugal('bench', 'scaling', '--quick', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--min-context/); // help is what was asked for: stdout
  });
  it('takes wasm, wasm-relaxed or both as --kernels, each once', () => {
    for (const [v, msg] of [
      ['ref', /expected wasm, wasm-relaxed or both comma-separated, got 'ref'/],
      ['wasm,wasm', /a build is listed twice in 'wasm,wasm'/],
    ] as const) {
      const r = frugal('bench', '--tiny', '--kernels', v);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe('');
    }
  });
  it('rejects an unknown flag with exit code 2', () => {
    const r = frugal('bench', '--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--bogus/);
    expect(r.stdout).toBe('');
  });
});

describe('readBandwidth (the bandwidth probe) against its twin', () => {
  it('sums the same values for odd lengths and stream counts', () => {
    const rng = Rng.fromSeed(9);
    const ew = new Engine({ kernels: 'wasm', threads: 1 }),
      er = new Engine({ kernels: 'ref' });
    try {
      for (const [n, S] of [
        [1, 1],
        [63, 16],
        [1000, 3],
        [4096, 16],
        [100_003, 7],
      ]) {
        const v = Array.from({ length: n }, () => rng.uniform() - 0.25);
        const run = (e: Engine) => {
          const out = e.fromValues([1], [0]);
          e.k.readBandwidth(out, e.fromValues([n], v), n, S);
          return out.data()[0];
        };
        const want = v.reduce((a, b) => a + b, 0);
        expect(Math.abs(run(ew) - want), `n ${n}, ${S} streams`).toBeLessThan(1e-5 * n + 1e-6);
        expect(Math.abs(run(er) - want)).toBeLessThan(1e-5 * n + 1e-6);
      }
    } finally {
      ew.dispose();
      er.dispose();
    }
  });
});
