import type { ParamSpec } from './types.js';

/** What the backbone's parameter table needs of a config. */
interface BackboneShape {
  readonly dModel: number;
  readonly nLayer: number;
  readonly vocabSize: number;
  readonly tieWordEmbeddings: boolean;
  readonly initializerRange: number;
}

/**
 * The parameter table of state-spaces' MixerModel with transformers' names: the embedding, each
 * layer's norm and mixer (`mixer(prefix)`: that layer's mixer parameters under
 * backbone.layers.{i}.mixer), norm_f, and lm_head unless tied. Mamba-1, -2 and -3 differ only in
 * their mixers.
 */
export function backboneParamSpecs(c: BackboneShape, mixer: (prefix: string) => ParamSpec[]): ParamSpec[] {
  const { dModel: D, vocabSize: V } = c;
  const specs: ParamSpec[] = [
    { name: 'backbone.embeddings.weight', shape: [V, D], init: { kind: 'normal', std: c.initializerRange }, decay: true },
  ];
  for (let i = 0; i < c.nLayer; i++) {
    specs.push(
      { name: `backbone.layers.${i}.norm.weight`, shape: [D], init: { kind: 'ones' }, decay: false },
      ...mixer(`backbone.layers.${i}.mixer`),
    );
  }
  specs.push({ name: 'backbone.norm_f.weight', shape: [D], init: { kind: 'ones' }, decay: false });
  if (!c.tieWordEmbeddings)
    specs.push({ name: 'lm_head.weight', shape: [V, D], init: { kind: 'normal', std: c.initializerRange }, decay: true });
  return specs;
}
