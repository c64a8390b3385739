import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFasta } from '../../src/genome/fasta.js';
import { parseLocation, readGenbank } from '../../src/genome/genbank.js';
import { FrugalError } from '../../src/io/errors.js';

/** The FASTA and GenBank readers against hand-made files in test/fixtures/genome, well-formed and malformed. */
const dir = 'test/fixtures/genome';
const text = (f: string) => readFileSync(join(dir, f), 'latin1');

/** The input error a reader throws, with its message. */
function inputErrorOf(f: () => unknown): FrugalError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FrugalError);
    expect((e as FrugalError).exitCode).toBe(2);
    return e as FrugalError;
  }
  throw new Error('expected an input error');
}

describe('readFasta', () => {
  it('joins wrapped lines, upper-cases, keeps IUPAC codes and names each record', () => {
    const r = readFasta(text('wrapped.fasta'), 'wrapped.fasta');
    expect(r.map((x) => x.id)).toEqual(['seq1', 'seq2']);
    expect(r[0].description).toBe('a wrapped, mixed-case record');
    expect(r[0].sequence).toBe('ACGTACGTNNRYACG');
    expect(r[1].sequence).toBe('TTTT');
    expect(r[1].line).toBe(5);
  });

  it('reads CRLF line endings like LF', () => {
    const r = readFasta(text('crlf.fasta'), 'crlf.fasta');
    expect(r.map((x) => [x.id, x.sequence])).toEqual([
      ['crlf', 'ACGTGGCC'],
      ['crlf2', 'A'],
    ]);
  });

  it('an empty record is an error naming its line', () => {
    expect(inputErrorOf(() => readFasta(text('empty-record.fasta'), 'e.fa')).message).toMatch(/^e\.fa:3: record empty has no sequence/);
  });

  it('sequence before any header, protein letters, no record and a lone CR are errors with the line', () => {
    expect(inputErrorOf(() => readFasta(text('no-header.fasta'), 'n.fa')).message).toMatch(/^n\.fa:1: sequence before the first '>'/);
    expect(inputErrorOf(() => readFasta(text('protein.fasta'), 'p.fa')).message).toMatch(/^p\.fa:2: 'L' is not a nucleotide code/);
    expect(inputErrorOf(() => readFasta('', 'x.fa')).message).toMatch(/no FASTA record/);
    expect(inputErrorOf(() => readFasta('>a\nAC\rGT\n', 'cr.fa')).message).toMatch(/^cr\.fa:2: a carriage return/);
  });
});

describe('readGenbank', () => {
  it('reads records, features, multi-line locations and qualifiers, and the ORIGIN sequence', () => {
    const [a, b] = readGenbank(text('tiny.gb'), 'tiny.gb');
    expect(a.locus).toBe('TINY1');
    expect(a.sequence).toBe('ACGT'.repeat(10));
    expect(a.features.map((f) => f.key)).toEqual(['source', 'gene', 'exon', 'exon', 'gene', 'exon']);
    const g2 = a.features[4];
    expect(g2.location).toBe('complement(join(25..28,33..38))');
    expect(g2.spans).toEqual([
      [25, 28],
      [33, 38],
    ]);
    expect(g2.strand).toBe(-1);
    expect(g2.qualifiers.gene).toBe('G2');
    expect(a.features[2].qualifiers.note).toBe('a note that goes on over two lines');
    expect(a.features[2].line).toBe(9);
    expect(b.locus).toBe('TINY2');
    expect(b.sequence).toBe('GGGGCCCCTTTR');
    expect(b.features[0].spans).toEqual([[1, 12]]);
  });

  it('a truncated feature table, a cut location and an unclosed quote are errors with the line', () => {
    expect(inputErrorOf(() => readGenbank(text('truncated.gb'), 't.gb')).message).toMatch(
      /^t\.gb:16: record TINY1 .* no closing '\/\/'; the file is truncated/,
    );
    expect(inputErrorOf(() => readGenbank(text('truncated-location.gb'), 'l.gb')).message).toMatch(/^l\.gb:15: location .* cut short/);
    expect(inputErrorOf(() => readGenbank(text('unclosed-quote.gb'), 'q.gb')).message).toMatch(
      /^q\.gb:3: qualifier \/note has an unclosed quote/,
    );
  });

  it('a record shorter than its LOCUS length is truncated', () => {
    const t = text('tiny.gb').replace('40 bp', '41 bp');
    expect(inputErrorOf(() => readGenbank(t, 'x.gb')).message).toMatch(/^x\.gb:1: record TINY1 declares 41 bp but holds 40/);
  });

  it('locations: single bases, partial ends, sites between bases, remote spans skipped', () => {
    expect(parseLocation('467', 'w').spans).toEqual([[467, 467]]);
    expect(parseLocation('<1..>90', 'w').spans).toEqual([[1, 90]]);
    expect(parseLocation('12^13', 'w').spans).toEqual([[12, 13]]);
    expect(parseLocation('join(AB000001.1:1..10,20..30)', 'w').spans).toEqual([[20, 30]]);
    expect(inputErrorOf(() => parseLocation('join(1..2))', 'w:3')).message).toMatch(/^w:3: .* never opened/);
  });
});
