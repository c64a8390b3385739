/**
 * The part of the ZIP format that PyTorch's torch.save uses: uncompressed ("stored") entries,
 * ZIP64 records for files over 4 GiB, and tensor data aligned to 64 bytes by padding the local
 * header's extra field. Reading indexes the central directory and each entry's data range without
 * reading the data; writing streams one entry at a time.
 *
 * Every count, size and offset comes from the file, so each is checked against the real file size
 * before it is used, and compressed, encrypted or multi-disk archives are refused by name.
 */
import * as zlib from 'node:zlib';
import { inputError } from './errors.js';
import type { ByteSource } from './bytesource.js';
import { readBytes } from './bytesource.js';
import type { FileProducer } from './atomic.js';

export interface ZipEntry {
  name: string;
  crc32: number;
  size: number;
  /** Absolute offset of the entry's first data byte. */
  dataOffset: number;
}

const SIG_LOCAL = 0x04034b50,
  SIG_CENTRAL = 0x02014b50,
  SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50,
  SIG_LOCATOR64 = 0x07064b50;
const U32_MAX = 0xffffffff,
  U16_MAX = 0xffff;
/** A checkpoint's directory is kilobytes; a bigger one is refused rather than read into memory. */
const MAX_DIRECTORY_BYTES = 64 << 20;

// --- CRC-32 (zlib's polynomial); Node's zlib.crc32 when present (Node >= 20.15), else a table ---
let CRC_TABLE: Uint32Array | null = null;
export function crc32(data: Uint8Array, crc = 0): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array, c: number) => number }).crc32;
  if (native) return native(data, crc) >>> 0;
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = (crc ^ U32_MAX) >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ U32_MAX) >>> 0;
}

function u64(v: DataView, at: number): number {
  const x = v.getBigUint64(at, true);
  return x > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(x);
}

/**
 * Index the entries of a ZIP archive (names, sizes, CRCs, where each one's data starts). Over 80
 * lines because it follows the format's records in order (end record, ZIP64 locator and record,
 * central directory, local headers), each field checked where it is read.
 */
export function readZipDirectory(src: ByteSource): Map<string, ZipEntry> {
  const bad = (what: string): never => {
    throw inputError(
      `${src.file} is not a readable PyTorch zip archive: ${what}. Save it again with torch.save, or convert it to safetensors.`,
    );
  };
  if (src.size < 22) bad(`it has ${src.size} bytes, too few for a zip archive`);
  const tailLen = Math.min(src.size, U16_MAX + 22);
  const tail = readBytes(src, src.size - tailLen, tailLen, 'the zip trailer');
  const tv = new DataView(tail.buffer);
  let at = -1;
  for (let i = tailLen - 22; i >= 0; i--)
    if (tv.getUint32(i, true) === SIG_EOCD) {
      at = i;
      break;
    }
  if (at < 0) bad('no end-of-central-directory record');
  const eocdPos = src.size - tailLen + at;
  if (tv.getUint16(at + 4, true) !== 0 || tv.getUint16(at + 6, true) !== 0) bad('multi-disk archives are not supported');
  let count = tv.getUint16(at + 10, true);
  let cdSize = tv.getUint32(at + 12, true);
  let cdOffset = tv.getUint32(at + 16, true);
  if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
    if (eocdPos < 20) bad('a ZIP64 archive without its locator');
    const loc = new DataView(readBytes(src, eocdPos - 20, 20, 'the ZIP64 locator').buffer);
    if (loc.getUint32(0, true) !== SIG_LOCATOR64) bad('a ZIP64 archive without its locator');
    const recPos = u64(loc, 8);
    if (!(recPos + 56 <= eocdPos - 20)) bad(`the ZIP64 record offset ${recPos} is outside the file`);
    const rec = new DataView(readBytes(src, recPos, 56, 'the ZIP64 record').buffer);
    if (rec.getUint32(0, true) !== SIG_EOCD64) bad('the ZIP64 record has a wrong signature');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (!(cdOffset + cdSize <= eocdPos)) bad(`the central directory [${cdOffset}, +${cdSize}) is outside the file`);
  if (cdSize > MAX_DIRECTORY_BYTES) bad(`the central directory is ${cdSize} bytes, over the ${MAX_DIRECTORY_BYTES}-byte limit`);
  if (count * 46 > cdSize) bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
  const cd = readBytes(src, cdOffset, cdSize, 'the central directory');
  const v = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  const ranges: [number, number, string][] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || v.getUint32(p, true) !== SIG_CENTRAL) bad(`central directory entry ${i} is malformed`);
    const flags = v.getUint16(p + 8, true),
      method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    let csize = v.getUint32(p + 20, true),
      usize = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true),
      extraLen = v.getUint16(p + 30, true),
      commentLen = v.getUint16(p + 32, true);
    let local = v.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) bad(`central directory entry ${i} runs past the directory`);
    const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information: the 64-bit values of whichever fields hold 0xffffffff, in this order
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = v.getUint16(x, true),
        len = v.getUint16(x + 2, true);
      if (x + 4 + len > xEnd) bad(`entry '${name}' has a malformed extra field`);
      if (id === 0x0001) {
        let q = x + 4;
        const next = (): number => {
          if (q + 8 > x + 4 + len) bad(`entry '${name}' has a short ZIP64 field`);
          const r = u64(v, q);
          q += 8;
          return r;
        };
        if (usize === U32_MAX) usize = next();
        if (csize === U32_MAX) csize = next();
        if (local === U32_MAX) local = next();
      }
      x += 4 + len;
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (flags & 1) bad(`entry '${name}' is encrypted`);
    if (method !== 0) bad(`entry '${name}' is compressed (method ${method}); torch.save writes uncompressed entries`);
    if (csize !== usize) bad(`entry '${name}' is stored but its sizes disagree (${csize} vs ${usize})`);
    if (entries.has(name)) bad(`entry '${name}' appears twice`);
    if (!(local + 30 <= cdOffset)) bad(`entry '${name}' has its local header at ${local}, outside the data area`);
    const lh = new DataView(readBytes(src, local, 30, `the local header of '${name}'`).buffer);
    if (lh.getUint32(0, true) !== SIG_LOCAL) bad(`entry '${name}' has no local header at ${local}`);
    const dataOffset = local + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
    if (!(dataOffset + usize <= cdOffset)) bad(`entry '${name}' data [${dataOffset}, +${usize}) runs past the data area`);
    entries.set(name, { name, crc32: crc, size: usize, dataOffset });
    if (usize > 0) ranges.push([dataOffset, dataOffset + usize, name]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) bad(`entries '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  }
  return entries;
}

/** One entry to write; `data` is called once, when the entry's turn comes (so one is held at a time). */
export interface ZipWriteEntry {
  name: string;
  data: () => Uint8Array;
}

/**
 * Stream a stored ZIP archive the way PyTorch writes one: data aligned to 64 bytes through a padding
 * extra field ("FB"), ZIP64 records when an offset or size passes 4 GiB (or always, with `zip64`).
 * Over 80 lines because it writes the format's records in order (local headers and data, central
 * directory, ZIP64 record and locator, end record), the mirror of readZipDirectory.
 */
export function zipProducer(entries: ZipWriteEntry[], opts: { zip64?: boolean } = {}): FileProducer {
  return (write) => {
    let pos = 0;
    const emit = (b: Uint8Array) => {
      write(b);
      pos += b.length;
    };
    const central: Uint8Array[] = [];
    for (const e of entries) {
      const data = e.data();
      const crc = crc32(data);
      const name = new TextEncoder().encode(e.name);
      const big = opts.zip64 === true || data.length >= U32_MAX || pos >= U32_MAX;
      const z64Len = big ? 20 : 0;
      const base = pos + 30 + name.length + z64Len + 4;
      const pad = (64 - (base % 64)) % 64;
      const extra = new Uint8Array(z64Len + 4 + pad);
      const ev = new DataView(extra.buffer);
      if (big) {
        ev.setUint16(0, 0x0001, true);
        ev.setUint16(2, 16, true);
        ev.setBigUint64(4, BigInt(data.length), true);
        ev.setBigUint64(12, BigInt(data.length), true);
      }
      ev.setUint16(z64Len, 0x4246, true);
      ev.setUint16(z64Len + 2, pad, true); // 'FB' padding, as PyTorch
      const lh = new Uint8Array(30),
        lv = new DataView(lh.buffer);
      lv.setUint32(0, SIG_LOCAL, true);
      lv.setUint16(4, big ? 45 : 20, true);
      lv.setUint32(14, crc, true);
      lv.setUint32(18, big ? U32_MAX : data.length, true);
      lv.setUint32(22, big ? U32_MAX : data.length, true);
      lv.setUint16(26, name.length, true);
      lv.setUint16(28, extra.length, true);
      const local = pos;
      emit(lh);
      emit(name);
      emit(extra);
      emit(data);
      const bigC = big || local >= U32_MAX;
      const cz = new Uint8Array(bigC ? 28 : 0),
        cv = new DataView(cz.buffer);
      if (bigC) {
        cv.setUint16(0, 0x0001, true);
        cv.setUint16(2, 24, true);
        cv.setBigUint64(4, BigInt(data.length), true);
        cv.setBigUint64(12, BigInt(data.length), true);
        cv.setBigUint64(20, BigInt(local), true);
      }
      const ch = new Uint8Array(46),
        hv = new DataView(ch.buffer);
      hv.setUint32(0, SIG_CENTRAL, true);
      hv.setUint16(4, bigC ? 45 : 20, true);
      hv.setUint16(6, bigC ? 45 : 20, true);
      hv.setUint32(16, crc, true);
      hv.setUint32(20, bigC ? U32_MAX : data.length, true);
      hv.setUint32(24, bigC ? U32_MAX : data.length, true);
      hv.setUint16(28, name.length, true);
      hv.setUint16(30, cz.length, true);
      hv.setUint32(42, bigC ? U32_MAX : local, true);
      central.push(ch, name, cz);
    }
    const cdOffset = pos;
    for (const c of central) emit(c);
    const cdSize = pos - cdOffset;
    const big = opts.zip64 === true || entries.length >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
    if (big) {
      const recPos = pos;
      const r = new Uint8Array(56),
        rv = new DataView(r.buffer);
      rv.setUint32(0, SIG_EOCD64, true);
      rv.setBigUint64(4, 44n, true);
      rv.setUint16(12, 45, true);
      rv.setUint16(14, 45, true);
      rv.setBigUint64(24, BigInt(entries.length), true);
      rv.setBigUint64(32, BigInt(entries.length), true);
      rv.setBigUint64(40, BigInt(cdSize), true);
      rv.setBigUint64(48, BigInt(cdOffset), true);
      emit(r);
      const l = new Uint8Array(20),
        lv = new DataView(l.buffer);
      lv.setUint32(0, SIG_LOCATOR64, true);
      lv.setBigUint64(8, BigInt(recPos), true);
      lv.setUint32(16, 1, true);
      emit(l);
    }
    const e = new Uint8Array(22),
      v = new DataView(e.buffer);
    v.setUint32(0, SIG_EOCD, true);
    v.setUint16(8, big ? U16_MAX : entries.length, true);
    v.setUint16(10, big ? U16_MAX : entries.length, true);
    v.setUint32(12, big ? U32_MAX : cdSize, true);
    v.setUint32(16, big ? U32_MAX : cdOffset, true);
    emit(e);
  };
}
