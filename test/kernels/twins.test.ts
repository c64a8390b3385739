import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ref from '../../src/kernels/ref/index.js';
import { WASM_KERNELS } from '../../src/kernels/wasm/index.js';

/**
 * The kernel list is written once (WASM_KERNELS); these checks keep what depends on it honest:
 * every wasm kernel has a twin test (a test file in test/kernels/ that uses it and its reference
 * kernel `ref.<name>`), and the README names exactly the reference kernels that still
 * run in TypeScript.
 */
const dir = 'test/kernels';
const sources = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => readFileSync(join(dir, f), 'utf8'));

/** The receivers `x` of every use `x.name` (a call, or the kernel taken to call it) in a source text. */
function callers(src: string, name: string): Set<string> {
  return new Set([...src.matchAll(new RegExp(`([\\w$]+)\\.${name}(?![\\w$])`, 'g'))].map((m) => m[1]));
}

const refKernels = Object.entries(ref)
  .filter(([, f]) => typeof f === 'function' && f.length > 1)
  .map(([n]) => n);

describe('kernel twins', () => {
  it.each([...WASM_KERNELS])('%s has a twin test (its wasm kernel and its reference kernel used in one test file)', (name) => {
    const ok = sources.some((src) => {
      const c = callers(src, name);
      return c.has('ref') && [...c].some((x) => x !== 'ref');
    });
    expect(ok, `no file in ${dir} uses both ref.${name} and the wasm ${name}`).toBe(true);
  });

  it("the README's kernel paragraph names exactly the reference kernels without a wasm twin", () => {
    const readme = readFileSync('README.md', 'utf8');
    const para = readme.split('\n- ').find((p) => p.startsWith('**Kernels**'));
    expect(para, 'README: a "- **Kernels**" bullet').toBeDefined();
    const named = new Set([...(para as string).matchAll(/`(\w+)`/g)].map((m) => m[1]).filter((n) => refKernels.includes(n)));
    const tsOnly = refKernels.filter((n) => !(WASM_KERNELS as readonly string[]).includes(n));
    expect([...named].sort()).toEqual(tsOnly.sort());
  });
});
