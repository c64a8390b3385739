/**
 * Model files cached in the Origin Private File System under their SHA-256, checked on every read:
 * the next visit loads a model without the network, and a damaged copy is fetched again. Files
 * read from any URL are indexed by URL too, with the server's validator (ETag or Last-Modified),
 * so that they are reused while the server says they have not changed.
 */
import type { FileEntry } from './protocol.js';

const DIR = 'frugal-models';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function cacheDir(): Promise<FileSystemDirectoryHandle | null> {
  try {
    return await (await navigator.storage.getDirectory()).getDirectoryHandle(DIR, { create: true });
  } catch {
    return null; // no OPFS (a private window, an old browser): fetch every time
  }
}

/** The cached bytes of a file with this entry, or null when absent or not matching its checksum. */
export async function cachedFile(entry: FileEntry): Promise<Uint8Array | null> {
  const dir = await cacheDir();
  if (dir === null) return null;
  try {
    const f = await (await dir.getFileHandle(entry.sha256)).getFile();
    if (f.size !== entry.bytes) return null;
    const bytes = new Uint8Array(await f.arrayBuffer());
    return (await sha256Hex(bytes)) === entry.sha256 ? bytes : null;
  } catch {
    return null;
  }
}

/** Keep `bytes` (already checked against its SHA-256) for the next visit; a failure only costs the cache. */
export async function cacheFile(sha256: string, bytes: Uint8Array): Promise<void> {
  const dir = await cacheDir();
  if (dir === null) return;
  try {
    const w = await (await dir.getFileHandle(sha256, { create: true })).createWritable();
    await w.write(bytes as Uint8Array<ArrayBuffer>);
    await w.close();
  } catch {
    /* quota or a closed tab: the model still runs from memory */
  }
}

/** A file read from a URL: its size and SHA-256, and the validator the server sent with it ('' when none). */
export interface UrlEntry extends FileEntry {
  validator: string;
}

const URL_INDEX = 'url-index.json';

async function urlIndex(dir: FileSystemDirectoryHandle): Promise<Record<string, UrlEntry>> {
  try {
    return JSON.parse(await (await (await dir.getFileHandle(URL_INDEX)).getFile()).text()) as Record<string, UrlEntry>;
  } catch {
    return {}; // none yet, or unreadable: start afresh
  }
}

/** What the cache holds for `url`, or null. */
export async function cachedUrl(url: string): Promise<UrlEntry | null> {
  const dir = await cacheDir();
  return dir === null ? null : ((await urlIndex(dir))[url] ?? null);
}

/** Keep `bytes`, read from `url` with `validator`, for the next visit. */
export async function cacheUrl(url: string, validator: string, bytes: Uint8Array): Promise<void> {
  const sha256 = await sha256Hex(bytes);
  await cacheFile(sha256, bytes);
  await indexUrl(url, { bytes: bytes.byteLength, sha256, validator });
}

/** The mark of an optional file the server said does not exist (404), kept so that an offline visit knows it too. */
export const ABSENT = -1;

/** Remember that `url` (an optional file of a model folder) does not exist. */
export async function cacheAbsent(url: string): Promise<void> {
  await indexUrl(url, { bytes: ABSENT, sha256: '', validator: '' });
}

async function indexUrl(url: string, entry: UrlEntry): Promise<void> {
  const dir = await cacheDir();
  if (dir === null) return;
  try {
    const index = await urlIndex(dir);
    index[url] = entry;
    const w = await (await dir.getFileHandle(URL_INDEX, { create: true })).createWritable();
    await w.write(JSON.stringify(index));
    await w.close();
  } catch {
    /* as in cacheFile: only the cache is lost */
  }
}
