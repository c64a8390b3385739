/**
 * Byte-level BPE training (GPT-2's scheme), written as a standard Hugging Face `tokenizer.json`.
 *
 * Text is split into words by GPT-2's pre-tokenisation pattern (the one the ByteLevel
 * pre-tokenizer of `tokenizer.json` applies when encoding), each word into its UTF-8 bytes; then
 * the most frequent adjacent pair of symbols is merged, over and over, until the vocabulary has
 * the size asked for. Ids 0..255 are the 256 bytes (so every UTF-8 string is representable and
 * round-trips exactly), merges follow in the order they were learned, and the end-of-text token
 * comes last. No normaliser: NFC or lower-casing would change what decodes back.
 *
 * Deterministic: ties between equally frequent pairs go to the smaller (left id, right id), and
 * every map iterates in insertion order, so the same text and size give the same file everywhere.
 */
import { inputError } from './errors.js';

/** GPT-2's pre-tokenisation pattern, as the ByteLevel pre-tokenizer runs it. */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The end-of-text token: a special token, last id of a trained vocabulary. */
export const EOS_TOKEN = '<|endoftext|>';

/** Smallest and largest vocabulary a trained tokenizer may have (pair keys pack two ids in 32 bits). */
export const MIN_VOCAB = 257;
export const MAX_VOCAB = 65536;

/** GPT-2's printable stand-in character for each byte (bytes_to_unicode). */
export function byteToUnicode(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : 256 + n++));
  return out;
}

/** Word -> number of occurrences, words as UTF-8 bytes in first-seen order. */
function countWords(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(GPT2_PATTERN)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  return counts;
}

export interface BpeResult {
  /** Token bytes by id (ids 0..255 are the bytes; the end-of-text token is not listed). */
  tokens: Uint8Array[];
  /** Merges in learned order, as [left id, right id]. */
  merges: [number, number][];
}

const key = (a: number, b: number) => a * MAX_VOCAB + b;

/** Incremental pair counts over the distinct words, and which words hold each pair. */
class PairIndex {
  readonly counts = new Map<number, number>();
  readonly where = new Map<number, Set<number>>();

  add(word: readonly number[], w: number, n: number): void {
    for (let i = 0; i + 1 < word.length; i++) {
      const k = key(word[i], word[i + 1]);
      this.counts.set(k, (this.counts.get(k) ?? 0) + n);
      let s = this.where.get(k);
      if (!s) {
        s = new Set();
        this.where.set(k, s);
      }
      s.add(w);
    }
  }

  remove(word: readonly number[], n: number): void {
    for (let i = 0; i + 1 < word.length; i++) {
      const k = key(word[i], word[i + 1]);
      this.counts.set(k, (this.counts.get(k) as number) - n);
    }
  }

  /** The most frequent pair (ties: the smaller key), or null when no pair occurs twice. */
  best(): number | null {
    let bestKey = -1,
      bestCount = 1;
    for (const [k, c] of this.counts)
      if (c > bestCount || (c === bestCount && c > 1 && k < bestKey)) {
        bestKey = k;
        bestCount = c;
      }
    return bestKey < 0 ? null : bestKey;
  }
}

/**
 * Learn merges from `text` until there are `vocabSize - 1` tokens (the last id is the end-of-text
 * token), or until no pair occurs twice. `log` hears progress.
 */
export function trainBpe(text: string, vocabSize: number, log: (m: string) => void = () => {}): BpeResult {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB || vocabSize > MAX_VOCAB) {
    throw inputError(
      `--vocab-size ${vocabSize}: a byte-level BPE vocabulary needs ${MIN_VOCAB} … ${MAX_VOCAB} ids (256 bytes, the merges and the end-of-text token)`,
    );
  }
  const enc = new TextEncoder();
  const tokens: Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));
  const idOf = new Map<string, number>(tokens.map((t, i) => [String(t[0]), i]));
  const words: number[][] = [],
    freq: number[] = [];
  for (const [w, n] of countWords(text)) {
    words.push(Array.from(enc.encode(w)));
    freq.push(n);
  }
  log(`bpe: ${words.length} distinct words`);
  const pairs = new PairIndex();
  words.forEach((w, i) => pairs.add(w, i, freq[i]));
  const merges: [number, number][] = [];
  while (tokens.length < vocabSize - 1) {
    const k = pairs.best();
    if (k === null) {
      log(`bpe: no pair occurs twice any more; stopping at ${tokens.length + 1} ids`);
      break;
    }
    const a = Math.floor(k / MAX_VOCAB),
      b = k % MAX_VOCAB;
    const bytes = new Uint8Array(tokens[a].length + tokens[b].length);
    bytes.set(tokens[a]);
    bytes.set(tokens[b], tokens[a].length);
    const name = bytes.join(',');
    let id = idOf.get(name);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(bytes);
      idOf.set(name, id);
    }
    merges.push([a, b]);
    for (const w of pairs.where.get(k) as Set<number>) {
      const word = words[w];
      pairs.remove(word, freq[w]);
      const merged: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          merged.push(id);
          i++;
        } else merged.push(word[i]);
      }
      words[w] = merged;
      pairs.add(merged, w, freq[w]);
    }
    pairs.where.delete(k);
    pairs.counts.delete(k);
  }
  return { tokens, merges };
}

/** The `tokenizer.json` (Hugging Face tokenizers' format) of a trained byte-level BPE. */
export function bpeTokenizerJson(r: BpeResult): Record<string, unknown> {
  const u = byteToUnicode();
  const str = (t: Uint8Array) => Array.from(t, (b) => u[b]).join('');
  const vocab: Record<string, number> = {};
  r.tokens.forEach((t, id) => {
    vocab[str(t)] ??= id;
  });
  const eos = r.tokens.length;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eos, content: EOS_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: { ...vocab, [EOS_TOKEN]: eos },
      merges: r.merges.map(([a, b]) => [str(r.tokens[a]), str(r.tokens[b])]),
    },
  };
}

/** tokenizer_config.json and special_tokens_map.json beside it (what transformers' AutoTokenizer reads). */
export function bpeTokenizerConfigs(): { config: Record<string, unknown>; specialTokens: Record<string, unknown> } {
  return {
    config: {
      tokenizer_class: 'PreTrainedTokenizerFast',
      model_max_length: 1e30,
      add_prefix_space: false,
      bos_token: EOS_TOKEN,
      eos_token: EOS_TOKEN,
      clean_up_tokenization_spaces: false,
    },
    specialTokens: { bos_token: EOS_TOKEN, eos_token: EOS_TOKEN },
  };
}

/** The fields of a tokenizer.json that decide whether ByteBpeEncoder applies (all optional: probed). */
interface TokenizerJsonShape {
  normalizer?: unknown;
  pre_tokenizer?: { type?: string; add_prefix_space?: boolean; use_regex?: boolean } | null;
  post_processor?: { type?: string } | null;
  added_tokens?: { content: string; id: number }[];
  model?: {
    type?: string;
    vocab?: Record<string, number> | null;
    merges?: unknown[];
    continuing_subword_prefix?: unknown;
    end_of_word_suffix?: unknown;
    byte_fallback?: unknown;
    ignore_merges?: unknown;
    dropout?: unknown;
  };
}

/**
 * A fast encoder for plain byte-level BPE tokenizer.json files (as `tokenizer train` writes them,
 * and GPT-2's): each word's ids are cached, and a word is merged as the Hugging Face BPE model does
 * it (the lowest-ranked adjacent pair first, the leftmost of equals). Corpora are encoded with it
 * instead of the general library (several times faster on megabytes); a test compares both on the
 * first 300 kB of the State of the Union corpus and on random text. `fromJson` returns null for any other kind of tokenizer.
 */
export class ByteBpeEncoder {
  private readonly cache = new Map<string, Int32Array>();
  private readonly enc = new TextEncoder();

  private constructor(
    private readonly byteIds: Int32Array,
    private readonly ranks: Map<number, number>,
    private readonly merged: Map<number, number>,
    private readonly added: readonly { content: string; id: number }[],
  ) {}

  static fromJson(json: unknown): ByteBpeEncoder | null {
    const j = (json ?? {}) as TokenizerJsonShape;
    const m = j.model,
      pre = j.pre_tokenizer,
      post = j.post_processor;
    const plain =
      m !== undefined &&
      m.type === 'BPE' &&
      !j.normalizer &&
      pre?.type === 'ByteLevel' &&
      pre.add_prefix_space === false &&
      pre.use_regex !== false &&
      (!post || post.type === 'ByteLevel') &&
      !m.continuing_subword_prefix &&
      !m.end_of_word_suffix &&
      !m.byte_fallback &&
      !m.ignore_merges &&
      !m.dropout;
    if (!plain || !m || typeof m.vocab !== 'object' || m.vocab === null || !Array.isArray(m.merges)) return null;
    const vocab = m.vocab,
      u = byteToUnicode();
    const byteIds = Int32Array.from(u, (c) => vocab[c] ?? -1);
    if (byteIds.some((id) => id < 0)) return null;
    const ranks = new Map<number, number>(),
      merged = new Map<number, number>();
    m.merges.forEach((x, rank) => {
      const [a, b] = Array.isArray(x) ? (x as string[]) : String(x).split(' ', 2);
      const ia = vocab[a],
        ib = vocab[b],
        im = vocab[a + b];
      if (ia === undefined || ib === undefined || im === undefined) return;
      const k = ia * 4294967296 + ib;
      if (!ranks.has(k)) {
        ranks.set(k, rank);
        merged.set(k, im);
      }
    });
    const added = Array.isArray(j.added_tokens) ? j.added_tokens.filter((t) => typeof t.content === 'string' && t.content !== '') : [];
    return new ByteBpeEncoder(byteIds, ranks, merged, added);
  }

  encode(text: string): Int32Array {
    const out: number[] = [];
    let rest = text;
    while (rest.length > 0) {
      // the earliest added token (the longest at that place) splits the text, as the library splits it
      let at = rest.length,
        hit: { content: string; id: number } | null = null;
      for (const t of this.added) {
        const i = rest.indexOf(t.content);
        if (i >= 0 && (i < at || (i === at && hit !== null && t.content.length > hit.content.length))) {
          at = i;
          hit = t;
        }
      }
      this.encodeSegment(rest.slice(0, at), out);
      if (!hit) break;
      out.push(hit.id);
      rest = rest.slice(at + hit.content.length);
    }
    return Int32Array.from(out);
  }

  private encodeSegment(s: string, out: number[]): void {
    for (const m of s.matchAll(GPT2_PATTERN)) {
      let ids = this.cache.get(m[0]);
      if (!ids) {
        ids = this.word(m[0]);
        if (this.cache.size < 1 << 20) this.cache.set(m[0], ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private word(w: string): Int32Array {
    const sym = Array.from(this.enc.encode(w), (b) => this.byteIds[b]);
    for (;;) {
      let best = -1,
        bestRank = Infinity;
      for (let i = 0; i + 1 < sym.length; i++) {
        const r = this.ranks.get(sym[i] * 4294967296 + sym[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) return Int32Array.from(sym);
      sym.splice(best, 2, this.merged.get(sym[best] * 4294967296 + sym[best + 1]) as number);
    }
  }
}
