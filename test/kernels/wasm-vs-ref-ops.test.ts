/**
 * WebAssembly kernels against their reference twins (continued from wasm-vs-ref.test.ts): RMSNorm,
 * elementwise ops, loss and embedding, the bandwidth probe, AdamW, and kernels after heap growth.
 */
import { describe, it, expect } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import * as ref from '../../src/kernels/ref/index.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { expectClose, heap, ints, place, seed, uni, useWasmHeap, wk } from '../helpers/wasm-twins.js';

useWasmHeap();

// ------------------------------------------------------------------ rmsnorm

describe('rmsnorm', () => {
  for (const [rows, D] of [
    [1, 1],
    [3, 5],
    [4, 64],
    [2, 67],
    [7, 130],
  ]) {
    it(`rmsnormForward/Backward rows${rows} D${D}`, () => {
      seed(rows * 97 + D);
      const t = place({
        out: uni(rows * D),
        rstd: uni(rows),
        x: uni(rows * D, -3, 3),
        w: uni(D, 0.5, 1.5),
        dx: uni(rows * D),
        dw: uni(D),
        dout: uni(rows * D),
      });
      wk.rmsnormForward(t.p.out, t.p.rstd, t.p.x, t.p.w, rows, D, 1e-5);
      ref.rmsnormForward(t.r.out, t.r.rstd, t.r.x, t.r.w, rows, D, 1e-5);
      expectClose('rmsnormForward out', t.got('out'), t.r.out);
      expectClose('rmsnormForward rstd', t.got('rstd'), t.r.rstd);
      // backward from the same rstd in both
      heap.f32(t.p.rstd, rows).set(t.r.rstd);
      wk.rmsnormBackward(t.p.dx, t.p.dw, t.p.dout, t.p.x, t.p.w, t.p.rstd, rows, D);
      ref.rmsnormBackward(t.r.dx, t.r.dw, t.r.dout, t.r.x, t.r.w, t.r.rstd, rows, D);
      expectClose('rmsnormBackward dx', t.got('dx'), t.r.dx);
      expectClose('rmsnormBackward dw', t.got('dw'), t.r.dw);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ elementwise

describe('elementwise', () => {
  const sizes = [1, 3, 4, 5, 17, 1000];
  for (const n of [1, 7, 64, 1001]) {
    it(`fillZero ${n} floats, and not one more`, () => {
      seed(n);
      const t = place({ out: uni(n + 3) });
      wk.fillZero(t.p.out, n);
      ref.fillZero(t.r.out, n);
      expect(Array.from(t.got('out'))).toEqual(Array.from(t.r.out));
      expect(t.r.out[n], 'the float after the block').not.toBe(0);
      t.free();
    });
  }
  for (const [rows, cols, ldo] of [
    [1, 1, 1],
    [3, 5, 13],
    [17, 64, 72],
  ]) {
    it(`padRows ${rows}×${cols} into rows of ${ldo}: the pad columns untouched`, () => {
      seed(rows * 7 + cols);
      const t = place({ out: uni(rows * ldo), x: uni(rows * cols) });
      wk.padRows(t.p.out, t.p.x, rows, cols, ldo);
      ref.padRows(t.r.out, t.r.x, rows, cols, ldo);
      expect(Array.from(t.got('out'))).toEqual(Array.from(t.r.out));
      // the copy lands where the row layout says, and nothing else moves
      expect(t.got('out')[(rows - 1) * ldo + cols - 1]).toBe(t.r.x[rows * cols - 1]);
      t.free();
    });
  }
  for (const [rows, C, c0, w] of [
    [1, 1, 0, 1],
    [3, 10, 2, 5],
    [7, 256, 128, 128],
    [4, 36, 4, 16],
    [2, 9, 8, 1],
  ]) {
    it(`sliceColumns rows${rows} C${C} [${c0}, ${c0 + w})`, () => {
      seed(rows * 31 + C + c0);
      const t = place({ out: uni(rows * w), x: uni(rows * C) });
      wk.sliceColumns(t.p.out, t.p.x, rows, C, c0, w);
      ref.sliceColumns(t.r.out, t.r.x, rows, C, c0, w);
      expect(Array.from(t.got('out'))).toEqual(Array.from(t.r.out));
      t.free();
    });
  }
  it('silu and softplus: four vectors a turn in lock step give the bits of one vector at a time', () => {
    // a call on 4 floats takes the one-vector path; on 1003 the lock-step path covers all but the last 11
    const n = 1003;
    seed(n + 5);
    const t = place({ a: uni(n), b: uni(n), x: uni(n, -30, 30) });
    for (const k of ['siluForward', 'softplusForward'] as const) {
      wk[k](t.p.a, t.p.x, n);
      for (let i = 0; i < n; i += 4) wk[k](t.p.b + 4 * i, t.p.x + 4 * i, Math.min(4, n - i));
      expect(Buffer.from(t.got('a').buffer).equals(Buffer.from(t.got('b').buffer)), k).toBe(true);
    }
    t.free();
  });
  it('the backward and gated kernels: four vectors a turn in lock step give the bits of one vector at a time', () => {
    const n = 1003;
    seed(n + 6);
    const zeros = () => new Float32Array(n); // what the kernels accumulate into: the same start for both paths
    const t = place({ x: uni(n, -30, 30), y: uni(n), d: uni(n), bias: uni(n, -2, 2), a1: zeros(), a2: zeros(), b1: zeros(), b2: zeros() });
    const same = (what: string) => {
      expect(Buffer.from(t.got('a1').buffer).equals(Buffer.from(t.got('b1').buffer)), what).toBe(true);
      expect(Buffer.from(t.got('a2').buffer).equals(Buffer.from(t.got('b2').buffer)), what).toBe(true);
    };
    const pieces = (f: (o: number, m: number) => void) => {
      for (let i = 0; i < n; i += 4) f(4 * i, Math.min(4, n - i));
    };
    wk.siluBackward(t.p.a1, t.p.d, t.p.x, n);
    wk.softplusBackward(t.p.a2, t.p.d, t.p.x, n);
    pieces((o, m) => wk.siluBackward(t.p.b1 + o, t.p.d + o, t.p.x + o, m));
    pieces((o, m) => wk.softplusBackward(t.p.b2 + o, t.p.d + o, t.p.x + o, m));
    same('siluBackward, softplusBackward');
    wk.swigluForward(t.p.a1, t.p.x, t.p.y, n);
    pieces((o, m) => wk.swigluForward(t.p.b1 + o, t.p.x + o, t.p.y + o, m));
    wk.swigluBackward(t.p.a1, t.p.a2, t.p.d, t.p.x, t.p.y, n);
    pieces((o, m) => wk.swigluBackward(t.p.b1 + o, t.p.b2 + o, t.p.d + o, t.p.x + o, t.p.y + o, m));
    same('swigluForward, swigluBackward');
    // one row of n: Δ's softplus (no clamp) into a1, then its gradient into a1 (dt) and a2 (bias)
    const inf = Number.POSITIVE_INFINITY;
    wk.dtSoftplusForward(t.p.a1, t.p.x, t.p.bias, 1, n, 0, inf);
    pieces((o, m) => wk.dtSoftplusForward(t.p.b1 + o, t.p.x + o, t.p.bias + o, 1, m, 0, inf));
    wk.dtSoftplusBackward(t.p.a1, t.p.a2, t.p.d, t.p.x, t.p.bias, 1, n, 0, inf);
    pieces((o, m) => wk.dtSoftplusBackward(t.p.b1 + o, t.p.b2 + o, t.p.d + o, t.p.x + o, t.p.bias + o, 1, m, 0, inf));
    same('dtSoftplusForward, dtSoftplusBackward');
    t.free();
  });
  for (const n of sizes) {
    it(`add/mul/accumulate/mulAccumulate n=${n}`, () => {
      seed(n);
      const t = place({ out: uni(n), x: uni(n, -5, 5), y: uni(n, -5, 5), dst: uni(n), dst2: uni(n) });
      wk.add(t.p.out, t.p.x, t.p.y, n);
      ref.add(t.r.out, t.r.x, t.r.y, n);
      expectClose('add', t.got('out'), t.r.out);
      wk.mul(t.p.out, t.p.x, t.p.y, n);
      ref.mul(t.r.out, t.r.x, t.r.y, n);
      expectClose('mul', t.got('out'), t.r.out);
      wk.accumulate(t.p.dst, t.p.x, n);
      ref.accumulate(t.r.dst, t.r.x, n);
      expectClose('accumulate', t.got('dst'), t.r.dst);
      wk.mulAccumulate(t.p.dst2, t.p.x, t.p.y, n);
      ref.mulAccumulate(t.r.dst2, t.r.x, t.r.y, n);
      expectClose('mulAccumulate', t.got('dst2'), t.r.dst2);
      t.free();
    });
    it(`silu/softplus forward+backward n=${n}`, () => {
      seed(n + 1);
      const t = place({ out: uni(n), out2: uni(n), x: uni(n, -12, 12), dout: uni(n), dx: uni(n), dx2: uni(n) });
      wk.siluForward(t.p.out, t.p.x, n);
      ref.siluForward(t.r.out, t.r.x, n);
      expectClose('siluForward', t.got('out'), t.r.out);
      wk.softplusForward(t.p.out2, t.p.x, n);
      ref.softplusForward(t.r.out2, t.r.x, n);
      expectClose('softplusForward', t.got('out2'), t.r.out2);
      wk.siluBackward(t.p.dx, t.p.dout, t.p.x, n);
      ref.siluBackward(t.r.dx, t.r.dout, t.r.x, n);
      expectClose('siluBackward', t.got('dx'), t.r.dx);
      wk.softplusBackward(t.p.dx2, t.p.dout, t.p.x, n);
      ref.softplusBackward(t.r.dx2, t.r.dout, t.r.x, n);
      expectClose('softplusBackward', t.got('dx2'), t.r.dx2);
      t.free();
    });
    it(`swiglu forward+backward n=${n}`, () => {
      seed(n + 2);
      const t = place({ out: uni(n), gate: uni(n, -12, 12), up: uni(n, -3, 3), dout: uni(n), dgate: uni(n), dup: uni(n) });
      wk.swigluForward(t.p.out, t.p.gate, t.p.up, n);
      ref.swigluForward(t.r.out, t.r.gate, t.r.up, n);
      expectClose('swigluForward', t.got('out'), t.r.out);
      wk.swigluBackward(t.p.dgate, t.p.dup, t.p.dout, t.p.gate, t.p.up, n);
      ref.swigluBackward(t.r.dgate, t.r.dup, t.r.dout, t.r.gate, t.r.up, n);
      expectClose('swigluBackward dgate', t.got('dgate'), t.r.dgate);
      expectClose('swigluBackward dup', t.got('dup'), t.r.dup);
      t.free();
    });
  }
  for (const [rows, cols, ldo] of [
    [1, 1, 1],
    [5, 3, 5],
    [9, 17, 17],
    [33, 20, 41],
    [4, 4, 4],
    [16, 8, 24],
    [37, 23, 45],
    [64, 48, 72],
  ]) {
    it(`transpose ${rows}×${cols} into rows of ${ldo}`, () => {
      seed(rows * 13 + cols);
      const t = place({ out: uni(cols * ldo), x: uni(rows * cols) });
      wk.transpose(t.p.out, t.p.x, rows, cols, ldo);
      ref.transpose(t.r.out, t.r.x, rows, cols, ldo);
      expect(Array.from(t.got('out'))).toEqual(Array.from(t.r.out));
      t.free();
    });
  }
  for (const [rows, C, c0, w] of [
    [1, 1, 0, 1],
    [3, 10, 2, 5],
    [7, 256, 128, 128],
    [5, 37, 3, 29],
  ]) {
    it(`sliceColumnsBackward rows${rows} C${C} [${c0}, ${c0 + w})`, () => {
      seed(rows * 17 + C + c0);
      const t = place({ dx: uni(rows * C), dout: uni(rows * w) });
      wk.sliceColumnsBackward(t.p.dx, t.p.dout, rows, C, c0, w);
      ref.sliceColumnsBackward(t.r.dx, t.r.dout, rows, C, c0, w);
      expectClose('sliceColumnsBackward', t.got('dx'), t.r.dx);
      t.free();
    });
  }

  it('silu, softplus and their gradients are finite and accurate elementwise on [-100, 100]', () => {
    const n = 40001;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = -100 + (200 * i) / (n - 1);
    const ones = new Float32Array(n).fill(1);
    const t = place({
      x: xs,
      dout: ones,
      silu: new Float32Array(n),
      sp: new Float32Array(n),
      dsilu: new Float32Array(n),
      dsp: new Float32Array(n),
    });
    wk.siluForward(t.p.silu, t.p.x, n);
    ref.siluForward(t.r.silu, t.r.x, n);
    wk.softplusForward(t.p.sp, t.p.x, n);
    ref.softplusForward(t.r.sp, t.r.x, n);
    wk.siluBackward(t.p.dsilu, t.p.dout, t.p.x, n);
    ref.siluBackward(t.r.dsilu, t.r.dout, t.r.x, n);
    wk.softplusBackward(t.p.dsp, t.p.dout, t.p.x, n);
    ref.softplusBackward(t.r.dsp, t.r.dout, t.r.x, n);
    for (const k of ['silu', 'sp', 'dsilu', 'dsp'] as const) {
      const got = t.got(k),
        want = t.r[k];
      let worst = 0,
        wi = 0;
      for (let i = 0; i < n; i++) {
        expect(Number.isFinite(got[i]), `${k}(${xs[i]}) = ${got[i]}`).toBe(true);
        // relative error, with an absolute floor for results in f32's subnormal range. silu' has a
        // root (x ≈ -1.278) where s + x·s·(1-s) cancels: measure it against its terms' magnitude.
        const x = xs[i],
          sg = 1 / (1 + Math.exp(-x));
        const scale = k === 'dsilu' ? sg + Math.abs(x * sg * (1 - sg)) : Math.abs(want[i]);
        const e = Math.abs(got[i] - want[i]) / (scale + 1e-37);
        if (e > worst) {
          worst = e;
          wi = i;
        }
      }
      expect(worst, `${k}: worst relative error ${worst} at x=${xs[wi]}: got ${got[wi]} want ${want[wi]}`).toBeLessThan(1e-6);
      expectClose(k, got, want);
    }
    t.free();
  });

  it('vector exp is within 1 ulp of exp(x) over a sweep of [-100, 88]; limits are 0 / inf / NaN', () => {
    const n = 200003;
    const xs = new Float32Array(n + 8);
    for (let i = 0; i < n; i++) xs[i] = -100 + (188 * i) / (n - 1);
    xs.set([0, -0, -1e-30, 1e-30, -104, -1000, 89, Number.NaN], n);
    const t = place({ x: xs, out: new Float32Array(n + 8) });
    wk.expForward(t.p.out, t.p.x, n + 8);
    const got = t.got('out');
    const FLT_MIN = 2 ** -126,
      DENORM = 2 ** -149;
    // one ulp at v: the gap from the float32 nearest v to the next float32 up
    const bits = new Float32Array(1),
      word = new Uint32Array(bits.buffer);
    const ulp = (v: number) => {
      bits[0] = v;
      word[0] += 1;
      return bits[0] - Math.fround(v);
    };
    let worstUlp = 0,
      worstX = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.exp(xs[i]); // float64: exact to far below a float32 ulp
      if (want >= FLT_MIN) {
        const e = Math.abs(got[i] - want) / ulp(want);
        if (e > worstUlp) {
          worstUlp = e;
          worstX = xs[i];
        }
      } else {
        expect(Math.abs(got[i] - want), `exp(${xs[i]}) = ${got[i]}, want ${want}`).toBeLessThanOrEqual(DENORM);
      }
    }
    expect(worstUlp, `worst error ${worstUlp} ulp at x=${worstX}`).toBeLessThanOrEqual(1);
    expect(Array.from(got.subarray(n, n + 7))).toEqual([1, 1, 1, 1, 0, 0, Infinity]);
    expect(Number.isNaN(got[n + 7])).toBe(true);
    // and its twin (Math.exp, rounded to f32) over the finite part
    ref.expForward(t.r.out, t.r.x, n);
    expectClose('expForward', got.subarray(0, n), t.r.out.subarray(0, n), 1e-6);
    t.free();
  });
});

// ------------------------------------------------------------------ loss, embedding

describe('loss and embedding', () => {
  for (const [rows, V, scale] of [
    [1, 1, 1],
    [3, 5, 3],
    [4, 7, 1],
    [2, 256, 5],
    [5, 1001, 2],
    [3, 9, 80],
  ]) {
    it(`crossEntropyForward/Backward rows${rows} V${V} scale${scale}`, () => {
      seed(rows * 13 + V + scale);
      const t = place({
        losses: uni(rows),
        lse: uni(rows),
        logits: uni(rows * V, -scale, scale),
        targets: ints(rows, V),
        dlogits: uni(rows * V),
        dloss: uni(rows),
      });
      wk.crossEntropyForward(t.p.losses, t.p.lse, t.p.logits, t.p.targets, rows, V);
      ref.crossEntropyForward(t.r.losses, t.r.lse, t.r.logits, t.r.targets, rows, V);
      expectClose('crossEntropyForward losses', t.got('losses'), t.r.losses);
      expectClose('crossEntropyForward lse', t.got('lse'), t.r.lse);
      heap.f32(t.p.lse, rows).set(t.r.lse);
      wk.crossEntropyBackward(t.p.dlogits, t.p.dloss, t.p.logits, t.p.lse, t.p.targets, rows, V);
      ref.crossEntropyBackward(t.r.dlogits, t.r.dloss, t.r.logits, t.r.lse, t.r.targets, rows, V);
      expectClose('crossEntropyBackward', t.got('dlogits'), t.r.dlogits);
      t.free();
    });
  }
  for (const [V, D, n] of [
    [1, 1, 1],
    [5, 3, 9],
    [11, 16, 20],
    [7, 33, 4],
  ]) {
    it(`embeddingForward/Backward V${V} D${D} n${n}`, () => {
      seed(V * 31 + D * 3 + n);
      const t = place({ out: uni(n * D), table: uni(V * D), ids: ints(n, V), dtable: uni(V * D), dout: uni(n * D) });
      wk.embeddingForward(t.p.out, t.p.table, t.p.ids, n, D);
      ref.embeddingForward(t.r.out, t.r.table, t.r.ids, n, D);
      expectClose('embeddingForward', t.got('out'), t.r.out);
      wk.embeddingBackward(t.p.dtable, t.p.dout, t.p.ids, n, D);
      ref.embeddingBackward(t.r.dtable, t.r.dout, t.r.ids, n, D);
      expectClose('embeddingBackward', t.got('dtable'), t.r.dtable);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ bandwidth probe

describe('readBandwidth', () => {
  for (const [n, S] of [
    [1, 1],
    [63, 16],
    [1000, 3],
    [4096, 16],
    [100_003, 7],
  ]) {
    it(`readBandwidth n=${n} streams=${S}`, () => {
      seed(n + S);
      const t = place({ out: uni(1), x: uni(n, -0.25, 0.75) });
      wk.readBandwidth(t.p.out, t.p.x, n, S);
      ref.readBandwidth(t.r.out, t.r.x, n, S);
      // f32 lane sums against a float64 sum: rounding grows with n (see its twin's comment)
      expect(Math.abs(t.got('out')[0] - t.r.out[0])).toBeLessThan(1e-5 * n + 1e-6);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ optimiser

describe('adamw', () => {
  for (const n of [1, 7, 100, 1003]) {
    it(`adamwStep n=${n}`, () => {
      seed(n * 3);
      const t = place({ p: uni(n), g: uni(n, -0.1, 0.1), m: uni(n, -0.01, 0.01), v: uni(n, 0, 1e-4) });
      const [lr, b1, b2, eps, wd] = [3e-3, 0.9, 0.999, 1e-8, 0.1];
      for (let step = 1; step <= 3; step++) {
        const bc1 = 1 - b1 ** step,
          bc2 = 1 - b2 ** step;
        wk.adamwStep(t.p.p, t.p.g, t.p.m, t.p.v, n, lr, b1, b2, eps, wd, bc1, bc2);
        ref.adamwStep(t.r.p, t.r.g, t.r.m, t.r.v, n, lr, b1, b2, eps, wd, bc1, bc2);
      }
      for (const k of ['p', 'm', 'v'] as const) expectClose(`adamwStep ${k}`, t.got(k), t.r[k]);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ memory growth

describe('after heap growth', () => {
  it('kernels see inputs placed before a grow and results are read through rebuilt views', () => {
    const h = new Heap(4);
    const k = loadWasmKernels(h.memory);
    seed(99);
    const M = 9,
      N = 14,
      K = 11;
    const a = uni(M * K),
      b = uni(N * K);
    const pa = h.alloc(a.byteLength),
      pb = h.alloc(b.byteLength);
    h.f32(pa, a.length).set(a);
    h.f32(pb, b.byteLength / 4).set(b);
    const before = h.byteLength;
    h.grow(40);
    expect(h.byteLength).toBeGreaterThan(before);
    // an allocation far into the grown region
    h.onAlloc = (bytes) => {
      if (bytes === 1 << 20) h.grow(20);
    };
    const big = h.alloc(1 << 20);
    h.onAlloc = null;
    const pout = h.alloc(M * N * 4);
    k.matmulNT(pout, pa, pb, M, N, K, 0);
    const want = new Float32Array(M * N);
    ref.matmulNT(want, a, b, M, N, K, 0);
    expectClose('matmulNT after grow', h.f32(pout, M * N), want);
    // a kernel writing into the far end of the grown memory
    const n = (1 << 20) / 4;
    k.siluForward(big, big, n);
    expect(h.f32(big, n)[n - 1]).toBe(0);
    h.f32(big, n).fill(2);
    k.siluForward(big, big, n);
    expect(h.f32(big, n)[n - 1]).toBeCloseTo(2 / (1 + Math.exp(-2)), 6);
    // and the earlier instance keeps working after yet another grow
    h.grow(3);
    k.matmulNT(pout, pa, pb, M, N, K, 1);
    for (let i = 0; i < want.length; i++) want[i] *= 2;
    expectClose('matmulNT beta=1 after second grow', h.f32(pout, M * N), want);
  });
});
