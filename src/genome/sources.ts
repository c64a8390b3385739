import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { inputError } from '../io/errors.js';
import { readFasta } from './fasta.js';
import { readGenbank } from './genbank.js';
import type { GenbankRecord } from './genbank.js';
import { tokenize } from './nucleotides.js';

/**
 * The real genomes the genomics study reads, from two Debian packages (installed by `.ci/run`;
 * nothing is copied into the repository or downloaded): ragout-examples (bacterial reference
 * genomes: E. coli, S. aureus and H. pylori strains) and emboss-test (GenBank test data holding
 * BA000025, the 2.23 Mbp human HLA class I region with exon annotations). Paths are relative to a
 * root, /usr by default; a test passes a folder laid out the same way. A `.gz` file may also be
 * present uncompressed.
 */
export const DEFAULT_GENOME_ROOT = '/usr';

const RAGOUT = 'share/doc/ragout/examples';

export interface Strain {
  species: string;
  strain: string;
  /** Path under the root (the .fasta.gz the package ships). */
  path: string;
  package: 'ragout-examples';
}

const strain = (species: string, dir: string, name: string): Strain => ({
  species,
  strain: name,
  path: `${RAGOUT}/${dir}/references/${name}.fasta.gz`,
  package: 'ragout-examples',
});

/** The strains of the classification task, in label order (2 E. coli, then 5 S. aureus, then 5 H. pylori). */
export const STRAINS: readonly Strain[] = [
  strain('E. coli', 'E.Coli', 'MG1655-K12'),
  strain('E. coli', 'E.Coli', 'DH1'),
  ...['COL', 'JKD6008', 'N315', 'RF122', 'USA300_FPR3757'].map((s) => strain('S. aureus', 'S.Aureus', s)),
  ...['ELS37', 'G27', 'Gambia94_24', 'Puno120', 'SJM180'].map((s) => strain('H. pylori', 'H.Pylori', s)),
];

/** The E. coli genome of the language-modelling task and of the motif task's background. */
export const ECOLI = STRAINS[0];

export const HLA = { accession: 'BA000025', path: 'share/EMBOSS/test/genbank/gbpri1.seq', package: 'emboss-test' } as const;

export const GENOME_PACKAGES = ['ragout-examples', 'emboss-test'] as const;

/** The bytes of a genome file, or an input error naming the Debian package that provides it. */
function readGenomeFile(root: string, path: string, pkg: string): { text: string; file: string } {
  const file = join(root, path),
    plain = file.replace(/\.gz$/, '');
  const found = existsSync(file) ? file : existsSync(plain) ? plain : null;
  if (!found) throw inputError(`genome file ${file} not found: install the Debian package ${pkg} (sudo apt-get install ${pkg})`);
  const raw = readFileSync(found);
  const gz = raw.length > 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  return { text: (gz ? gunzipSync(raw) : raw).toString('latin1'), file: found };
}

export interface Genome {
  name: string;
  ids: Uint8Array;
  /** Characters that were IUPAC codes other than ACGTN (read as N). */
  otherCodes: number;
  file: string;
}

/** One strain's genome: its records joined by a run of N (so no window reads across a record end unmarked). */
export function loadStrain(root: string, s: Strain): Genome {
  const { text, file } = readGenomeFile(root, s.path, s.package);
  const seq = readFasta(text, file)
    .map((r) => r.sequence)
    .join('N'.repeat(16));
  const t = tokenize(seq);
  return { name: s.strain, ids: t.ids, otherCodes: t.otherCodes, file };
}

/** The HLA region's GenBank record. */
export function loadHla(root: string): { record: GenbankRecord; file: string } {
  const { text, file } = readGenomeFile(root, HLA.path, HLA.package);
  const record = readGenbank(text, file).find((r) => r.locus === HLA.accession);
  if (!record) throw inputError(`${file} holds no record ${HLA.accession}; reinstall the Debian package ${HLA.package}`);
  return { record, file };
}

/** Installed versions of the genome packages (dpkg), or why they are unknown. */
export function packageVersions(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of GENOME_PACKAGES) {
    if (root !== DEFAULT_GENOME_ROOT) {
      out[p] = `not used (genomes read from ${root})`;
      continue;
    }
    // `dpkg-query -W NAME` prints "NAME<tab>VERSION"
    const r = spawnSync('dpkg-query', ['-W', p], { encoding: 'utf8' }),
      v = r.status === 0 ? (r.stdout.trim().split('\t')[1] ?? '') : '';
    out[p] = v !== '' ? v : 'unknown (dpkg-query found no version)';
  }
  return out;
}
