import type { Rng } from '../io/rng.js';
import { INDUCTION_CONTENT, INDUCTION_MIN_LENGTH, INDUCTION_NAMES, INDUCTION_VOCAB, inductionBatch } from './induction.js';
import { COPY_MIN_LENGTH, COPY_NAMES, COPY_VOCAB, selectiveCopyBatch } from './selective-copy.js';
import { END, HANOI_DISKS, HANOI_METHODS, HANOI_NAMES, HANOI_VOCAB, hanoiBatch } from './hanoi.js';
import type { HanoiMethod } from './hanoi.js';
import type { ScoredBatch, Vocabulary } from './types.js';

/** The synthetic tasks by their command-line names, with what training and scoring need of each. */
export const TASK_NAMES = ['induction', 'selective-copy', 'hanoi'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export interface TaskSpec {
  name: TaskName;
  /** Token names by id (the checkpoint's tokenizer.json). */
  names: Vocabulary;
  vocabSize: number;
  /** Id that ends an output (generation stops there), or null. */
  eos: number | null;
  /** Predictions are the argmax over ids below this (induction: the 16 content tokens). */
  among: number;
  /** What an evaluation `length` counts, and its smallest and largest values. */
  lengthUnit: 'tokens' | 'disks';
  minLength: number;
  maxLength: number;
  /** A training batch of B sequences at length (tokens) or disks `size`. */
  batch(rng: Rng, B: number, size: number, method: HanoiMethod | null): ScoredBatch;
}

export const TASKS: Readonly<Record<TaskName, TaskSpec>> = {
  induction: {
    name: 'induction',
    names: INDUCTION_NAMES,
    vocabSize: INDUCTION_VOCAB,
    eos: null,
    among: INDUCTION_CONTENT,
    lengthUnit: 'tokens',
    minLength: INDUCTION_MIN_LENGTH,
    maxLength: 1 << 24,
    batch: (rng, B, L) => inductionBatch(rng, B, L),
  },
  'selective-copy': {
    name: 'selective-copy',
    names: COPY_NAMES,
    vocabSize: COPY_VOCAB,
    eos: null,
    among: COPY_VOCAB,
    lengthUnit: 'tokens',
    minLength: COPY_MIN_LENGTH,
    maxLength: 1 << 24,
    batch: (rng, B, L) => selectiveCopyBatch(rng, B, L),
  },
  hanoi: {
    name: 'hanoi',
    names: HANOI_NAMES,
    vocabSize: HANOI_VOCAB,
    eos: END,
    among: HANOI_VOCAB,
    lengthUnit: 'disks',
    minLength: 1,
    maxLength: HANOI_DISKS,
    batch: (rng, B, n, method) => hanoiBatch(rng, B, n, method ?? 'neuro-symbolic'),
  },
};

export { HANOI_METHODS };
export type { HanoiMethod };

/**
 * A Hugging Face tokenizer.json for a task's vocabulary: one word per id, split on whitespace
 * (WordPiece over whole words, the word-level model @huggingface/tokenizers reads). Unknown words
 * read as `unk` (the task's neutral token); `special` ids (END) are marked special so generation
 * stops there and does not print them.
 */
export function tokenizerJson(names: Vocabulary, unk: string, special: readonly number[]): string {
  const vocab = Object.fromEntries(names.map((n, i) => [n, i]));
  const added = special.map((id) => ({
    id,
    content: names[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return (
    JSON.stringify(
      {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: { type: 'WhitespaceSplit' },
        post_processor: null,
        decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
        model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
      },
      null,
      1,
    ) + '\n'
  );
}

/** The tokenizer.json of a task's checkpoints. */
export function taskTokenizer(task: TaskName): string {
  const s = TASKS[task];
  const unk = task === 'hanoi' ? 'X1' : s.names[0];
  return tokenizerJson(s.names, unk, s.eos === null ? [] : [s.eos]);
}
