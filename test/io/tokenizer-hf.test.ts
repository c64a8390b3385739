import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HFTokenizer, loadTokenizer } from '../../src/io/tokenizer.js';
import { expectInputError } from './io-helpers.js';

/**
 * The GPT-NeoX-style tokenizer.json built by tools/make_tokenizer.py, run through
 * @huggingface/tokenizers, against the ids its independent Python reference encoder recorded.
 */
const DIR = 'test/fixtures/interop/hf-tokenizer';
const cases = JSON.parse(readFileSync(join(DIR, 'tokenizer-cases.json'), 'utf8')) as {
  cases: { text: string; ids: number[]; decoded: string }[];
};

describe('Hugging Face tokenizer.json', () => {
  const tok = loadTokenizer(DIR)!;

  it('loads with its size and special tokens', () => {
    expect(tok).toBeInstanceOf(HFTokenizer);
    expect(tok.vocabSize).toBe(458);
    expect([...tok.specialIds]).toEqual([0, 1]);
  });

  it.each(cases.cases)('encodes $text as the reference encoder does, and decodes it back', ({ text, ids, decoded }) => {
    expect(Array.from(tok.encode(text))).toEqual(ids);
    expect(tok.decode(ids)).toBe(decoded);
    expect(decoded).toBe(text);
  });

  it('turns special tokens written in the text into their ids, and can leave them out when decoding', () => {
    const ids = tok.encode('a<|endoftext|>b');
    expect(Array.from(ids)).toContain(0);
    expect(tok.decode(ids, true)).toBe('ab');
  });

  it('streams text that equals the full decode and never prints half a character', () => {
    for (const { ids } of cases.cases) {
      const dec = tok.createStreamDecoder();
      let out = '';
      for (const id of ids) {
        const piece = dec.push(id);
        expect(piece.includes('\uFFFD'), `U+FFFD in ${JSON.stringify(piece)}`).toBe(false);
        out += piece;
      }
      out += dec.flush();
      expect(out).toBe(tok.decode(ids, true));
    }
  });

  it('holds back a character split across tokens until it is complete', () => {
    const ids = Array.from(tok.encode('🙂'));
    expect(ids.length).toBeGreaterThan(1); // four bytes, not one token
    const dec = tok.createStreamDecoder();
    const pieces = ids.map((id) => dec.push(id));
    expect(pieces.slice(0, -1).every((p) => p === '')).toBe(true);
    expect(pieces.at(-1)).toBe('🙂');
  });

  it('flushes an unfinished character as U+FFFD, once, at the end', () => {
    const ids = Array.from(tok.encode('🙂'));
    const dec = tok.createStreamDecoder();
    expect(dec.push(ids[0])).toBe('');
    expect(dec.flush()).toBe('\uFFFD');
  });

  it('decodes ids past the tokenizer (padded model rows) to nothing rather than failing', () => {
    expect(tok.decode([460, 463])).toBe('');
    expectInputError(() => tok.decode([-1]), /Token id -1 at position 0/);
  });

  it('returns null without tokenizer.json, and names a broken file', () => {
    expect(loadTokenizer('test/fixtures/interop/orig-bin-tied')).toBeNull();
    const d = mkdtempSync(join(tmpdir(), 'frugal-tok-'));
    try {
      writeFileSync(join(d, 'tokenizer.json'), '{"model": ');
      expectInputError(() => loadTokenizer(d), /tokenizer\.json is not valid JSON/);
      writeFileSync(join(d, 'tokenizer.json'), '{"version": "1.0"}');
      expectInputError(() => loadTokenizer(d), /tokenizer\.json is not a Hugging Face tokenizer\.json/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
