import * as tf from '@tensorflow/tfjs-core';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, assertClose, assertNoLeak, checkGradient, randn } from '../helpers.js';
import {
  separation,
  sparsemax,
  entmax15,
  entmaxBisect,
  softmax1,
  topkSoftmax,
  hardmax,
  maskScores,
  SEPARATION_KINDS,
  MASK_FILL,
  checkSeparationKind,
} from '../../src/ops/separation.js';
import { detach } from '../../src/ops/detach.js';
import type { SeparationKind } from '../../src/ops/types.js';
import { refEntmax, refRows, refSeparation, refSoftmax1, refTopk, rowwise } from './separationReference.js';

// ---------------------------------------------------------------------------------------
// float64 references, written independently of the implementation

function support(x: number[], alpha: number): string {
  return refEntmax(x, alpha)
    .map((p) => (p > 0 ? '1' : '0'))
    .join('');
}

/**
 * Asserts the support of every row stays the same when any single score moves by +-h and
 * alpha by +-hAlpha, so that a central finite difference with step h sees a smooth map.
 */
function assertStableSupport(flat: number[], n: number, alpha: number, h: number, hAlpha = 0): void {
  for (let r = 0; r < flat.length / n; r++) {
    const row = flat.slice(r * n, (r + 1) * n);
    const s0 = support(row, alpha);
    for (let j = 0; j < n; j++) {
      for (const d of [h, -h]) {
        const moved = row.slice();
        moved[j] += d;
        assert.equal(support(moved, alpha), s0, `test input: row ${r} support changes when x[${j}] moves by ${d}`);
      }
    }
    if (hAlpha > 0) {
      for (const a of [alpha - hAlpha, alpha + hAlpha]) {
        assert.equal(support(row, a), s0, `test input: row ${r} support changes at alpha ${a}`);
      }
    }
  }
}

const rowSums = (t: tf.Tensor): Float32Array => tf.tidy(() => tf.sum(t, -1).dataSync() as Float32Array);

function assertDistribution(t: tf.Tensor, what: string): void {
  const v = t.dataSync();
  for (let i = 0; i < v.length; i++) assert.ok(v[i] >= 0 && Number.isFinite(v[i]), `${what}: element ${i} = ${v[i]}`);
  assertClose(rowSums(t), new Float32Array(t.size / t.shape[t.rank - 1]).fill(1), 1e-5, `${what} row sums`);
}

function assertFinite(t: tf.Tensor, what: string): void {
  const v = t.dataSync();
  for (let i = 0; i < v.length; i++) assert.ok(Number.isFinite(v[i]), `${what}: element ${i} = ${v[i]}`);
}

/** Every separation map, as the name `separation` gives it, with the options it needs. */
const KIND_CASES: { kind: SeparationKind; options: { alpha?: number; topK?: number } }[] = [
  { kind: 'softmax', options: {} },
  { kind: 'sparsemax', options: {} },
  { kind: 'entmax15', options: {} },
  { kind: 'entmax', options: { alpha: 1.3 } },
  { kind: 'softmax1', options: {} },
  { kind: 'topk', options: { topK: 2 } },
  { kind: 'max', options: {} },
];

forEachBackend('separation', () => {
  // -------------------------------------------------------------------------------------
  // closed forms and references

  it('sparsemax: closed forms, ties, uniform rows, shift invariance', () => {
    tf.tidy(() => {
      assertClose(sparsemax(tf.tensor1d([0.1, 0.5, 0.6])), [1 / 30, 13 / 30, 16 / 30], 1e-6, 'sparsemax [0.1,0.5,0.6]');
      assertClose(sparsemax(tf.tensor1d([1, 2, 3])), [0, 0, 1], 1e-7, 'sparsemax [1,2,3]');
      assertClose(sparsemax(tf.tensor1d([1, 1, 0])), [0.5, 0.5, 0], 1e-7, 'sparsemax tie');
      assertClose(sparsemax(tf.tensor1d([0.3, 0.3, 0.3, 0.3])), [0.25, 0.25, 0.25, 0.25], 1e-7, 'uniform');
      // [0.2, 0, -0.2, 5 below]: support {0, 1, 2}, tau = (0.2 + 0 - 0.2 - 1)/3
      assertClose(sparsemax(tf.tensor1d([0.2, 0, -0.2, -5])), [0.2 + 1 / 3, 1 / 3, -0.2 + 1 / 3, 0], 1e-6, 'three in support');
      assertClose(sparsemax(tf.tensor1d([1000.1, 1000.5, 1000.6])), [1 / 30, 13 / 30, 16 / 30], 1e-3, 'shifted');
      assertClose(sparsemax(tf.tensor1d([7])), [1], 0, 'single memory');
      const x = randn(6 * 7, 1, 1.5);
      assertClose(sparsemax(tf.tensor2d(x, [6, 7])), refRows(x, 7, 2), 1e-5, 'sparsemax vs float64 reference');
    });
  });

  it('softmax1: closed form exp(x_i)/(1 + sum exp(x_j)), stable for large scores', () => {
    tf.tidy(() => {
      const ref = (row: number[]) => {
        const m = Math.max(0, ...row);
        const e = row.map((v) => Math.exp(v - m));
        const den = Math.exp(-m) + e.reduce((a, b) => a + b, 0);
        return e.map((v) => v / den);
      };
      assertClose(softmax1(tf.tensor1d([0, 0])), [1 / 3, 1 / 3], 1e-6, 'softmax1 zeros');
      const e1 = Math.exp(1);
      const e2 = Math.exp(2);
      const em = Math.exp(-1);
      const den = 1 + e1 + e2 + em;
      assertClose(softmax1(tf.tensor1d([1, 2, -1])), [e1 / den, e2 / den, em / den], 1e-6, 'softmax1 [1,2,-1]');
      const rows = [
        [100, 101, 99],
        [-50, -60, -55],
        [88, -88, 0],
      ];
      const y = softmax1(tf.tensor2d(rows));
      assertFinite(y, 'softmax1 large');
      assertClose(y, rows.flatMap(ref), 1e-5, 'softmax1 large scores');
      // A query with very negative scores attends to (almost) nothing.
      assert.ok(rowSums(softmax1(tf.tensor1d([-30, -30])))[0] < 1e-12);
    });
  });

  it('entmax15 matches the float64 bisection reference', () => {
    tf.tidy(() => {
      assertClose(entmax15(tf.tensor1d([0, 1, 2])), refEntmax([0, 1, 2], 1.5), 1e-6, 'entmax15 [0,1,2]');
      assertClose(entmax15(tf.tensor1d([0.5, 0.5])), [0.5, 0.5], 1e-6, 'entmax15 tie');
      for (const scale of [0.5, 2, 6]) {
        const x = randn(8 * 9, 11 + scale, scale);
        assertClose(entmax15(tf.tensor2d(x, [8, 9])), refRows(x, 9, 1.5), 1e-5, `entmax15 scale ${scale}`);
      }
    });
  });

  it('entmaxBisect matches the float64 reference for alpha in (1, 2]', () => {
    tf.tidy(() => {
      const x = randn(5 * 8, 3, 2);
      for (const alpha of [1.05, 1.25, 1.5, 1.75, 2]) {
        assertClose(entmaxBisect(tf.tensor2d(x, [5, 8]), alpha), refRows(x, 8, alpha), 2e-5, `alpha ${alpha}`);
      }
    });
  });

  it('entmaxBisect converges with its default step count on adversarially spaced scores', () => {
    // The slowest cases found for the Newton iteration: many scores just inside the support.
    for (const n of [1024, 8192]) {
      const families = [
        Array.from({ length: n }, (_, i) => -Math.pow(i, 0.25) * 0.1),
        Array.from({ length: n }, (_, i) => -Math.pow(i, 0.5) * 0.01),
        randn(n, 77, 0.1),
      ];
      for (const alpha of [1.8, 2]) {
        for (const [f, x] of families.entries()) {
          tf.tidy(() => assertClose(entmaxBisect(tf.tensor1d(x), alpha), refEntmax(x, alpha), 2e-6, `S ${n} alpha ${alpha} family ${f}`));
        }
      }
    }
  });

  it('entmaxBisect(1.5) = entmax15, entmaxBisect(2) = sparsemax, alpha -> 1 approaches softmax', () => {
    tf.tidy(() => {
      const x = tf.tensor2d(randn(6 * 10, 5, 2), [6, 10]);
      assertClose(entmaxBisect(x, 1.5), entmax15(x), 1e-5, 'alpha 1.5');
      assertClose(entmaxBisect(x), entmax15(x), 1e-5, 'default alpha 1.5');
      assertClose(entmaxBisect(x, 2), sparsemax(x), 1e-5, 'alpha 2');
      assertClose(entmaxBisect(x, 1.0001), tf.softmax(x), 2e-3, 'alpha 1.0001 ~ softmax');
      assertClose(entmaxBisect(x, 1.0001), refRows(Array.from(x.dataSync()), 10, 1.0001), 1e-5, 'alpha 1.0001 vs reference');
      assertClose(entmaxBisect(x, 1), tf.softmax(x), 1e-7, 'alpha 1 is softmax');
      // alpha closer to 1 than float64 bisection resolves: the stable form still gives softmax.
      assertClose(entmaxBisect(x, 1 + 1e-5), tf.softmax(x), 1e-4, 'alpha 1 + 1e-5');
    });
  });

  it('entmaxBisect with a Tensor alpha: per row, per head, clipped into [1.001, 2]', () => {
    tf.tidy(() => {
      const x = tf.tensor2d(randn(2 * 6, 8, 1.5), [2, 6]);
      const perRow = entmaxBisect(x, tf.tensor2d([[1.5], [2]]));
      assertClose(tf.slice(perRow, [0, 0], [1, 6]), entmax15(tf.slice(x, [0, 0], [1, 6])), 1e-5, 'row 0 alpha 1.5');
      assertClose(tf.slice(perRow, [1, 0], [1, 6]), sparsemax(tf.slice(x, [1, 0], [1, 6])), 1e-5, 'row 1 alpha 2');
      assertClose(entmaxBisect(x, tf.scalar(1.25)), entmaxBisect(x, 1.25), 1e-6, 'scalar tensor alpha');
      assertClose(entmaxBisect(x, tf.tensor1d([1.25])), entmaxBisect(x, 1.25), 1e-6, '[1] tensor alpha');
      // Out-of-range tensor alphas are clipped, not rejected.
      assertClose(entmaxBisect(x, tf.scalar(2.7)), sparsemax(x), 1e-5, 'alpha 2.7 clipped to 2');
      assertClose(entmaxBisect(x, tf.scalar(0.2)), entmaxBisect(x, 1.001), 1e-6, 'alpha 0.2 clipped to 1.001');
      // One alpha per head: scores [B=2, H=3, L=2, S=5], alpha [3, 1, 1].
      const heads = [1.2, 1.5, 2];
      const xs = tf.tensor4d(randn(2 * 3 * 2 * 5, 9, 2), [2, 3, 2, 5]);
      const y = entmaxBisect(xs, tf.tensor3d(heads, [3, 1, 1]));
      assert.deepEqual(y.shape, [2, 3, 2, 5]);
      const xv = Array.from(xs.dataSync());
      const expected: number[] = [];
      for (let r = 0; r < 12; r++) expected.push(...refEntmax(xv.slice(r * 5, r * 5 + 5), heads[Math.floor(r / 2) % 3]));
      assertClose(y, expected, 2e-5, 'per-head alpha');
    });
  });

  it('topkSoftmax is softmax over the k largest scores; hardmax is one-hot with ties split', () => {
    tf.tidy(() => {
      const x = [3, 1, 2, -1, 0.5];
      const e3 = Math.exp(3);
      const e2 = Math.exp(2);
      assertClose(topkSoftmax(tf.tensor1d(x), 2), [e3 / (e3 + e2), 0, e2 / (e3 + e2), 0, 0], 1e-6, 'top-2');
      assertClose(topkSoftmax(tf.tensor1d(x), 1), [1, 0, 0, 0, 0], 0, 'top-1');
      assertClose(topkSoftmax(tf.tensor1d(x), 5), tf.softmax(tf.tensor1d(x)), 1e-7, 'k = S');
      assertClose(topkSoftmax(tf.tensor1d(x), 9), tf.softmax(tf.tensor1d(x)), 1e-7, 'k > S');
      const rows = tf.tensor2d(randn(4 * 6, 21), [4, 6]);
      const y = topkSoftmax(rows, 3).arraySync() as number[][];
      for (const row of y) assert.equal(row.filter((v) => v > 0).length, 3);
      assertClose(hardmax(tf.tensor1d([1, 3, 3])), [0, 0.5, 0.5], 0, 'hardmax tie');
      assertClose(
        hardmax(
          tf.tensor2d([
            [1, 5, 3],
            [-2, -3, -9],
          ]),
        ),
        [0, 1, 0, 1, 0, 0],
        0,
        'hardmax',
      );
    });
  });

  it('every kind gives a distribution over the last axis and keeps batched shapes [2,3,4,5]', () => {
    tf.tidy(() => {
      const x = tf.tensor4d(randn(2 * 3 * 4 * 5, 31, 2), [2, 3, 4, 5]);
      for (const { kind, options } of KIND_CASES) {
        const y = separation(x, kind, options);
        assert.deepEqual(y.shape, [2, 3, 4, 5], kind);
        if (kind === 'softmax1') {
          const expected = tf.sub(1, tf.div(1, tf.add(1, tf.sum(tf.exp(x), -1))));
          assertClose(rowSums(y), expected, 1e-5, 'softmax1 row sums');
        } else {
          assertDistribution(y, kind);
        }
        const row = separation(tf.tensor1d([0.3, -1, 2, 0.1]), kind, options);
        assert.deepEqual(row.shape, [4], `${kind} rank 1`);
      }
      // separation dispatches to the exact maps.
      assertClose(separation(x, 'entmax', { alpha: 1.5 }), entmax15(x), 0, 'entmax alpha 1.5');
      assertClose(separation(x, 'entmax', { alpha: 2 }), sparsemax(x), 0, 'entmax alpha 2');
      assertClose(separation(x, 'entmax'), entmax15(x), 0, 'entmax default alpha');
      assertClose(separation(x, 'entmax', { alpha: 1.7 }), entmaxBisect(x, 1.7), 0, 'entmax alpha 1.7');
      assertClose(separation(x, 'topk'), hardmax(x), 1e-7, 'topk default k = 1');
    });
  });

  // -------------------------------------------------------------------------------------
  // gradients

  it('gradients match float64 finite differences: sparsemax, entmax15, entmaxBisect (number alpha)', () => {
    const n = 6;
    const x = randn(3 * n, 41, 1.2);
    assertStableSupport(x, n, 2, 1e-2);
    assertStableSupport(x, n, 1.5, 1e-2);
    assertStableSupport(x, n, 1.3, 1e-2);
    const xt = tf.tensor2d(x, [3, n]);
    checkGradient(
      sparsemax,
      xt,
      rowwise(n, (r) => refEntmax(r, 2)),
    );
    checkGradient(
      entmax15,
      xt,
      rowwise(n, (r) => refEntmax(r, 1.5)),
    );
    checkGradient(
      (z) => entmaxBisect(z, 1.3),
      xt,
      rowwise(n, (r) => refEntmax(r, 1.3)),
    );
    checkGradient(
      (z) => entmaxBisect(z, 2),
      xt,
      rowwise(n, (r) => refEntmax(r, 2)),
    );
    xt.dispose();
  });

  it('gradients match float64 finite differences: entmaxBisect with a Tensor alpha, w.r.t. x and alpha', () => {
    const n = 5;
    const x = randn(2 * n, 43, 1.2);
    assertStableSupport(x, n, 1.3, 1e-2, 1e-2);
    assertStableSupport(x, n, 1.7, 1e-2, 1e-2);
    const xt = tf.tensor2d(x, [2, n]);
    const alpha = tf.tensor2d([[1.3], [1.7]]);
    const xf = Array.from(xt.dataSync()); // the float32 values the op sees
    checkGradient(
      (z) => entmaxBisect(z, alpha),
      xt,
      (v) => refRows(v, n, [Math.fround(1.3), Math.fround(1.7)]),
    );
    checkGradient(
      (a) => entmaxBisect(xt, a),
      alpha,
      (a) => refRows(xf, n, a),
    );
    // A scalar alpha shared by both rows: its gradient is summed over them.
    const shared = tf.scalar(1.3);
    assertStableSupport(x, n, 1.3, 0, 1e-2);
    checkGradient(
      (a) => entmaxBisect(xt, a),
      shared,
      ([a]) => refRows(xf, n, a),
    );
    // Near softmax (alpha = 1.05) the alpha gradient is still accurate.
    const near = tf.scalar(1.05);
    assertStableSupport(x, n, 1.05, 0, 1e-2);
    checkGradient(
      (a) => entmaxBisect(xt, a),
      near,
      ([a]) => refRows(xf, n, a),
    );
    tf.dispose([xt, alpha, shared, near]);
  });

  it('the gradient check fails on a wrong backward pass (a zero gradient, a gradient off by 1%)', () => {
    const n = 5;
    const xt = tf.tensor2d(randn(2 * n, 45, 1.2), [2, n]);
    const ref = rowwise(n, (r) => refEntmax(r, 2));
    assert.throws(() => checkGradient((z) => detach(sparsemax(z)), xt, ref), /gradient element/);
    const scaled = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
      const y = sparsemax(z);
      save([z]);
      // sparsemax's Jacobian-vector product s (dy - mean over the support of dy), s the support, times 1.01.
      const gradFunc = (dy: tf.Tensor, [zs]: tf.Tensor[]) => {
        const support = tf.cast(tf.greater(sparsemax(zs), 0), 'float32');
        const mean = tf.div(tf.sum(tf.mul(dy, support), -1, true), tf.sum(support, -1, true));
        return tf.mul(tf.mul(support, tf.sub(dy, mean)), 1.01);
      };
      return { value: y, gradFunc };
    }) as Parameters<typeof tf.customGrad>[0]) as (z: tf.Tensor) => tf.Tensor;
    assert.throws(() => checkGradient(scaled, xt, ref), /gradient element/);
    xt.dispose();
  });

  it('the alpha gradient stays accurate next to alpha = 1 (float64 finite difference)', () => {
    const x = [0.3, -1.2, 2.0, 0.7, -0.4, 1.1];
    const w = [0.5, -1, 2, 0.3, -0.7, 1.2];
    const loss = (a: number) => refEntmax(x, a).reduce((s, p, i) => s + w[i] * p, 0);
    for (const alpha of [1.001, 1.01, 1.1]) {
      const h = 1e-6 * (alpha - 1);
      const fd = (loss(alpha + h) - loss(alpha - h)) / (2 * h);
      const g = tf.tidy(
        () =>
          tf
            .grad((a: tf.Tensor) => tf.sum(tf.mul(entmaxBisect(tf.tensor1d(x), a), tf.tensor1d(w))))(tf.scalar(alpha))
            .dataSync()[0],
      );
      assert.ok(Math.abs(g - fd) <= 1e-3 * Math.abs(fd), `alpha ${alpha}: d/dalpha ${g} vs float64 ${fd}`);
    }
  });

  it('gradients match float64 finite differences: topkSoftmax, softmax1, masked separation; hardmax has none', () => {
    const rows = [
      [0.9, -0.4, 0.3, 1.6, -1.1],
      [2.2, 0.1, -0.6, 0.8, 0.4],
    ];
    const xt = tf.tensor2d(rows);
    checkGradient(
      (z) => topkSoftmax(z, 2),
      xt,
      rowwise(5, (r) => refTopk(r, 2)),
    );
    checkGradient(
      (z) => topkSoftmax(z, 3),
      xt,
      rowwise(5, (r) => refTopk(r, 3)),
    );
    checkGradient(softmax1, xt, rowwise(5, refSoftmax1));
    const maskRows = [
      [1, 1, 0, 1, 1],
      [1, 0, 1, 1, 1],
    ];
    const mask = tf.tensor2d(maskRows);
    for (const { kind, options } of KIND_CASES.filter((c) => c.kind !== 'max')) {
      checkGradient(
        (z) => separation(z, kind, { ...options, mask }),
        xt,
        rowwise(5, (r) => refSeparation(r, kind, options), maskRows),
      );
    }
    const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(hardmax(z), tf.tensor1d([1, 2, 3, 4, 5]))))(xt);
    assertClose(g, new Float32Array(10), 0, 'hardmax gradient');
    tf.dispose([xt, mask, g]);
  });

  // -------------------------------------------------------------------------------------
  // masks

  it('masks: masked memories get exactly 0, all-masked rows give zeros, no NaN in value or gradient', () => {
    const x = tf.tensor2d([
      [0.5, 2.0, -1.0, 0.2, 1.1],
      [3.0, -2.0, 0.0, 1.0, 0.5],
      [0.1, 0.2, 0.3, 0.4, 0.5],
    ]);
    const maskRows = [
      [1, 0, 1, 1, 0],
      [0, 0, 0, 0, 0],
      [1, 1, 1, 1, 1],
    ];
    const mask = tf.tensor2d(maskRows);
    const keptOf = (row: number[], r: number) => row.filter((_, j) => maskRows[r][j] === 1);
    const xv = x.arraySync() as number[][];
    const w = tf.randomNormal([3, 5], 0, 1, 'float32', 3);
    const cases = [...KIND_CASES, { kind: 'entmax' as SeparationKind, options: { alpha: 1.8 } }];
    for (const { kind, options } of cases) {
      tf.tidy(() => {
        const y = separation(x, kind, { ...options, mask });
        const yv = y.arraySync() as number[][];
        for (let r = 0; r < 3; r++) {
          for (let j = 0; j < 5; j++) {
            if (maskRows[r][j] === 0) assert.ok(yv[r][j] === 0, `${kind}: masked [${r},${j}] = ${yv[r][j]}`);
          }
        }
        // Kept memories get what the map gives on the kept scores alone.
        for (const r of [0, 2]) {
          const alone = separation(tf.tensor1d(keptOf(xv[r], r)), kind, options);
          assertClose(keptOf(yv[r], r), alone, 1e-5, `${kind}: row ${r} kept`);
        }
        const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(separation(z, kind, { ...options, mask }), w)))(x);
        assertFinite(g, `${kind} gradient`);
        const gv = g.arraySync() as number[][];
        for (let r = 0; r < 3; r++) {
          for (let j = 0; j < 5; j++)
            if (maskRows[r][j] === 0) assert.ok(gv[r][j] === 0, `${kind}: masked gradient [${r},${j}] = ${gv[r][j]}`);
        }
      });
    }
    // Trained alpha with an all-masked row: finite alpha gradient.
    tf.tidy(() => {
      const alpha = tf.tensor2d([[1.4], [1.6], [1.9]]);
      const [gx, ga] = tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(separation(z, 'entmax', { alpha: a, mask }), w)))([x, alpha]);
      assertFinite(gx, 'entmax x gradient');
      assertFinite(ga, 'entmax alpha gradient');
      assert.ok(ga.dataSync()[1] === 0, 'all-masked row gives no alpha gradient');
    });
    // Masked scores may be -Infinity or NaN (padding): they are replaced, not propagated.
    tf.tidy(() => {
      const bad = tf.tensor2d([[1, -Infinity, 2, Number.NaN, 0.5]]);
      const m = tf.tensor2d([[1, 0, 1, 0, 1]]);
      for (const { kind, options } of cases) {
        const y = separation(bad, kind, { ...options, mask: m });
        assertFinite(y, `${kind} with non-finite masked scores`);
        assertClose(y, separation(tf.tensor2d([[1, 0, 2, 0, 0.5]]), kind, { ...options, mask: m }), 0, kind);
      }
    });
    // Bool masks and masks broadcast over the batch.
    tf.tidy(() => {
      const bool = tf.tensor1d([true, false, true, true, false], 'bool');
      const a = separation(x, 'sparsemax', { mask: bool });
      const b = separation(x, 'sparsemax', { mask: tf.tensor2d([[1, 0, 1, 1, 0]]) });
      assertClose(a, b, 0, 'bool vs numeric broadcast mask');
      assertClose(tf.slice(a, [0, 0], [1, 5]), tf.slice(separation(x, 'sparsemax', { mask }), [0, 0], [1, 5]), 0, 'row 0');
      assertClose(maskScores(tf.tensor1d([1, 2, 3]), tf.tensor1d([1, 0, 1])), [1, MASK_FILL, 3], 0, 'maskScores');
    });
    tf.dispose([x, mask, w]);
  });

  // -------------------------------------------------------------------------------------
  // memory and errors

  it('no tensor leaks, forward and under tf.grad', () => {
    const x = tf.tensor3d(randn(2 * 3 * 6, 51), [2, 3, 6]);
    const mask = tf.tensor1d([1, 1, 0, 1, 1, 0]);
    const alpha = tf.tensor3d([1.2, 1.8], [2, 1, 1]);
    const maps: [string, (z: tf.Tensor) => tf.Tensor][] = [
      ['sparsemax', sparsemax],
      ['entmax15', entmax15],
      ['entmaxBisect', (z) => entmaxBisect(z, 1.4)],
      ['entmaxBisect tensor', (z) => entmaxBisect(z, alpha)],
      ['softmax1', softmax1],
      ['topkSoftmax', (z) => topkSoftmax(z, 2)],
      ['hardmax', hardmax],
      ['maskScores', (z) => maskScores(z, mask)],
      ...KIND_CASES.map(({ kind, options }): [string, (z: tf.Tensor) => tf.Tensor] => [
        `separation ${kind} masked`,
        (z) => separation(z, kind, { ...options, mask }),
      ]),
    ];
    for (const [, f] of maps) {
      assertNoLeak(() => f(x));
      assertNoLeak(() => tf.grad((z: tf.Tensor) => tf.sum(tf.square(f(z))))(x));
    }
    assertNoLeak(() => tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.square(entmaxBisect(z, a))))([x, alpha]));
    tf.dispose([x, mask, alpha]);
  });

  it('clear errors for bad kinds, k, alpha, ranks and masks', () => {
    const x = tf.tensor2d([[1, 2, 3]]);
    assert.throws(
      () => separation(x, 'gumbel' as SeparationKind),
      (e: Error) => {
        for (const k of SEPARATION_KINDS) assert.ok(e.message.includes(`'${k}'`), e.message);
        return /separation: unknown separation 'gumbel'; expected one of /.test(e.message);
      },
    );
    assert.throws(() => checkSeparationKind('soft', 'Hopfield'), /Hopfield: unknown separation 'soft'; expected one of 'softmax'/);
    assert.doesNotThrow(() => checkSeparationKind('entmax', 'Hopfield'));
    for (const k of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => separation(x, 'topk', { topK: k }), /separation: topK must be a positive integer/);
      assert.throws(() => separation(x, 'topk', { k } as never), /separation: 'k' was renamed 'topK' in 0.2.0/);
      assert.throws(() => topkSoftmax(x, k), /topkSoftmax: k must be a positive integer/);
    }
    for (const alpha of [0.5, 2.5, Number.NaN]) {
      assert.throws(() => separation(x, 'entmax', { alpha }), /separation: alpha must be in \[1, 2\]/);
      assert.throws(() => entmaxBisect(x, alpha), /entmaxBisect: alpha must be in \[1, 2\]/);
    }
    assert.throws(() => entmaxBisect(x, tf.tensor1d([1.5, 1.5])), /entmaxBisect: alpha must be .*got shape \[2\]/);
    assert.throws(() => entmaxBisect(x, tf.tensor3d([1.5], [1, 1, 1])), /alpha must be/);
    assert.throws(() => entmaxBisect(x, 1.5, { nIter: 0 }), /nIter must be a positive integer/);
    const s = tf.scalar(1);
    for (const [name, f] of [
      ['separation', () => separation(s, 'softmax')],
      ['sparsemax', () => sparsemax(s)],
      ['entmax15', () => entmax15(s)],
      ['entmaxBisect', () => entmaxBisect(s, 1.5)],
      ['softmax1', () => softmax1(s)],
      ['topkSoftmax', () => topkSoftmax(s, 1)],
      ['hardmax', () => hardmax(s)],
    ] as [string, () => unknown][]) {
      assert.throws(f, new RegExp(`${name}: .* must have rank >= 1`));
    }
    assert.throws(() => separation(tf.tensor2d([], [2, 0]), 'softmax'), /at least one memory/);
    assert.throws(() => sparsemax(tf.tensor1d([1, 2], 'int32')), /sparsemax: x must have dtype float32, got int32/);
    assert.throws(
      () => separation(x, 'softmax', { mask: tf.tensor1d([1, 0]) }),
      /separation: mask must be broadcastable to the scores' shape \[1, 3\], got shape \[2\]/,
    );
    assert.throws(() => separation(x, 'softmax', { mask: tf.ones([2, 1, 3]) }), /mask must be broadcastable/);
    tf.dispose([x, s]);
  });

  it('detach: same value, zero gradient', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([1, -2, 3]);
      assertClose(detach(x), x, 0, 'value');
      assertClose(tf.grad((z: tf.Tensor) => tf.sum(tf.mul(z, detach(z))))(x), x, 0, 'd(x * stop(x))/dx = x');
      assertClose(tf.grad((z: tf.Tensor) => tf.sum(detach(z)))(x), [0, 0, 0], 0, 'zero gradient');
    });
    const x = tf.tensor1d([1, 2]);
    assertNoLeak(() => detach(x));
    assertNoLeak(() => tf.grad((z: tf.Tensor) => tf.sum(tf.square(detach(z))))(x));
    x.dispose();
  });
});
