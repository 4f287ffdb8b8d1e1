/**
 * The unrolled in-layer fit (src/ops/fitGradient.ts): the same fitted W as the first-order op
 * (fitFeatureMapOp), and a gradient to Phi0 that is the exact derivative of the fit (central
 * finite differences), unlike the straight-through one.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { fitFeatureMapOp } from '../../src/ops/fit.js';
import { unrolledLinearFit } from '../../src/ops/fitGradient.js';
import { assertClose, assertNoLeak, forEachBackend } from '../helpers.js';

/** Correlated keys [2, 3, 12, 4] (a shared offset) and a Phi0 near the identity [3, 4, 4]. */
function setup() {
  const K = tf.tidy(() => tf.add(tf.randomNormal([2, 3, 12, 4], 0, 1, 'float32', 1), tf.randomNormal([1, 1, 1, 4], 0, 1, 'float32', 5)));
  const W0 = tf.tidy(() => tf.add(tf.tile(tf.expandDims(tf.eye(4), 0), [3, 1, 1]), tf.randomNormal([3, 4, 4], 0, 0.1, 'float32', 2)));
  const C = tf.randomNormal([2, 3, 4, 4], 0, 1, 'float32', 3);
  const E = tf.randomNormal([3, 4, 4], 0, 1, 'float32', 4);
  return { K, W0, C, E, dispose: () => tf.dispose([K, W0, C, E]) };
}

forEachBackend('unrolledLinearFit', () => {
  for (const optimizer of ['normalized', 'sgd'] as const) {
    it(`${optimizer}: the same fitted W as fitFeatureMapOp (5 steps, lse)`, () => {
      const s = setup();
      const a = fitFeatureMapOp(s.K, [s.W0], 'linear', { steps: 5, optimizer })[0];
      const b = unrolledLinearFit(s.K, s.W0, { steps: 5, optimizer });
      assert.deepEqual(b.shape, [2, 3, 4, 4]);
      assertClose(b, a, 1e-4, 'fitted W');
      // the fit moved W (else the comparison would be empty)
      assert.ok(tf.max(tf.abs(tf.sub(a, s.W0))).dataSync()[0] > 0.02);
      tf.dispose([a, b]);
      s.dispose();
    });

    it(`${optimizer}: the gradient to Phi0 is the fit's derivative (central differences), not the straight-through one`, () => {
      const s = setup();
      const f = (w: tf.Tensor) => tf.sum(tf.mul(unrolledLinearFit(s.K, w, { steps: 5, optimizer }), s.C));
      const g = tf.grad(f)(s.W0);
      const h = 1e-3;
      const fd =
        (tf.tidy(() => f(tf.add(s.W0, tf.mul(s.E, h)))).dataSync()[0] - tf.tidy(() => f(tf.sub(s.W0, tf.mul(s.E, h)))).dataSync()[0]) /
        (2 * h);
      const an = tf.sum(tf.mul(g, s.E)).dataSync()[0];
      const st = tf.sum(tf.mul(tf.sum(s.C, 0), s.E)).dataSync()[0]; // what straight-through gives
      // measured (cpu): normalized fd 17.121, unrolled 17.122, straight-through 1.895;
      // sgd fd 2.9988, unrolled 2.9988, straight-through 1.895
      assert.ok(Math.abs(an - fd) <= 0.01 * Math.abs(fd) + 1e-3, `unrolled ${an} vs finite difference ${fd}`);
      assert.ok(Math.abs(st - fd) > 0.2 * Math.abs(fd), `straight-through ${st} should differ from ${fd} here`);
      g.dispose();
      s.dispose();
    });
  }

  it('0 steps is W0 broadcast, with gradient the sum over sets', () => {
    const s = setup();
    const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(unrolledLinearFit(s.K, w, { steps: 0 }), s.C)))(s.W0);
    assertClose(g, tf.sum(s.C, 0), 1e-5);
    g.dispose();
    s.dispose();
  });

  it('leaks nothing (forward and gradient)', () => {
    const s = setup();
    assertNoLeak(() => unrolledLinearFit(s.K, s.W0, { steps: 2 }).dispose());
    assertNoLeak(() =>
      tf
        .grad((w: tf.Tensor) => tf.sum(unrolledLinearFit(s.K, w, { steps: 2 })))(s.W0)
        .dispose(),
    );
    s.dispose();
  });

  it('errors name the function and the argument', () => {
    const s = setup();
    assert.throws(() => unrolledLinearFit(s.K, s.W0, { loss: 'worst-pair' }), /unrolledLinearFit: loss must be 'lse' or 'uniform'/);
    assert.throws(() => unrolledLinearFit(s.K, s.W0, { optimizer: 'adam' }), /unrolledLinearFit: optimizer must be 'normalized' or 'sgd'/);
    assert.throws(() => unrolledLinearFit(s.K, s.W0, { steps: -1 }), /steps must be an integer >= 0/);
    assert.throws(() => unrolledLinearFit(s.K, tf.zeros([3, 4, 5])), /must end in the keys' dim d = 4/);
    s.dispose();
  });
});
