import { describe, expect, it } from 'vitest';
import { ByteTokenizer } from '../../src/io/tokenizer.js';
import { FrugalError } from '../../src/io/errors.js';

describe('ByteTokenizer', () => {
  const tok = new ByteTokenizer();

  it('has 256 ids and encodes UTF-8 bytes', () => {
    expect(tok.vocabSize).toBe(256);
    expect(Array.from(tok.encode('Aé'))).toEqual([0x41, 0xc3, 0xa9]);
    expect(tok.encode('')).toHaveLength(0);
    expect(tok.encode('x')).toBeInstanceOf(Int32Array);
  });

  it('round-trips multibyte text exactly', () => {
    const texts = ['héllo wörld, ça va? ñ', 'emoji 🙂👍🏽 and 👨‍👩‍👧', '日本語のテキスト', '\uFEFFleading BOM', 'a\u0000b\n\t'];
    for (const t of texts) expect(tok.decode(tok.encode(t))).toBe(t);
    expect(tok.encode('🙂')).toHaveLength(4);
  });

  it('decodes invalid UTF-8 to replacement characters instead of failing', () => {
    expect(tok.decode([0x61, 0xff, 0x62])).toBe('a\uFFFDb');
    expect(tok.decode([0xf0, 0x9f])).toBe('\uFFFD');
  });

  it('rejects ids outside 0..255 with an input error', () => {
    for (const bad of [256, -1, 1.5, NaN]) {
      let err: unknown;
      try {
        tok.decode([65, bad]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrugalError);
      expect((err as FrugalError).exitCode).toBe(2);
      expect((err as FrugalError).message).toMatch(/position 1/);
    }
    expect(() => tok.createStreamDecoder().push(300)).toThrow(FrugalError);
  });

  it('streams a multi-byte character only once it is complete', () => {
    const dec = tok.createStreamDecoder();
    const bytes = Array.from(tok.encode('🙂'));
    const outs = bytes.map((b) => dec.push(b));
    expect(outs).toEqual(['', '', '', '🙂']);
    expect(dec.flush()).toBe('');
  });

  it('streams mixed text byte by byte to the same string, never emitting U+FFFD', () => {
    const text = 'Zoë 🙂 says ¡hola! 日本 👍🏽';
    const dec = tok.createStreamDecoder();
    let out = '';
    for (const id of tok.encode(text)) {
      const piece = dec.push(id);
      expect(piece).not.toContain('\uFFFD');
      out += piece;
    }
    out += dec.flush();
    expect(out).toBe(text);
  });

  it('flush emits a replacement for a truncated character and resets the stream', () => {
    const dec = tok.createStreamDecoder();
    expect(dec.push(0xe6)).toBe('');
    expect(dec.push(0x97)).toBe('');
    expect(dec.flush()).toBe('\uFFFD');
    expect(dec.push(0x41)).toBe('A');
  });
});
