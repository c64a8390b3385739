/**
 * Nucleotides as token ids: A C G T = 0 1 2 3, N = 4. Every other IUPAC code (ambiguity codes
 * R, Y, …, and gaps) becomes N and is counted, so a report can say how much of a genome was not
 * a definite base. U (RNA) reads as T.
 */
export const BASES = 'ACGTN';
export const A = 0,
  C = 1,
  G = 2,
  T = 3,
  N = 4;
/** Ids below this are definite bases. */
export const DEFINITE = 4;

const CODE = new Int8Array(128).fill(-1);
for (const [ch, id] of [
  ['A', A],
  ['C', C],
  ['G', G],
  ['T', T],
  ['U', T],
  ['N', N],
] as const) {
  CODE[ch.charCodeAt(0)] = id;
  CODE[ch.toLowerCase().charCodeAt(0)] = id;
}

export interface Tokenized {
  ids: Uint8Array;
  /** Characters that were other IUPAC codes (mapped to N). */
  otherCodes: number;
  /** Ns as written. */
  n: number;
}

/** Token ids of a nucleotide string (letters only: readers have removed line breaks). */
export function tokenize(seq: string): Tokenized {
  const ids = new Uint8Array(seq.length);
  let other = 0,
    n = 0;
  for (let i = 0; i < seq.length; i++) {
    const c = seq.charCodeAt(i),
      id = c < 128 ? CODE[c] : -1;
    if (id < 0) {
      ids[i] = N;
      other++;
    } else {
      ids[i] = id;
      if (id === N) n++;
    }
  }
  return { ids, otherCodes: other, n };
}

/** The string of token ids. */
export function detokenize(ids: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += BASES[ids[i]];
  return s;
}

/** The complement of one id: A<->T, C<->G, N stays N. */
export function complementId(id: number): number {
  return id < DEFINITE ? 3 - id : N;
}

/** The reverse complement of token ids (a new array of the same type). */
export function reverseComplement<T extends Uint8Array | Int32Array>(ids: T): T {
  const out = ids.slice() as T,
    n = ids.length;
  for (let i = 0; i < n; i++) out[i] = complementId(ids[n - 1 - i]);
  return out;
}
