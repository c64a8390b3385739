import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirStore } from '../../src/server/store-dir.js';
import { storeContract } from './store-contract.js';

/** The state store contract, run against the directory store; a test damages snapshot files in place. */
storeContract('dir', () => DirStore.open(mkdtempSync(join(tmpdir(), 'frugal-store-contract-'))), {
  async corrupt(store, id, how) {
    const file = join((store as DirStore).dir, 'snapshots', `${id}.snap`);
    const bytes = readFileSync(file);
    if (how === 'flip') bytes[bytes.length >> 1] ^= 0x01;
    writeFileSync(file, how === 'flip' ? bytes : bytes.subarray(0, bytes.length - 100));
  },
});
