import { FrugalError } from './errors.js';

/**
 * A token id outside the model's vocabulary: bad input (exit code 2), whichever path found it
 * (logits --ids, a prompt, training data, a library call). The CLI picks the exit code from the
 * error's type, never from its message.
 */
export class TokenIdError extends FrugalError {
  /** The offending id. */
  readonly id: number;
  /** Its position in the input. */
  readonly position: number;
  /** The model's vocabulary size: valid ids are 0 … vocabSize − 1. */
  readonly vocabSize: number;
  constructor(id: number, position: number, vocabSize: number, where: string) {
    super(
      `${where}: token id ${id} at position ${position} is outside the model's vocabulary [0, ${vocabSize}); ` +
        'use ids the model was trained with (or its own tokenizer)',
      2,
    );
    this.name = 'TokenIdError';
    this.id = id;
    this.position = position;
    this.vocabSize = vocabSize;
  }
}

/** The one check of token ids against a vocabulary of V: every id an integer in [0, V). `where` names the input. */
export function checkTokenIds(ids: ArrayLike<number>, V: number, where = 'token ids'): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new TokenIdError(id, i, V, where);
  }
}
