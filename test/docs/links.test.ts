import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The documents point only inside the repository: every relative link in README.md and docs/
 * resolves to a file here (and a #fragment to one of its headings), and no source file cites an
 * issue number or a path above the repository.
 */
const root = resolve('.');
const docs = [
  'README.md',
  'tools/README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(md: string): Set<string> {
  return new Set(
    [...md.matchAll(/^#+\s+(.*)$/gm)].map((m) =>
      m[1]
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'fixtures' ? [] : files(p);
    return /\.(ts|mjs|py)$/.test(f) ? [p] : [];
  });
}

describe('documentation links', () => {
  it.each(docs)('%s: every relative link resolves inside the repository', (doc) => {
    const md = readFileSync(doc, 'utf8');
    for (const [, target] of md.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // http(s), mailto: outside links are not files
      const [path, fragment] = target.split('#');
      const file = path === '' ? doc : join(dirname(doc), path);
      const rel = relative(root, resolve(file));
      expect(rel.startsWith('..'), `${doc}: ${target} points outside the repository`).toBe(false);
      expect(existsSync(file), `${doc}: ${target} does not exist`).toBe(true);
      if (fragment) expect(anchors(readFileSync(file, 'utf8')).has(fragment), `${doc}: ${target} names no heading`).toBe(true);
    }
  });

  it('no source file cites an issue number or a path above the repository', () => {
    const bad: string[] = [];
    for (const f of ['src', 'test', 'tools', 'assembly'].flatMap(files)) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\bissue #?\d+|#\d+'s|\.\.\/shared\/|ANCHORS\.md/i.test(line)) bad.push(`${f}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(bad).toEqual([]);
  });
});
