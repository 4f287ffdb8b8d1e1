/**
 * Empty memories ([B, 0, F]) and empty batches ([0, ...]) give the same result on every
 * backend: a layer's retrieval from no memory is an empty weighted sum (zeros), so its output
 * is the output projection's bias; a batch of 0 gives an output of batch 0. The functional
 * `retrieve` refuses an empty memory with the same clear error everywhere. fitSteps is bounded.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { HopfieldLayer } from '../../src/layers/hopfieldLayer.js';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { retrieve } from '../../src/ops/retrieve.js';
import { UHopMemory } from '../../src/ops/uhop.js';
import { forEachBackend, assertClose } from '../helpers.js';
import { randomizeWeights, weight } from './util.js';

const F = 8;

forEachBackend('empty memories and empty batches', () => {
  const attention = [
    ['MultiHeadAttention', () => new MultiHeadAttention({ numHeads: 2, keyDim: 4, seed: 1 } as never)],
    ['UHopAttention sparsemax', () => new UHopAttention({ numHeads: 2, keyDim: 4, separation: 'sparsemax', seed: 1 })],
    ['UHopAttention U-Hop, 3 steps', () => new UHopAttention({ numHeads: 2, keyDim: 4, featureMap: 'linear', updateStepsMax: 3, seed: 1 })],
  ] as const;

  for (const [name, make] of attention) {
    it(`${name}: an empty memory gives the output bias; a batch of 0 gives batch 0`, () => {
      const layer = make();
      const q = tf.randomNormal([2, 3, F], 0, 1, 'float32', 2);
      layer.apply(q, { value: q }); // builds
      randomizeWeights(layer, 3);
      const bias = weight(layer, 'attention_output/bias');
      const out = layer.apply(q, { value: tf.zeros([2, 0, F]) }) as tf.Tensor;
      assert.deepEqual(out.shape, [2, 3, F]);
      assertClose(out, tf.broadcastTo(bias, [2, 3, F]), 1e-6, `${name} empty memory`);
      const [o2, scores] = layer.apply(q, { value: tf.zeros([2, 0, F]), returnAttentionScores: true }) as tf.Tensor[];
      assert.deepEqual(scores.shape, [2, 2, 3, 0]);
      const empty = layer.apply(tf.zeros([0, 3, F])) as tf.Tensor;
      assert.deepEqual(empty.shape, [0, 3, F]);
      tf.dispose([q, out, o2, scores, empty]);
      layer.dispose();
    });
  }

  it('Hopfield, HopfieldPooling (plain and U-Hop), HopfieldLayer: empty memory and batch 0', () => {
    const q = tf.randomNormal([2, 3, F], 0, 1, 'float32', 4);
    const none = tf.zeros([2, 0, F]);
    const hop = new Hopfield({ numHeads: 2, seed: 5, updateStepsMax: 2 });
    hop.apply(q);
    randomizeWeights(hop, 6);
    const out = hop.apply([none, q, none]) as tf.Tensor;
    assertClose(out, tf.broadcastTo(weight(hop, 'output_bias'), [2, 3, F]), 1e-6, 'Hopfield empty memory');
    assert.deepEqual((hop.apply(tf.zeros([0, 3, F])) as tf.Tensor).shape, [0, 3, F]);
    for (const featureMap of ['none', 'linear'] as const) {
      const pool = new HopfieldPooling({ numHeads: 2, seed: 7, featureMap });
      pool.apply(q);
      randomizeWeights(pool, 8);
      const p = pool.apply(none) as tf.Tensor;
      assertClose(
        p,
        tf.reshape(tf.broadcastTo(weight(pool, 'output_bias'), [2, 1, F]), [2, F]),
        1e-6,
        `HopfieldPooling ${featureMap} empty memory`,
      );
      assert.deepEqual((pool.apply(tf.zeros([0, 3, F])) as tf.Tensor).shape, [0, F]);
      pool.dispose();
    }
    const layer = new HopfieldLayer({ numHeads: 2, seed: 9, quantity: 4 });
    assert.deepEqual((layer.apply(tf.zeros([0, 3, F])) as tf.Tensor).shape, [0, 3, F]);
    tf.dispose([q, none]);
    hop.dispose();
    layer.dispose();
  });

  it('retrieve refuses an empty memory with a clear error; zero queries give zero states', () => {
    const q = tf.randomNormal([3, F], 0, 1, 'float32', 10);
    assert.throws(() => retrieve(q, tf.zeros([0, F])), /retrieve: memories must hold at least one stored pattern, got shape \[0,8\]/);
    assert.deepEqual(retrieve(tf.zeros([0, F]), q).states.shape, [0, F]);
    q.dispose();
  });

  it('fitSteps is bounded: 1000 per layer call, 100000 per UHopMemory store', () => {
    assert.throws(
      () => new HopfieldPooling({ featureMap: 'linear', fitSteps: 1e6 }),
      /HopfieldPooling: fitSteps must be an integer in \[0, 1000\].*, got 1000000/,
    );
    assert.throws(
      () => new UHopAttention({ numHeads: 1, keyDim: 2, featureMap: 'linear', fitSteps: 1001 }),
      /fitSteps must be an integer in \[0, 1000\] \(the fit runs in every call/,
    );
    assert.throws(() => new UHopMemory({ fitSteps: 1e6 }), /UHopMemory: fitSteps must be an integer in \[0, 100000\], got 1000000/);
    assert.throws(() => new Hopfield({ updateStepsMax: 5000 }), /Hopfield: updateStepsMax must be an integer in \[0, 999\]/);
    assert.throws(
      () => new Hopfield({ updateStepsMax: null as never }),
      /Hopfield: updateStepsMax must be an integer in \[0, 999\] .*is not offered.*, got null/,
    );
    assert.throws(
      () => new UHopAttention({ numHeads: 1, keyDim: 2, updateStepsMax: null as never }),
      /UHopAttention: updateStepsMax must be an integer in \[0, 999\] .*, got null/,
    );
  });
});
