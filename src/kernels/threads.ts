import { Worker } from 'node:worker_threads';
import type { WasmKernelName, WasmKernels } from './wasm/index.js';
import { wasmKernelNames } from './wasm/index.js';

/**
 * Worker threads that share the engine's one WebAssembly memory. Each worker instantiates the same
 * compiled kernels module on that memory; work is handed out through Atomics on a small shared
 * control block (no message per op): the main thread writes one job per worker (kernel index and
 * its numeric arguments), bumps a generation counter and wakes them, runs its own share, then waits
 * until every worker has counted itself done. Kernels allocate nothing, so any number of threads
 * can run them on one memory at once as long as their outputs do not overlap.
 */
const GEN = 0,
  DONE = 1,
  FAILED = 2,
  STOP = 3,
  SLEEPS = 4; // times a worker stopped spinning and slept in Atomics.wait (then a wake-up costs a futex)
const MAX_ARGS = 30;
/** Reads of the control block a waiting thread makes before it sleeps in Atomics.wait. */
const SPINS = 400000;
const SLOT = MAX_ARGS + 2; // [kernel index, arg count, args…]

/**
 * Plain JavaScript run inside each worker, given `workerData` (eval'd, so it works from src/ under
 * vitest and from dist/; a browser runs the same loop in a Web Worker, see useThreadSpawner).
 */
export const WORKER_LOOP = `
const { memory, module, ctlBuf, jobsBuf, index, names, slot, startGen } = workerData;
const ctl = new Int32Array(ctlBuf), jobs = new Float64Array(jobsBuf);
let fns = null;
try {
  const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('wasm kernel aborted'); } } });
  fns = names.map((n) => inst.exports[n]);
} catch (e) { fns = null; } // every job then reports failure instead of hanging the main thread
// the generation when this worker was created: jobs posted before it started still count
let gen = startGen;
for (;;) {
  let spins = 0, g;
  while ((g = Atomics.load(ctl, ${GEN})) === gen) {
    if (++spins > ${SPINS}) {
      if (spins === ${SPINS + 1}) Atomics.add(ctl, ${SLEEPS}, 1);
      Atomics.wait(ctl, ${GEN}, gen, 50);
    }
  }
  gen = g; // the counter wraps around: only a change matters, never its sign
  if (Atomics.load(ctl, ${STOP}) !== 0) break;
  const base = index * slot, k = jobs[base];
  if (k >= 0) {
    try {
      if (fns === null) throw new Error('no kernels');
      const n = jobs[base + 1], a = new Array(n);
      for (let i = 0; i < n; i++) a[i] = jobs[base + 2 + i];
      fns[k](...a);
    } catch (e) { Atomics.store(ctl, ${FAILED}, 1); }
  }
  Atomics.add(ctl, ${DONE}, 1);
  Atomics.notify(ctl, ${DONE});
}
`;
const WORKER_SOURCE = `const { workerData } = require('node:worker_threads');\n${WORKER_LOOP}`;

/** What a pool hands each worker: the shared memory, the compiled kernels and the control buffers. */
export interface WorkerData {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  ctlBuf: SharedArrayBuffer;
  jobsBuf: SharedArrayBuffer;
  index: number;
  names: string[];
  slot: number;
  startGen: number;
}

/** Starts one worker running WORKER_LOOP on `data` (Node's worker_threads unless useThreadSpawner says otherwise). */
export type ThreadSpawner = (loop: string, data: WorkerData) => { terminate(): unknown };
let spawner: ThreadSpawner | null = null;

/** Start pool workers with `s` from now on (a browser's Web Workers: there is no node:worker_threads there). */
export function useThreadSpawner(s: ThreadSpawner): void {
  spawner = s;
}

function nodeWorker(data: WorkerData): { terminate(): unknown } {
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: data });
  w.unref(); // never keep the process alive
  return w;
}

/** One job: a kernel and its arguments (typed as that kernel takes them), or null for a thread with nothing to do this time. */
export type Job = { [K in WasmKernelName]: { name: K; args: Parameters<WasmKernels[K]> } }[WasmKernelName] | null;

/** A pool's counters since it started (see ThreadPool.stats). */
export interface PoolStats {
  runs: number;
  joinMs: number;
  sleeps: number;
}

/** What `b` added to `a`. */
export function poolStatsSince(a: PoolStats, b: PoolStats): PoolStats {
  return { runs: b.runs - a.runs, joinMs: b.joinMs - a.joinMs, sleeps: b.sleeps - a.sleeps };
}

export class ThreadPool {
  /** Threads that run kernels, the calling thread included. */
  readonly size: number;
  private readonly workers: { terminate(): unknown }[] = [];
  private readonly ctl: Int32Array;
  private readonly jobs: Float64Array;
  private readonly index = new Map<WasmKernelName, number>();
  private readonly main: WasmKernels;
  private closed = false;
  /** Calls that handed work to the workers (for tests and benchmarks). */
  parallelRuns = 0;
  /** Milliseconds the calling thread waited for the workers after its own share (stragglers at the join). */
  joinMs = 0;

  constructor(memory: WebAssembly.Memory, module: WebAssembly.Module, main: WasmKernels, size: number) {
    this.size = Math.max(1, Math.floor(size));
    this.main = main;
    const names = wasmKernelNames();
    names.forEach((n, i) => this.index.set(n, i));
    // one thread shares nothing: plain buffers, so that a page without cross-origin isolation (no SharedArrayBuffer) runs too
    const Buf = this.size > 1 ? SharedArrayBuffer : ArrayBuffer;
    const ctlBuf = new Buf(20);
    const jobsBuf = new Buf(8 * SLOT * this.size);
    this.ctl = new Int32Array(ctlBuf);
    this.jobs = new Float64Array(jobsBuf);
    for (let i = 1; i < this.size; i++) {
      const data: WorkerData = {
        memory,
        module,
        ctlBuf: ctlBuf as SharedArrayBuffer,
        jobsBuf: jobsBuf as SharedArrayBuffer,
        index: i,
        names,
        slot: SLOT,
        startGen: 0,
      };
      this.workers.push(spawner ? spawner(WORKER_LOOP, data) : nodeWorker(data));
    }
  }

  /** Run jobs[i] on thread i (jobs[0] on the calling thread) and return when all are done. */
  run(jobs: Job[]): void {
    if (this.closed) throw new Error('thread pool used after dispose()');
    if (jobs.length > this.size) throw new Error(`thread pool: ${jobs.length} jobs for ${this.size} threads`);
    const n = this.size - 1;
    if (n > 0) {
      this.parallelRuns++;
      Atomics.store(this.ctl, DONE, 0);
      for (let t = 1; t <= n; t++) {
        const job = jobs[t] ?? null,
          base = t * SLOT;
        if (job === null) {
          this.jobs[base] = -1;
          continue;
        }
        if (job.args.length > MAX_ARGS) throw new Error(`thread pool: ${job.name} has too many arguments`);
        this.jobs[base] = this.index.get(job.name) as number;
        this.jobs[base + 1] = job.args.length;
        for (let i = 0; i < job.args.length; i++) this.jobs[base + 2 + i] = job.args[i];
      }
      Atomics.add(this.ctl, GEN, 1);
      Atomics.notify(this.ctl, GEN);
    }
    const own = jobs[0];
    try {
      if (own) (this.main[own.name] as (...a: number[]) => void)(...own.args);
    } finally {
      // always wait: the workers write into buffers the caller frees once this returns or throws
      // the clock is read only when the workers are not done yet (a decode step makes dozens of these calls)
      if (n > 0 && Atomics.load(this.ctl, DONE) < n) {
        const w0 = performance.now();
        let spins = 0,
          d: number;
        // biome-ignore lint/suspicious/noAssignInExpressions: one atomic read per spin, kept for the wait below
        while ((d = Atomics.load(this.ctl, DONE)) < n) {
          if (++spins > SPINS) Atomics.wait(this.ctl, DONE, d, 50);
        }
        this.joinMs += performance.now() - w0;
      }
    }
    if (n > 0 && Atomics.load(this.ctl, FAILED) !== 0) {
      Atomics.store(this.ctl, FAILED, 0);
      throw new Error('a kernel failed in a worker thread (out-of-bounds memory access?)');
    }
  }

  /** Counters for benchmarks: parallel calls, the caller's wait at their joins, and worker sleeps. */
  stats(): PoolStats {
    return { runs: this.parallelRuns, joinMs: this.joinMs, sleeps: this.size > 1 ? Atomics.load(this.ctl, SLEEPS) : 0 };
  }

  /** Stop the workers. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) void w.terminate();
  }
}

/** Split [0, n) into `parts` contiguous ranges, boundaries rounded down to multiples of `align`. */
export function splitRange(n: number, parts: number, align = 1): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    let end = p === parts - 1 ? n : Math.floor((n * (p + 1)) / parts / align) * align;
    end = Math.max(start, Math.min(n, end));
    out.push([start, end]);
    start = end;
  }
  return out;
}
