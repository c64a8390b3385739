import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOutputDir, checkOutputFile, realOutputPath } from '../../src/io/outputs.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { FrugalError } from '../../src/io/errors.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'frugal-outputs-')));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FrugalError);
    expect((e as FrugalError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('output paths', () => {
  it('are normalised and written through symbolic links (dangling ones too)', () => {
    mkdirSync(join(root, 'real'));
    symlinkSync(join(root, 'real'), join(root, 'link'));
    symlinkSync(join(root, 'not-yet'), join(root, 'dangling'));
    expect(realOutputPath(join(root, 'runs', 'x') + '/', '--out')).toBe(join(root, 'runs', 'x'));
    expect(realOutputPath(join(root, '.', 'link', ''), '--out')).toBe(join(root, 'real'));
    expect(realOutputPath(join(root, 'link', 'sub'), '--out')).toBe(join(root, 'real', 'sub'));
    expect(realOutputPath(join(root, 'dangling'), '--out')).toBe(join(root, 'not-yet'));
  });

  it('refuse inputs, their insides, and folders holding them', () => {
    const model = join(root, 'model');
    writeDirAtomic(model, { 'config.json': '{}' });
    const inputs = [model];
    expect(refusal(() => checkOutputDir(model, { flag: '--out', inputs, force: true }))).toMatch(/is the input/);
    expect(refusal(() => checkOutputDir(join(model, 'sub'), { flag: '--out', inputs }))).toMatch(/inside the input/);
    expect(refusal(() => checkOutputFile(join(model, 'config.json'), { flag: '--out', inputs, force: true }))).toMatch(/inside the input/);
    expect(refusal(() => checkOutputDir(root, { flag: '--out', inputs }))).toMatch(/holds the input/);
  });

  it("refuse a file where a folder is meant and the reverse, a user's folder, and a checkpoint without --force", () => {
    writeFileSync(join(root, 'notes.txt'), 'x');
    mkdirSync(join(root, 'mywork'));
    writeFileSync(join(root, 'mywork', 'thesis.txt'), 'x');
    const ckpt = join(root, 'ckpt');
    writeDirAtomic(ckpt, { 'config.json': '{}' });
    expect(refusal(() => checkOutputDir(join(root, 'notes.txt'), { flag: '--out' }))).toMatch(/is a file, not a folder/);
    expect(refusal(() => checkOutputDir(join(root, 'notes.txt', 'x'), { flag: '--out' }))).toMatch(/is a file, not a folder/);
    expect(refusal(() => checkOutputFile(join(root, 'mywork'), { flag: '--svg' }))).toMatch(/is a folder/);
    expect(refusal(() => checkOutputDir(join(root, 'mywork'), { flag: '--out', force: true }))).toMatch(
      /not a frugal checkpoint.*thesis\.txt/,
    );
    expect(refusal(() => checkOutputDir(ckpt, { flag: '--out', resume: false }))).toMatch(/--resume .*--force/);
    expect(refusal(() => checkOutputDir(ckpt, { flag: '--out' }))).not.toMatch(/--resume/);
    expect(refusal(() => checkOutputFile(join(root, 'notes.txt'), { flag: '--out' }))).toMatch(/--force/);
    expect(checkOutputDir(ckpt, { flag: '--out', force: true })).toEqual({ path: ckpt, state: 'checkpoint' });
    expect(checkOutputDir(ckpt, { flag: '--out', resume: true }).state).toBe('checkpoint');
    expect(checkOutputFile(join(root, 'notes.txt'), { flag: '--energy-log', append: true })).toBe(join(root, 'notes.txt'));
    mkdirSync(join(root, 'empty'));
    expect(checkOutputDir(join(root, 'empty'), { flag: '--out' }).state).toBe('new');
  });
});
