/**
 * The tokenizer part of a GGUF file (`tokenizer.ggml.*`), laid out as llama.cpp's converter lays it
 * out for a GPT-2-style byte-level BPE ("gpt2" model): one token string per model row (rows past
 * the tokenizer become "[PAD<i>]", type UNUSED), token types, merges "a b", special-token ids.
 *
 * A checkpoint without tokenizer.json uses frugal's byte tokenizer, which is exactly a byte-level
 * BPE with no merges whose id i is byte i; it is written that way, so llama.cpp tokenises text for
 * such a model the same way frugal does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputError } from './errors.js';
import type { GgufValue } from './gguf.js';

/** llama.cpp's token types (llama_token_type). */
const TYPE = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

/** GPT-2's reversible map from byte values to printable characters (byte-level BPE alphabet). */
export function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + n++);
  return out;
}

export interface SpecialIds {
  bos?: number;
  eos?: number;
  pad?: number;
  unk?: number;
}

/** Does this pre-tokenizer split text with the GPT-2 regex (ByteLevel with use_regex)? */
function usesGpt2Regex(p: unknown): boolean {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  if (o.type === 'ByteLevel') return o.use_regex !== false;
  if (o.type === 'Sequence' && Array.isArray(o.pretokenizers)) return o.pretokenizers.some(usesGpt2Regex);
  return false;
}

/**
 * tokenizer.ggml.* key-values for a model with `rows` embedding rows, from `dir`'s tokenizer.json
 * (BPE only) or, when there is none, frugal's byte tokenizer. Special ids come from
 * tokenizer_config.json token names, then from config.json ids, as llama.cpp's converter does.
 * Over 80 lines because it writes llama.cpp's key-values in llama.cpp's order, one after another.
 */
export function ggufVocab(dir: string, rows: number, fromConfig: SpecialIds, warn: (m: string) => void): [string, GgufValue][] {
  const file = join(dir, 'tokenizer.json');
  const tokens: string[] = [],
    types: number[] = [];
  let merges: string[] = [];
  let pre = 'gpt-2';
  const special: SpecialIds = {};
  let addBos: boolean | undefined;
  if (!existsSync(file)) {
    const chars = byteToUnicode();
    for (let i = 0; i < Math.min(rows, 256); i++) {
      tokens.push(chars[i]);
      types.push(TYPE.NORMAL);
    }
  } else {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw inputError(`${file} is not valid JSON (${(e as Error).message})`);
    }
    const model = (j.model ?? {}) as Record<string, unknown>;
    if (model.type !== 'BPE')
      throw inputError(
        `${file}: a ${String(model.type)} tokenizer cannot be written to GGUF by frugal (only byte-level BPE, as Mamba checkpoints use)`,
      );
    if (!usesGpt2Regex(j.pre_tokenizer)) {
      pre = 'default';
      warn(`${file}: the pre-tokenizer is not GPT-2's byte-level regex; llama.cpp will use its default pre-tokenizer`);
    }
    const byId = new Map<number, { text: string; type: number }>();
    for (const [text, id] of Object.entries((model.vocab ?? {}) as Record<string, unknown>)) {
      if (typeof id === 'number') byId.set(id, { text, type: TYPE.NORMAL });
    }
    const added = Array.isArray(j.added_tokens) ? (j.added_tokens as Record<string, unknown>[]) : [];
    for (const t of added) {
      if (typeof t.id === 'number' && typeof t.content === 'string')
        byId.set(t.id, { text: t.content, type: t.special === true ? TYPE.CONTROL : TYPE.USER_DEFINED });
    }
    let maxId = -1;
    for (const id of byId.keys()) maxId = Math.max(maxId, id);
    if (maxId >= rows)
      throw inputError(`${file} has token id ${maxId} but the model has only ${rows} rows; it is not this model's tokenizer`);
    const seen = new Set<string>();
    for (let i = 0; i <= maxId; i++) {
      const t = byId.get(i) ?? { text: `[PAD${i}]`, type: TYPE.UNUSED };
      if (seen.has(t.text))
        throw inputError(`${file}: token ${JSON.stringify(t.text)} appears twice; llama.cpp needs unique token strings`);
      seen.add(t.text);
      tokens.push(t.text);
      types.push(t.type);
    }
    const raw = Array.isArray(model.merges) ? model.merges : [];
    // newer tokenizer.json files store merges as pairs; GGUF stores "a b" with spaces inside a part shifted by 256
    merges = raw.map((m) =>
      typeof m === 'string' ? m : (m as string[]).map((part) => part.replace(/ /g, String.fromCodePoint(0x20 + 256))).join(' '),
    );
    const cfgFile = join(dir, 'tokenizer_config.json');
    if (existsSync(cfgFile)) {
      let cfg: Record<string, unknown> = {};
      try {
        cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
      } catch {
        warn(`${cfgFile} is not valid JSON; ignored`);
      }
      for (const role of ['bos', 'eos', 'pad', 'unk'] as const) {
        const v = cfg[`${role}_token`];
        const content = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as { content?: unknown }).content : undefined;
        const hit = added.find((t) => t.content === content);
        if (hit && typeof hit.id === 'number') special[role] = hit.id;
      }
      if (typeof cfg.add_bos_token === 'boolean') addBos = cfg.add_bos_token;
    }
  }
  for (let i = tokens.length; i < rows; i++) {
    tokens.push(`[PAD${i}]`);
    types.push(TYPE.UNUSED);
  }
  const kv: [string, GgufValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: pre }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: types }],
    ['tokenizer.ggml.merges', { type: 'string[]', value: merges }],
  ];
  for (const role of ['bos', 'eos', 'unk', 'pad'] as const) {
    const id = special[role] ?? fromConfig[role];
    if (id !== undefined && id >= 0 && id < rows)
      kv.push([`tokenizer.ggml.${role === 'pad' ? 'padding' : role === 'unk' ? 'unknown' : role}_token_id`, { type: 'u32', value: id }]);
  }
  if (addBos !== undefined) kv.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: addBos }]);
  return kv;
}
