/**
 * `seed` makes a layer reproducible: two UHopAttention layers built with the same seed get
 * the same weights and, in training, the same sequence of dropout masks; another seed gives
 * other weights; the seed survives getConfig. The same for the Hopfield trio's dropout.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { forEachBackend, assertClose } from '../helpers.js';
import { maxDiff } from './util.js';

forEachBackend('seeded layers are reproducible', () => {
  it('UHopAttention: same seed, same weights and dropout masks; other seed, other weights', () => {
    const x = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 1);
    const make = (seed: number) => new UHopAttention({ numHeads: 2, keyDim: 4, dropout: 0.5, featureMap: 'linear', featureDim: 6, seed });
    const [a, b, c] = [make(7), make(7), make(8)];
    for (const l of [a, b, c]) l.apply(x);
    a.getWeights().forEach((w, i) => assertClose(w, b.getWeights()[i], 0, `weight ${i}`));
    assert.ok(maxDiff(a.getWeights()[0], c.getWeights()[0]) > 1e-3, 'another seed gives other weights');
    const ya = [0, 1].map(() => a.apply(x, { training: true }) as tf.Tensor);
    const yb = [0, 1].map(() => b.apply(x, { training: true }) as tf.Tensor);
    assertClose(ya[0], yb[0], 0, 'first training call');
    assertClose(ya[1], yb[1], 0, 'second training call');
    assert.ok(maxDiff(ya[0], ya[1]) > 1e-4, 'the dropout mask changes between calls');
    assert.equal(a.getConfig().seed, 7);
    assert.equal((UHopAttention.fromConfig(UHopAttention, a.getConfig()) as UHopAttention).seed, 7);
    tf.dispose([x, ...ya, ...yb]);
  });

  it('HopfieldPooling: the same seed gives the same dropout masks in training', () => {
    const x = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 2);
    const make = () => new HopfieldPooling({ numHeads: 2, dropout: 0.5, seed: 3 });
    const [a, b] = [make(), make()];
    const ya = a.apply(x, { training: true }) as tf.Tensor;
    const yb = b.apply(x, { training: true }) as tf.Tensor;
    assertClose(ya, yb, 0, 'training call');
    tf.dispose([x, ya, yb]);
  });
});
