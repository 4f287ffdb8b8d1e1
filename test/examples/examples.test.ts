/**
 * Every file of examples/ runs, small (UHOP_EXAMPLE_SMOKE=1), the way a user runs it from the
 * repository root: `npx tsx examples/<name>.ts`. They import 'uhop', 'uhop/node' and
 * 'uhop/experiments', which tsconfig.json's `paths` map to src/ (tsc --noEmit typechecks
 * them). Each runs in its own process on the wasm backend.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

function runExample(file: string, args: string[] = []): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join('examples', file), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, UHOP_EXAMPLE_SMOKE: '1', UHOP_BACKEND: 'wasm' },
  });
  assert.equal(r.status, 0, `examples/${file} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.stderr, '', `examples/${file} wrote to stderr`);
  return r.stdout;
}

describe('examples', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'uhop-examples-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('import the package by its name, never ../src', () => {
    for (const f of ['retrieval.ts', 'mil.ts', 'vision.ts', 'finetune.ts']) {
      const text = readFileSync(join(ROOT, 'examples', f), 'utf8');
      assert.doesNotMatch(text, /from '\.\.?\//, `examples/${f} imports a relative path`);
      assert.match(text, /from 'uhop(\/node|\/experiments)?'/);
    }
  });

  it('retrieval.ts', () => {
    const out = runExample('retrieval.ts');
    assert.match(out, /^backend: wasm/);
    assert.match(out, /Stage I uniformity loss [\d.-]+ -> [\d.-]+/);
    assert.match(out, /M=20: error dense [\d.]+, U-Hop [\d.]+/);
    assert.match(out, /uhop\s+M=10/);
  });

  it('mil.ts on a small generated MIL CSV', () => {
    // 20 bags of 3 instances with 4 features; positive bags hold one shifted instance.
    const rows = ['bag_id,bag_label,f0,f1,f2,f3'];
    for (let b = 0; b < 20; b++) {
      const label = b % 2;
      for (let i = 0; i < 3; i++) {
        const shift = label === 1 && i === 0 ? 2 : 0;
        rows.push([b + 1, label, ...[0, 1, 2, 3].map((f) => (Math.sin(7 * b + 3 * i + f) + shift).toFixed(4))].join(','));
      }
    }
    const csv = join(dir, 'toy.csv');
    writeFileSync(csv, `${rows.join('\n')}\n`);
    const out = runExample('mil.ts', [csv]);
    assert.match(out, /epoch 2: loss [\d.]+/);
    assert.match(out, /toy: best epoch \d of 2; test accuracy [\d.]+, ROC AUC [\d.]+ on 2 bags/);
  });

  it('vision.ts', () => {
    const out = runExample('vision.ts');
    assert.match(out, /modern Hopfield: test accuracy [\d.]+%/);
    assert.match(out, /U-Hop {10}: test accuracy [\d.]+%/);
    assert.match(out, /U-Hop, alternating: test accuracy [\d.]+%/);
  });

  it('finetune.ts', () => {
    const out = runExample('finetune.ts', [join(dir, 'ckpt')]);
    assert.match(out, /3\. loaded: MultiHeadAttention/);
    assert.match(out, /4\. replaced 1 attention layer\(s\)/);
    assert.match(out, /U-Hop model reloaded from .*: test accuracy [\d.]+%/);
  });
});
