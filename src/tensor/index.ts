export * from './heap.js';
export * from './tensor.js';
export * from './quant.js';
