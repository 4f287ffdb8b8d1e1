import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { forEachBackend, assertNoLeak, assertClose } from '../helpers.js';
import { maskQueries, halfMaskQueries, noisyQueries, corruptQueries, seededRandom } from '../../src/data/index.js';

/** [n, d] queries with entries in (0.1, 1], so no entry is zero before masking. */
function queries(n: number, d: number, seed = 0): tf.Tensor2D {
  const r = seededRandom(seed);
  return tf.tensor2d(
    Float32Array.from({ length: n * d }, () => 0.1 + 0.9 * r.uniform()),
    [n, d],
  );
}

const zerosPerRow = (t: tf.Tensor, d: number): number[] => {
  const v = t.dataSync();
  const out: number[] = [];
  for (let i = 0; i < v.length / d; i++) out.push(v.subarray(i * d, (i + 1) * d).filter((e) => e === 0).length);
  return out;
};

forEachBackend('query corruption', () => {
  it("maskQueries 'zero' zeroes exactly round(fraction * d) entries per query and keeps the rest", () => {
    const x = queries(6, 50);
    for (const [fraction, k] of [
      [0.5, 25],
      [0.3, 15],
      [0.01, 1],
      [0, 0],
      [1, 50],
    ] as const) {
      const q = maskQueries(x, { fraction, seed: 2 });
      assert.deepEqual(zerosPerRow(q, 50), new Array(6).fill(k), `fraction ${fraction}`);
      const xv = x.dataSync();
      q.dataSync().forEach((v, i) => assert.ok(v === 0 || v === xv[i], `entry ${i} changed`));
      q.dispose();
    }
    x.dispose();
  });

  it('maskQueries is deterministic by seed, varies across seeds and across rows', () => {
    const x = tf.ones([4, 40]);
    const a = maskQueries(x, { fraction: 0.5, seed: 9 }).dataSync();
    const b = maskQueries(x, { fraction: 0.5, seed: 9 }).dataSync();
    const c = maskQueries(x, { fraction: 0.5, seed: 10 }).dataSync();
    assert.deepEqual(Array.from(a), Array.from(b));
    assert.notDeepEqual(Array.from(a), Array.from(c));
    assert.notDeepEqual(Array.from(a.subarray(0, 40)), Array.from(a.subarray(40, 80)));
    tf.dispose(x);
  });

  it("maskQueries 'reference-inverted-dropout' drops about `fraction` and rescales survivors by 1/(1-fraction)", () => {
    const x = queries(40, 100, 3);
    const q = maskQueries(x, { fraction: 0.5, seed: 1, mode: 'reference-inverted-dropout' });
    const xv = x.dataSync();
    const qv = q.dataSync();
    let dropped = 0;
    for (let i = 0; i < qv.length; i++) {
      if (qv[i] === 0) dropped++;
      else assert.ok(Math.abs(qv[i] - 2 * xv[i]) < 1e-6, `survivor ${i}: ${qv[i]} vs 2 * ${xv[i]}`);
    }
    const rate = dropped / qv.length;
    // Binomial(4000, 0.5): std 0.0079; 4 std.
    assert.ok(Math.abs(rate - 0.5) < 0.032, `drop rate ${rate}`);
    const q2 = maskQueries(x, { fraction: 0.2, seed: 1, mode: 'reference-inverted-dropout' });
    q2.dataSync().forEach((v, i) => assert.ok(v === 0 || Math.abs(v - xv[i] / 0.8) < 1e-6));
    tf.dispose([x, q, q2]);
  });

  it('halfMaskQueries bottom / top / right / left zero the right half of a 4 x 6 image', () => {
    const x = tf.ones([2, 24]);
    const img = (side: 'bottom' | 'top' | 'right' | 'left') =>
      Array.from(halfMaskQueries(x, { side, rows: 4, cols: 6 }).dataSync().subarray(24, 48));
    const row = (v: number) => new Array(6).fill(v);
    assert.deepEqual(img('bottom'), [...row(1), ...row(1), ...row(0), ...row(0)]);
    assert.deepEqual(img('top'), [...row(0), ...row(0), ...row(1), ...row(1)]);
    const half = (first: number, second: number) => [first, first, first, second, second, second];
    assert.deepEqual(img('right'), [...half(1, 0), ...half(1, 0), ...half(1, 0), ...half(1, 0)]);
    assert.deepEqual(img('left'), [...half(0, 1), ...half(0, 1), ...half(0, 1), ...half(0, 1)]);
    x.dispose();
  });

  it('halfMaskQueries on 28 x 28 (square inferred): rows 14..27 are zero; random zeroes 392 pixels per query', () => {
    const x = queries(3, 784, 5);
    const q = halfMaskQueries(x, { side: 'bottom' });
    const v = q.dataSync();
    const xv = x.dataSync();
    for (let i = 0; i < 3 * 784; i++) {
      const r = Math.floor((i % 784) / 28);
      assert.equal(v[i], r >= 14 ? 0 : xv[i]);
    }
    const rnd = halfMaskQueries(x, { side: 'random', seed: 4 });
    assert.deepEqual(zerosPerRow(rnd, 784), [392, 392, 392]);
    tf.dispose([x, q, rnd]);
  });

  it('halfMaskQueries keeps the channels of a pixel together (HWC)', () => {
    const x = tf.ones([2, 4 * 4 * 3]);
    const q = halfMaskQueries(x, { side: 'random', rows: 4, cols: 4, channels: 3, seed: 1 }).dataSync();
    for (let p = 0; p < 2 * 16; p++) {
      const px = [q[3 * p], q[3 * p + 1], q[3 * p + 2]];
      assert.ok(
        px.every((e) => e === px[0]),
        `pixel ${p}: ${px}`,
      );
    }
    assert.deepEqual(zerosPerRow(tf.tensor(q, [2, 48]), 48), [24, 24]);
    const b = halfMaskQueries(x, { side: 'bottom', channels: 3 }).dataSync(); // rows inferred: 4
    assert.equal(Array.from(b.subarray(0, 48)).filter((e) => e === 0).length, 24);
    assert.equal(b[23], 1);
    assert.equal(b[24], 0);
    x.dispose();
  });

  it('noisyQueries: noise std within tolerance, clipping, determinism', () => {
    const x = tf.fill([50, 200], 0.5);
    const q = noisyQueries(x, { std: 0.1, seed: 3, clip: false });
    const v = q.dataSync();
    let s = 0;
    let s2 = 0;
    for (const e of v) {
      s += e - 0.5;
      s2 += (e - 0.5) ** 2;
    }
    const mean = s / v.length;
    const std = Math.sqrt(s2 / v.length - mean * mean);
    assert.ok(Math.abs(mean) < 0.005, `noise mean ${mean}`);
    assert.ok(Math.abs(std - 0.1) < 0.004, `noise std ${std}`);
    const clipped = noisyQueries(x, { std: 1, seed: 3 }).dataSync();
    assert.ok(clipped.every((e) => e >= 0 && e <= 1));
    assert.ok(clipped.some((e) => e === 0) && clipped.some((e) => e === 1));
    assertClose(noisyQueries(x, { std: 0.1, seed: 3, clip: false }), q, 0);
    const zero = noisyQueries(x, { std: 0, seed: 3 });
    assertClose(zero, x, 0);
    tf.dispose([x, q, zero]);
  });

  it('corruptQueries applies steps in order and equals the individual functions', () => {
    const x = queries(4, 64, 8);
    const both = corruptQueries(x, [
      { kind: 'halfMask', side: 'bottom' },
      { kind: 'noise', std: 0.05, seed: 3 },
    ]);
    const manual = tf.tidy(() => noisyQueries(halfMaskQueries(x, { side: 'bottom' }), { std: 0.05, seed: 3 }));
    assertClose(both, manual, 0);
    const one = corruptQueries(x, { kind: 'mask', fraction: 0.25, seed: 6 });
    assertClose(one, maskQueries(x, { fraction: 0.25, seed: 6 }), 0);
    // a step without a seed uses its position: step 1 -> seed 1
    const unseeded = corruptQueries(x, [{ kind: 'none' }, { kind: 'mask', fraction: 0.5 }]);
    assertClose(unseeded, maskQueries(x, { fraction: 0.5, seed: 1 }), 0);
    assertClose(corruptQueries(x, []), x, 0);
    tf.dispose([x, both, manual, one, unseeded]);
  });

  it('clear errors', () => {
    const x = tf.ones([2, 10]);
    assert.throws(() => maskQueries(x, { fraction: 1.2 }), /maskQueries: fraction must be in \[0, 1\] for mode 'zero', got 1.2/);
    assert.throws(
      () => maskQueries(x, { fraction: 1, mode: 'reference-inverted-dropout' }),
      /fraction must be in \[0, 1\) for mode 'reference-inverted-dropout', got 1/,
    );
    assert.throws(
      () => maskQueries(x, { fraction: 0.5, mode: 'drop' as 'zero' }),
      /mode must be 'zero' or 'reference-inverted-dropout', got drop/,
    );
    assert.throws(() => halfMaskQueries(x), /halfMaskQueries: rows and cols are needed: d = 10 is not channels \* \(a square\)/);
    assert.throws(() => halfMaskQueries(x, { rows: 3, cols: 3 }), /rows \* cols \* channels = 3 \* 3 \* 1 = 9 must equal d = 10/);
    assert.throws(
      () => halfMaskQueries(x, { rows: 2, cols: 5, side: 'middle' as 'top' }),
      /side must be 'bottom', 'top', 'right', 'left' or 'random', got middle/,
    );
    assert.throws(() => noisyQueries(x, { std: -1 }), /noisyQueries: std must be a finite number >= 0, got -1/);
    const before = tf.memory().numTensors;
    assert.throws(
      () => corruptQueries(x, [{ kind: 'noise', std: 0.1 }, { kind: 'blur' } as never]),
      /corruptQueries: step 1 kind must be 'mask', 'halfMask', 'noise' or 'none', got blur/,
    );
    assert.equal(tf.memory().numTensors, before, 'tensors leaked on error');
    x.dispose();
  });

  it('no tensor leaks', () => {
    const x = queries(3, 16);
    assertNoLeak(() => maskQueries(x, { fraction: 0.5, seed: 1 }));
    assertNoLeak(() => maskQueries(x, { fraction: 0.5, seed: 1, mode: 'reference-inverted-dropout' }));
    assertNoLeak(() => halfMaskQueries(x, { side: 'right' }));
    assertNoLeak(() => halfMaskQueries(x, { side: 'random' }));
    assertNoLeak(() => noisyQueries(x, { std: 0.2 }));
    assertNoLeak(() => corruptQueries(x, [{ kind: 'mask', fraction: 0.5 }, { kind: 'noise', std: 0.1 }, { kind: 'none' }]));
    x.dispose();
  });
});
