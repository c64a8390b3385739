import { existsSync } from 'node:fs';

/** CLI tests run the built package (bin/frugal.js -> dist/): `npm test` builds first (pretest). */
export default function setup(): void {
  for (const f of ['dist/cli/main.js', 'build/kernels.wasm']) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run 'npm run build' (npm test does it in pretest)`);
  }
}
