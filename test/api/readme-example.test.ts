import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';

/** The first ```ts block of the README's "## Library" section: the example a user copies. */
function readmeExample(readme = readFileSync('README.md', 'utf8')): string {
  const section = readme.slice(readme.indexOf('\n## Library\n'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m || !readme.includes('\n## Library\n')) throw new Error('README.md has no ```ts block under "## Library"');
  return m[1];
}

/** Type-check and compile `file` as a user's ESM project would (strict, NodeNext); the diagnostics as text. */
function compile(file: string, outDir: string): string {
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    types: ['node'],
    outDir,
    skipLibCheck: true,
  });
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  return ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => outDir, getNewLine: () => '\n' });
}

describe('the README library example', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'frugal-readme-')));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('compiles against the package types and runs: streams text, then tok/s and the energy figure with its kind', () => {
    const code = readmeExample();
    expect(code.split('\n').filter((l) => l.trim() !== '').length).toBeLessThanOrEqual(12);
    // a scratch project: 'frugal' resolves to this repository through node_modules, as an install would
    mkdirSync(join(root, 'node_modules'));
    symlinkSync(resolve('.'), join(root, 'node_modules', 'frugal'));
    symlinkSync(resolve('node_modules/@types'), join(root, 'node_modules', '@types'));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
    mkdirSync(join(root, 'runs', 'demo'), { recursive: true });
    for (const f of ['config.json', 'model.safetensors'])
      copyFileSync(join('test/fixtures/mamba-d256-l4', f), join(root, 'runs', 'demo', f));
    writeFileSync(join(root, 'example.ts'), code);

    expect(compile(join(root, 'example.ts'), root)).toBe('');
    const r = spawnSync(process.execPath, ['example.js'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const energy = lines.pop() ?? '';
    const speed = lines.pop() ?? '';
    expect(speed).toMatch(/^100 tokens at \d+ tok\/s$/);
    expect(energy).toMatch(/^\d\.\d\de[-+]\d+ J\/token \((estimated|measured)\)$/);
    // the streamed text: 100 byte tokens of a model trained on English text
    const text = lines.join('\n');
    expect(Buffer.byteLength(text)).toBeGreaterThan(50);
    expect(text).toMatch(/[a-z]{3,} [a-z]{2,}/);
  });

  it('finds the block to run, and says so when the section is missing', () => {
    expect(readmeExample('# x\n\n## Library\n\ntext\n\n```ts\nconst a = 1;\n```\n')).toBe('const a = 1;\n');
    expect(() => readmeExample('# x\n```ts\nconst a = 1;\n```\n')).toThrow(/no ```ts block under "## Library"/);
  });
});
