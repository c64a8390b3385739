/**
 * `frugal serve` as a child process of the benchmark: started on a free loopback port, ready when
 * GET /health answers 200, stopped with SIGTERM or killed with SIGKILL (a crash, for the restart).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** bin/frugal.js of this package (from src/bench/serve/ or dist/bench/serve/). */
const BIN = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));

export interface ServeOptions {
  port: number;
  stateDir: string;
  model?: string;
  /** More flags for `frugal serve`, passed as given. */
  extra: readonly string[];
}

export interface ServeProcess {
  readonly base: string;
  readonly child: ChildProcess;
  /** performance.now() when the process was spawned. */
  readonly spawnedAt: number;
  /** The last few KB of its stderr on one line, for messages when it fails. */
  tail(): string;
  /** SIGTERM (graceful) or SIGKILL (a crash); resolves once it has exited. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

export function serveArgs(o: ServeOptions): string[] {
  return [
    'serve',
    '--port',
    String(o.port),
    '--host',
    '127.0.0.1',
    '--state-dir',
    o.stateDir,
    ...(o.model ? ['--model', o.model] : []),
    ...o.extra,
  ];
}

export function startServe(o: ServeOptions): ServeProcess {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [BIN, ...serveArgs(o)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4096);
  });
  // the benchmark leaving for any reason (an error, a signal that ends it) must not leave the server running
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.removeListener('exit', orphan);
      resolve();
    }),
  );
  return {
    base: `http://127.0.0.1:${o.port}`,
    child,
    spawnedAt,
    tail: () => tail.trim().replace(/\s*\n\s*/g, ' '),
    async stop(signal) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Polls GET /health until 200; resolves with performance.now() of that answer. Fails if the process exits first. */
export async function waitHealthy(p: ServeProcess, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(
        `frugal serve exited (${p.child.exitCode ?? p.child.signalCode}) before GET /health answered 200: ${p.tail() || 'no output'}`,
      );
    }
    try {
      const res = await fetch(`${p.base}/health`);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now();
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`frugal serve did not answer GET /health with 200 within ${(timeoutMs / 1000).toFixed(0)} s: ${p.tail() || 'no output'}`);
}
