import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';

/**
 * `frugal bench` (the speed benchmark) on its hidden --tiny settings: the document has
 * every section and every entry field, all numbers finite. Timings are not asserted (they depend
 * on the machine); only the shape of what the benchmark reports.
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
    r = frugal('bench', '--tiny', '--json');
    if (r.code === 0) doc = JSON.parse(r.stdout) as Doc;
  });

  it('exits 0 with only the JSON document on stdout and a summary line on stderr', () => {
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().startsWith('{')).toBe(true);
    expect(r.stderr).toMatch(/bench: \d+ tokens in [\d.]+ s, \d+ tok\/s, .*J\/token \((measured|estimated)\)/);
    expect(r.stderr).toMatch(/\| threads \| read GB\/s/); // the table
  });

  it('has every section of the document', () => {
    for (const k of ['machine', 'decode', 'prefill', 'train', 'streams', 'kernels', 'peers', 'skipped']) expect(doc, k).toHaveProperty(k);
  });

  it('machine: bandwidth, GEMM and threads, at 1 and all threads', () => {
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
      ['cpu'],
    );
    const by = (doc.machine as Doc).by_threads as unknown[];
    expect(by.map((p) => (p as Doc).threads)).toContain(1);
    by.forEach((p, i) => expectFields(`machine.by_threads[${i}]`, p, ['threads', 'bandwidth_gbs', 'gemm_gflops']));
  });

  it('decode: f32, q8 and q4 at 1 and all threads, with the bandwidth bound', () => {
    const d = entries(doc, 'decode');
    d.forEach((e, i) =>
      expectFields(`decode[${i}]`, e, ['threads', 'tok_s', 'weight_bytes_per_token', 'bound_fraction'], ['model', 'precision']),
    );
    const seen = new Set(d.map((e) => `${(e as Doc).precision}@${(e as Doc).threads}`));
    for (const p of ['f32', 'q8', 'q4']) expect(seen, `decode ${p} at 1 thread`).toContain(`${p}@1`);
    const bytes = (p: string) => (d.find((e) => (e as Doc).precision === p) as Doc).weight_bytes_per_token as number;
    expect(bytes('q8')).toBeLessThan(bytes('f32'));
    expect(bytes('q4')).toBeLessThan(bytes('q8'));
  });

  it('prefill, train, streams and kernels entries carry every field', () => {
    entries(doc, 'prefill').forEach((e, i) =>
      expectFields(`prefill[${i}]`, e, ['threads', 'prompt_tokens', 'tok_s', 'over_steps'], ['precision']),
    );
    entries(doc, 'train').forEach((e, i) =>
      expectFields(`train[${i}]`, e, ['threads', 'batch', 'seq_len', 'parameters', 'tok_s', 'mfu', 'mfu_with_scan'], ['model']),
    );
    const s = entries(doc, 'streams');
    s.forEach((e, i) => expectFields(`streams[${i}]`, e, ['streams', 'threads', 'aggregate_tok_s', 'over_one'], ['model', 'precision']));
    expect(s.map((e) => (e as Doc).streams)).toEqual(expect.arrayContaining([1]));
    entries(doc, 'kernels').forEach((e, i) => expectFields(`kernels[${i}]`, e, ['wasm_ms', 'ref_ms', 'wasm_over_ref'], ['name', 'shape']));
  });

  it('peers: PyTorch side by side when python3-torch is installed; llama.cpp skipped without --llama-bench', () => {
    const peers = entries(doc, 'peers', false);
    peers.forEach((e, i) =>
      expectFields(`peers[${i}]`, e, ['threads', 'tok_s', 'frugal_tok_s', 'ratio'], ['name', 'measure', 'precision']),
    );
    const skipped = entries(doc, 'skipped', false) as Doc[];
    expect(skipped.some((x) => x.what === 'llama.cpp' && /--llama-bench/.test(String(x.reason)))).toBe(true);
    if (hasTorch) {
      const measures = peers.filter((e) => (e as Doc).name === 'pytorch').map((e) => (e as Doc).measure);
      expect(measures).toEqual(expect.arrayContaining(['decode', 'train']));
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
