import type { Tensor } from '../tensor/index.js';
import type { Engine } from '../ops/engine.js';

/** name -> tensor, with Hugging Face names. Insertion order is the parameter table's order. */
export type ParamTable = Map<string, Tensor>;

/** Initialisation rule of one parameter (see each model's params.ts for the source of each). */
export type Init =
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number }
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'alog' } // A_log[d, n] = log(n + 1)
  | { kind: 'logUniform'; min: number; max: number } // log of uniform(min, max): Mamba-2's A_log
  | { kind: 'dtBias'; min: number; max: number; floor: number }; // inverse softplus of log-uniform Δ

/** One row of a parameter table: allocation, init, loading, saving, gradients and optimiser all read it. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  decay: boolean; // AdamW weight decay applies
}

export interface ModelState {
  readonly batch: number;
  /** Named state tensors (e.g. conv.0, ssm.0): copied to fork, serialised to persist. */
  readonly tensors: Map<string, Tensor>;
  /** Tokens consumed so far (per stream, identical for a batch). */
  position: number;
  /**
   * Each stream's own count when streams of different lengths share the state (batched decoding,
   * src/infer/batch.ts); a KV cache then places and attends each stream by it. Absent: `position`.
   */
  positions?: number[];
}

export interface SequenceModel {
  readonly params: ParamTable;
  readonly specs: readonly ParamSpec[];
  /** Logits (B, L, V), differentiable when the engine records a tape. */
  forward(ids: Int32Array, B: number, L: number): Tensor;
  /** A zeroed state for B streams; `tokens` is room to reserve for that many (a KV cache; a recurrent state needs none). */
  createState(B: number, tokens?: number): ModelState;
  /**
   * The shape each state tensor is stored with in a state file (src/io/statefile.ts) for B streams
   * after `position` tokens: its leading part that carries the state (the whole of a recurrent
   * state; a KV cache's first `position` rows).
   */
  savedStateShapes(B: number, position: number): Map<string, number[]>;
  /** One token per stream: logits (B, V); O(1) time and memory per token for SSMs. */
  step(ids: Int32Array, state: ModelState): Float32Array;
  /** A parallel pass over L tokens per stream that leaves `state` ready for `step`; logits (B, V) of the last token. */
  prefill(ids: Int32Array, L: number, state: ModelState): Float32Array;
}

/**
 * What training, checkpoints and the CLI need of any architecture (Mamba, the transformer
 * baseline): the sequence-model interface plus the loss, the parameter table and the HF config.
 */
export interface TrainableModel extends SequenceModel {
  readonly e: Engine;
  readonly config: { readonly vocabSize: number; readonly modelType: string };
  readonly parameterCount: number;
  /** Mean next-token cross-entropy (nats), differentiable: a (1) tensor. */
  loss(ids: Int32Array, targets: Int32Array, B: number, L: number): Tensor;
  /** Call after parameters change so cached derived weights are rebuilt. */
  weightsChanged(): void;
  /** The config.json that transformers' from_pretrained expects for this model. */
  hfConfig(): Record<string, unknown>;
}
