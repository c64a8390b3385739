import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/io/rng.js';
import { Engine } from '../../src/ops/index.js';
import { buildPair } from '../../src/tasks/recipes.js';
import { detokenize, reverseComplement, tokenize } from '../../src/genome/nucleotides.js';
import { chooseOrder, fitMarkov, markovBits } from '../../src/genome/markov.js';
import { checkDisjoint, splitRanges, windowStart } from '../../src/genome/split.js';
import type { Range } from '../../src/genome/split.js';
import {
  EXON_DELAY,
  GENOME_VOCAB,
  LABEL0,
  MOTIFS,
  MOTIF_PAD,
  exonBatch,
  mcc,
  motifLength,
  motifSequence,
  strainBatch,
} from '../../src/genome/tasks.js';
import { classify, exonScorer, pooledLogProbs } from '../../src/report/genome-score.js';
import type { TrainableModel } from '../../src/models/types.js';
import { geneCut, loadGenomeData } from '../../src/report/genome-data.js';
import { writeToyGenomes } from '../helpers/genomes.js';

const ids = (s: string) => tokenize(s).ids;

describe('nucleotide tokenizer and reverse complement', () => {
  it('maps A C G T N (any case), U as T, and every other IUPAC code to N, counted', () => {
    const t = tokenize('ACGTNacgtnRYU-');
    expect(Array.from(t.ids)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4, 3, 4]);
    expect(t.otherCodes).toBe(3);
    expect(t.n).toBe(2);
  });

  it('round trips: detokenize(tokenize(s)) = s over ACGTN, and the reverse complement twice is the identity', () => {
    const rng = Rng.fromSeed(3);
    const s = Array.from({ length: 500 }, () => 'ACGTN'[rng.int(5)]).join('');
    expect(detokenize(tokenize(s).ids)).toBe(s);
    expect(Array.from(reverseComplement(reverseComplement(ids(s))))).toEqual(Array.from(ids(s)));
    expect(detokenize(reverseComplement(ids('AACGTN')))).toBe('NACGTT');
    expect(Array.from(reverseComplement(Int32Array.from([0, 0, 1])))).toEqual([2, 3, 3]);
  });
});

describe('Markov baseline', () => {
  it('order 1 with add-one smoothing, against a hand-computed case', () => {
    // AACAG: contexts A->A, A->C, C->A, A->G; A row {1,1,1,0} (3), C row {1,0,0,0} (1)
    const m = fitMarkov([ids('AACAG')], 1, 1);
    expect(Array.from(m.counts)).toEqual([1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(markovBits(m, ids('AT')).bits).toBeCloseTo(Math.log2(7), 12); // P(T|A) = (0+1)/(3+4)
    expect(markovBits(m, ids('CA')).bits).toBeCloseTo(Math.log2(5 / 2), 12); // P(A|C) = (1+1)/(1+4)
    const r = markovBits(m, ids('ANAC'));
    expect(r.bases).toBe(1); // N breaks the context: only C after A is scored
    expect(r.bits).toBeCloseTo(Math.log2(7 / 2), 12);
    const m0 = fitMarkov([ids('AACAG')], 0, 1); // A 3, C 1, G 1, T 0 of 5
    expect(markovBits(m0, ids('T')).bits).toBeCloseTo(Math.log2(9), 12);
  });

  it('chooses the order with the fewest validation bits', () => {
    const c = chooseOrder([ids('ACGT'.repeat(50))], [ids('ACGT'.repeat(10))], 3);
    expect(c.validation.map((v) => v.k)).toEqual([0, 1, 2, 3]);
    expect(c.validation[0].bits_per_base).toBeCloseTo(2, 2);
    expect(c.k).toBe(1);
    expect(c.model.k).toBe(1);
  });
});

describe('MCC', () => {
  it('matches the formula by hand, is 1 / -1 at the extremes and 0 with an empty margin', () => {
    expect(mcc(6, 2, 10, 1)).toBeCloseTo(58 / Math.sqrt(8 * 7 * 12 * 11), 12);
    expect(mcc(5, 0, 7, 0)).toBe(1);
    expect(mcc(0, 4, 0, 3)).toBe(-1);
    expect(mcc(0, 0, 10, 0)).toBe(0);
  });
});

describe('train/test split', () => {
  it('shares no base: windows drawn from each part never overlap, and overlap is caught', () => {
    const n = 5000,
      { train, test } = splitRanges(n);
    expect(train).toEqual({ from: 0, to: 4000 });
    expect(test).toEqual({ from: 4000, to: 5000 });
    const seen = (r: Range) => {
      const used = new Uint8Array(n),
        rng = Rng.fromSeed(1);
      for (let i = 0; i < 300; i++) {
        const s = windowStart(rng, r, 700) as number;
        used.fill(1, s, s + 700);
      }
      return used;
    };
    const a = seen(train),
      b = seen(test);
    expect(a.some((x, i) => x && b[i])).toBe(false);
    expect(b.slice(0, 4000).every((x) => x === 0)).toBe(true);
    expect(windowStart(Rng.fromSeed(1), test, 1001)).toBeNull();
    expect(() => checkDisjoint([{ from: 0, to: 4001 }], [test])).toThrow(/overlap/);
  });

  it('training batches read training bases only', () => {
    // train part all A, test part all T: no T may appear in a training batch
    const g = new Uint8Array(2000);
    g.fill(3, 1600);
    const { train, test } = splitRanges(g.length);
    const b = strainBatch(Rng.fromSeed(2), [{ ids: g, train, test }], 16, 256, false);
    expect(b.ids.every((x) => x === 0)).toBe(true);
    expect(b.targets.every((t) => t === LABEL0)).toBe(true);
    const exon = new Uint8Array(2000).fill(1, 500, 700);
    const e = exonBatch(Rng.fromSeed(2), { ids: g, train, test }, exon, [500], 16, 256);
    expect(e.ids.every((x) => x === 0)).toBe(true);
    expect(e.rows.length).toBe(16 * (256 - EXON_DELAY));
  });

  it('the HLA cut moves down to the start of a gene it would split', () => {
    expect(geneCut(1000, [[100, 200]])).toBe(800);
    expect(
      geneCut(1000, [
        [750, 820],
        [700, 760],
      ]),
    ).toBe(700);
  });
});

describe('motif pair', () => {
  it('puts the two motifs d bases apart and labels same / different', () => {
    const bg = fitMarkov([ids('ACGTTGCAAC'.repeat(30))], 3);
    const rng = Rng.fromSeed(5);
    const labels = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const d = 40,
        s = motifSequence(rng, bg, d);
      expect(s.ids.length).toBe(motifLength(d));
      const first = MOTIFS.findIndex((m) => m.every((x, j) => s.ids[MOTIF_PAD + j] === x)),
        second = MOTIFS.findIndex((m) => m.every((x, j) => s.ids[MOTIF_PAD + d + j] === x));
      expect(first).toBeGreaterThanOrEqual(0);
      expect(second).toBeGreaterThanOrEqual(0);
      expect(s.label).toBe(first === second ? 1 : 0);
      labels.add(s.label);
    }
    expect([...labels].sort()).toEqual([0, 1]);
  });
});

describe('reverse-complement equivariance', () => {
  it('with the option, a window and its reverse complement get the same answer probabilities', () => {
    for (const arch of ['mamba', 'transformer'] as const) {
      const e = new Engine({ threads: 1 });
      try {
        const m = buildPair(e, arch, { dModel: 16, layers: 1, dState: 4 }, { vocabSize: GENOME_VOCAB, eos: null }, Rng.fromSeed(9));
        const rng = Rng.fromSeed(4),
          L = 96,
          B = 3;
        const x = Int32Array.from({ length: B * L }, () => rng.int(5));
        const rx = new Int32Array(B * L);
        for (let b = 0; b < B; b++) rx.set(reverseComplement(x.subarray(b * L, (b + 1) * L)), b * L);
        const p = classify(m, x, B, L, 12, true),
          q = classify(m, rx, B, L, 12, true);
        for (let i = 0; i < p.length; i++) expect(q[i]).toBeCloseTo(p[i], 6);
        // without it the answers differ (the property is the option's, not the model's)
        const p0 = classify(m, x, B, L, 12, false),
          q0 = classify(m, rx, B, L, 12, false);
        expect(p0.some((v, i) => Math.abs(v - q0[i]) > 1e-6)).toBe(true);
      } finally {
        e.dispose();
      }
    }
  });
});

describe('pooled strain readout', () => {
  it('averages the answer log-probabilities read every stride bases and at the end, as separate readings of each prefix give them', () => {
    for (const arch of ['mamba', 'transformer'] as const) {
      const e = new Engine({ threads: 1 });
      try {
        const m = buildPair(e, arch, { dModel: 16, layers: 1, dState: 4 }, { vocabSize: GENOME_VOCAB, eos: null }, Rng.fromSeed(5));
        const rng = Rng.fromSeed(6),
          L = 70,
          B = 2,
          K = 12,
          stride = 32;
        const x = Int32Array.from({ length: B * L }, () => rng.int(5));
        const got = pooledLogProbs(m, x, B, L, K, stride);
        // readings after 32, 64 and 70 bases, each from a fresh state over the whole prefix
        const want = new Float64Array(B * K);
        for (const n of [32, 64, 70]) {
          const pre = new Int32Array(B * n);
          for (let b = 0; b < B; b++) pre.set(x.subarray(b * L, b * L + n), b * n);
          const p = classify(m, pre, B, n, K, false);
          for (let i = 0; i < B * K; i++) want[i] += Math.log(p[i]) / 3;
        }
        for (let i = 0; i < B * K; i++) expect(got[i]).toBeCloseTo(want[i], 4);
        // the last position alone is a different reading
        const last = classify(m, x, B, L, K, false);
        expect(last.some((v, i) => Math.abs(Math.log(v) - got[i]) > 1e-3)).toBe(true);
      } finally {
        e.dispose();
      }
    }
  });
});

describe('genome data', () => {
  it('loads a toy tree: strains split 80/20, HLA genes held out whole, the Markov order chosen on validation', () => {
    const root = mkdtempSync(join(tmpdir(), 'frugal-genomes-'));
    try {
      writeToyGenomes(root, 3000, 12000);
      const d = loadGenomeData(root, () => {});
      expect(d.strains).toHaveLength(12);
      for (const s of d.strains) {
        expect(s.ids.length).toBe(3000);
        expect(s.train).toEqual({ from: 0, to: 2400 });
        expect(s.test).toEqual({ from: 2400, to: 3000 });
      }
      // genes every 2,000 bases from 200 (200..1300, 2200..3300, …): 9,600 falls between genes
      expect(d.info.hla).toMatchObject({ bases: 12000, exons: 18, genes_train: 5, genes_test: 1, test_from: 9600 });
      expect(d.info.hla.exon_bases).toBe(6 * (121 + 161 + 201));
      expect(d.markovFit.to).toBe(d.validation.from);
      expect(d.validation.to).toBe(d.strains[0].test.from);
      expect(d.info.packages['ragout-examples']).toMatch(/^not used/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('exon readout', () => {
  // a stand-in model whose every position says P(exon) = 0.3 (logit 0 for "not", log(0.3/0.7) for "exon")
  const W = 64,
    V = GENOME_VOCAB;
  const model = {
    config: { vocabSize: V },
    e: { scope: <T>(f: () => T) => f() },
    forward: (_ids: Int32Array, B: number) => {
      const l = new Float32Array(B * W * V);
      for (let i = 0; i < B * W; i++) l[i * V + LABEL0 + 1] = Math.log(0.3 / 0.7);
      return { floats: () => l };
    },
  } as unknown as TrainableModel;
  const g = { ids: new Uint8Array(200), train: { from: 0, to: 100 }, test: { from: 100, to: 200 } };
  const exon = new Uint8Array(200).fill(1, 120, 140);
  const score = (prior?: number) => exonScorer(g, exon, () => 1, prior)(model, Rng.fromSeed(1), 1, W).extra as Record<string, number>;
  it('argmax (prior one half) says "not exon" when P(exon) is 0.3; a 0.2 prior says exon', () => {
    const half = score();
    expect(half.tp + half.fp).toBe(0);
    // the one tile scores bases 100 … 131 (its first EXON_DELAY positions label nothing): 12 exon bases
    expect(half.fn).toBe(12);
    expect(half.tn).toBe(W - EXON_DELAY - 12);
    const low = score(0.2);
    expect(low.tn + low.fn).toBe(0);
    expect(low.tp).toBe(12);
    expect(low.fp).toBe(W - EXON_DELAY - 12);
  });
});
