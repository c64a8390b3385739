import type { Engine } from '../ops/index.js';
import * as op from '../ops/ops.js';
import type { Tensor } from '../tensor/index.js';
import type { Batch } from '../io/corpus.js';
import { inputError } from '../io/errors.js';
import { Rng } from '../io/rng.js';
import { tokenizerSha256 } from '../io/statefile.js';
import type { HFTokenizer } from '../io/tokenizer.js';
import { loadModel } from '../models/checkpoint.js';
import { Adapter, loadAdapter } from '../models/lora.js';
import type { TrainableModel } from '../models/types.js';
import type { TrainOptions } from './trainer.js';

/**
 * What a training run needs beyond training every weight of one model: the text as a tokenizer's
 * ids, a LoRA adapter on a frozen base, and a frozen teacher to distil.
 */

/** Text bytes as the ids of a tokenizer.json, encoded in pieces (a tokenizer's cost grows with what it is handed at once). */
export function encodeBytes(tok: HFTokenizer, bytes: Uint8Array): Int32Array {
  const parts: Int32Array[] = [];
  const text = new TextDecoder().decode(bytes);
  const PIECE = 1 << 16;
  const bulk = tok.bulk; // the same ids, faster (test/io/bpe.test.ts compares them)
  for (let i = 0; i < text.length; i += PIECE)
    parts.push(bulk ? bulk.encode(text.slice(i, i + PIECE)) : tok.encode(text.slice(i, i + PIECE)));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The adapter of a LoRA run, attached to its frozen base: restored from `dir` when resuming, else
 * new (B = 0). Its dropout draws come from a generator the trainer seeds by the run's seed and the
 * step, so a resumed run draws what the uninterrupted one would.
 */
export function loraAdapter(o: TrainOptions, model: TrainableModel, dir: string | null): Adapter {
  if (!o.init || !o.lora) throw inputError('a LoRA run needs its base model (--model) and adapter options');
  for (const p of model.params.values()) p.requiresGrad = false;
  const adapter = dir ? loadAdapter(model, dir) : new Adapter(model, o.lora, o.init).init(Rng.fromSeed(o.seed));
  Adapter.attach(model, adapter);
  return adapter;
}

/**
 * The frozen teacher of a distillation run, on the student's engine. Both must read text the same
 * way: the same tokenizer.json (by SHA-256), or both frugal's bytes, and the same vocabulary.
 */
export function loadTeacher(e: Engine, dir: string, student: TrainableModel, studentTok: string | null): TrainableModel {
  const teacher = loadModel(e, dir).model;
  const [ts, ss] = [tokenizerSha256(dir), tokenizerSha256(studentTok)];
  const name = (h: string) => (h === 'byte' ? "frugal's byte tokenizer" : `tokenizer.json ${h.slice(0, 12)}…`);
  if (ts !== ss || teacher.config.vocabSize !== student.config.vocabSize) {
    throw inputError(
      `--teacher ${dir} and the student do not share a tokenizer (teacher: ${name(ts)}, ${teacher.config.vocabSize} ids; ` +
        `student: ${name(ss)}, ${student.config.vocabSize} ids); distillation compares their next-token distributions id by id, so both need the same tokenizer`,
    );
  }
  for (const p of teacher.params.values()) p.requiresGrad = false;
  return teacher;
}

/** The distillation loss of a batch: the teacher's logits (not recorded: its weights are frozen) against the student's. */
export function distillBatch(e: Engine, student: TrainableModel, teacher: TrainableModel, batch: Batch, o: TrainOptions): Tensor {
  const B = o.batch,
    L = o.seqLen;
  const soft = teacher.forward(batch.inputs, B, L);
  return op.distillLoss(e, student.forward(batch.inputs, B, L), soft, e.ids(batch.targets, [B * L]), o.temperature ?? 2, o.alpha ?? 0.5);
}
