/**
 * The state file: one recurrent state (Mamba's conv windows and SSM states, or a transformer's KV
 * cache) saved so that a stream can stop, move and continue bit for bit, later or elsewhere. It
 * is a safetensors file (docs/DESIGN.md, "State files"): F32 tensors named as the model's state
 * names them, and `__metadata__` with
 *   format            "frugal-state/1"
 *   architecture      config.json's model_type of the model that made it ("mamba", "llama")
 *   model_sha256      SHA-256 (hex) of that model's weights as frugal writes them: the bytes of
 *                     the model.safetensors `frugal train` saves for it
 *   tokenizer_sha256  SHA-256 (hex) of the tokenizer.json whose ids the state consumed, or "byte"
 *                     for frugal's byte tokenizer (no file)
 *   tokens            tokens consumed per stream (decimal)
 *   batch             streams (decimal)
 *   dtype             "F32"
 * A reader refuses a file whose identity does not match the model it is given (see
 * src/models/state.ts), so a state is never continued by a model it does not belong to.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputError } from './errors.js';
import { writeFileAtomic } from './atomic.js';
import type { FileProducer } from './atomic.js';
import { readSafetensors, safetensorsProducer } from './safetensors.js';
import type { SafetensorsFile, StreamTensor } from './safetensors.js';

export const STATE_FORMAT = 'frugal-state/1';
/** tokenizer_sha256 of frugal's byte tokenizer, which has no file to hash. */
export const BYTE_TOKENIZER = 'byte';

/** What a state file says about itself (its `__metadata__`, typed). */
export interface StateHeader {
  architecture: string;
  modelSha256: string;
  tokenizerSha256: string;
  tokens: number;
  batch: number;
}

/** SHA-256 (hex) of the bytes a producer emits. */
export function sha256Of(producer: FileProducer): string {
  const h = createHash('sha256');
  producer((chunk) => h.update(chunk));
  return h.digest('hex');
}

/** The tokenizer identity of a model directory: SHA-256 of its tokenizer.json, or "byte" when it has none. */
export function tokenizerSha256(dir: string | null): string {
  const file = dir === null ? null : join(dir, 'tokenizer.json');
  return file !== null && existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : BYTE_TOKENIZER;
}

/** The bytes of a state file (F32 tensors and the header), as a producer. */
export function stateFileProducer(header: StateHeader, tensors: StreamTensor[], extra: Record<string, string> = {}): FileProducer {
  for (const t of tensors) if (t.dtype !== 'F32') throw new Error(`state file: tensor '${t.name}' is ${t.dtype}; state tensors are F32`);
  const metadata = {
    format: STATE_FORMAT,
    architecture: header.architecture,
    model_sha256: header.modelSha256,
    tokenizer_sha256: header.tokenizerSha256,
    tokens: String(header.tokens),
    batch: String(header.batch),
    dtype: 'F32',
  };
  // extra keys (a stream's position and learned head) never replace the identity above
  return safetensorsProducer(tensors, { ...extra, ...metadata }).producer;
}

/** Write a state file atomically (a temporary name, then a rename); `extra` adds metadata keys. */
export function writeStateFile(path: string, header: StateHeader, tensors: StreamTensor[], extra: Record<string, string> = {}): void {
  writeFileAtomic(path, stateFileProducer(header, tensors, extra));
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Read a state file and check its header (not yet against a model: see src/models/state.ts). */
export function readStateFile(path: string): { header: StateHeader; file: SafetensorsFile } {
  return checkStateFile(readSafetensors(path), path);
}

/** The header of a decoded state file (`path` names it in errors), checked. */
export function checkStateFile(file: SafetensorsFile, path: string): { header: StateHeader; file: SafetensorsFile } {
  const m = file.metadata;
  const bad = (what: string): never => {
    throw inputError(`${path} is not a usable frugal state file: ${what}`);
  };
  if (m.format !== STATE_FORMAT) bad(`its __metadata__ format is ${JSON.stringify(m.format ?? null)}, expected "${STATE_FORMAT}"`);
  if (m.dtype !== 'F32') bad(`dtype ${JSON.stringify(m.dtype ?? null)}, expected "F32"`);
  if (typeof m.architecture !== 'string' || m.architecture === '') bad('it names no architecture');
  if (!HEX64.test(m.model_sha256 ?? '')) bad('model_sha256 is not a SHA-256 in hex');
  const tok = m.tokenizer_sha256 ?? '';
  if (tok !== BYTE_TOKENIZER && !HEX64.test(tok)) bad(`tokenizer_sha256 is neither a SHA-256 in hex nor "${BYTE_TOKENIZER}"`);
  const count = (key: 'tokens' | 'batch', min: number): number => {
    const v = m[key] ?? '';
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min)
      bad(`${key} ${JSON.stringify(v)} is not a whole number ≥ ${min}`);
    return Number(v);
  };
  for (const [name, t] of file.tensors) if (t.dtype !== 'F32') bad(`tensor '${name}' is ${t.dtype}, not F32`);
  return {
    header: {
      architecture: m.architecture,
      modelSha256: m.model_sha256,
      tokenizerSha256: tok,
      tokens: count('tokens', 0),
      batch: count('batch', 1),
    },
    file,
  };
}
