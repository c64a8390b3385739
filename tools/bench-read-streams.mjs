#!/usr/bin/env node
/**
 * Read bandwidth by the number of streams each thread reads its piece as: the wasm `readBandwidth`
 * kernel over a 512 MiB buffer at 1 and 2 threads, streams 1 to 64, the best of 4 passes each, in
 * 3 alternating rounds. Which stream count is fastest depends on the CPU's prefetchers; it is why
 * `frugal bench` probes 2, 4, 8 and 16 and keeps the best, and why the decoding GEMV reads four
 * far-apart rows at a time (assembly/matmul.ts ntRow).
 *
 *   npm run build && node tools/bench-read-streams.mjs
 *
 * Prints one line per round and thread count to stderr and the best of the rounds as JSON to stdout.
 */
import { Heap } from '../dist/tensor/index.js';
import { getWasmModule, instantiateWasmKernels } from '../dist/kernels/wasm/index.js';
import { ThreadPool, splitRange } from '../dist/kernels/threads.js';

const STREAMS = [1, 2, 4, 8, 16, 32, 64];
const heap = new Heap();
const n = (512 << 20) / 4;
const x = heap.alloc(n * 4),
  out = heap.alloc(128);
heap.f32(x, n).fill(1);
const module = getWasmModule();
const main = instantiateWasmKernels(module, heap.memory);
const best = {};
for (const T of [1, 2]) {
  const pool = new ThreadPool(heap.memory, module, main, T);
  const parts = splitRange(n, T, 32);
  best[T] = {};
  for (let round = 0; round < 3; round++) {
    const line = [];
    for (const S of STREAMS) {
      let gbs = 0;
      for (let i = 0; i < 4; i++) {
        const t = performance.now();
        pool.run(parts.map(([a, b], t) => ({ name: 'readBandwidth', args: [out + 64 * t, x + a * 4, b - a, S] })));
        gbs = Math.max(gbs, (n * 4) / ((performance.now() - t) / 1000) / 1e9);
      }
      best[T][S] = Math.max(best[T][S] ?? 0, +gbs.toFixed(1));
      line.push(`${S}: ${gbs.toFixed(1)}`);
    }
    console.error(`${T} thread${T > 1 ? 's' : ''}, round ${round + 1}, GB/s by streams a thread: ${line.join(', ')}`);
  }
  pool.dispose();
}
console.log(JSON.stringify({ buffer_mib: 512, gbs_by_threads_and_streams: best }));
