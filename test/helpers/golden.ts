import { expect } from 'vitest';
import { valueAndGrad } from '../../src/ops/index.js';
import type { TrainableModel } from '../../src/models/types.js';
import { expectClose } from './compare.js';
import { readFileSync } from 'node:fs';
import { decodeSafetensors, readTensorF64 } from '../../src/io/safetensors.js';
import type { KernelKind } from '../../src/kernels/backend.js';

/** The engine set-ups every golden test runs, with the tolerance each can meet. */
export const GOLDEN_SETUPS: { kernels: KernelKind; dtype: 'f32' | 'f64'; tol: number }[] = [
  { kernels: 'ref', dtype: 'f64', tol: 1e-6 },
  { kernels: 'ref', dtype: 'f32', tol: 1e-4 },
  { kernels: 'wasm', dtype: 'f32', tol: 1e-4 },
];

/** A fixture's golden.safetensors (written by a PyTorch reference under tools/): ids, targets and getters. */
export function golden(name: string) {
  const file = `test/fixtures/${name}/golden.safetensors`;
  const g = decodeSafetensors(new Uint8Array(readFileSync(file)), file);
  const get = (n: string) => readTensorF64(g, n);
  const ints = (n: string) => Int32Array.from(get(n));
  return { g, get, ids: ints('ids'), targets: ints('targets'), B: g.tensors.get('ids')!.shape[0], L: g.tensors.get('ids')!.shape[1] };
}

/** The loss and every parameter's gradient of `model` against a fixture's golden values (tolerance tol, relative). */
export function expectGoldenGradients(model: TrainableModel, gold: ReturnType<typeof golden>, tol: number): void {
  const e = model.e;
  for (const t of model.params.values()) t.grad = e.persistent(t.shape);
  const loss = valueAndGrad(e, () => model.loss(gold.ids, gold.targets, gold.B, gold.L));
  expect(Math.abs(loss - gold.get('loss')[0])).toBeLessThan(tol);
  for (const [name, t] of model.params) {
    expect(gold.g.tensors.has(`grad.${name}`), `golden has grad.${name}`).toBe(true);
    expectClose(t.grad!.toFloat64(), gold.get(`grad.${name}`), tol, `grad.${name}`);
  }
}
