import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { quantizeModel, weightBytes } from '../../src/models/quant.js';
import { trainFlopsPerToken } from '../../src/bench/formulas.js';
import { newBenchModel, recurrenceFlopsPerToken, stateBytesPerStream } from '../../src/bench/speed/arch.js';
import type { BenchArch, BenchModel } from '../../src/bench/speed/arch.js';
import { speedPlan } from '../../src/bench/speed/types.js';
import { createMamba2Config } from '../../src/models/mamba2/config.js';

/**
 * `frugal bench --arch`: the bench's formulas on a Mamba-2 small enough to count by hand (D 32, one
 * layer, N 4, head size 16, V 64, tied head), the mamba2-130m plan, and a tiny run's document.
 */
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
function tiny(arch: BenchArch, layerTypes?: string[]): BenchModel {
  const e = new Engine({ kernels: 'wasm', threads: 1 });
  engines.push(e);
  const shape = { dModel: 32, nLayer: layerTypes?.length ?? 1, dState: 4, headDim: 16, vocabSize: 64, layerTypes };
  return newBenchModel(arch, shape, e).init(Rng.fromSeed(1));
}

// by hand: ED = 64, H = 64 / 16 = 4, G = 1, d_conv 4; in_proj [z | x B C | dt] = 64 + (64 + 8) + 4 = 140 rows
const EMBED = 64 * 32; // tied head: read once
const LAYER = {
  norm: 32,
  inProj: 140 * 32,
  convW: 72 * 4, // x, B and C: 64 + 2 × 4 channels
  convB: 72,
  dtBias: 4,
  aLog: 4,
  d: 4,
  gatedNorm: 64,
  outProj: 32 * 64,
};
const NORM_F = 32;
const PARAMS = EMBED + Object.values(LAYER).reduce((a, b) => a + b, 0) + NORM_F; // 9076
// what stays f32 when quantised: the norms, the conv, dt_bias, A_log and D
const KEPT_F32 = (LAYER.norm + LAYER.convW + LAYER.convB + LAYER.dtBias + LAYER.aLog + LAYER.d + LAYER.gatedNorm + NORM_F) * 4;
const q8 = (r: number, c: number) => r * c + ((r * c) / 32) * 4;
const q4 = (r: number, c: number) => (r * c) / 2 + ((r * c) / 32) * 4;

describe('bench formulas on a hand-counted Mamba-2', () => {
  it('parameters and bytes read per decoded token at f32, q8 and q4', () => {
    expect(PARAMS).toBe(9076);
    const m = tiny('mamba2');
    expect(m.parameterCount).toBe(PARAMS);
    expect(weightBytes(m)).toBe(PARAMS * 4);
    const a = tiny('mamba2');
    quantizeModel(a, 'q8');
    expect(weightBytes(a)).toBe(q8(140, 32) + q8(32, 64) + q8(64, 32) + KEPT_F32);
    const b = tiny('mamba2');
    quantizeModel(b, 'q4');
    expect(weightBytes(b)).toBe(q4(140, 32) + q4(32, 64) + q8(64, 32) + KEPT_F32); // the head stays q8
  });

  it('training FLOPs: 6 × parameters plus 15 per (ED, N, layer) for the recurrence', () => {
    const m = tiny('mamba2');
    expect(recurrenceFlopsPerToken(m, 16)).toBe(15 * 64 * 4); // 3840
    expect(trainFlopsPerToken(m.parameterCount, recurrenceFlopsPerToken(m, 16))).toBe(6 * 9076 + 3840);
    // Mamba-3 counts the trapezoid's second input term (21); a hybrid adds 6 × D × L per attention layer
    expect(recurrenceFlopsPerToken(tiny('mamba3'), 16)).toBe(21 * 64 * 4);
    expect(recurrenceFlopsPerToken(tiny('hybrid', ['mamba2', 'attention']), 16)).toBe(15 * 64 * 4 + 6 * 32 * 16);
  });

  it('state per stream: the conv window over x, B, C (K columns) and the H × P × N SSM state', () => {
    expect(stateBytesPerStream(tiny('mamba2'))).toBe((72 * 4 + 4 * 16 * 4) * 4); // 2176
  });
});

describe('the --arch mamba2 plan', () => {
  it('decodes the mamba2-130m shape and keeps Mamba-1 the default', () => {
    const p = speedPlan('quick', 2, 'mamba2');
    const c = createMamba2Config(p.decodeModel as Parameters<typeof createMamba2Config>[0]);
    expect(c).toMatchObject({ dModel: 768, nLayer: 24, headDim: 64, dState: 128, expand: 2, nGroups: 1, vocabSize: 50280, nHeads: 24 });
    expect(speedPlan('quick', 2).decodeName).toBe('mamba-130m-shape');
    expect(speedPlan('quick', 2).arch).toBe('mamba');
  });
});

/**
 * A stand-in for llama.cpp's llama-bench: logs the GGUF architecture of each -m file (the string
 * after general.architecture's key) and prints llama-bench's JSON for the -p / -n it was given.
 */
const FAKE_LLAMA_BENCH = `#!/usr/bin/env node
const fs = require('node:fs');
const a = process.argv.slice(2), arg = (k) => a[a.indexOf(k) + 1];
const b = fs.readFileSync(arg('-m')), at = b.indexOf('general.architecture') + 'general.architecture'.length + 4;
const n = Number(b.readBigUInt64LE(at));
fs.appendFileSync(process.env.FAKE_LOG, b.subarray(at + 8, at + 8 + n).toString() + ' ' + arg('-m').split('-').pop() + '\\n');
const rec = (p, g, ts) => ({ n_prompt: p, n_gen: g, samples_ts: [ts], build_commit: 'fake', build_number: 1, backends: 'CPU' });
console.log(JSON.stringify([rec(Number(arg('-p')), 0, 1000), rec(0, Number(arg('-n')), 100)]));
`;

describe('frugal bench --tiny --arch mamba2 --json', () => {
  it('records the architecture and the state per stream, measures every precision, runs llama.cpp on mamba2 GGUF files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-fake-llama-')),
      bin = join(dir, 'llama-bench'),
      log = join(dir, 'log');
    writeFileSync(bin, FAKE_LLAMA_BENCH);
    chmodSync(bin, 0o755);
    const r = spawnSync(
      process.execPath,
      ['bin/frugal.js', 'bench', '--tiny', '--arch', 'mamba2', '--json', '--no-torch', '--llama-bench', bin],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, FAKE_LOG: log },
      },
    );
    const seen = r.status === 0 ? readFileSync(log, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc.arch).toBe('mamba2');
    expect(doc.state_bytes_per_stream).toBeGreaterThan(0);
    const decode = doc.decode as { precision: string }[];
    expect(new Set(decode.map((d) => d.precision))).toEqual(new Set(['f32', 'q8', 'q4']));
    expect((doc.train as unknown[]).length).toBeGreaterThan(0);
    expect((doc.streams as unknown[]).length).toBeGreaterThan(0);
    // llama-bench read GGUF files of architecture mamba2, each precision written by frugal convert
    expect(new Set(seen.trim().split('\n'))).toEqual(new Set(['mamba2 f32.gguf', 'mamba2 q8_0.gguf', 'mamba2 q4_0.gguf']));
    const peers = doc.peers as { name: string; measure: string; precision: string; tok_s: number }[];
    const llama = peers.filter((p) => p.name === 'llama.cpp');
    expect(new Set(llama.map((p) => `${p.precision} ${p.measure}`))).toEqual(
      new Set(['f32 decode', 'f32 prefill-8', 'q8 decode', 'q8 prefill-8', 'q4 decode', 'q4 prefill-8']),
    );
    expect(llama.find((p) => p.measure === 'decode')?.tok_s).toBe(100);
    const skipped = doc.skipped as { what: string; reason: string }[];
    expect(skipped.some((s) => s.what.startsWith('llama.cpp'))).toBe(false);
    expect(skipped.find((s) => s.what === 'pytorch')?.reason).toMatch(/builds Mamba-1 only, not mamba2/);
  });

  it('hybrid: records the layer list and measures many streams', () => {
    const r = spawnSync(
      process.execPath,
      ['bin/frugal.js', 'bench', '--tiny', '--arch', 'hybrid', '--json', '--no-torch', '--threads', '1'],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc.layer_types).toEqual(['mamba2', 'attention']);
    expect((doc.streams as unknown[]).length).toBeGreaterThan(0);
    expect((doc.skipped as { section: string }[]).some((s) => s.section === 'streams')).toBe(false);
    expect((doc.decode as unknown[]).length).toBe(3); // f32, q8, q4 at one thread
  });

  it('rejects an unknown architecture with exit code 2', () => {
    const r = spawnSync(process.execPath, ['bin/frugal.js', 'bench', '--arch', 'rwkv'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--arch.*expected one of mamba, mamba2, mamba3, hybrid/);
  });
});
