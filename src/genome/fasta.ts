import { inputError } from '../io/errors.js';

/**
 * A strict FASTA reader: records start with a `>` header line, sequence lines may wrap at any
 * width, use lower or upper case and end in LF or CRLF. What is not FASTA (text before the first
 * header, a record without sequence, a character that is no IUPAC nucleotide code) is an input
 * error naming the file and line, never a silently shorter genome.
 */
export interface FastaRecord {
  /** The header's first word (the accession or name). */
  id: string;
  /** The rest of the header line. */
  description: string;
  /** Upper-case letters, line breaks removed. */
  sequence: string;
  /** 1-based line of the header. */
  line: number;
}

/** IUPAC nucleotide codes (and `-` for a gap, `*` never): what a DNA FASTA may hold. */
const IUPAC = /^[ACGTUNRYSWKMBDHV-]*$/;

/** Split text into lines, accepting LF and CRLF endings (a lone CR is an error: old Mac files are not read silently). */
export function splitLines(text: string, source: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i) => {
    const s = l.endsWith('\r') ? l.slice(0, -1) : l;
    if (s.includes('\r'))
      throw inputError(`${source}:${i + 1}: a carriage return inside a line; convert the file to LF or CRLF line endings`);
    return s;
  });
}

/** Every record of a FASTA file's text; `source` names it in errors. */
export function readFasta(text: string, source: string): FastaRecord[] {
  const lines = splitLines(text, source);
  const out: FastaRecord[] = [];
  let cur: { id: string; description: string; line: number; parts: string[] } | null = null;
  const close = () => {
    if (!cur) return;
    if (cur.parts.length === 0) throw inputError(`${source}:${cur.line}: record ${cur.id} has no sequence; remove the empty record`);
    out.push({ id: cur.id, description: cur.description, sequence: cur.parts.join(''), line: cur.line });
  };
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw.startsWith('>')) {
      close();
      const header = raw.slice(1).trim();
      if (header === '') throw inputError(`${source}:${n}: a '>' header without a name; give each record a name after '>'`);
      const sp = header.search(/\s/);
      cur = { id: sp < 0 ? header : header.slice(0, sp), description: sp < 0 ? '' : header.slice(sp + 1).trim(), line: n, parts: [] };
      return;
    }
    const s = raw.trim().toUpperCase();
    if (s === '') return;
    if (!cur) throw inputError(`${source}:${n}: sequence before the first '>' header; a FASTA file starts with a '>name' line`);
    if (!IUPAC.test(s)) {
      const bad = s.replace(/[ACGTUNRYSWKMBDHV-]/g, '')[0];
      throw inputError(`${source}:${n}: '${bad}' is not a nucleotide code (IUPAC: ACGTU, N, RYSWKMBDHV); is this a protein or text file?`);
    }
    cur.parts.push(s);
  });
  close();
  if (out.length === 0) throw inputError(`${source}: no FASTA record (no line starting with '>')`);
  return out;
}
