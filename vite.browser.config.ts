import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vite';
import type { Plugin } from 'vite';

/**
 * The browser bundle (dist/web/): the library entry `frugal/browser`, the module Worker and
 * the page. Modules shared with Node import node:* for what only Node does (files, worker
 * threads); the browser never reaches those paths, so each node:* module is replaced by a stub
 * whose exports throw, and the bundle imports no Node built-in.
 */
function nodeImports(dir: string, found = new Map<string, Set<string>>()): Map<string, Set<string>> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) nodeImports(p, found);
    else if (p.endsWith('.ts')) {
      const text = readFileSync(p, 'utf8');
      for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'(node:[a-z0-9_/]+)'/g)) {
        const names = found.get(m[2]) ?? new Set<string>();
        for (const n of m[1].split(',')) {
          const name = n.trim().split(/\s+as\s+/)[0];
          if (name && !name.startsWith('type ')) names.add(name);
        }
        found.set(m[2], names);
      }
      // namespace imports (`import * as zlib from 'node:zlib'`): the members the file uses
      for (const m of text.matchAll(/import\s+\*\s+as\s+(\w+)\s+from\s+'(node:[a-z0-9_/]+)'/g)) {
        const names = found.get(m[2]) ?? new Set<string>();
        for (const u of text.matchAll(new RegExp(`\\b${m[1]}\\.(\\w+)`, 'g'))) names.add(u[1]);
        found.set(m[2], names);
      }
    }
  }
  return found;
}

function noNodeBuiltins(): Plugin {
  const imports = nodeImports('src');
  return {
    name: 'frugal-no-node-builtins',
    enforce: 'pre',
    resolveId(id) {
      return id.startsWith('node:') ? `\0no-node:${id}` : null;
    },
    load(id) {
      if (!id.startsWith('\0no-node:')) return null;
      const mod = id.slice('\0no-node:'.length);
      const fail = `() => { throw new Error('${mod} is not available in a browser'); }`;
      const names = [...(imports.get(mod) ?? [])];
      return names.map((n) => `export const ${n} = ${fail};`).join('\n') + `\nexport default {};\n`;
    },
  };
}

export default defineConfig({
  plugins: [noNodeBuiltins()],
  build: {
    outDir: 'dist/web',
    emptyOutDir: true,
    target: 'es2022',
    minify: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    lib: {
      entry: { frugal: 'src/browser/index.ts', worker: 'src/browser/worker.ts', page: 'src/browser/page.ts' },
      formats: ['es'],
      fileName: (_format, name) => `${name}.js`,
    },
  },
});
