export * from './engine.js';
export * from './tape.js';
export * from './ops.js';
export * from './attention.js';
export * from './ssd.js';
export * from './mamba3.js';
export { GRAD_RULES } from './grads.js';
export type { OpName, OpRecords, OpNode, InputGrads } from './records.js';
