/**
 * The peers of `frugal bench`, one measurement per call so that speed.ts can interleave them with
 * frugal's own (compare.ts):
 * - llama.cpp (`--llama-bench PATH`): the decode model (Mamba-1 or Mamba-2) is saved and converted to GGUF once by
 *   `frugal convert` run as a child process (f32, q8_0, q4_0; q4_0 keeps the embedding/head q8_0 and
 *   dt_proj f32, as frugal's q4 does, where older llama-quantize builds refuse dt_proj's rows of
 *   dt_rank values), then each round runs llama-bench with a 128-token prompt and a decode;
 * - PyTorch (when `python -c "import torch"` works): tools/bench_torch.py, frugal's own
 *   mamba.py-style script (parallel scan for training, plain recurrent step for decoding) on the
 *   same shapes and threads, doing the same work (the head at the last prompt position only).
 * Whatever is missing is reported as skipped with the reason; the run carries on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDirAtomic } from '../../io/atomic.js';
import { modelFiles } from '../../models/checkpoint.js';
import type { TrainableModel } from '../../models/types.js';
import type { PeerBuilds, Precision, Skipped } from './types.js';
import { median } from '../formulas.js';

const TORCH_SCRIPT = fileURLToPath(new URL('../../../tools/bench_torch.py', import.meta.url));
/** The CLI, run as a child for `frugal convert` (the CLI layer sits above this one). */
const FRUGAL_BIN = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));

/** One peer measurement: tokens/s by measure ('decode', 'prefill-128', 'train'), or why there is none. */
export interface PeerRound {
  tokS: Map<string, number>;
  detail: string;
  error: string | null;
  parameters?: number;
  scanFlopsPerToken?: number;
}

function failed(error: string): PeerRound {
  return { tokS: new Map(), detail: '', error };
}

function firstLine(s: string | null | undefined): string {
  return (
    (s ?? '')
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-1)[0] ?? ''
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------- PyTorch

export interface TorchPeer {
  python: string;
  build: NonNullable<PeerBuilds['pytorch']>;
}

/** Whether `python` imports torch; null with the reason in `skipped` otherwise. */
export function probeTorch(python: string, skipped: Skipped[]): TorchPeer | null {
  const skip = (reason: string) => {
    skipped.push({ section: 'peers', what: 'pytorch', reason });
    return null;
  };
  if (!existsSync(TORCH_SCRIPT)) return skip(`${TORCH_SCRIPT} is not installed with this copy of frugal`);
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.status !== 0) {
    return skip(
      `${python} cannot import torch (${firstLine(probe.stderr) || probe.error?.message || 'no output'}); on Debian: apt-get install python3-torch`,
    );
  }
  return { python, build: { python, torch: probe.stdout.trim(), blas: '' } };
}

/** tools/bench_torch.py for `what` ('decode,prefill' or 'train') on T threads. */
export function torchRound(p: TorchPeer, mode: 'full' | 'quick' | 'tiny', what: string, T: number, log: (m: string) => void): PeerRound {
  const r = spawnSync(p.python, [TORCH_SCRIPT, '--mode', mode, '--threads', String(T), '--what', what], {
    encoding: 'utf8',
    timeout: 600_000,
    maxBuffer: 1 << 24,
  });
  for (const line of (r.stderr ?? '').split('\n')) if (line.trim() !== '') log(`peers: pytorch: ${line}`);
  if (r.status !== 0) return failed(`tools/bench_torch.py failed (${r.error?.message ?? `exit ${r.status}`}: ${firstLine(r.stderr)})`);
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    return failed(`tools/bench_torch.py printed no JSON: ${firstLine(r.stdout)}`);
  }
  if (!isRecord(doc) || !Array.isArray(doc.results)) return failed('tools/bench_torch.py printed no results');
  p.build.torch = String(doc.torch);
  p.build.blas = String(doc.blas);
  const out: PeerRound = { tokS: new Map(), detail: `torch ${String(doc.torch)}, BLAS ${String(doc.blas)}`, error: null };
  for (const x of doc.results) {
    if (!isRecord(x) || typeof x.measure !== 'string' || typeof x.tok_s !== 'number' || !Number.isFinite(x.tok_s)) continue;
    out.tokS.set(x.measure, x.tok_s);
    if (typeof x.parameters === 'number') out.parameters = x.parameters;
    if (typeof x.scan_flops_per_token === 'number') out.scanFlopsPerToken = x.scan_flops_per_token;
  }
  return out;
}

// ---------------------------------------------------------------- llama.cpp

export interface LlamaPeer {
  bin: string;
  /** The GGUF file of each precision that could be made. */
  files: Map<Precision, string>;
  build: NonNullable<PeerBuilds['llama_cpp']>;
  dispose(): void;
}

const GGUF_TYPE: Record<Precision, 'f32' | 'q8_0' | 'q4_0'> = { f32: 'f32', q8: 'q8_0', q4: 'q4_0' };

/** CMake cache entries that say how llama.cpp was built (its CMakeCache.txt sits in the build folder above bin/). */
const BUILD_KEYS =
  /^(CMAKE_BUILD_TYPE|CMAKE_C_COMPILER|CMAKE_CXX_COMPILER|CMAKE_C_FLAGS|CMAKE_CXX_FLAGS|BUILD_SHARED_LIBS|GGML_(NATIVE|CPU|BLAS|BLAS_VENDOR|OPENMP|LLAMAFILE|AVX|AVX2|AVX512|AVX512_VBMI|AVX512_VNNI|AVX512_BF16|AVX_VNNI|FMA|F16C|CUDA|VULKAN|METAL))$/;

export function llamaCmakeFlags(bin: string): Record<string, string> {
  const cache = resolve(dirname(bin), '..', 'CMakeCache.txt');
  const out: Record<string, string> = {};
  if (!existsSync(cache)) return out;
  for (const line of readFileSync(cache, 'utf8').split('\n')) {
    const m = /^([A-Za-z0-9_]+):[A-Z]+=(.*)$/.exec(line);
    if (m && BUILD_KEYS.test(m[1])) out[m[1]] = m[2];
  }
  return out;
}

/** `frugal convert --to gguf --dtype <dtype>`; throws with its message when it fails. */
function frugalConvert(model: string, out: string, dtype: 'f32' | 'q8_0' | 'q4_0'): void {
  const r = spawnSync(process.execPath, [FRUGAL_BIN, 'convert', '--model', model, '--out', out, '--to', 'gguf', '--dtype', dtype], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`frugal convert --dtype ${dtype}: ${firstLine(r.stderr) || r.error?.message || `exit ${r.status}`}`);
}

/**
 * Make the GGUF file of each precision with frugal convert. The f32 file comes first (when it
 * fails, so does the whole peer); a quantised one that fails is reported as skipped.
 */
function ggufFiles(model: TrainableModel, precisions: readonly Precision[], dir: string, skipped: Skipped[]): Map<Precision, string> {
  const ckpt = join(dir, 'model');
  writeDirAtomic(ckpt, modelFiles(model));
  const files = new Map<Precision, string>();
  const f32 = join(dir, 'model-f32.gguf');
  frugalConvert(ckpt, f32, 'f32');
  for (const p of precisions) {
    if (p === 'f32') {
      files.set(p, f32);
      continue;
    }
    const out = join(dir, `model-${GGUF_TYPE[p]}.gguf`);
    try {
      frugalConvert(ckpt, out, GGUF_TYPE[p]);
      files.set(p, out);
    } catch (e) {
      skipped.push({ section: 'peers', what: `llama.cpp ${p}`, reason: (e as Error).message });
    }
  }
  return files;
}

/** Convert the f32 decode model (Mamba-1 or Mamba-2) for llama.cpp at every precision; null (and the reason in `skipped`) when that fails. */
export function prepareLlama(bin: string, model: TrainableModel, precisions: readonly Precision[], skipped: Skipped[]): LlamaPeer | null {
  if (!existsSync(bin)) {
    skipped.push({ section: 'peers', what: 'llama.cpp', reason: `--llama-bench ${bin} does not exist` });
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-'));
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  try {
    const files = ggufFiles(model, precisions, dir, skipped);
    return {
      bin,
      files,
      dispose,
      build: { binary: bin, commit: '', build_number: 0, cpu_info: '', backends: '', cmake: llamaCmakeFlags(bin) },
    };
  } catch (e) {
    dispose();
    skipped.push({ section: 'peers', what: 'llama.cpp', reason: (e as Error).message });
    return null;
  }
}

/** Parse llama-bench -o json: one record per test (n_prompt / n_gen), tokens/s the median of its samples. */
export function parseLlamaBench(stdout: string): { nPrompt: number; nGen: number; tokS: number; record: Record<string, unknown> }[] {
  const start = stdout.indexOf('[');
  const doc: unknown = JSON.parse(start >= 0 ? stdout.slice(start) : stdout);
  if (!Array.isArray(doc)) throw new Error('llama-bench -o json printed no array');
  const out: { nPrompt: number; nGen: number; tokS: number; record: Record<string, unknown> }[] = [];
  for (const x of doc) {
    if (!isRecord(x)) continue;
    const samples = Array.isArray(x.samples_ts) ? x.samples_ts.map(Number).filter(Number.isFinite) : [];
    const tokS = samples.length > 0 ? median(samples) : Number(x.avg_ts);
    if (Number.isFinite(tokS)) out.push({ nPrompt: Number(x.n_prompt), nGen: Number(x.n_gen), tokS, record: x });
  }
  return out;
}

/** One llama-bench run: a `promptTokens` prefill and a `decodeTokens` decode of precision p on T threads. */
export function llamaRound(
  l: LlamaPeer,
  p: Precision,
  T: number,
  promptTokens: number,
  decodeTokens: number,
  reps: number,
  log: (m: string) => void,
): PeerRound {
  const file = l.files.get(p);
  if (!file) return failed(`no ${GGUF_TYPE[p]} GGUF file`);
  const args = ['-m', file, '-t', String(T), '-p', String(promptTokens), '-n', String(decodeTokens), '-r', String(reps), '-o', 'json'];
  log(`peers: ${l.bin} ${args.join(' ')}`);
  const r = spawnSync(l.bin, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
  if (r.status !== 0)
    return failed(
      `llama-bench failed: ${firstLine(r.stderr) || r.error?.message || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`)}`,
    );
  try {
    const out: PeerRound = { tokS: new Map(), detail: '', error: null };
    for (const t of parseLlamaBench(r.stdout)) {
      out.tokS.set(t.nGen > 0 ? 'decode' : `prefill-${t.nPrompt}`, t.tokS);
      const x = t.record;
      Object.assign(l.build, {
        commit: String(x.build_commit ?? ''),
        build_number: Number(x.build_number ?? 0),
        cpu_info: String(x.cpu_info ?? ''),
        backends: String(x.backends ?? ''),
      });
      out.detail = `llama.cpp ${String(x.build_commit ?? '?')}, ${GGUF_TYPE[p]}, ${String(x.backends ?? 'CPU')}`;
    }
    return out;
  } catch (e) {
    return failed((e as Error).message);
  }
}
