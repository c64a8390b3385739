/**
 * Kernel threads in a browser: the pool's workers are Web Workers running the same loop as Node's
 * worker threads (src/kernels/threads.ts) on the same shared WebAssembly memory. That needs a
 * cross-origin isolated page (SharedArrayBuffer) and a pool owned by a Worker, not the page's main
 * thread (which may not block in Atomics.wait).
 */
import { useThreadSpawner } from '../kernels/threads.js';
import type { WorkerData } from '../kernels/threads.js';

const starting: Promise<void>[] = [];

/** Start pool workers as Web Workers from a Blob (classic scripts: the loop is plain JavaScript). */
export function useWebWorkerThreads(): void {
  useThreadSpawner((loop: string, data: WorkerData) => {
    // the worker says it has its data, then blocks in the loop for good
    const src = `onmessage = (ev) => { onmessage = null; const workerData = ev.data; postMessage('started');\n${loop}\n};`;
    const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
    const w = new Worker(url);
    starting.push(
      new Promise<void>((ok, fail) => {
        w.onmessage = () => ok();
        w.onerror = (e) => fail(new Error(`a kernel thread failed to start: ${e.message}`));
      }),
    );
    w.postMessage(data);
    return w;
  });
}

/**
 * Wait until every pool worker started so far is running. A browser starts a worker only once
 * the thread that created it returns to its event loop, so this comes before any kernel runs on
 * the pool (the calling thread would otherwise wait for workers that cannot start).
 */
export async function threadsStarted(): Promise<void> {
  await Promise.all(starting.splice(0));
}
