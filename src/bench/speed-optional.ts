/**
 * The parts of issue #4 the speed benchmark measures but does not own: the quantiser
 * (src/models/quant.ts) and the batched decoder (src/infer/batch.ts). They are loaded by name at
 * run time and checked against the contracts below, so `frugal bench` builds and runs while they
 * are being written (the entries they feed are then listed as skipped, with the reason).
 */
import type { MambaLM } from '../models/mamba/model.js';

/** src/models/quant.ts */
export interface QuantApi {
  /** Convert eligible weights in place for inference. */
  quantizeModel(model: MambaLM, format: 'q8' | 'q4'): void;
  /** Bytes of all weights read per decoded token. */
  weightBytes(model: MambaLM): number;
}

/** src/infer/batch.ts: one decoding step for every active stream. */
export interface BatchDecoderLike {
  /** The new stream's id (the contract), or the id with the prompt's logits (as written so far). */
  join(promptIds: Int32Array): number | { id: number };
  leave(id: number): void;
  step(tokens: Map<number, number>): Map<number, Float32Array>;
  dispose?(): void;
}

/** The stream id `join` returned, in either form. */
export function joinedId(j: number | { id: number }): number {
  return typeof j === 'number' ? j : j.id;
}
export type BatchDecoderCtor = new (model: MambaLM, capacity: number) => BatchDecoderLike;

export interface OptionalParts {
  quant: QuantApi | null;
  /** Why quant is null. */
  quantWhy: string;
  batch: BatchDecoderCtor | null;
  batchWhy: string;
}

function field(m: unknown, name: string): unknown {
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>)[name] : undefined;
}

async function load(spec: string): Promise<{ mod: unknown; why: string }> {
  try {
    const mod: unknown = await import(new URL(spec, import.meta.url).href);
    return { mod, why: '' };
  } catch (e) {
    return { mod: null, why: `${spec} could not be loaded (${(e as Error).message.split('\n')[0]})` };
  }
}

/** Load the quantiser and the batched decoder when they exist. */
export async function loadOptionalParts(): Promise<OptionalParts> {
  const q = await load('../models/quant.js');
  const quantizeModel = field(q.mod, 'quantizeModel'), weightBytes = field(q.mod, 'weightBytes');
  const quantOk = typeof quantizeModel === 'function' && typeof weightBytes === 'function';
  const b = await load('../infer/batch.js');
  const ctor = field(b.mod, 'BatchDecoder');
  const batchOk = typeof ctor === 'function';
  return {
    quant: quantOk ? (q.mod as QuantApi) : null,
    quantWhy: quantOk ? '' : q.why || 'src/models/quant.ts lacks quantizeModel / weightBytes',
    batch: batchOk ? (ctor as BatchDecoderCtor) : null,
    batchWhy: batchOk ? '' : b.why || 'src/infer/batch.ts lacks BatchDecoder',
  };
}
