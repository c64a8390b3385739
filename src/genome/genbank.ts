import { inputError } from '../io/errors.js';
import { splitLines } from './fasta.js';

/**
 * A strict GenBank flat-file reader: LOCUS, the FEATURES table (keys, locations, qualifiers) and
 * the ORIGIN sequence of each record up to `//`. The feature table must be whole: a location with
 * unbalanced parentheses, a qualifier with an unclosed quote, or a record that ends before ORIGIN
 * and `//` is an input error with the file and line.
 */
export interface GenbankFeature {
  key: string;
  /** The location as written, e.g. complement(join(<56..221,338..449)). */
  location: string;
  /** 1-based inclusive spans, in the order written. */
  spans: [number, number][];
  strand: 1 | -1;
  qualifiers: Record<string, string>;
  line: number;
}

export interface GenbankRecord {
  locus: string;
  /** Length the LOCUS line declares (checked against the sequence). */
  length: number;
  features: GenbankFeature[];
  /** Upper-case letters. */
  sequence: string;
  line: number;
}

/** Spans and strand of a location; throws with `where` when it is not whole. */
export function parseLocation(loc: string, where: string): { spans: [number, number][]; strand: 1 | -1 } {
  let depth = 0;
  for (const ch of loc) {
    depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
    if (depth < 0) throw inputError(`${where}: location ${loc} closes a parenthesis it never opened`);
  }
  if (depth !== 0) throw inputError(`${where}: location ${loc} is cut short (unbalanced parentheses); the feature table is truncated`);
  const spans: [number, number][] = [];
  // a span in another entry (ACC.1:10..20) is not on this sequence: skipped
  for (const part of loc
    .replace(/(complement|join|order)\(/g, '')
    .replace(/\)/g, '')
    .split(',')) {
    if (part.includes(':') || part.trim() === '') continue;
    const m = /^[<>]?(\d+)(?:(?:\.\.|\^)[<>]?(\d+))?$/.exec(part.trim());
    if (!m) throw inputError(`${where}: cannot read location part '${part.trim()}' of ${loc}`);
    const a = Number(m[1]),
      b = m[2] === undefined ? a : Number(m[2]);
    spans.push([Math.min(a, b), Math.max(a, b)]);
  }
  return { spans, strand: loc.startsWith('complement(') ? -1 : 1 };
}

interface Pending {
  key: string;
  loc: string;
  line: number;
  quals: string[];
}

function finishFeature(p: Pending, source: string): GenbankFeature {
  const where = `${source}:${p.line}`;
  const qualifiers: Record<string, string> = {};
  for (const q of p.quals) {
    const m = /^\/([^=]+)(?:=(.*))?$/s.exec(q);
    if (!m) throw inputError(`${where}: cannot read qualifier ${q.slice(0, 40)}`);
    let v = m[2] ?? '';
    if (v.startsWith('"')) {
      if (v.length < 2 || !v.endsWith('"'))
        throw inputError(`${where}: qualifier /${m[1]} has an unclosed quote; the feature table is truncated`);
      v = v.slice(1, -1);
    }
    qualifiers[m[1]] = v;
  }
  return { key: p.key, location: p.loc, ...parseLocation(p.loc, where), qualifiers, line: p.line };
}

/** Every record of a GenBank file's text; `source` names it in errors. */
export function readGenbank(text: string, source: string): GenbankRecord[] {
  const lines = splitLines(text, source);
  const out: GenbankRecord[] = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i].trim() === '') {
      i++;
      continue;
    }
    if (!lines[i].startsWith('LOCUS')) throw inputError(`${source}:${i + 1}: expected a LOCUS line to start a GenBank record`);
    const rec = readRecord(lines, i, source);
    out.push(rec.record);
    i = rec.next;
  }
  if (out.length === 0) throw inputError(`${source}: no GenBank record (no LOCUS line)`);
  return out;
}

function readRecord(lines: string[], start: number, source: string): { record: GenbankRecord; next: number } {
  const head = lines[start].split(/\s+/);
  const locus = head[1] ?? '',
    length = Number(head[2]);
  if (!locus || !Number.isInteger(length)) throw inputError(`${source}:${start + 1}: a LOCUS line needs a name and a length in bp`);
  const features: GenbankFeature[] = [],
    seq: string[] = [];
  let section: 'header' | 'features' | 'origin' = 'header',
    cur: Pending | null = null,
    i = start + 1;
  const flush = () => {
    if (cur) features.push(finishFeature(cur, source));
    cur = null;
  };
  for (; i < lines.length; i++) {
    const l = lines[i],
      n = i + 1;
    if (l.startsWith('//')) {
      if (section !== 'origin') throw inputError(`${source}:${n}: record ${locus} ends before its ORIGIN sequence; the file is truncated`);
      const sequence = seq.join('');
      if (sequence.length !== length)
        throw inputError(
          `${source}:${start + 1}: record ${locus} declares ${length} bp but holds ${sequence.length}; the file is truncated`,
        );
      return { record: { locus, length, features, sequence, line: start + 1 }, next: i + 1 };
    }
    if (section === 'origin') {
      const s = l.replace(/[\s\d]/g, '').toUpperCase();
      if (!/^[ACGTUNRYSWKMBDHV]*$/.test(s))
        throw inputError(`${source}:${n}: '${s.replace(/[ACGTUNRYSWKMBDHV]/g, '')[0]}' is not a nucleotide code`);
      seq.push(s);
    } else if (l.startsWith('ORIGIN')) {
      flush();
      section = 'origin';
    } else if (l.startsWith('FEATURES')) section = 'features';
    else if (section === 'features' && /^\S/.test(l)) {
      flush(); // a new header keyword (CONTIG, BASE COUNT) ends the table
      section = 'header';
    } else if (section === 'features') {
      const key = l.slice(5, 21).trim(),
        body = l.slice(21).trim();
      if (key !== '') {
        flush();
        cur = { key, loc: body, line: n, quals: [] };
      } else if (!cur) throw inputError(`${source}:${n}: a feature line with no feature key above it`);
      else if (body.startsWith('/') && !openQuote(cur.quals)) cur.quals.push(body);
      else if (cur.quals.length > 0) cur.quals[cur.quals.length - 1] += ` ${body}`;
      else cur.loc += body;
    }
  }
  throw inputError(`${source}:${lines.length}: record ${locus} (line ${start + 1}) has no closing '//'; the file is truncated`);
}

/** Whether the last qualifier's quoted value is still open (its text goes on over the next lines). */
function openQuote(quals: readonly string[]): boolean {
  const q = quals[quals.length - 1];
  if (q === undefined) return false;
  const v = q.slice(q.indexOf('=') + 1);
  return v.startsWith('"') && (v.length === 1 || !v.endsWith('"'));
}
