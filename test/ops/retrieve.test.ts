import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { retrieve } from '../../src/ops/retrieve.js';
import { energy } from '../../src/ops/energy.js';
import { linearFeatureMap } from '../../src/ops/featureMap.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';
import { refSeparation } from './separationReference.js';

forEachBackend('retrieve', () => {
  it('one softmax step equals softmax(beta K q) V in closed form', () => {
    const q = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 1);
    const k = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 2);
    const v = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 3);
    const { states, association } = retrieve(q, k, { values: v, beta: 0.7, returnAssociation: true });
    const expectedA = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 0.7));
    assertClose(association!, expectedA, 1e-5, 'association');
    assertClose(states, tf.matMul(expectedA, v), 1e-5, 'states');
    assert.deepEqual(states.shape, [2, 3, 6]);
    tf.dispose([q, k, v, states, association, expectedA]);
  });

  it('applies beta before the separation (large beta retrieves the nearest memory exactly)', () => {
    const k = tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const q = tf.tensor2d([[0.9, 0.2, 0.1]]);
    const soft = retrieve(q, k, { beta: 1 }).states;
    const sharp = retrieve(q, k, { beta: 100 }).states;
    assertClose(sharp, [1, 0, 0], 1e-5, 'beta=100');
    assert.ok(Math.abs(soft.dataSync()[0] - 1) > 0.2, 'beta=1 must stay soft');
    tf.dispose([k, q, soft, sharp]);
  });

  it('masked memories get exactly zero weight; the others get the separation of the unmasked scores (float64 reference)', () => {
    const k = tf.randomNormal([6, 4], 0, 1, 'float32', 4);
    const q = tf.randomNormal([3, 4], 0, 1, 'float32', 5);
    const mask = tf.tensor2d([[1, 0, 1, 1, 0, 1]]);
    const keep = (mask.arraySync() as number[][])[0].map((m) => m !== 0);
    const [Q, K] = [q, k].map((t) => t.arraySync() as number[][]);
    const beta = 1.3;
    for (const separation of ['softmax', 'sparsemax', 'entmax15'] as const) {
      const { association } = retrieve(q, k, { mask, separation, beta, returnAssociation: true });
      const a = association!.arraySync() as number[][];
      a.forEach((row, l) => {
        assert.equal(row[1], 0);
        assert.equal(row[4], 0);
        const scores = K.filter((_, s) => keep[s]).map((ks) => beta * ks.reduce((z, x, i) => z + x * Q[l][i], 0));
        const p = refSeparation(scores, separation, {});
        let j = 0;
        assertClose(
          row,
          keep.map((kept) => (kept ? p[j++] : 0)),
          1e-5,
          `${separation} row ${l}`,
        );
      });
      association!.dispose();
    }
    tf.dispose([k, q, mask]);
  });

  it('several steps iterate the update in key space', () => {
    const k = tf.randomNormal([2, 8, 4], 0, 1, 'float32', 6);
    const q = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 7);
    const three = retrieve(q, k, { updateStepsMax: 2, updateStepsEps: 0, beta: 2 }).states;
    let x = q;
    for (let i = 0; i < 3; i++) x = retrieve(x, k, { beta: 2 }).states;
    assertClose(three, x, 1e-5, 'three steps');
    tf.dispose([k, q, three, x]);
  });

  it('updateStepsEps freezes converged queries (a huge eps keeps the first update: a step, then the test)', () => {
    const k = tf.randomNormal([8, 4], 0, 1, 'float32', 8);
    const q = tf.randomNormal([3, 4], 0, 1, 'float32', 9);
    const frozen = retrieve(q, k, { updateStepsMax: 4, updateStepsEps: 1e9 }).states;
    const two = retrieve(q, k, { updateStepsMax: 1, updateStepsEps: 0 }).states;
    const five = retrieve(q, k, { updateStepsMax: 4, updateStepsEps: 0 }).states;
    assertClose(frozen, two, 1e-6, 'frozen');
    assert.ok(tf.max(tf.abs(tf.sub(five, two))).dataSync()[0] > 1e-4, 'eps 0 runs every step');
    tf.dispose([k, q, frozen, two, five]);
  });

  it('the identity feature map gives the plain network', () => {
    const k = tf.randomNormal([8, 4], 0, 1, 'float32', 10);
    const q = tf.randomNormal([3, 4], 0, 1, 'float32', 11);
    const phi = linearFeatureMap(4, 4, { init: 'identity' });
    const a = retrieve(q, k, { featureMap: phi, beta: 1.5 }).states;
    const b = retrieve(q, k, { beta: 1.5 }).states;
    assertClose(a, b, 1e-5, 'identity Phi');
    tf.dispose([k, q, a, b, ...phi.params]);
  });

  it('retrieval never increases the energy (dense and kernelized)', () => {
    const k = tf.randomUniform([20, 16], 0, 1, 'float32', 12);
    const q = tf.randomUniform([10, 16], 0, 1, 'float32', 13);
    const phi = linearFeatureMap(16, 24, { init: 'normal', seed: 3 });
    for (const featureMap of [undefined, phi]) {
      let x = q;
      let e = energy(x, k, { beta: 2, featureMap }).dataSync();
      for (let step = 0; step < 5; step++) {
        x = retrieve(x, k, { beta: 2, featureMap }).states;
        const next = energy(x, k, { beta: 2, featureMap }).dataSync();
        next.forEach((v, i) =>
          assert.ok(v <= e[i] + 1e-4, `step ${step} query ${i}: ${v} > ${e[i]} (${featureMap ? 'kernelized' : 'dense'})`),
        );
        e = next;
      }
    }
    tf.dispose([k, q, ...phi.params]);
  });

  it('does not leak tensors', () => {
    const k = tf.randomNormal([2, 8, 4], 0, 1, 'float32', 301);
    const q = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 302);
    const mask = tf.ones([2, 1, 8]);
    assertNoLeak(() => retrieve(q, k, { updateStepsMax: 2, updateStepsEps: 1e-3, mask, returnAssociation: true }));
    assertNoLeak(() => energy(q, k, { beta: 2 }));
    tf.dispose([k, q, mask]);
  });

  it('gives clear errors', () => {
    const k = tf.zeros([8, 4]);
    const q = tf.zeros([3, 4]);
    assert.throws(() => retrieve(q, k, { beta: -1 }), /beta must be a finite number > 0/);
    assert.throws(() => retrieve(q, k, { updateStepsMax: -1 }), /retrieve: updateStepsMax must be an integer in \[0, 999\]/);
    assert.throws(
      () => retrieve(q, k, { steps: 2 } as never),
      /retrieve: 'steps' was renamed 'updateStepsMax' in 0.2.0 \(it now counts the extra steps/,
    );
    assert.throws(() => retrieve(q, k, { eps: 0 } as never), /retrieve: 'eps' was renamed 'updateStepsEps'/);
    assert.throws(() => retrieve(q, k, { k: 2 } as never), /retrieve: 'k' was renamed 'topK' in 0.2.0/);
    assert.throws(() => retrieve(q, k, { topk: 2 } as never), /retrieve: unknown option 'topk' \(did you mean 'topK'\?\)/);
    assert.throws(() => retrieve(q, k, { values: tf.zeros([7, 2]) }), /values must be \[\.\.\., S=8, dv\]/);
    assert.throws(() => retrieve(q, k, { separation: 'argmax' as never }), /argmax/);
    assert.throws(() => retrieve(tf.zeros([4]), k), /rank >= 2/);
    tf.dispose([k, q]);
  });
});
