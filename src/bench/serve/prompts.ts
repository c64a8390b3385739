import { joinDocuments, sotuDocuments } from '../../io/corpus.js';

/** Prompts cut from the corpus the bundled models were trained on (State of the Union addresses). */
export class Prompts {
  readonly text: string;
  constructor(text?: string) {
    this.text = text ?? new TextDecoder().decode(joinDocuments(sotuDocuments()));
  }

  /** A 200-character prompt, a different one for each i. */
  short(i: number): string {
    const at = (i * 997) % Math.max(1, this.text.length - 400);
    return this.text.slice(at, at + 200);
  }
}
