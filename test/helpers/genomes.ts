import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Rng } from '../../src/io/rng.js';
import { HLA, STRAINS } from '../../src/genome/sources.js';

/**
 * A toy genome tree laid out like the Debian packages' files (for `--genomes ROOT`): each strain a
 * random genome of `bases` bases with its own base composition (so strains differ), written as
 * wrapped FASTA (gzipped for even labels, plain for odd ones, as the readers accept both), and a
 * GenBank file holding another record and then a BA000025 record with genes and exons.
 */
export function writeToyGenomes(root: string, bases = 6000, hlaBases = 20000, seed = 7): void {
  const rng = Rng.fromSeed(seed);
  const put = (path: string, data: string | Uint8Array) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data);
  };
  const random = (n: number, gc: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += rng.uniform() < gc ? 'CG'[rng.int(2)] : 'AT'[rng.int(2)];
    return s;
  };
  const wrap = (s: string, w = 60) => s.match(new RegExp(`.{1,${w}}`, 'g'))?.join('\n') ?? '';
  STRAINS.forEach((st, i) => {
    const fasta = `>${st.strain} toy ${st.species}\n${wrap(random(bases, 0.3 + 0.03 * i))}\n`;
    if (i % 2 === 0) put(st.path, gzipSync(fasta));
    else put(st.path.replace(/\.gz$/, ''), fasta);
  });
  // genes of three exons every 2,000 bases
  const feats: string[] = [];
  for (let g = 0; g * 2000 + 1500 < hlaBases; g++) {
    const s = g * 2000 + 200,
      ex = [
        [s, s + 120],
        [s + 400, s + 560],
        [s + 900, s + 1100],
      ];
    feats.push(`     gene            ${s}..${s + 1100}`, `                     /gene="T${g}"`);
    for (const [a, b] of ex) feats.push(`     exon            ${a}..${b}`, `                     /gene="T${g}"`);
  }
  const seq = random(hlaBases, 0.45).toLowerCase();
  const origin: string[] = [];
  for (let i = 0; i < seq.length; i += 60) {
    const chunk =
      seq
        .slice(i, i + 60)
        .match(/.{1,10}/g)
        ?.join(' ') ?? '';
    origin.push(`${String(i + 1).padStart(9)} ${chunk}`);
  }
  const other = ['LOCUS       OTHER                     10 bp    DNA     linear   PRI 01-JAN-2000', 'ORIGIN', '        1 acgtacgtac', '//'];
  const hla = [
    `LOCUS       ${HLA.accession}             ${hlaBases} bp    DNA     linear   PRI 20-MAY-2006`,
    'FEATURES             Location/Qualifiers',
    `     source          1..${hlaBases}`,
    ...feats,
    'ORIGIN',
    ...origin,
    '//',
  ];
  put(HLA.path, [...other, ...hla, ''].join('\n'));
}
