import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { forEachBackend, assertNoLeak } from '../helpers.js';
import { seededRandom, randomBinaryPatterns, randomGaussianPatterns, correlatedPatterns } from '../../src/data/index.js';

function stats(x: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / x.length) };
}

/** Mean Pearson correlation over all pairs of rows. */
function meanPairCorrelation(x: Float32Array, M: number, d: number): number {
  const rows = Array.from({ length: M }, (_, i) => {
    const r = x.subarray(i * d, (i + 1) * d);
    const { mean, std } = stats(r);
    return Float64Array.from(r, (v) => (v - mean) / std);
  });
  let total = 0;
  let pairs = 0;
  for (let i = 0; i < M; i++) {
    for (let j = i + 1; j < M; j++) {
      let c = 0;
      for (let k = 0; k < d; k++) c += rows[i][k] * rows[j][k];
      total += c / d;
      pairs++;
    }
  }
  return total / pairs;
}

describe('seededRandom', () => {
  it('is deterministic by seed and differs across seeds', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const sa = Array.from({ length: 5 }, () => a.uniform());
    assert.deepEqual(
      sa,
      Array.from({ length: 5 }, () => b.uniform()),
    );
    assert.notDeepEqual(
      sa,
      Array.from({ length: 5 }, () => c.uniform()),
    );
  });

  it('uniform in [0, 1) with mean 1/2 and variance 1/12; normal with mean 0 and std 1', () => {
    const r = seededRandom(7);
    const u = Float64Array.from({ length: 100000 }, () => r.uniform());
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const su = stats(u);
    assert.ok(Math.abs(su.mean - 0.5) < 0.005, `uniform mean ${su.mean}`);
    assert.ok(Math.abs(su.std - Math.sqrt(1 / 12)) < 0.005, `uniform std ${su.std}`);
    const z = Float64Array.from({ length: 100000 }, () => r.normal());
    const sz = stats(z);
    assert.ok(Math.abs(sz.mean) < 0.015, `normal mean ${sz.mean}`);
    assert.ok(Math.abs(sz.std - 1) < 0.015, `normal std ${sz.std}`);
    // about 4.55% of a standard normal lies beyond 2 std
    const tail = z.filter((v) => Math.abs(v) > 2).length / z.length;
    assert.ok(Math.abs(tail - 0.0455) < 0.004, `tail ${tail}`);
  });

  it('int and shuffle', () => {
    const r = seededRandom(1);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 5000; i++) counts[r.int(5)]++;
    assert.ok(
      counts.every((c) => c > 900 && c < 1100),
      `counts ${counts}`,
    );
    const arr = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = r.shuffle(arr.slice());
    assert.notDeepEqual(shuffled, arr);
    assert.deepEqual(
      shuffled.slice().sort((a, b) => a - b),
      arr,
    );
    assert.throws(() => r.int(0), /n must be a positive integer, got 0/);
    assert.throws(() => seededRandom(1.5), /seededRandom: seed must be a finite integer, got 1.5/);
  });
});

forEachBackend('synthetic memory sets', () => {
  it('randomBinaryPatterns: shape, values in {0,1}, density p, determinism', () => {
    const x = randomBinaryPatterns(200, 100, { seed: 3, p: 0.3 });
    assert.deepEqual(x.shape, [200, 100]);
    assert.equal(x.dtype, 'float32');
    const v = x.dataSync();
    assert.ok(v.every((e) => e === 0 || e === 1));
    const p = stats(v).mean;
    assert.ok(Math.abs(p - 0.3) < 0.01, `density ${p}`);
    const y = randomBinaryPatterns(200, 100, { seed: 3, p: 0.3 });
    const z = randomBinaryPatterns(200, 100, { seed: 4, p: 0.3 });
    assert.deepEqual(Array.from(y.dataSync()), Array.from(v));
    assert.notDeepEqual(Array.from(z.dataSync()), Array.from(v));
    tf.dispose([x, y, z]);
  });

  it('randomGaussianPatterns: moments and determinism', () => {
    const x = randomGaussianPatterns(100, 200, { seed: 5, mean: 0.5, std: 2 });
    const s = stats(x.dataSync());
    assert.ok(Math.abs(s.mean - 0.5) < 0.05, `mean ${s.mean}`);
    assert.ok(Math.abs(s.std - 2) < 0.05, `std ${s.std}`);
    const y = randomGaussianPatterns(100, 200, { seed: 5, mean: 0.5, std: 2 });
    assert.deepEqual(Array.from(y.dataSync()), Array.from(x.dataSync()));
    tf.dispose([x, y]);
  });

  for (const kind of ['gaussian', 'binary'] as const) {
    it(`correlatedPatterns (${kind}): mean pairwise correlation matches the request`, () => {
      for (const c of [0, 0.3, 0.8]) {
        const x = correlatedPatterns(20, 2000, { seed: 11, correlation: c, kind });
        const got = meanPairCorrelation(x.dataSync() as Float32Array, 20, 2000);
        assert.ok(Math.abs(got - c) < 0.03, `${kind} correlation ${c}: got ${got}`);
        if (kind === 'binary') assert.ok(x.dataSync().every((e) => e === 0 || e === 1));
        x.dispose();
      }
    });
  }

  it('checks its arguments', () => {
    assert.throws(() => randomBinaryPatterns(0, 4), /randomBinaryPatterns: M \(number of patterns\) must be a positive integer, got 0/);
    assert.throws(() => randomBinaryPatterns(2, 4, { p: 1.5 }), /p must be a probability in \[0, 1\], got 1.5/);
    assert.throws(() => randomGaussianPatterns(2, 2.5), /d \(pattern dimension\) must be a positive integer, got 2.5/);
    assert.throws(() => correlatedPatterns(2, 4, { correlation: 1 }), /correlation must be in \[0, 1\), got 1/);
    assert.throws(() => correlatedPatterns(2, 4, { seed: NaN }), /seed must be a finite integer, got NaN/);
  });

  it('no tensor leaks beyond the returned tensor', () => {
    assertNoLeak(() => [randomBinaryPatterns(4, 3, { seed: 1 }), randomGaussianPatterns(4, 3), correlatedPatterns(4, 3)]);
  });
});
