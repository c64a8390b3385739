import { defineConfig } from 'vitest/config';

/**
 * The kernel twin tests run twice: against the default build (build/kernels.wasm) with every other
 * test, and again against the opt-in relaxed-SIMD build (build/kernels-relaxed.wasm), which
 * test/helpers/wasm-twins.ts picks when FRUGAL_TEST_WASM_BUILD says so. The files again are those
 * of the kernels the relaxed build compiles differently: the products (assembly/matmul.ts's
 * multiply-adds, quant.ts's integer dot) and the kernels built on them (ssd.ts, mamba1.ts); the
 * others (norms, elementwise, loss, optimiser) hold no relaxed instruction. Threads, the engine,
 * the command line and a short quantised-quality check: test/kernels/relaxed.test.ts (the full
 * quality test takes minutes: test/models/quant-quality.test.ts says how to run it on this build).
 */
const RELAXED_TWINS = [
  'test/kernels/wasm-vs-ref.test.ts',
  'test/kernels/ssd-twins.test.ts',
  'test/kernels/mamba1-twins.test.ts',
  'test/kernels/strided.test.ts',
  'test/kernels/quant.test.ts',
  'test/kernels/quant-q4.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/globalSetup.ts'],
    projects: [
      { extends: true, test: { name: 'simd', include: ['test/**/*.test.ts'] } },
      { extends: true, test: { name: 'relaxed-simd', include: RELAXED_TWINS, env: { FRUGAL_TEST_WASM_BUILD: 'relaxed-simd' } } },
    ],
  },
});
