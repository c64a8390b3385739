/**
 * Ctrl-C (SIGINT) and SIGTERM while a command writes. Node runs signal handlers only when the
 * event loop gets control, never inside synchronous work, so:
 * - training yields to the event loop between steps (`watchStopSignals`), and on a signal saves
 *   its step and stops cleanly;
 * - convert and quantize, long synchronous loops over tensors, run in a worker thread
 *   (`runInWorker`, entry task-worker.ts) that the main thread terminates at once on a signal,
 *   then removes the worker's partial temporary files.
 */
import { Worker } from 'node:worker_threads';
import { FrugalError, StoppedError } from '../io/errors.js';
import type { ConvertOpts } from '../models/convert.js';
import type { QuantizeJob } from '../models/quantize-checkpoint.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export interface StopWatch {
  /** Let pending signals be handled; the first one received, if any. */
  check(): Promise<NodeJS.Signals | null>;
  dispose(): void;
}

export function watchStopSignals(): StopWatch {
  let got: NodeJS.Signals | null = null;
  const on = (s: NodeJS.Signals) => {
    got ??= s;
  };
  for (const s of SIGNALS) process.on(s, on);
  return {
    // a check-phase callback runs after the poll phase, where libuv delivers signals
    check: () => new Promise((resolve) => setImmediate(() => resolve(got))),
    dispose: () => {
      for (const s of SIGNALS) process.off(s, on);
    },
  };
}

export type WorkerJob = { task: 'convert'; options: Omit<ConvertOpts, 'log'> } | { task: 'quantize'; options: QuantizeJob };

/** Messages from task-worker.ts: a log line, the result, or an error. */
export interface WorkerReply {
  log?: string;
  done?: unknown;
  error?: { message: string; exitCode?: number; stack?: string };
}

/**
 * Run `job` in a worker thread; its log lines go to stderr. On SIGINT/SIGTERM the worker is
 * terminated, `cleanUp` removes what it left half-written, and the promise rejects with a
 * StoppedError.
 */
export function runInWorker<T>(job: WorkerJob, cleanUp: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./task-worker.js', import.meta.url), { workerData: job });
    let outcome: { ok: T } | { err: Error } | null = null;
    let stopped: NodeJS.Signals | null = null;
    const onSignal = (s: NodeJS.Signals) => {
      if (stopped !== null) return;
      stopped = s;
      void worker.terminate();
    };
    for (const s of SIGNALS) process.on(s, onSignal);
    worker.on('message', (m: WorkerReply) => {
      if (m.log !== undefined) process.stderr.write(m.log + '\n');
      if (m.error) {
        const { message, exitCode, stack } = m.error;
        const err = exitCode === 1 || exitCode === 2 ? new FrugalError(message, exitCode) : new Error(message);
        if (stack) err.stack = stack;
        outcome = { err };
      }
      if ('done' in m) outcome = { ok: m.done as T };
    });
    worker.on('error', (e) => {
      outcome = { err: e };
    });
    worker.on('exit', () => {
      for (const s of SIGNALS) process.off(s, onSignal);
      if (stopped !== null) {
        cleanUp();
        reject(new StoppedError('stopped; partial files removed', stopped));
      } else if (outcome && 'ok' in outcome) {
        resolve(outcome.ok);
      } else {
        reject(outcome?.err ?? new Error('the worker thread ended without a result'));
      }
    });
  });
}
