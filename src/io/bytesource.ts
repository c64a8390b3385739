/**
 * Random-access byte sources: a file read piece by piece through a descriptor, or bytes already in
 * memory (tests, the fuzzer). Checkpoint readers take a source, never a whole-file buffer, so that a
 * multi-gigabyte file is never held twice: each tensor is read straight into its final place.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inputError } from './errors.js';

export interface ByteSource {
  /** The file (or a label) named in error messages. */
  readonly file: string;
  readonly size: number;
  /** Fill all of `dst` with the bytes at [position, position + dst.length). */
  readInto(dst: Uint8Array, position: number): void;
  close(): void;
}

/** Check that [position, position + length) lies inside the source before any read or allocation. */
export function checkRange(src: ByteSource, position: number, length: number, what: string): void {
  if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 || position + length > src.size) {
    throw inputError(
      `${src.file}: ${what} spans bytes [${position}, ${position + length}) but the file has ${src.size} bytes ` +
        '(truncated or corrupt file; download or export it again)',
    );
  }
}

/** Read `length` bytes at `position` into a new array (for headers and small records only). */
export function readBytes(src: ByteSource, position: number, length: number, what: string): Uint8Array {
  checkRange(src, position, length, what);
  const out = new Uint8Array(length);
  src.readInto(out, position);
  return out;
}

export class FileSource implements ByteSource {
  readonly file: string;
  readonly size: number;
  private fd: number | null;

  constructor(path: string) {
    this.file = path;
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'it does not exist'
          : code === 'EISDIR'
            ? 'it is a directory, not a file'
            : code === 'EACCES'
              ? 'permission denied'
              : (e as Error).message;
      throw inputError(`cannot read ${path}: ${why}`);
    }
    const st = fstatSync(this.fd);
    if (!st.isFile()) {
      closeSync(this.fd);
      this.fd = null;
      throw inputError(`cannot read ${path}: it is not a regular file`);
    }
    this.size = st.size;
  }

  readInto(dst: Uint8Array, position: number): void {
    if (this.fd === null) throw new Error(`${this.file}: read after close`);
    checkRange(this, position, dst.length, 'a read');
    let done = 0;
    while (done < dst.length) {
      // readSync caps one call at 2 GiB; loop until the range is filled
      const n = readSync(this.fd, dst, done, Math.min(dst.length - done, 1 << 30), position + done);
      if (n === 0)
        throw inputError(
          `${this.file}: the file ended at byte ${position + done}, before the ${this.size} bytes it had when opened (was it changed while reading?)`,
        );
      done += n;
    }
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

export class MemorySource implements ByteSource {
  readonly file: string;
  readonly size: number;
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, file: string) {
    this.bytes = bytes;
    this.file = file;
    this.size = bytes.length;
  }

  readInto(dst: Uint8Array, position: number): void {
    checkRange(this, position, dst.length, 'a read');
    dst.set(this.bytes.subarray(position, position + dst.length));
  }

  /** A view of the bytes without copying (in-memory sources only). */
  view(position: number, length: number): Uint8Array {
    checkRange(this, position, length, 'a read');
    return this.bytes.subarray(position, position + length);
  }

  close(): void {
    /* nothing to release */
  }
}
