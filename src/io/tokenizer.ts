/**
 * Tokenizers turn text into model ids and back.
 *
 * The byte tokenizer is the default for small on-device models: 256 ids, no vocabulary file to
 * ship or lose, every input representable (no unknown token), and one id per UTF-8 byte. Its
 * cost is that a character may span several ids, so streaming output must hold back a partial
 * UTF-8 sequence until it is complete instead of printing a replacement character.
 *
 * Published checkpoints bring a Hugging Face `tokenizer.json` (Mamba's is GPT-NeoX's byte-level
 * BPE); HFTokenizer runs any such file through @huggingface/tokenizers. Its tokens can also end
 * mid-character, so its stream decoder holds text back until it decodes cleanly.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HFTokenizerImpl } from '@huggingface/tokenizers';
import { inputError } from './errors.js';
import { ByteBpeEncoder } from './bpe.js';

/** Incremental decoder for generation: text out as soon as whole characters are available. */
export interface StreamDecoder {
  /** Feed one id; returns the text that became complete (often '' mid-character). */
  push(id: number): string;
  /** End of stream: returns any held-back bytes (an incomplete sequence decodes to U+FFFD). */
  flush(): string;
}

/** Text to token ids and back. */
export interface Tokenizer {
  /** Number of ids the tokenizer can produce. */
  readonly vocabSize: number;
  /** The ids of `text`. */
  encode(text: string): Int32Array;
  /** The text of `ids` (an incomplete UTF-8 sequence at the end decodes to U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /** A decoder that turns ids into text one at a time, holding back partial characters. */
  createStreamDecoder(): StreamDecoder;
}

/** One id per UTF-8 byte: ids 0..255. */
export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 256;
  private readonly encoder = new TextEncoder();

  encode(text: string): Int32Array {
    return Int32Array.from(this.encoder.encode(text));
  }

  /** Invalid UTF-8 (possible in sampled output) decodes to U+FFFD rather than failing. */
  decode(ids: ArrayLike<number>): string {
    const bytes = new Uint8Array(ids.length);
    for (let i = 0; i < ids.length; i++) bytes[i] = checkId(ids[i] as number, i);
    // ignoreBOM keeps a leading U+FEFF: decode(encode(s)) must give s back exactly.
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
  }

  createStreamDecoder(): StreamDecoder {
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    const one = new Uint8Array(1);
    let count = 0;
    return {
      push(id: number): string {
        one[0] = checkId(id, count++);
        return decoder.decode(one, { stream: true });
      },
      flush(): string {
        count = 0;
        return decoder.decode();
      },
    };
  }
}

function checkId(id: number, index: number): number {
  if (!Number.isInteger(id) || id < 0 || id > 255) {
    throw inputError(
      `Token id ${String(id)} at position ${index} is outside the byte vocabulary 0..255. ` +
        'The model and tokenizer do not match; use the tokenizer the model was trained with.',
    );
  }
  return id;
}

/** Files that describe a Hugging Face tokenizer; a saved or converted checkpoint carries them along. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

const MAX_TOKENIZER_BYTES = 256 << 20;

function readJson(file: string): unknown {
  if (statSync(file).size > MAX_TOKENIZER_BYTES)
    throw inputError(`${file} is over ${MAX_TOKENIZER_BYTES} bytes; it is not a tokenizer file`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError(`${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** A Hugging Face tokenizer.json (any model type the library supports: BPE, WordPiece, Unigram). */
export class HFTokenizer implements Tokenizer {
  /** One past the largest id the tokenizer can produce (vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** Ids of special tokens (added tokens marked "special": true). */
  readonly specialIds: ReadonlySet<number>;
  readonly file: string;
  /** A faster, equivalent encoder for corpora when the file is a plain byte-level BPE (io/bpe.ts), else null. */
  readonly bulk: ByteBpeEncoder | null;
  private readonly tok: HFTokenizerImpl;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, file: string) {
    this.file = file;
    if (
      typeof tokenizerJson !== 'object' ||
      tokenizerJson === null ||
      typeof (tokenizerJson as Record<string, unknown>).model !== 'object'
    ) {
      throw inputError(`${file} is not a Hugging Face tokenizer.json (it has no "model" object)`);
    }
    try {
      this.tok = new HFTokenizerImpl(tokenizerJson as object, (tokenizerConfig ?? {}) as object);
    } catch (e) {
      throw inputError(`${file} cannot be used as a tokenizer: ${(e as Error).message}`);
    }
    let max = -1;
    for (const id of this.tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    const added = (tokenizerJson as { added_tokens?: unknown }).added_tokens;
    const specials = new Set<number>();
    if (Array.isArray(added)) {
      for (const t of added) {
        const a = t as { id?: unknown; special?: unknown };
        if (a.special === true && typeof a.id === 'number') specials.add(a.id);
      }
    }
    this.specialIds = specials;
    this.bulk = ByteBpeEncoder.fromJson(tokenizerJson);
  }

  /** Special tokens written in the text (e.g. <|endoftext|>) become their ids, as in transformers. */
  encode(text: string): Int32Array {
    return Int32Array.from(this.tok.encode(text).ids);
  }

  decode(ids: ArrayLike<number>, skipSpecial = false): string {
    const list: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (!Number.isInteger(id) || id < 0) throw inputError(`Token id ${String(id)} at position ${i} is not a valid id for ${this.file}.`);
      list.push(id);
    }
    return list.length === 0 ? '' : this.tok.decode(list, { skip_special_tokens: skipSpecial });
  }

  /**
   * Streaming decode that never splits a character: decode a window of recent ids, emit only the
   * text added since the last emission, and hold it back while it ends in U+FFFD (a token ended
   * inside a multi-byte UTF-8 sequence). The window restarts after each emission, so the cost per
   * token stays small. Special tokens are not printed.
   */
  createStreamDecoder(): StreamDecoder {
    let ids: number[] = [];
    let prefix = 0,
      read = 0;
    const text = (a: number, b: number) => this.decode(ids.slice(a, b), true);
    return {
      push: (id: number): string => {
        ids.push(id);
        const before = text(prefix, read),
          after = text(prefix, ids.length);
        if (after.length > before.length && !after.endsWith('\uFFFD')) {
          const out = after.slice(before.length);
          prefix = read;
          read = ids.length;
          if (prefix > 64) {
            ids = ids.slice(prefix);
            read -= prefix;
            prefix = 0;
          }
          return out;
        }
        return '';
      },
      flush: (): string => {
        const out = text(prefix, ids.length).slice(text(prefix, read).length);
        ids = [];
        prefix = 0;
        read = 0;
        return out;
      },
    };
  }
}

/** The tokenizer of checkpoint directory `dir`, or null when it has no tokenizer.json. */
export function loadTokenizer(dir: string): HFTokenizer | null {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) return null;
  const cfgFile = join(dir, 'tokenizer_config.json');
  const config = existsSync(cfgFile) ? readJson(cfgFile) : {};
  return new HFTokenizer(readJson(file), config, file);
}
