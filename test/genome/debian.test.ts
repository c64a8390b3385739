import { describe, expect, it } from 'vitest';
import { DEFAULT_GENOME_ROOT, ECOLI, loadHla, loadStrain, packageVersions } from '../../src/genome/sources.js';

/**
 * The real genomes, as the Debian packages install them (.ci/run installs ragout-examples and
 * emboss-test): E. coli K-12 MG1655 from its gzipped FASTA, and BA000025, the HLA class I region,
 * with its exon annotations, from EMBOSS's GenBank test file.
 */
describe('genomes from the Debian packages', () => {
  it('reads E. coli K-12 MG1655 (ragout-examples)', () => {
    const g = loadStrain(DEFAULT_GENOME_ROOT, ECOLI);
    expect(g.ids.length).toBe(4_639_675);
    expect(g.otherCodes).toBe(0);
  });

  it('reads BA000025 with its exons (emboss-test)', () => {
    const { record } = loadHla(DEFAULT_GENOME_ROOT);
    expect(record.length).toBe(2_229_817);
    expect(record.sequence.length).toBe(2_229_817);
    const exons = record.features.filter((f) => f.key === 'exon');
    expect(exons.length).toBe(745);
    // the first annotated exon, as the file writes it
    expect(exons[0].location).toBe('56..221');
    expect(exons[0].spans).toEqual([[56, 221]]);
  });

  it('names the installed package versions the report records', () => {
    const v = packageVersions(DEFAULT_GENOME_ROOT);
    expect(v['ragout-examples']).toMatch(/^\d[\w.+~-]*$/);
    expect(v['emboss-test']).toMatch(/^\d[\w.+~-]*$/);
  });
});
