import type { Tensor } from '../tensor/index.js';

/**
 * What each differentiable op records on the tape, one entry per op name: its inputs in order
 * (null for an absent optional input), the tensors its gradient rule reads back (`saved`) and its
 * sizes (`attrs`). ops.ts records these and grads.ts reads them, both through this one table, so a
 * misnamed or missing size, a wrong input count or an unknown op name is a compile error.
 * Shape legend as in ops.ts.
 */
export interface OpRecords {
  linear: { inputs: [x: Tensor, w: Tensor, b: Tensor | null]; saved: []; attrs: { M: number; N: number; K: number } };
  // a frozen block-quantised weight (QLoRA-style training): only x (and a bias) can need a gradient
  linearQuant: {
    inputs: [x: Tensor, b: Tensor | null];
    saved: [q: Tensor, scales: Tensor];
    attrs: { M: number; N: number; K: number; q4: boolean; packed: boolean };
  };
  // a low-rank update s·(x Aᵀ) Bᵀ; saves t = s·x Aᵀ (M, r)
  lora: {
    inputs: [x: Tensor, A: Tensor, B: Tensor];
    saved: [t: Tensor];
    attrs: { M: number; N: number; K: number; r: number; scale: number };
  };
  embedding: { inputs: [table: Tensor]; saved: [ids: Tensor]; attrs: { n: number; D: number } };
  rmsnorm: { inputs: [x: Tensor, w: Tensor]; saved: [rstd: Tensor]; attrs: { rows: number; D: number } };
  add: { inputs: [a: Tensor, b: Tensor]; saved: []; attrs: { n: number } };
  mul: { inputs: [a: Tensor, b: Tensor]; saved: []; attrs: { n: number } };
  silu: { inputs: [x: Tensor]; saved: []; attrs: { n: number } };
  softplus: { inputs: [x: Tensor]; saved: []; attrs: { n: number } };
  negExp: { inputs: [x: Tensor]; saved: []; attrs: { n: number } };
  sliceLast: { inputs: [x: Tensor]; saved: []; attrs: { rows: number; C: number; c0: number; w: number } };
  conv1d: { inputs: [x: Tensor, w: Tensor, bias: Tensor | null]; saved: []; attrs: { B: number; L: number; C: number; K: number } };
  scan: {
    inputs: [x: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, D: Tensor];
    saved: [hck: Tensor];
    attrs: { B: number; L: number; ED: number; N: number; chunk: number };
  };
  crossEntropy: { inputs: [logits: Tensor]; saved: [lse: Tensor, targets: Tensor]; attrs: { rows: number; V: number } };
  distill: {
    inputs: [logits: Tensor];
    saved: [teacher: Tensor, lseT: Tensor, lse1: Tensor, targets: Tensor];
    attrs: { rows: number; V: number; T: number; alpha: number };
  };
  rope: { inputs: [x: Tensor]; saved: []; attrs: { B: number; L: number; H: number; hd: number; pos0: number; theta: number } };
  attention: {
    inputs: [q: Tensor, k: Tensor, v: Tensor];
    saved: [lse: Tensor];
    attrs: { B: number; L: number; H: number; Hkv: number; hd: number };
  };
  swiglu: { inputs: [gate: Tensor, up: Tensor]; saved: []; attrs: { n: number } };
  // Mamba-2 and the hybrids (ops/ssd.ts)
  ropePartial: {
    inputs: [x: Tensor];
    saved: [];
    attrs: { B: number; L: number; H: number; hd: number; rd: number; pos0: number; theta: number };
  };
  dtSoftplus: { inputs: [dt: Tensor, bias: Tensor]; saved: []; attrs: { rows: number; H: number; lo: number; hi: number } };
  gatedRmsnorm: { inputs: [y: Tensor, z: Tensor, w: Tensor]; saved: [rstd: Tensor]; attrs: { rows: number; D: number; gs: number } };
  // Mamba-3 (ops/mamba3.ts)
  sigmoid: { inputs: [x: Tensor]; saved: []; attrs: { n: number } };
  negHeavyTail: { inputs: [x: Tensor]; saved: []; attrs: { n: number; floor: number } };
  mamba3Scan: {
    inputs: [x: Tensor, adt: Tensor, dt: Tensor, trap: Tensor, Bn: Tensor, Cn: Tensor, Bb: Tensor, Cb: Tensor, ang: Tensor, D: Tensor];
    saved: [hck: Tensor];
    attrs: { B: number; L: number; H: number; P: number; G: number; N: number; S: number; R: number; chunk: number; halves: boolean };
  };
  mimoUp: { inputs: [x: Tensor, w: Tensor]; saved: []; attrs: { M: number; H: number; R: number; P: number } };
  mimoDown: { inputs: [o: Tensor, w: Tensor]; saved: []; attrs: { M: number; H: number; R: number; P: number } };
  ssd: {
    inputs: [x: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, D: Tensor, h0: Tensor | null];
    saved: [hck: Tensor];
    attrs: { B: number; L: number; H: number; P: number; G: number; N: number; Q: number };
  };
}

export type OpName = keyof OpRecords;

/** One recorded op of kind O: its output and what OpRecords says it keeps. */
export interface OpNode<O extends OpName> {
  readonly op: O;
  readonly out: Tensor;
  readonly inputs: Readonly<OpRecords[O]['inputs']>;
  readonly saved: Readonly<OpRecords[O]['saved']>;
  readonly attrs: Readonly<OpRecords[O]['attrs']>;
}

/** Any recorded op (a union discriminated by `op`). */
export type Node = { [O in OpName]: OpNode<O> }[OpName];

/**
 * What a gradient rule returns: one entry per input, in input order — the gradient buffer it
 * accumulated into, or null for an input that needs no gradient (or is absent).
 */
export type InputGrads<O extends OpName> = GradsOf<OpRecords[O]['inputs']>;
/** A tuple of the same length as T with every entry Tensor | null (a homomorphic mapped type keeps tuples tuples). */
type GradsOf<T extends readonly unknown[]> = { [I in keyof T]: Tensor | null };
