import { describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { Engine } from '../../src/ops/index.js';

/** Zero-filled allocation (every path of the allocator) and the uninitialised one of Engine.empty. */
describe('heap allocation', () => {
  it('zero-fills a reused block, from the free list and from the top', () => {
    const h = new Heap(4);
    const a = h.alloc(1000),
      b = h.alloc(64 * 3),
      c = h.alloc(256);
    for (const [off, n] of [
      [a, 1000],
      [b, 192],
      [c, 256],
    ])
      h.u8().fill(0xab, off, off + n);
    h.release(a); // into the free list (b and c lie above it)
    h.release(c); // back into the top
    const a2 = h.alloc(960),
      c2 = h.alloc(200);
    expect(a2).toBe(a);
    expect(c2).toBe(c);
    expect(
      h
        .u8()
        .subarray(a2, a2 + 960)
        .every((v) => v === 0),
    ).toBe(true);
    expect(
      h
        .u8()
        .subarray(c2, c2 + 256)
        .every((v) => v === 0),
    ).toBe(true);
    expect(h.u8()[a2 + 960], 'the rest of the freed block is untouched').toBe(0xab);
  });

  it.each(['ref', 'wasm'] as const)('Engine.empty leaves the memory as it was, Engine.zeros clears it (%s kernels)', (kernels) => {
    const e = new Engine({ kernels, dtype: 'f32' });
    // the wasm backend zeroes through its fillZero kernel; the reference one through a typed array
    expect(e.heap.zeroWith === null).toBe(kernels === 'ref');
    const t = e.persistent([37]);
    t.data().fill(7);
    const off = t.offset;
    t.dispose();
    const u = e.empty([37]);
    expect(u.offset).toBe(off);
    expect(Array.from(u.data())).toEqual(Array(37).fill(7));
    u.dispose();
    const z = e.zeros([37]);
    expect(z.offset).toBe(off);
    expect(Array.from(z.data())).toEqual(Array(37).fill(0));
    e.dispose();
  });
});
