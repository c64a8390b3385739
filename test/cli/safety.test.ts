import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { DEAD_PID, TINY, expectOneLineError, frugal, snapshot, workspace } from '../helpers/cli.js';

/**
 * No command deletes, moves or overwrites what frugal did not create unless --force is given:
 * each case runs the real CLI in a temporary folder and compares the disk before and after.
 */
const { corpus, base, caseDir } = workspace('frugal-safety-');

/** A user's folder: a thesis and a CSV. */
function userFolder(path: string): void {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'thesis.txt'), 'chapter one');
  writeFileSync(join(path, 'data.csv'), '1,2,3\n');
}

describe('outputs are checked before any work', () => {
  it('a folder that is not a checkpoint, a file, or a checkpoint without --resume/--force: exit 2, disk unchanged', () => {
    const d = caseDir();
    userFolder(join(d, 'mywork'));
    writeFileSync(join(d, 'notes.txt'), 'notes');
    cpSync(base, join(d, 'ckpt'), { recursive: true });
    const before = snapshot(d);
    const cases: [string[], RegExp][] = [
      [['train', ...TINY, '--data', corpus, '--out', join(d, 'mywork')], /mywork already exists and is not a frugal checkpoint \(it holds/],
      [['train', ...TINY, '--data', corpus, '--out', join(d, 'mywork'), '--force'], /not a frugal checkpoint/],
      [['train', ...TINY, '--data', corpus, '--out', join(d, 'notes.txt')], /notes\.txt is a file, not a folder/],
      [
        ['train', ...TINY, '--data', corpus, '--out', join(d, 'ckpt')],
        /already holds a frugal checkpoint; pass --resume .* or pass --force/,
      ],
      [['convert', '--model', base, '--out', join(d, 'mywork')], /not a frugal checkpoint/],
      [['convert', '--model', base, '--out', join(d, 'ckpt')], /pass --force to replace it/],
      [['convert', '--model', base, '--to', 'gguf', '--out', join(d, 'notes.txt')], /notes\.txt already exists; pass --force/],
      [['quantize', '--model', base, '--to', 'q8', '--out', join(d, 'mywork')], /not a frugal checkpoint/],
      [['demo', '--out', join(d, 'ckpt')], /pass --force to replace it/],
      [['bench', 'scaling', '--quick', '--svg', join(d, 'notes.txt')], /--svg .*already exists; pass --force/],
      [['generate', '--model', base, '--energy-log', join(d, 'notes.txt')], /--energy-log .*other columns/],
    ];
    for (const [args, mention] of cases) expectOneLineError(frugal(args), 2, mention);
    expect(snapshot(d)).toEqual(before);
  });

  it('an output that is an input, inside one or holding one is refused even with --force', () => {
    const d = caseDir();
    for (const m of ['cv', 'qv']) cpSync(base, join(d, m), { recursive: true });
    const before = snapshot(d);
    const cases: string[][] = [
      ['convert', '--model', join(d, 'cv'), '--out', join(d, 'cv'), '--force'],
      ['quantize', '--model', join(d, 'qv'), '--to', 'q8', '--out', join(d, 'qv'), '--force'],
      ['convert', '--model', join(d, 'cv'), '--to', 'gguf', '--out', join(d, 'cv', 'model.safetensors'), '--force'],
      ['convert', '--model', join(d, 'cv'), '--out', join(d, 'cv', 'hf')],
      ['train', '--init', join(d, 'cv'), '--data', corpus, '--out', join(d, 'cv'), '--force'],
      ['train', ...TINY, '--data', join(d, 'cv', 'config.json'), '--out', join(d, 'cv'), '--resume'],
      ['generate', '--model', join(d, 'cv'), '--energy-log', join(d, 'cv', 'energy.csv')],
    ];
    for (const args of cases) expectOneLineError(frugal(args), 2, /(is|inside|holds) the input/);
    expect(snapshot(d)).toEqual(before);
  });

  it('an unwritable --out or --energy-log is found before training, not after', () => {
    const d = caseDir();
    const ro = join(d, 'ro');
    mkdirSync(ro);
    let how = 'chmod';
    if (process.getuid?.() === 0) {
      // root writes through permissions: a read-only file system is what stops it
      const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro], { encoding: 'utf8' });
      if (m.status !== 0) {
        console.warn(`unwritable-output test not run: mounting a read-only tmpfs failed (${m.stderr.trim()})`);
        return;
      }
      how = 'mount';
    } else {
      chmodSync(ro, 0o555);
    }
    try {
      const long = ['train', ...TINY, '--steps', '100000', '--data', corpus];
      expectOneLineError(
        frugal([...long, '--out', join(ro, 'run')]),
        2,
        /cannot write in .*ro \((the file system is read-only|permission denied)\)/,
      );
      expectOneLineError(frugal([...long, '--out', join(d, 'ok'), '--energy-log', join(ro, 'e.csv')]), 2, /--energy-log .*cannot write in/);
      expect(readdirSync(d)).toEqual(['ro']);
    } finally {
      if (how === 'mount') spawnSync('umount', [ro]);
      else chmodSync(ro, 0o755);
    }
  });
});

describe("writing commands keep the user's files", () => {
  it('files inside --out and folders beside it that look like leftovers survive train, convert and quantize', () => {
    const d = caseDir();
    const ckpt = join(d, 'ckpt');
    cpSync(base, ckpt, { recursive: true });
    writeFileSync(join(ckpt, 'notes.txt'), 'my notes about this run');
    userFolder(join(ckpt, 'plots'));
    userFolder(join(d, 'ckpt.old'));
    userFolder(join(d, `ckpt.tmp-${DEAD_PID}-abcd`));
    const mine = () => Object.fromEntries(Object.entries(snapshot(d)).filter(([k]) => /^ckpt\/(notes|plots)|^ckpt\.(old|tmp)/.test(k)));
    const before = mine();
    expect(Object.keys(before)).toHaveLength(10);
    for (const args of [
      ['train', '--out', ckpt, '--resume'],
      ['train', ...TINY, '--steps', '2', '--data', corpus, '--out', ckpt, '--force'],
      ['convert', '--model', base, '--out', ckpt, '--force'],
      ['quantize', '--model', base, '--to', 'q8', '--out', ckpt, '--force'],
    ]) {
      const r = frugal(args);
      expect(r.code, r.stderr).toBe(0);
      expect(mine(), args.join(' ')).toEqual(before);
      expect(readdirSync(d).sort(), 'no lock or temporary copy left').toEqual(['ckpt', 'ckpt.old', `ckpt.tmp-${DEAD_PID}-abcd`]);
    }
    expect(JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8')).quantization_config).toBeDefined();
  });

  it('a symbolic link as --out is written through and stays a link (to an existing or a new folder)', () => {
    const d = caseDir();
    cpSync(base, join(d, 'real'), { recursive: true });
    symlinkSync(join(d, 'real'), join(d, 'link'));
    symlinkSync(join(d, 'later'), join(d, 'dangling'));
    const old = readFileSync(join(d, 'real', '.complete'), 'utf8');
    const c = frugal(['convert', '--model', base, '--out', join(d, 'link') + '/', '--force']);
    expect(c.code, c.stderr).toBe(0);
    expect(readFileSync(join(d, 'real', '.complete'), 'utf8')).not.toBe(old);
    expect(existsSync(join(d, 'real', 'trainer_state.json')), 'convert wrote the folder behind the link').toBe(false);
    const t = frugal(['train', ...TINY, '--steps', '2', '--data', corpus, '--out', join(d, 'dangling')]);
    expect(t.code, t.stderr).toBe(0);
    for (const [link, target] of [
      ['link', 'real'],
      ['dangling', 'later'],
    ]) {
      expect(lstatSync(join(d, link)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(d, link))).toBe(join(d, target));
    }
    expect(existsSync(join(d, 'later', 'model.safetensors'))).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['dangling', 'later', 'link', 'real']);
  });

  it('--out with a trailing slash and missing folders saves the run where asked', () => {
    const d = caseDir();
    const r = frugal(['train', ...TINY, '--steps', '2', '--data', corpus, '--out', join(d, 'runs', 'slash') + '/']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(d, 'runs'))).toEqual(['slash']);
    expect(readdirSync(join(d, 'runs', 'slash')).sort()).toEqual([
      '.complete',
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'trainer_state.json',
    ]);
  });
});

describe('reading commands never write', () => {
  it("generate and logits leave the disk byte-identical beside leftovers and a user's look-alike folders", () => {
    const d = caseDir();
    cpSync(base, join(d, 'g'), { recursive: true });
    userFolder(join(d, 'g.old'));
    cpSync(base, join(d, `g.old-${DEAD_PID}-abcd`), { recursive: true }); // a save killed before it cleaned up
    // a hand-copied model (no frugal marker) with a stale frugal copy of another model beside it
    cpSync(base, join(d, 'hand'), { recursive: true, filter: (s) => !s.endsWith('.complete') });
    const other = frugal(['train', ...TINY, '--steps', '2', '--seed', '9', '--data', corpus, '--out', join(d, 'hand.old')]);
    expect(other.code, other.stderr).toBe(0);
    const before = snapshot(d);
    const g = frugal(['generate', '--model', join(d, 'g'), '--max-tokens', '5']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stderr).toMatch(new RegExp(`warning: .*g\\.old-${DEAD_PID}-abcd is left over from an interrupted save`));
    expect(g.stderr).not.toMatch(/g\.old is/);
    expect(frugal(['logits', '--model', join(d, 'g'), '--ids', '1,2,3']).code).toBe(0);
    const args = ['--max-tokens', '12', '--temperature', '0'];
    const fromHand = frugal(['generate', '--model', join(d, 'hand'), ...args]);
    expect(fromHand.code, fromHand.stderr).toBe(0);
    expect(fromHand.stdout).toBe(frugal(['generate', '--model', base, ...args]).stdout);
    expect(fromHand.stdout).not.toBe(frugal(['generate', '--model', join(d, 'hand.old'), ...args]).stdout);
    expect(snapshot(d)).toEqual(before);
  });
});

describe('small things', () => {
  it('--help and --version print to stdout; no command and `help unknown` exit 2', () => {
    const v = frugal(['--version']);
    expect([v.code, v.stdout, v.stderr]).toEqual([0, '0.1.0\n', '']);
    const h = frugal(['train', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/--seed <n> .*0 … 2\^53 − 1/);
    for (const args of [[], ['help', 'unknown']]) {
      const r = frugal(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    }
  });

  it('an out-of-range seed names the limit; --model FILE says it is a file; --max-tokens 0 prints nothing', () => {
    expectOneLineError(frugal(['train', '--seed', '9007199254740992']), 2, /--seed.*at most 2\^53 − 1 \(9007199254740991\)/);
    expectOneLineError(
      frugal(['generate', '--model', join(base, 'model.safetensors')]),
      2,
      /model\.safetensors is a file, not a model folder/,
    );
    const g = frugal(['generate', '--model', base, '--max-tokens', '0']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toBe('');
  });

  it('--data /dev/stdin reads the piped stream', () => {
    const d = caseDir();
    const r = frugal(['train', ...TINY, '--steps', '2', '--data', '/dev/stdin', '--out', join(d, 'm')], { input: readFileSync(corpus) });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(d, 'm', 'trainer_state.json'), 'utf8')).data).toEqual({
      spec: '/dev/stdin',
      bytes: readFileSync(corpus).length,
    });
    expectOneLineError(
      frugal(['train', ...TINY, '--data', '/dev/stdin', '--out', join(d, 'e')], { input: '' }),
      2,
      /\/dev\/stdin gave no bytes/,
    );
  });
});
