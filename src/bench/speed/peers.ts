/**
 * Side-by-side peers of `frugal bench`, run on the same machine in the same run:
 * - llama.cpp (`--llama-bench PATH`): the decode model is saved and converted to GGUF by
 *   `frugal convert` run as a child process (f32, q8_0; q4_0 through the llama-quantize next to
 *   llama-bench), then llama-bench runs a 128-token prompt and a decode on the same threads;
 * - PyTorch (when `python -c "import torch"` works): tools/bench_torch.py, a mamba.py-style model
 *   (parallel scan for training, plain recurrent step for decoding) on the same shapes and threads.
 * Whatever is missing is reported as skipped with the reason; the run carries on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDirAtomic } from '../../io/atomic.js';
import { modelFiles } from '../../models/checkpoint.js';
import type { MambaLM } from '../../models/mamba/model.js';
import type { PeerEntry, Precision, Skipped } from './types.js';

/** A peer measurement before it is paired with frugal's own figure. */
export interface PeerRun {
  name: PeerEntry['name'];
  measure: string;
  precision: Precision;
  threads: number;
  tok_s: number;
  detail: string;
}

export interface PeerResult {
  runs: PeerRun[];
  skipped: Skipped[];
}

const TORCH_SCRIPT = fileURLToPath(new URL('../../../tools/bench_torch.py', import.meta.url));
/** The CLI, run as a child for `frugal convert` (the CLI layer sits above this one). */
const FRUGAL_BIN = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));

/** `frugal convert --to gguf --dtype <dtype>`; throws with its message when it fails. */
function frugalConvert(model: string, out: string, dtype: 'f32' | 'q8_0'): void {
  const r = spawnSync(process.execPath, [FRUGAL_BIN, 'convert', '--model', model, '--out', out, '--to', 'gguf', '--dtype', dtype], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`frugal convert --dtype ${dtype}: ${firstLine(r.stderr) || r.error?.message || `exit ${r.status}`}`);
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

export interface TorchOptions {
  python: string;
  threads: number[];
  /** tools/bench_torch.py --mode: model sizes and how long each loop runs. */
  mode: 'full' | 'quick' | 'tiny';
  /** The script skips what would start past this many seconds (and is killed 60 s later). */
  budgetSeconds: number;
  log: (m: string) => void;
}

/** Run tools/bench_torch.py under `python` (decode, prefill-128 and train at each thread count). */
export function runTorchPeer(o: TorchOptions): PeerResult {
  const skip = (reason: string): PeerResult => ({ runs: [], skipped: [{ section: 'peers', what: 'pytorch', reason }] });
  if (!existsSync(TORCH_SCRIPT)) return skip(`${TORCH_SCRIPT} is not installed with this copy of frugal`);
  const probe = spawnSync(o.python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.status !== 0) {
    return skip(
      `${o.python} cannot import torch (${firstLine(probe.stderr) || probe.error?.message || 'no output'}); on Debian: apt-get install python3-torch`,
    );
  }
  o.log(`peers: PyTorch ${probe.stdout.trim()} (${o.python}), threads ${o.threads.join(', ')}`);
  const r = spawnSync(
    o.python,
    [TORCH_SCRIPT, '--mode', o.mode, '--threads', o.threads.join(','), '--budget', o.budgetSeconds.toFixed(0)],
    { encoding: 'utf8', timeout: Math.round((o.budgetSeconds + 60) * 1000), maxBuffer: 1 << 24 },
  );
  for (const line of (r.stderr ?? '').split('\n')) if (line.trim() !== '') o.log(`peers: pytorch: ${line}`);
  if (r.status !== 0) return skip(`tools/bench_torch.py failed (${r.error?.message ?? `exit ${r.status}`}: ${firstLine(r.stderr)})`);
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    return skip(`tools/bench_torch.py printed no JSON: ${firstLine(r.stdout)}`);
  }
  const results = isRecord(doc) && Array.isArray(doc.results) ? doc.results : [];
  const detail = isRecord(doc) ? `torch ${String(doc.torch)}, BLAS ${String(doc.blas)}` : '';
  const runs: PeerRun[] = [];
  const skipped: Skipped[] = [];
  for (const x of isRecord(doc) && Array.isArray(doc.skipped) ? doc.skipped : []) {
    if (typeof x === 'string') skipped.push({ section: 'peers', what: `pytorch ${x}`, reason: 'past the time budget' });
  }
  for (const x of results) {
    if (
      !isRecord(x) ||
      typeof x.measure !== 'string' ||
      typeof x.threads !== 'number' ||
      typeof x.tok_s !== 'number' ||
      !Number.isFinite(x.tok_s)
    )
      continue;
    runs.push({ name: 'pytorch', measure: x.measure, precision: 'f32', threads: x.threads, tok_s: x.tok_s, detail });
  }
  return { runs, skipped };
}

/** llama-bench's build: the record's build_commit and cpu_info. */
function llamaDetail(x: Record<string, unknown>, type: string): string {
  return `llama.cpp ${String(x.build_commit ?? '?')}, ${type}, ${String(x.backends ?? 'CPU')}`;
}

export interface LlamaOptions {
  llamaBench: string;
  model: MambaLM;
  precisions: Precision[];
  threads: number[];
  promptTokens: number;
  decodeTokens: number;
  repetitions: number;
  log: (m: string) => void;
}

const GGUF_TYPE: Record<Precision, string> = { f32: 'f32', q8: 'q8_0', q4: 'q4_0' };

/** Make the GGUF file of each precision: frugal convert for f32 and q8_0, llama-quantize for q4_0. */
function ggufFiles(o: LlamaOptions, dir: string, skipped: Skipped[]): Map<Precision, string> {
  const ckpt = join(dir, 'model');
  writeDirAtomic(ckpt, modelFiles(o.model));
  const files = new Map<Precision, string>();
  const f32 = join(dir, 'model-f32.gguf');
  frugalConvert(ckpt, f32, 'f32');
  for (const p of o.precisions) {
    if (p === 'f32') {
      files.set(p, f32);
      continue;
    }
    const out = join(dir, `model-${GGUF_TYPE[p]}.gguf`);
    if (p === 'q8') {
      frugalConvert(ckpt, out, 'q8_0');
      files.set(p, out);
      continue;
    }
    const quantize = join(dirname(o.llamaBench), 'llama-quantize');
    if (!existsSync(quantize)) {
      skipped.push({
        section: 'peers',
        what: `llama.cpp ${p}`,
        reason: `frugal convert writes f32, f16 and q8_0; ${GGUF_TYPE[p]} needs ${quantize}, which is missing`,
      });
      continue;
    }
    const r = spawnSync(quantize, [f32, out, GGUF_TYPE[p]], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) {
      skipped.push({
        section: 'peers',
        what: `llama.cpp ${p}`,
        reason: `llama-quantize failed: ${firstLine(r.stderr) || r.error?.message}`,
      });
      continue;
    }
    files.set(p, out);
  }
  return files;
}

/** Parse llama-bench -o json: one record per test, n_prompt / n_gen and avg_ts (tokens/s). */
function parseLlamaBench(stdout: string, type: string): { nPrompt: number; nGen: number; tokS: number; detail: string }[] {
  const start = stdout.indexOf('[');
  const doc: unknown = JSON.parse(start >= 0 ? stdout.slice(start) : stdout);
  if (!Array.isArray(doc)) throw new Error('llama-bench -o json printed no array');
  const out: { nPrompt: number; nGen: number; tokS: number; detail: string }[] = [];
  for (const x of doc) {
    if (!isRecord(x)) continue;
    const nPrompt = Number(x.n_prompt),
      nGen = Number(x.n_gen),
      tokS = Number(x.avg_ts);
    if (Number.isFinite(tokS)) out.push({ nPrompt, nGen, tokS, detail: llamaDetail(x, type) });
  }
  return out;
}

/** Convert the decode model and run llama-bench at every precision and thread count. */
export function runLlamaPeer(o: LlamaOptions): PeerResult {
  const skipped: Skipped[] = [];
  if (!existsSync(o.llamaBench))
    return { runs: [], skipped: [{ section: 'peers', what: 'llama.cpp', reason: `--llama-bench ${o.llamaBench} does not exist` }] };
  const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-'));
  const runs: PeerRun[] = [];
  try {
    let files: Map<Precision, string>;
    try {
      files = ggufFiles(o, dir, skipped);
    } catch (e) {
      return { runs: [], skipped: [{ section: 'peers', what: 'llama.cpp', reason: (e as Error).message }] };
    }
    for (const [p, file] of files) {
      for (const T of o.threads) {
        const args = [
          '-m',
          file,
          '-t',
          String(T),
          '-p',
          String(o.promptTokens),
          '-n',
          String(o.decodeTokens),
          '-r',
          String(o.repetitions),
          '-o',
          'json',
        ];
        o.log(`peers: ${o.llamaBench} ${args.join(' ')}`);
        const r = spawnSync(o.llamaBench, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
        if (r.status !== 0) {
          const why = firstLine(r.stderr) || r.error?.message || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`);
          skipped.push({ section: 'peers', what: `llama.cpp ${p} ${T} threads`, reason: `llama-bench failed: ${why}` });
          continue;
        }
        try {
          for (const t of parseLlamaBench(r.stdout, GGUF_TYPE[p])) {
            const measure = t.nGen > 0 ? 'decode' : `prefill-${t.nPrompt}`;
            runs.push({ name: 'llama.cpp', measure, precision: p, threads: T, tok_s: t.tokS, detail: t.detail });
          }
        } catch (e) {
          skipped.push({ section: 'peers', what: `llama.cpp ${p} ${T} threads`, reason: (e as Error).message });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { runs, skipped };
}
