/** Plain TypeScript reference kernels: the twins every fast kernel is tested against. */
export * from './types.js';
export * from './matmul.js';
export * from './elementwise.js';
export * from './norm.js';
export * from './conv.js';
export * from './scan.js';
export * from './loss.js';
export * from './optim.js';
export * from './attention.js';
export * from './kvcache.js';
export * from './quant.js';
export * from './strided.js';
export * from './bench.js';
export * from './ssd.js';
export * from './mamba2.js';
export * from './rotary.js';
export * from './mamba3.js';
