import { describe, expect, it } from 'vitest';
import { type BadLine, HeaderError, TickParser, readCsvColumns, splitCsv } from '../../src/streams/parse.js';
import { TickQueue, TimeCheck } from '../../src/streams/queue.js';
import { ewmaVariance, fitGarch, garchFilter, garchLogLik, nelderMead } from '../../src/streams/baselines.js';
import { coverage, eventF1, excessLoss, gaussianNll, percentile, runs, skill, windowF1 } from '../../src/streams/metrics.js';
import { gaussianLoss, softmaxLoss } from '../../src/streams/loss.js';
import { garchJumps, injectFaults } from '../../src/streams/synthetic.js';
import { Rng } from '../../src/io/rng.js';

describe('tick parsers', () => {
  it('reads a hand-made CSV: header, numbers, dates, quotes, empty fields, CRLF', () => {
    const p = new TickParser('csv');
    expect(p.push('date,price,"vol"\r')).toBeNull();
    expect(p.columns).toEqual(['price', 'vol']);
    expect(p.push('2020-01-02,3.5,"1000"')).toEqual({
      line: 2,
      t: '2020-01-02',
      at: Date.UTC(2020, 0, 2),
      values: { price: 3.5, vol: 1000 },
    });
  });

  it('parses rows into ticks with line numbers', () => {
    const p = new TickParser('csv');
    p.push('t,a,b');
    expect(p.push('1,2.5,-3')).toEqual({ line: 2, t: 1, at: 1, values: { a: 2.5, b: -3 } });
    expect(p.push('')).toBeNull(); // blank line 3
    expect(p.push('2,,4\r')).toEqual({ line: 4, t: 2, at: 2, values: { a: null, b: 4 } });
    const d = new TickParser('csv');
    d.push('date,x');
    expect(d.push('2000-01-03,7')).toEqual({ line: 2, t: '2000-01-03', at: Date.UTC(2000, 0, 3), values: { x: 7 } });
    expect(splitCsv('"a,b",c,"say ""hi"""')).toEqual(['a,b', 'c', 'say "hi"']);
    expect(splitCsv('"open')).toBeNull();
  });

  it('reports malformed CSV lines with their line number and what is wrong', () => {
    const p = new TickParser('csv');
    p.push('time,a');
    const bad = (s: string): BadLine => {
      try {
        p.push(s);
      } catch (e) {
        return e as BadLine;
      }
      throw new Error(`no error for ${s}`);
    };
    expect(bad('1,2,3')).toMatchObject({ line: 2, why: '3 fields, the header has 2' });
    expect(bad('2,abc')).toMatchObject({ line: 3, why: "column a: 'abc' is not a number" });
    expect(bad('yesterday,1')).toMatchObject({ line: 4 });
    expect(bad('"3,1')).toMatchObject({ line: 5, why: 'unbalanced double quotes' });
    expect(p.push('6,1')).toMatchObject({ line: 6, values: { a: 1 } });
    expect(() => new TickParser('csv').push('x,y')).toThrow(HeaderError);
  });

  it('reads JSON Lines and rejects malformed ones', () => {
    const p = new TickParser('jsonl');
    expect(p.push('{"t": 5, "a": 1.5, "b": null}')).toEqual({ line: 1, t: 5, at: 5, values: { a: 1.5, b: null } });
    expect(p.push('{"date": "2001-02-03", "a": 2}')).toMatchObject({ line: 2, t: '2001-02-03' });
    for (const [s, why] of [
      ['{"t": 1, "a": ', 'not valid JSON'],
      ['[1,2]', 'not a JSON object'],
      ['{"a": 1}', 'no time key (t, time or date)'],
      ['{"t": 1, "a": "x"}', 'key a: "x" is not a number'],
    ]) {
      expect(() => p.push(s)).toThrow(why);
    }
  });

  it('reads a whole CSV as columns, and names the file and line of an error', () => {
    const c = readCsvColumns('t,a\n0,1\n1,2\n', 'x.csv');
    expect(c.at).toEqual([0, 1]);
    expect(c.columns.get('a')).toEqual([1, 2]);
    expect(() => readCsvColumns('t,a\n0,1\n1\n', 'x.csv')).toThrow('x.csv: line 3: 1 fields, the header has 2');
  });
});

describe('queue and time checks', () => {
  const fill = (q: TickQueue<number>, n: number) => Array.from({ length: n }, (_, i) => q.push(i + 1));

  it('block: keeps every tick and asks the producer to pause when full', () => {
    const q = new TickQueue<number>(3, 'block', (a, b) => a + b);
    expect(fill(q, 4)).toEqual([false, false, true, true]);
    expect([q.shift(), q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([1, 2, 3, 4, undefined]);
    expect(q.stats).toEqual({ maxDepth: 4, dropped: 0, coalesced: 0 });
  });

  it('drop-oldest: keeps the newest capacity ticks and counts the dropped', () => {
    const q = new TickQueue<number>(3, 'drop-oldest', (a, b) => a + b);
    fill(q, 7);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([5, 6, 7, undefined]);
    expect(q.stats).toEqual({ maxDepth: 3, dropped: 4, coalesced: 0 });
  });

  it('coalesce: merges overflow into the newest queued tick', () => {
    const q = new TickQueue<number[]>(2, 'coalesce', (a, b) => [...a, ...b]);
    for (let i = 1; i <= 5; i++) q.push([i]);
    expect([q.shift(), q.shift(), q.shift()]).toEqual([[1], [2, 3, 4, 5], undefined]);
    expect(q.stats).toEqual({ maxDepth: 2, dropped: 0, coalesced: 3 });
  });

  it('flags gaps with the ticks missing, and duplicate and out-of-order ticks', () => {
    const c = new TimeCheck(10);
    expect([0, 10, 20, 50, 50, 40, 60, 75].map((t) => c.check(t))).toEqual([
      { kind: 'ok' },
      { kind: 'ok' },
      { kind: 'ok' },
      { kind: 'gap', missing: 2 },
      { kind: 'duplicate' },
      { kind: 'out-of-order' },
      { kind: 'ok' },
      { kind: 'ok' }, // 15 = 1.5 intervals: not yet a gap
    ]);
    const learn = new TimeCheck(null);
    expect([0, 2, 4, 9].map((t) => learn.check(t).kind)).toEqual(['ok', 'ok', 'ok', 'gap']);
  });

  it('finds injected feed faults', () => {
    const rows = Array.from({ length: 2000 }, (_, i) => `${i},1`);
    const f = injectFaults(Rng.fromSeed(3), rows, 0.02);
    expect(f.duplicates + f.gaps + f.swaps).toBeGreaterThan(60);
    const c = new TimeCheck(1);
    const seen = { ok: 0, gap: 0, duplicate: 0, 'out-of-order': 0 };
    for (const r of f.rows) seen[c.check(Number(r.split(',')[0])).kind]++;
    expect(seen.duplicate).toBe(f.duplicates);
    expect(seen['out-of-order']).toBe(f.swaps);
    // a dropped tick, and a swapped one (skipped when it comes late), each leave a gap unless they touch another fault
    expect(seen.gap).toBeLessThanOrEqual(f.gaps + f.swaps);
    expect(seen.gap).toBeGreaterThan(0.8 * (f.gaps + f.swaps));
  });
});

describe('baselines', () => {
  it('GARCH(1,1) filter and likelihood match a hand-checked series', () => {
    const g = { omega: 0.1, alpha: 0.2, beta: 0.7, mu: 0 };
    // σ²₁ = 0.1 + 0.2·1 + 0.7·1 = 1.0; σ²₂ = 0.1 + 0.2·4 + 0.7·1.0 = 1.6; σ²₃ = 0.1 + 0.2·0.25 + 0.7·1.6 = 1.27
    const v = garchFilter(g, [1, -2, 0.5], 1);
    expect(v[0]).toBeCloseTo(1.0, 12);
    expect(v[1]).toBeCloseTo(1.6, 12);
    expect(v[2]).toBeCloseTo(1.27, 12);
    // log L = Σ −½(log 2π σ²_t + r_t²/σ²_t) with σ² = 1, 1.0, 1.6
    const hand = -0.5 * (3 * Math.log(2 * Math.PI) + Math.log(1.6) + 1 + 4 + 0.25 / 1.6);
    expect(garchLogLik(g, [1, -2, 0.5], 1)).toBeCloseTo(hand, 12);
    // EWMA: σ² = 0.94·1 + 0.06·1 = 1, then 0.94 + 0.06·4 = 1.18
    const e = ewmaVariance([1, -2], 1);
    expect(e[1]).toBeCloseTo(1.18, 12);
  });

  it('the maximum-likelihood fit recovers the parameters of a simulated GARCH(1,1)', () => {
    const s = garchJumps(Rng.fromSeed(11), 8000, { omega: 0.05, alpha: 0.1, beta: 0.85 }, { lambda: 0, sd: 0 });
    const fit = fitGarch(s.data.columns.get('ret') as number[]);
    expect(fit.alpha).toBeGreaterThan(0.06);
    expect(fit.alpha).toBeLessThan(0.14);
    expect(fit.beta).toBeGreaterThan(0.78);
    expect(fit.beta).toBeLessThan(0.92);
    expect(fit.omega / (1 - fit.alpha - fit.beta)).toBeGreaterThan(0.6); // unconditional variance 1
    expect(fit.omega / (1 - fit.alpha - fit.beta)).toBeLessThan(1.6);
  });

  it('Nelder–Mead finds the minimum of a quadratic', () => {
    const x = nelderMead((u) => (u[0] - 3) ** 2 + 2 * (u[1] + 1) ** 2, [0, 0], 300);
    expect(x[0]).toBeCloseTo(3, 4);
    expect(x[1]).toBeCloseTo(-1, 4);
  });
});

describe('metrics', () => {
  it('does the arithmetic of skill, excess loss, coverage and NLL', () => {
    expect(skill(0.8, 1)).toBeCloseTo(0.2, 12);
    expect(skill(1.5, 1)).toBeCloseTo(-0.5, 12); // a loss stays a loss
    expect(excessLoss([1, 2, 3], [0.5, 0.5, 2])).toBeCloseTo(1, 12);
    expect(coverage([0, 1, 2, 3], [-1, -1, -1, -1], [0.5, 1, 1.5, 4])).toBe(0.75); // 2 > 1.5 is the one outside
    expect(gaussianNll([1], [0], [1])).toBeCloseTo(0.5 * Math.log(2 * Math.PI) + 0.5, 12);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5], 100)).toBe(5);
  });

  it('scores detections per tick, per window and per event', () => {
    const L = [0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0].map(Boolean);
    const P = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1].map(Boolean);
    expect(runs(L)).toEqual([
      [1, 4],
      [7, 9],
    ]);
    // per tick: tp 1, fp 3, fn 4 → p 1/4, r 1/5
    const t = windowF1(P, L);
    expect(t.precision).toBeCloseTo(0.25, 12);
    expect(t.recall).toBeCloseTo(0.2, 12);
    expect(t.f1).toBeCloseTo((2 * 0.25 * 0.2) / 0.45, 12);
    // windows of 4: [0..3] p&l tp, [4..7] p&l tp, [8..11] p&l tp → all three windows right
    expect(windowF1(P, L, 4)).toEqual({ precision: 1, recall: 1, f1: 1 });
    // events: the first found, the second missed (r 1/2); alarms [2,3) true, [5,6) and [10,12) false (p 1/3)
    const ev = eventF1(P, L);
    expect(ev.recall).toBeCloseTo(0.5, 12);
    expect(ev.precision).toBeCloseTo(1 / 3, 12);
    expect(ev.f1).toBeCloseTo(0.4, 12);
  });
});

describe('head losses', () => {
  const fd = (f: (x: number[]) => number, x: number[], i: number, h = 1e-6) => {
    const a = [...x],
      b = [...x];
    a[i] += h;
    b[i] -= h;
    return (f(a) - f(b)) / (2 * h);
  };

  it('Gaussian NLL gradients match float64 finite differences', () => {
    for (const [mu, s, y] of [
      [0.3, -0.2, 1.1],
      [-2, 1.5, 0.4],
    ]) {
      const g = [0, 0];
      const loss = gaussianLoss(mu, s, y, g);
      expect(loss).toBeCloseTo(0.5 * Math.log(2 * Math.PI) + s + 0.5 * ((y - mu) / Math.exp(s)) ** 2, 12);
      const f = (x: number[]) => gaussianLoss(x[0], x[1], y);
      expect(g[0]).toBeCloseTo(fd(f, [mu, s], 0), 6);
      expect(g[1]).toBeCloseTo(fd(f, [mu, s], 1), 6);
    }
  });

  it('softmax cross-entropy gradients match float64 finite differences', () => {
    const z = [0.5, -1, 2],
      g = [0, 0, 0];
    const loss = softmaxLoss(z, 0, 3, 1, g);
    const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    expect(loss).toBeCloseTo(lse - z[1], 12);
    for (let k = 0; k < 3; k++)
      expect(g[k]).toBeCloseTo(
        fd((x) => softmaxLoss(x, 0, 3, 1), z, k),
        6,
      );
  });
});

describe('data sets', () => {
  it('a missing gretl file is bad input that names the package to install', async () => {
    const { readGdt } = await import('../../src/streams/data.js');
    expect(() => readGdt('no-such-file.gdt')).toThrow(/is missing: install Debian's gretl-data \('apt-get install gretl-data'\)/);
    try {
      readGdt('no-such-file.gdt');
    } catch (e) {
      expect((e as { exitCode?: number }).exitCode).toBe(2);
    }
  });

  it('reads the registry series: S&P 500 returns, Dow Jones, DEM/GBP and the labelled sensors', async () => {
    const d = await import('../../src/streams/data.js');
    const sp = d.sp500Returns();
    expect(sp.at.length).toBe(5104); // 5,105 daily closes (the file's last line has no newline) → 5,104 returns
    expect(Math.abs((sp.columns.get('ret') as number[])[0] - 100 * Math.log(1399.420044 / 1455.219971))).toBeLessThan(1e-9);
    expect(d.djReturns().at.length).toBe(2527);
    expect(d.demGbpReturns().at.length).toBe(1974);
    const s = d.sensorSeries();
    expect((s.columns.get('label') as number[]).filter((v) => v === 1).length).toBe(149);
  });
});
