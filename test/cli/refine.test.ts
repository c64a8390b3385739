import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TINY, expectOneLineError, frugal, workspace } from '../helpers/cli.js';

/**
 * Refinement from the command line, on the tiny workspace model (d_model 16: dt_proj has rank 1, so
 * LoRA runs here use rank 1 or leave dt_proj out): finetune (LoRA on f32 and q8 bases, full),
 * eval lm, --adapter on generate and logits, merge, distill, tokenizer train, and their refusals.
 */
const ws = workspace('frugal-refine-');
const RUN = ['--seq-len', '16', '--batch', '2', '--eval-windows', '2', '--threads', '1'];
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const ok = (args: string[]) => {
  const r = frugal(args);
  expect(r.code, r.stderr).toBe(0);
  return r;
};
const logits = (args: string[]) =>
  JSON.parse(ok(['logits', ...args, '--text', 'the Congress', '--threads', '1']).stdout) as { logits: number[] };

describe('frugal finetune --method lora', () => {
  it('trains an adapter in the PEFT layout, leaves the base bit for bit, and runs everywhere with --adapter', () => {
    const d = ws.caseDir(),
      ad = join(d, 'ad');
    const before = sha(join(ws.base, 'model.safetensors'));
    ok([
      'finetune',
      '--model',
      ws.base,
      '--data',
      ws.corpus,
      '--out',
      ad,
      '--rank',
      '2',
      '--targets',
      'in_proj,x_proj,out_proj',
      '--steps',
      '6',
      '--lr',
      '1e-2',
      ...RUN,
    ]);
    expect(sha(join(ws.base, 'model.safetensors'))).toBe(before);
    expect(
      readdirSync(ad)
        .filter((f) => !f.startsWith('.'))
        .sort(),
    ).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const cfg = JSON.parse(readFileSync(join(ad, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      r: 2,
      lora_alpha: 16,
      lora_dropout: 0,
      target_modules: ['in_proj', 'x_proj', 'out_proj'],
      bias: 'none',
      task_type: 'CAUSAL_LM',
      fan_in_fan_out: false,
      base_model_name_or_path: ws.base,
    });
    // the independent reader (standard-library Python, written from PEFT's conventions)
    const py = spawnSync('python3', ['tools/check_peft_adapter.py', ad, '--base', ws.base], { encoding: 'utf8' });
    expect(py.status, py.stdout + py.stderr).toBe(0);
    expect(py.stdout).toMatch(/^ok: PEFT LoRA layout, 6 tensors/);

    const base = JSON.parse(ok(['eval', 'lm', '--model', ws.base, '--data', ws.corpus, '--seq-len', '16', '--threads', '1']).stdout);
    const tuned = JSON.parse(
      ok(['eval', 'lm', '--model', ws.base, '--adapter', ad, '--data', ws.corpus, '--seq-len', '16', '--threads', '1']).stdout,
    );
    expect(Object.keys(tuned)).toEqual(['bits_per_byte', 'tokens', 'tok_s', 'joules', 'energy_kind']);
    expect(tuned.bits_per_byte).toBeLessThan(base.bits_per_byte); // trained on this very text
    expect(tuned.tokens).toBe(base.tokens);
    expect(['measured', 'estimated']).toContain(tuned.energy_kind);

    expect(
      ok(['generate', '--model', ws.base, '--adapter', ad, '--prompt', 'The', '--max-tokens', '8', '--threads', '1']).stdout.length,
    ).toBeGreaterThan(0);
    const bench = JSON.parse(ok(['bench', '--model', ws.base, '--adapter', ad, '--tiny', '--json', '--threads', '1']).stdout);
    expect(bench.map((r: { adapter: string | null }) => r.adapter)).toEqual([null, ad]);
    for (const r of bench) expect(r.decode_tok_s > 0 && r.j_per_token > 0).toBe(true);
    const merged = join(d, 'merged');
    ok(['merge', '--model', ws.base, '--adapter', ad, '--out', merged]);
    const a = logits(['--model', ws.base, '--adapter', ad]).logits,
      m = logits(['--model', merged]).logits,
      b = logits(['--model', ws.base]).logits;
    expect(Math.max(...a.map((v, i) => Math.abs(v - m[i])))).toBeLessThan(1e-4);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-3);
  });

  it("on a Mamba-2 base: the default targets are in_proj and out_proj, PEFT's names, and the adapter equals its merge", () => {
    const d = ws.caseDir(),
      base = join(d, 'm2'),
      ad = join(d, 'ad');
    ok(['train', ...TINY, '--arch', 'mamba2', '--layers', '2', '--d-state', '8', '--steps', '1', '--data', ws.corpus, '--out', base]);
    ok(['finetune', '--model', base, '--data', ws.corpus, '--out', ad, '--rank', '2', '--steps', '3', '--lr', '1e-2', ...RUN]);
    expect(JSON.parse(readFileSync(join(ad, 'adapter_config.json'), 'utf8'))).toMatchObject({
      r: 2,
      target_modules: ['in_proj', 'out_proj'],
    });
    // 2 layers × 2 modules × (A, B), named base_model.model.backbone.layers.{i}.mixer.{in,out}_proj.lora_{A,B}.weight
    const py = spawnSync('python3', ['tools/check_peft_adapter.py', ad, '--base', base], { encoding: 'utf8' });
    expect(py.status, py.stdout + py.stderr).toBe(0);
    expect(py.stdout).toMatch(/^ok: PEFT LoRA layout, 8 tensors/);
    const merged = join(d, 'merged');
    ok(['merge', '--model', base, '--adapter', ad, '--out', merged]);
    const a = logits(['--model', base, '--adapter', ad]).logits,
      m = logits(['--model', merged]).logits,
      b = logits(['--model', base]).logits;
    expect(Math.max(...a.map((v, i) => Math.abs(v - m[i])))).toBeLessThan(1e-4);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-3);
  });

  it('trains on a q8 base (QLoRA-style), and full fine-tuning writes a whole checkpoint', () => {
    const d = ws.caseDir(),
      q8 = join(d, 'q8');
    ok(['quantize', '--model', ws.base, '--to', 'q8', '--out', q8, '--threads', '1']);
    ok(['finetune', '--model', q8, '--data', ws.corpus, '--out', join(d, 'ad'), '--rank', '1', '--steps', '3', ...RUN]);
    expect(
      ok(['generate', '--model', q8, '--adapter', join(d, 'ad'), '--prompt', 'The', '--max-tokens', '4', '--threads', '1']).stdout.length,
    ).toBeGreaterThan(0);
    const full = join(d, 'full');
    ok(['finetune', '--model', ws.base, '--method', 'full', '--data', ws.corpus, '--out', full, '--steps', '3', ...RUN]);
    expect(sha(join(full, 'model.safetensors'))).not.toBe(sha(join(ws.base, 'model.safetensors')));
    expectOneLineError(
      frugal(['finetune', '--model', q8, '--method', 'full', '--data', ws.corpus, '--out', join(d, 'f2'), ...RUN]),
      2,
      /quantised: full fine-tuning needs the f32 checkpoint/,
    );
  });

  it('refuses a rank larger than a matrix, an unknown target, and an adapter of another base (one line, exit 2)', () => {
    const d = ws.caseDir();
    expectOneLineError(
      frugal(['finetune', '--model', ws.base, '--data', ws.corpus, '--out', join(d, 'a'), '--rank', '2', ...RUN]),
      2,
      /--rank 2 is larger than the matrix backbone\.layers\.0\.mixer\.dt_proj\.weight \[32, 1\] allows \(at most 1\)/,
    );
    expectOneLineError(
      frugal(['finetune', '--model', ws.base, '--data', ws.corpus, '--out', join(d, 'a'), '--targets', 'q_proj', ...RUN]),
      2,
      /--targets: 'q_proj' is not a module LoRA can adapt in a mamba model \(choose from in_proj,x_proj,dt_proj,out_proj\)/,
    );
    expect(existsSync(join(d, 'a'))).toBe(false);
    const ad = join(d, 'ad'),
      wide = join(d, 'wide');
    ok(['finetune', '--model', ws.base, '--data', ws.corpus, '--out', ad, '--rank', '1', '--steps', '2', ...RUN]);
    ok(['train', ...TINY, '--d-model', '24', '--steps', '1', '--data', ws.corpus, '--out', wide]);
    expectOneLineError(
      frugal(['generate', '--model', wide, '--adapter', ad, '--prompt', 'a', '--threads', '1']),
      2,
      /tensor 'base_model\.model\.backbone\.layers\.0\.mixer\.in_proj\.lora_A\.weight' has shape \[1,16\] but this base implies \[1,24\]/,
    );
  });
});

describe('frugal distill and frugal tokenizer train', () => {
  it('distils a Mamba teacher into a new transformer student, and refuses a teacher with another tokenizer', () => {
    const d = ws.caseDir(),
      st = join(d, 'student');
    ok([
      'distill',
      '--teacher',
      ws.base,
      '--arch',
      'transformer',
      '--d-model',
      '16',
      '--layers',
      '1',
      '--heads',
      '2',
      '--data',
      ws.corpus,
      '--out',
      st,
      '--steps',
      '3',
      ...RUN,
    ]);
    expect(JSON.parse(readFileSync(join(st, 'config.json'), 'utf8')).model_type).toBe('llama');
    const tok = join(d, 'tok'),
      bpe = join(d, 'bpe');
    ok(['tokenizer', 'train', '--data', ws.corpus, '--vocab-size', '300', '--out', tok]);
    ok(['train', ...TINY, '--steps', '1', '--data', ws.corpus, '--tokenizer', tok, '--out', bpe]);
    expect(readFileSync(join(bpe, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(tok, 'tokenizer.json'), 'utf8'));
    expect(JSON.parse(readFileSync(join(bpe, 'config.json'), 'utf8')).vocab_size).toBe(300);
    expectOneLineError(
      frugal(['distill', '--teacher', bpe, '--student', ws.base, '--data', ws.corpus, '--out', join(d, 'x'), ...RUN]),
      2,
      /--teacher .* and the student do not share a tokenizer \(teacher: tokenizer\.json [0-9a-f]{12}…, 300 ids; student: frugal's byte tokenizer, 256 ids\)/,
    );
    expectOneLineError(
      frugal(['tokenizer', 'train', '--data', ws.corpus, '--vocab-size', '100', '--out', join(d, 'y')]),
      2,
      /--vocab-size/,
    );
  });
});
