/**
 * Tokenizers turn text into model ids and back.
 *
 * The byte tokenizer is the default for small on-device models: 256 ids, no vocabulary file to
 * ship or lose, every input representable (no unknown token), and one id per UTF-8 byte. Its
 * cost is that a character may span several ids, so streaming output must hold back a partial
 * UTF-8 sequence until it is complete instead of printing a replacement character.
 */
import { inputError } from './errors.js';

/** Incremental decoder for generation: text out as soon as whole characters are available. */
export interface StreamDecoder {
  /** Feed one id; returns the text that became complete (often '' mid-character). */
  push(id: number): string;
  /** End of stream: returns any held-back bytes (an incomplete sequence decodes to U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  readonly vocabSize: number;
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
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
      'The model and tokenizer do not match; use the tokenizer the model was trained with.');
  }
  return id;
}
