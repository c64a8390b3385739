export * from './heap.js';
export * from './tensor.js';
