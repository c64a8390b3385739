import { chooseOrder, fitMarkov, markovBits } from '../genome/markov.js';
import type { MarkovModel } from '../genome/markov.js';
import { tokenize } from '../genome/nucleotides.js';
import { ECOLI, HLA, STRAINS, loadHla, loadStrain, packageVersions } from '../genome/sources.js';
import { checkDisjoint, splitRanges } from '../genome/split.js';
import type { Range } from '../genome/split.js';
import type { Sequence } from '../genome/tasks.js';

/**
 * The data of the genomics study, read once: the strains (each split 80/20), the E. coli
 * language-modelling split with its Markov baseline (k chosen on the last eighth of the training
 * part), the HLA region with per-base exon labels and the genes held out whole, and the motif
 * task's background (an order-3 Markov chain fitted to E. coli's training bases).
 */
export const BACKGROUND_ORDER = 3;

export interface GenomeData {
  strains: Sequence[];
  /** E. coli: the Markov baseline's fitting part (the model trains on all of `train`). */
  markovFit: Range;
  validation: Range;
  /** The baseline: the chosen order refitted on E. coli's whole training part. */
  markov: MarkovModel;
  hla: Sequence & { exon: Uint8Array; exonStarts: number[] };
  background: MarkovModel;
  info: DataInfo;
}

export interface DataInfo {
  packages: Record<string, string>;
  genome_root: string;
  strains: {
    label: number;
    species: string;
    strain: string;
    file: string;
    bases: number;
    other_codes: number;
    train_bases: number;
    test_bases: number;
  }[];
  hla: {
    accession: string;
    file: string;
    bases: number;
    exons: number;
    exon_bases: number;
    genes_train: number;
    genes_test: number;
    test_from: number;
  };
  markov: { k: number; alpha: number; validation: { k: number; bits_per_base: number }[]; test_bits_per_base: number; test_bases: number };
}

/** Per-base exon labels, exon starts and gene spans of a GenBank record's features. */
function hlaLabels(
  n: number,
  features: readonly { key: string; spans: [number, number][] }[],
): { exon: Uint8Array; starts: number[]; genes: [number, number][] } {
  const exon = new Uint8Array(n),
    starts: number[] = [],
    genes: [number, number][] = [];
  for (const f of features) {
    if (f.key === 'exon')
      for (const [a, b] of f.spans) {
        exon.fill(1, a - 1, Math.min(n, b));
        starts.push(a - 1);
      }
    if (f.key === 'gene' && f.spans.length > 0) genes.push([f.spans[0][0] - 1, Math.max(...f.spans.map((s) => s[1]))]);
  }
  return { exon, starts, genes };
}

/** The 80% cut moved down to the start of any gene it would split (genes are held out whole). */
export function geneCut(n: number, genes: readonly [number, number][]): number {
  let cut = Math.floor(n * 0.8);
  for (let moved = true; moved; ) {
    moved = false;
    for (const [a, b] of genes)
      if (a < cut && b > cut) {
        cut = a;
        moved = true;
      }
  }
  return cut;
}

export function loadGenomeData(root: string, log: (m: string) => void): GenomeData {
  const strains: Sequence[] = [];
  const info: DataInfo['strains'] = [];
  STRAINS.forEach((s, label) => {
    const g = loadStrain(root, s),
      r = splitRanges(g.ids.length);
    checkDisjoint([r.train], [r.test]);
    strains.push({ ids: g.ids, ...r });
    info.push({
      label,
      species: s.species,
      strain: s.strain,
      file: g.file,
      bases: g.ids.length,
      other_codes: g.otherCodes,
      train_bases: r.train.to - r.train.from,
      test_bases: r.test.to - r.test.from,
    });
  });
  const ecoli = strains[STRAINS.indexOf(ECOLI)];
  const fitTo = Math.floor((ecoli.train.to * 7) / 8);
  const markovFit = { from: 0, to: fitTo },
    validation = { from: fitTo, to: ecoli.train.to };
  checkDisjoint([markovFit, validation], [ecoli.test]);
  const choice = chooseOrder([ecoli.ids.subarray(0, fitTo)], [ecoli.ids.subarray(fitTo, ecoli.train.to)]);
  // the chosen order refitted on the whole training part, scored on the test part
  const markov = fitMarkov([ecoli.ids.subarray(0, ecoli.train.to)], choice.k, choice.model.alpha);
  const mt = markovBits(markov, ecoli.ids, ecoli.test.from, ecoli.test.to);
  const { record, file } = loadHla(root);
  const t = tokenize(record.sequence),
    n = t.ids.length;
  const { exon, starts, genes } = hlaLabels(n, record.features);
  const cut = geneCut(n, genes);
  const split = splitRanges(n, cut);
  checkDisjoint([split.train], [split.test]);
  // logged once everything is read, so that a missing file is the only line on stderr
  log(
    `genomes: ${strains.length} strains, ${(info.reduce((a, s) => a + s.bases, 0) / 1e6).toFixed(1)} Mbp; ` +
      `HLA ${HLA.accession}: ${(n / 1e6).toFixed(2)} Mbp, ${starts.length} exons; Markov order ${choice.k} chosen on validation`,
  );
  return {
    strains,
    markovFit,
    validation,
    markov,
    hla: { ids: t.ids, ...split, exon, exonStarts: starts },
    background: fitMarkov([ecoli.ids.subarray(0, ecoli.train.to)], BACKGROUND_ORDER),
    info: {
      packages: packageVersions(root),
      genome_root: root,
      strains: info,
      hla: {
        accession: HLA.accession,
        file,
        bases: n,
        exons: starts.length,
        exon_bases: exon.reduce((a, x) => a + x, 0),
        genes_train: genes.filter(([, b]) => b <= cut).length,
        genes_test: genes.filter(([a]) => a >= cut).length,
        test_from: cut,
      },
      markov: {
        k: choice.k,
        alpha: choice.model.alpha,
        validation: choice.validation,
        test_bits_per_base: mt.bits / Math.max(1, mt.bases),
        test_bases: mt.bases,
      },
    },
  };
}
