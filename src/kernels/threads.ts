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
  SLEEPS = 4, // times a worker stopped spinning and slept in Atomics.wait (then a wake-up costs a futex)
  NEXT = 5, // the next chunk of a chunked job to claim
  // threads asleep in Atomics.wait: workers on GEN, the caller on DONE. A notify is paid only when
  // one sleeps (spinning threads see the change anyway); in a browser it is a lock and a syscall.
  SLEEPING = 6,
  CALLER_SLEEPS = 7;
const MAX_ARGS = 30;
/** A chunked job: [kernel index, arg count, total, chunk size, base args…, per start…, per count…]. */
const CHUNK_LEN = 4 + 3 * MAX_ARGS;
/** Marks a worker's job slot: take chunks of the shared chunked job. */
const CHUNKED = -2;
/** Reads of the control block a waiting thread makes before it sleeps in Atomics.wait. */
const SPINS = 400000;
const SLOT = MAX_ARGS + 2; // [kernel index, arg count, args…]

/**
 * A kernel call with its arguments spelled out, not spread: a spread call into wasm takes the
 * engine's generic path (an array walk and a generic JS-to-wasm wrapper), which costs a newer V8
 * (Chromium's) about a microsecond a call, and a decode step makes a dozen such calls per thread.
 * The calling thread runs this function; the workers run its text (WORKER_LOOP), so it may refer
 * to nothing outside itself. Up to 16 arguments (the threaded kernels' most), more are spread.
 */
export function callKernel(f: (...a: number[]) => unknown, a: ArrayLike<number>, n: number): unknown {
  switch (n) {
    case 0:
      return f();
    case 1:
      return f(a[0]);
    case 2:
      return f(a[0], a[1]);
    case 3:
      return f(a[0], a[1], a[2]);
    case 4:
      return f(a[0], a[1], a[2], a[3]);
    case 5:
      return f(a[0], a[1], a[2], a[3], a[4]);
    case 6:
      return f(a[0], a[1], a[2], a[3], a[4], a[5]);
    case 7:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    case 8:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    case 9:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    case 10:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
    case 11:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]);
    case 12:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
    case 13:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]);
    case 14:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13]);
    case 15:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]);
    case 16:
      return f(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
    default:
      return f(...Array.from(a).slice(0, n));
  }
}

/**
 * Plain JavaScript run inside each worker, given `workerData` (eval'd, so it works from src/ under
 * vitest and from dist/; a browser runs the same loop in a Web Worker, see useThreadSpawner).
 */
export const WORKER_LOOP = `
const callKernel = ${callKernel.toString()};
const { memory, module, ctlBuf, jobsBuf, chunkBuf, index, names, slot, startGen } = workerData;
const ctl = new Int32Array(ctlBuf), jobs = new Float64Array(jobsBuf), chunk = new Float64Array(chunkBuf);
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
      Atomics.add(ctl, ${SLEEPING}, 1); // before the wait checks GEN (the caller bumps GEN, then reads this)
      Atomics.wait(ctl, ${GEN}, gen, 50);
      Atomics.sub(ctl, ${SLEEPING}, 1);
    }
  }
  gen = g; // the counter wraps around: only a change matters, never its sign
  if (Atomics.load(ctl, ${STOP}) !== 0) break;
  const base = index * slot, k = jobs[base];
  if (k === ${CHUNKED}) {
    try {
      if (fns === null) throw new Error('no kernels');
      const f = fns[chunk[0]], n = chunk[1], total = chunk[2], size = chunk[3], a = new Array(n);
      for (;;) {
        const s = Atomics.add(ctl, ${NEXT}, 1) * size;
        if (s >= total) break;
        const m = Math.min(size, total - s);
        for (let i = 0; i < n; i++) a[i] = chunk[4 + i] + chunk[${4 + MAX_ARGS} + i] * s + chunk[${4 + 2 * MAX_ARGS} + i] * m;
        callKernel(f, a, n);
      }
    } catch (e) { Atomics.store(ctl, ${FAILED}, 1); }
  } else if (k >= 0) {
    try {
      if (fns === null) throw new Error('no kernels');
      const n = jobs[base + 1], a = new Array(n);
      for (let i = 0; i < n; i++) a[i] = jobs[base + 2 + i];
      callKernel(fns[k], a, n);
    } catch (e) { Atomics.store(ctl, ${FAILED}, 1); }
  }
  Atomics.add(ctl, ${DONE}, 1);
  if (Atomics.load(ctl, ${CALLER_SLEEPS}) !== 0) Atomics.notify(ctl, ${DONE});
}
`;
const WORKER_SOURCE = `const { workerData } = require('node:worker_threads');\n${WORKER_LOOP}`;

/** What a pool hands each worker: the shared memory, the compiled kernels and the control buffers. */
export interface WorkerData {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  ctlBuf: SharedArrayBuffer;
  jobsBuf: SharedArrayBuffer;
  chunkBuf: SharedArrayBuffer;
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

/**
 * Chunks per thread of a chunked job: the threads claim chunks as they go, so one that runs
 * slower (or wakes later) takes fewer of them instead of holding the others at the join.
 */
export const CHUNKS_PER_THREAD = 4;

/** A pool's counters since it started (see ThreadPool.stats). */
export interface PoolStats {
  runs: number;
  /** Milliseconds the caller waited at the joins of chunked runs (the prompt's products); other joins are only counted. */
  joinMs: number;
  /** Joins at which the workers were still busy when the caller finished its share (no clock: a page's is coarse). */
  lateJoins: number;
  sleeps: number;
  /** Times the caller had to wake sleeping workers (Atomics.notify) when it posted work. */
  wakes: number;
  /** Chunks of chunked jobs, all threads together, and how many of them the calling thread ran. */
  chunks: number;
  callerChunks: number;
}

/** What `b` added to `a`. */
export function poolStatsSince(a: PoolStats, b: PoolStats): PoolStats {
  return {
    runs: b.runs - a.runs,
    joinMs: b.joinMs - a.joinMs,
    lateJoins: b.lateJoins - a.lateJoins,
    sleeps: b.sleeps - a.sleeps,
    wakes: b.wakes - a.wakes,
    chunks: b.chunks - a.chunks,
    callerChunks: b.callerChunks - a.callerChunks,
  };
}

/**
 * A job cut into chunks that the threads claim one at a time (so a thread that runs slower, or
 * starts later, simply takes fewer): chunk c covers [c·size, min((c+1)·size, total)), and kernel
 * argument i is base[i] + perStart[i]·start + perCount[i]·count for that chunk.
 */
export interface ChunkedJob<K extends WasmKernelName = WasmKernelName> {
  name: K;
  base: Parameters<WasmKernels[K]>;
  perStart: number[];
  perCount: number[];
  total: number;
  size: number;
}

/**
 * The chunked job of kernel `name` on `args`: the chunk [start, start + count) moves argument i
 * by moves[i]·start (byte strides of its arrays, or 1 for an index) and puts count into argument
 * `countAt` (added to what moves gives it, so a range's end can be start + count).
 */
export function chunkedJob<K extends WasmKernelName>(
  name: K,
  args: Parameters<WasmKernels[K]>,
  moves: Readonly<Record<number, number>>,
  countAt: number,
  total: number,
  size: number,
): ChunkedJob<K> {
  const base = args.map((v, i) => (i === countAt ? 0 : v)) as Parameters<WasmKernels[K]>;
  const perStart = args.map((_, i) => moves[i] ?? 0),
    perCount = args.map((_, i) => (i === countAt ? 1 : 0));
  return { name, base, perStart, perCount, total, size };
}

export class ThreadPool {
  /** Threads that run kernels, the calling thread included. */
  readonly size: number;
  private readonly workers: { terminate(): unknown }[] = [];
  private readonly ctl: Int32Array;
  private readonly jobs: Float64Array;
  private readonly chunk: Float64Array;
  private readonly index = new Map<WasmKernelName, number>();
  private readonly main: WasmKernels;
  private closed = false;
  /** Calls that handed work to the workers (for tests and benchmarks). */
  parallelRuns = 0;
  /** Milliseconds the calling thread waited for the workers after its share of a chunked run (stragglers at the join). */
  joinMs = 0;
  private lateJoins = 0;
  private chunks = 0;
  private callerChunks = 0;
  private wakes = 0;

  constructor(memory: WebAssembly.Memory, module: WebAssembly.Module, main: WasmKernels, size: number) {
    this.size = Math.max(1, Math.floor(size));
    this.main = main;
    const names = wasmKernelNames();
    names.forEach((n, i) => this.index.set(n, i));
    // one thread shares nothing: plain buffers, so that a page without cross-origin isolation (no SharedArrayBuffer) runs too
    const Buf = this.size > 1 ? SharedArrayBuffer : ArrayBuffer;
    const ctlBuf = new Buf(32);
    const jobsBuf = new Buf(8 * SLOT * this.size);
    const chunkBuf = new Buf(8 * CHUNK_LEN);
    this.ctl = new Int32Array(ctlBuf);
    this.jobs = new Float64Array(jobsBuf);
    this.chunk = new Float64Array(chunkBuf);
    for (let i = 1; i < this.size; i++) {
      const data: WorkerData = {
        memory,
        module,
        ctlBuf: ctlBuf as SharedArrayBuffer,
        jobsBuf: jobsBuf as SharedArrayBuffer,
        chunkBuf: chunkBuf as SharedArrayBuffer,
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
      this.wake();
    }
    const own = jobs[0];
    try {
      if (own) callKernel(this.main[own.name] as (...a: number[]) => void, own.args, own.args.length);
    } finally {
      this.join(false);
    }
  }

  /**
   * Run a chunked job on every thread: each claims the next chunk until none is left. The split
   * depends on timing, so a chunked job must be one whose outputs are bit-identical for any split
   * into its chunks (outputs, never a reduction, as everywhere in the pool).
   */
  runChunked<K extends WasmKernelName>(job: ChunkedJob<K>): void {
    if (this.closed) throw new Error('thread pool used after dispose()');
    const { base, perStart, perCount, total, size } = job,
      n = base.length;
    if (n > MAX_ARGS) throw new Error(`thread pool: ${job.name} has too many arguments`);
    if (!(size >= 1) || !Number.isInteger(size)) throw new Error(`thread pool: ${job.name} chunk size ${size}`);
    const f = this.main[job.name] as (...a: number[]) => void;
    const a = new Array<number>(n);
    const args = (s: number, m: number) => {
      for (let i = 0; i < n; i++) a[i] = base[i] + perStart[i] * s + perCount[i] * m;
      return a;
    };
    if (total <= 0) return;
    if (this.size === 1 || total <= size) {
      callKernel(f, args(0, total), n);
      return;
    }
    const c = this.chunk;
    c[0] = this.index.get(job.name) as number;
    c[1] = n;
    c[2] = total;
    c[3] = size;
    for (let i = 0; i < n; i++) {
      c[4 + i] = base[i];
      c[4 + MAX_ARGS + i] = perStart[i];
      c[4 + 2 * MAX_ARGS + i] = perCount[i];
    }
    Atomics.store(this.ctl, NEXT, 0);
    for (let t = 1; t < this.size; t++) this.jobs[t * SLOT] = CHUNKED;
    this.wake();
    let mine = 0;
    try {
      for (;;) {
        const s = Atomics.add(this.ctl, NEXT, 1) * size;
        if (s >= total) break;
        callKernel(f, args(s, Math.min(size, total - s)), n);
        mine++;
      }
    } finally {
      this.join(true);
      this.chunks += Math.ceil(total / size);
      this.callerChunks += mine;
    }
  }

  /** Post the jobs written for the workers. */
  private wake(): void {
    this.parallelRuns++;
    Atomics.store(this.ctl, DONE, 0);
    Atomics.add(this.ctl, GEN, 1);
    if (Atomics.load(this.ctl, SLEEPING) !== 0) {
      this.wakes++;
      Atomics.notify(this.ctl, GEN);
    }
  }

  /**
   * Wait for every worker, always (they write into buffers the caller frees once a run returns or
   * throws), then report a worker's failure. The clock is read only at a `timed` join (a chunked
   * run: a prompt's product, long and few) whose workers are not done yet: a decode step makes a
   * dozen short runs, and a page's clock costs about a microsecond a read (measured: two reads at
   * each late join took 5–8% of a 2-thread decode step in Chromium).
   */
  private join(timed: boolean): void {
    const n = this.size - 1;
    if (n === 0) return;
    if (Atomics.load(this.ctl, DONE) < n) {
      this.lateJoins++;
      const w0 = timed ? performance.now() : 0;
      let spins = 0,
        d: number;
      // biome-ignore lint/suspicious/noAssignInExpressions: one atomic read per spin, kept for the wait below
      while ((d = Atomics.load(this.ctl, DONE)) < n) {
        if (++spins > SPINS) {
          Atomics.store(this.ctl, CALLER_SLEEPS, 1); // before the wait checks DONE (a worker adds to DONE, then reads this)
          Atomics.wait(this.ctl, DONE, d, 50);
          Atomics.store(this.ctl, CALLER_SLEEPS, 0);
        }
      }
      if (timed) this.joinMs += performance.now() - w0;
    }
    if (Atomics.load(this.ctl, FAILED) !== 0) {
      Atomics.store(this.ctl, FAILED, 0);
      throw new Error('a kernel failed in a worker thread (out-of-bounds memory access?)');
    }
  }

  /** Counters for benchmarks: parallel calls, the caller's wait at their joins, worker sleeps, and chunks. */
  stats(): PoolStats {
    return {
      runs: this.parallelRuns,
      joinMs: this.joinMs,
      lateJoins: this.lateJoins,
      sleeps: this.size > 1 ? Atomics.load(this.ctl, SLEEPS) : 0,
      wakes: this.wakes,
      chunks: this.chunks,
      callerChunks: this.callerChunks,
    };
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
