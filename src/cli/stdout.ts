/**
 * The product on stdout, written synchronously so that a reader who goes away (`frugal generate |
 * head`) is noticed at the very next write: EPIPE throws PipeClosed, which stops the work and ends
 * the command quietly with exit 0. (process.stdout reports EPIPE only later, as an event, while a
 * synchronous generation loop keeps running.) Other write errors, such as a full disk, are one-line
 * runtime errors (exit 1).
 */
import { writeSync } from 'node:fs';
import { runtimeError } from '../io/errors.js';

/** stdout's reader has gone: not a failure, the reader chose to stop. */
export class PipeClosed extends Error {
  constructor() {
    super('stdout was closed by its reader');
    this.name = 'PipeClosed';
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Write `text` to stdout (fd 1) completely. */
export function writeOut(text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(1, bytes, off, bytes.length - off);
    } catch (e) {
      const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      } // a non-blocking pipe is full: wait for the reader
      if (code === 'EPIPE') throw new PipeClosed();
      const why = code === 'ENOSPC' ? 'the disk is full' : e instanceof Error ? e.message : String(e);
      throw runtimeError(`cannot write the output to stdout: ${why}${code ? ` (${code})` : ''}`);
    }
  }
}
