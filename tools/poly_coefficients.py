#!/usr/bin/env python3
"""
Where the polynomial coefficients of assembly/vmath.ts come from, and the check of their error as
the wasm kernels evaluate them (Horner in float32, no fused multiply-add):

- vexp2Neg: 2^r on [-1/2, 1/2], degree 5, relative-error minimax (Remez), then each coefficient
  nudged by up to 3 float32 ulps at random while that lowers the worst error in ulps on a grid;
- vlog1pUnit: log1p(e)/e on [0, 1], degree 8, the same way (by up to 2 ulps, against the worst
  relative error of e·P(e), on a grid that reaches down to e = 1e-30).

    python3 tools/poly_coefficients.py          # NumPy (Debian: python3-numpy); a few minutes

Prints each table, highest coefficient first as vmath.ts stores them, and its worst error in
float32 ulps of the result, on a grid finer than the tuning one.
"""
import numpy as np

f32 = np.float32


def remez(f, a, b, deg, iters=30):
    """Coefficients c0..c_deg of the polynomial closest to f on [a, b] in relative error."""
    m = deg + 2
    x = np.array([(a + b) / 2 + (b - a) / 2 * np.cos(np.pi * k / (m - 1)) for k in range(m)])[::-1]
    xs = np.linspace(a, b, 20001)
    for _ in range(iters):
        A = np.zeros((m, m))
        rhs = np.zeros(m)
        for i, xi in enumerate(x):
            fi = f(xi)
            A[i, : deg + 1] = [xi**j for j in range(deg + 1)]
            A[i, deg + 1] = (-1) ** i * fi
            rhs[i] = fi
        c = np.linalg.solve(A, rhs)[: deg + 1]
        err = (np.polyval(c[::-1], xs) - f(xs)) / f(xs)
        ext = [0] + [i for i in range(1, len(xs) - 1) if (err[i] - err[i - 1]) * (err[i + 1] - err[i]) <= 0] + [len(xs) - 1]
        pts = []
        for i in ext:
            if pts and np.sign(err[i]) == np.sign(err[pts[-1]]):
                if abs(err[i]) > abs(err[pts[-1]]):
                    pts[-1] = i
            else:
                pts.append(i)
        while len(pts) > m:
            pts.pop(0 if abs(err[pts[0]]) < abs(err[pts[-1]]) else -1)
        if len(pts) < m:
            break
        x = xs[pts]
    return c


def horner(c, r, times_r=False):
    """Float32 Horner evaluation as the kernels do it (c0..cn), optionally times r at the end."""
    p = np.full_like(r, c[-1])
    for k in range(len(c) - 2, -1, -1):
        p = (p * r).astype(f32) + c[k]
    return (p * r).astype(f32) if times_r else p


def worst_ulps(c, r, want, times_r):
    got = horner(c, r, times_r).astype(np.float64)
    ulp = np.spacing(np.abs(want).astype(f32)).astype(np.float64)
    return float(np.max(np.abs(got - want) / ulp))


def worst_relative(c, r, want, times_r):
    got = horner(c, r, times_r).astype(np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-45)))


def tune(c, r, want, times_r, rounds, span, measure, seed=1):
    """Nudge each float32 coefficient by up to `span` ulps at random, keeping what lowers the worst error."""
    best = np.array(c, dtype=f32)
    be = measure(best, r, want, times_r)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        cand = best.copy()
        for k in range(len(cand)):
            d = int(rng.integers(-span, span + 1))
            for _ in range(abs(d)):
                cand[k] = np.nextafter(cand[k], f32(np.inf) if d > 0 else f32(-np.inf))
        e = measure(cand, r, want, times_r)
        if e < be:
            best, be = cand, e
    return best


def report(name, c, r, want, times_r):
    print(f"{name}: [{', '.join(repr(float(v)) for v in c[::-1])}]")
    print(
        f"  worst error {worst_ulps(c, r, want, times_r):.2f} ulp, {worst_relative(c, r, want, times_r):.3g} relative, on {len(r)} points"
    )


r = np.linspace(-0.5, 0.5, 200001).astype(f32)
c = tune(remez(lambda v: 2.0**v, -0.5, 0.5, 5), r, np.exp2(r.astype(np.float64)), False, 6000, 3, worst_ulps)
fine = np.linspace(-0.5, 0.5, 4000001).astype(f32)
report("vexp2Neg (2^r)", c, fine, np.exp2(fine.astype(np.float64)), False)

log1p_over = lambda v: np.where(v == 0, 1.0, np.log1p(v) / np.where(v == 0, 1, v))
e = np.concatenate([np.linspace(0, 1, 200001), np.geomspace(1e-30, 1e-3, 2000)]).astype(f32)
c = tune(remez(log1p_over, 0.0, 1.0, 8), e, np.log1p(e.astype(np.float64)), True, 3000, 2, worst_relative)
fine = np.concatenate([np.linspace(0, 1, 4000001), np.geomspace(1e-30, 1e-3, 20000)]).astype(f32)[1:]
report("vlog1pUnit (log1p(e)/e)", c, fine, np.log1p(fine.astype(np.float64)), True)
