/**
 * The seeding rule of the tests, enforced: no layer construction, initializer or random op in
 * test/ draws without a seed (test/tools/unseeded.ts says what it looks for). A forgotten seed
 * makes a test depend on the order its file runs in, the root of the flaky tests of issue 12.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findUnseeded } from './unseeded.js';

const TEST_DIR = fileURLToPath(new URL('..', import.meta.url));

it('every layer construction and random draw in test/ is seeded', () => {
  const found = findUnseeded([TEST_DIR]);
  assert.deepEqual(found, [], `unseeded draws in test/:\n${found.join('\n')}`);
});

it('the scan finds an unseeded layer, dense layer, random op and options variable, and accepts seeded ones and expected errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'uhop-unseeded-'));
  try {
    const file = join(dir, 'probe.test.ts');
    writeFileSync(
      file,
      [
        'const a = new Hopfield({ numHeads: 2 });',
        'const b = tfl.layers.dense({ units: 3 });',
        'const c = tf.randomNormal([2, 3]);',
        'const d = new HopfieldPooling({ quantity: 2, seed: 4 });',
        "const e = tf.randomNormal([2, 3], 0, 1, 'float32', 5);",
        'assert.throws(\n  () => new HopfieldLayer({ quantity: 0 }),\n  /quantity/,\n);',
        'const base = { numHeads: 2 };',
        'const f = new Hopfield({ ...base, fitSteps: 2 });',
        'const seededBase = { numHeads: 2, seed: 3 };',
        'const g = new Hopfield(seededBase);',
        '',
      ].join('\n'),
    );
    const found = findUnseeded([file]).map((f) => f.slice(file.length + 1));
    assert.deepEqual(
      found.map((f) => Number(f.split(':')[0])).sort((x, y) => x - y),
      [1, 2, 3, 11],
      found.join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
