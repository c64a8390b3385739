import { describe, expect, it } from 'vitest';
import { ByteBpeEncoder, bpeTokenizerJson, byteToUnicode, trainBpe } from '../../src/io/bpe.js';
import { HFTokenizer, loadTokenizer } from '../../src/io/tokenizer.js';
import { loadCorpus } from '../../src/io/corpus.js';
import { Rng } from '../../src/io/rng.js';

const TEXT =
  'The Congress shall make no law respecting an establishment of religion. Ünïcödé façade — naïve café 東京 😀🎉 '.repeat(30) +
  'The state of the Union is strong; the people of the Union are strong. '.repeat(40);

/** A random string of code points from every UTF-8 length class (1 to 4 bytes), lone surrogates excluded. */
function randomText(rng: Rng, n: number): string {
  const ranges: [number, number][] = [
    [0x00, 0x7f],
    [0x80, 0x7ff],
    [0x800, 0xd7ff],
    [0xe000, 0xffff],
    [0x10000, 0x10ffff],
  ];
  let s = '';
  for (let i = 0; i < n; i++) {
    const [lo, hi] = ranges[rng.int(ranges.length)];
    s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return s;
}

describe('byte-level BPE training', () => {
  it('learns merges from a case worked by hand', () => {
    // one word "aaaa": the pair (a, a) occurs 3 times -> merge to "aa"; then (aa, aa) occurs once: stop
    const r = trainBpe('aaaa', 300);
    expect(r.merges).toEqual([[97, 97]]);
    expect(r.tokens.length).toBe(257);
    expect(Array.from(r.tokens[256])).toEqual([97, 97]);
    // "ab ab ab": words "ab" ×1 and " ab" ×2; (a, b) occurs 3 times, ( , a) twice -> first (a, b), then ( , ab)
    expect(trainBpe('ab ab ab', 300).merges).toEqual([
      [97, 98],
      [32, 256],
    ]);
  });

  it('is deterministic, gives the size asked for, and writes GPT-2 byte-level names', () => {
    const a = JSON.stringify(bpeTokenizerJson(trainBpe(TEXT, 300)));
    expect(JSON.stringify(bpeTokenizerJson(trainBpe(TEXT, 300)))).toBe(a);
    const json = JSON.parse(a) as {
      model: { vocab: Record<string, number>; merges: string[][] };
      added_tokens: { id: number; content: string }[];
    };
    expect(Object.keys(json.model.vocab).length).toBe(300);
    expect(json.added_tokens).toMatchObject([{ id: 299, content: '<|endoftext|>' }]);
    expect(json.model.vocab[byteToUnicode()[32]]).toBe(32); // 'Ġ' is byte 0x20
    const tok = new HFTokenizer(json, {}, 'trained');
    expect(tok.vocabSize).toBe(300);
    expect(tok.encode('The state of the Union').length).toBeLessThan(8); // merges are used
  });

  it('round-trips any UTF-8 text, 4-byte characters included', () => {
    const tok = new HFTokenizer(bpeTokenizerJson(trainBpe(TEXT, 500)), {}, 'trained');
    const rng = Rng.fromSeed(12);
    for (let i = 0; i < 200; i++) {
      const s = randomText(rng, 1 + rng.int(40));
      expect(tok.decode(tok.encode(s)), JSON.stringify(s)).toBe(s);
    }
    for (const s of ['😀🎉 東京 café', '\u{10FFFF}\u{1F600}', '\ufeffBOM first', '  spaces\t\ttabs\n\nnewlines ', ''])
      expect(tok.decode(tok.encode(s))).toBe(s);
  });
});

describe('the bulk encoder of byte-level BPE files', () => {
  it("gives the library's ids on 300 kB of the corpus, random UTF-8 and special tokens", () => {
    const tok = loadTokenizer('models/tokenizer') as HFTokenizer;
    expect(tok.bulk).not.toBeNull();
    const text = new TextDecoder().decode(loadCorpus('sotu').bytes.subarray(0, 300_000)).replace(/\uFFFD+$/, '');
    for (let i = 0; i < text.length; i += 1 << 14) {
      const piece = text.slice(i, i + (1 << 14));
      expect(Array.from(tok.bulk!.encode(piece))).toEqual(Array.from(tok.encode(piece)));
    }
    const rng = Rng.fromSeed(4);
    for (let i = 0; i < 100; i++) {
      const s = randomText(rng, 1 + rng.int(30)) + (i % 3 === 0 ? '<|endoftext|>' : '') + ' the Union';
      expect(Array.from(tok.bulk!.encode(s)), JSON.stringify(s)).toEqual(Array.from(tok.encode(s)));
    }
  });

  it('declines tokenizers it does not cover', () => {
    const json = bpeTokenizerJson(trainBpe(TEXT, 300));
    expect(ByteBpeEncoder.fromJson(json)).not.toBeNull();
    expect(ByteBpeEncoder.fromJson({ ...json, normalizer: { type: 'NFC' } })).toBeNull();
    expect(ByteBpeEncoder.fromJson({ ...json, pre_tokenizer: { type: 'Whitespace' } })).toBeNull();
    expect(ByteBpeEncoder.fromJson({ model: { type: 'WordPiece' } })).toBeNull();
  });
});
