import { join } from 'node:path';
import { readSafetensors, readTensorF64 } from '../../src/io/safetensors.js';

/** Checkpoints in every published layout (tools/make_interop_fixtures.py, tools/check_interop.py). */
export const FIXTURES = ['hf-f16-sharded', 'hf-bf16-untied', 'orig-bin-tied', 'orig-bin-f16-untied', 'hf-tokenizer', 'frugal-trained'];
export const fixture = (name: string) => `test/fixtures/interop/${name}`;

/** ids (B, L) and the PyTorch reference logits (B, L, V) of a fixture. */
export function golden(name: string) {
  const g = readSafetensors(join(fixture(name), 'golden.safetensors'));
  const [B, L] = g.tensors.get('ids')!.shape;
  return { ids: Int32Array.from(readTensorF64(g, 'ids')), logits: readTensorF64(g, 'logits'), B, L };
}
