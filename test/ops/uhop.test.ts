import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { UHopMemory, uhopRetrieve } from '../../src/ops/uhop.js';
import { retrieve } from '../../src/ops/retrieve.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';

/** Correlated binary patterns (a shared template plus private bits): hard for dense retrieval. */
function correlatedPatterns(M: number, d: number, seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    const template = tf.greater(tf.randomUniform([1, d], 0, 1, 'float32', seed), 0.5);
    const flip = tf.greater(tf.randomUniform([M, d], 0, 1, 'float32', seed + 1), 0.8);
    return tf.cast(tf.logicalXor(template, flip), 'float32') as tf.Tensor2D;
  });
}

function halfMasked(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const d = x.shape[1];
    const keep = tf.concat([tf.ones([1, d / 2]), tf.zeros([1, d - d / 2])], 1);
    return tf.mul(x, keep) as tf.Tensor2D;
  });
}

function sse(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.mean(tf.sum(tf.square(tf.sub(a, b)), -1)).dataSync()[0]);
}

forEachBackend('U-Hop associative memory', () => {
  it('Stage I lowers the separation loss and Stage II beats dense retrieval on correlated memories', () => {
    const memories = correlatedPatterns(40, 64, 1);
    const queries = halfMasked(memories);
    const { states, lossTrace } = uhopRetrieve(queries, memories, { fitSteps: 50, fitLr: 0.5, beta: 1 });
    const trace = lossTrace.dataSync();
    assert.equal(trace.length, 51);
    assert.ok(trace[50] < trace[0], `loss ${trace[0]} -> ${trace[50]} must go down`);
    const dense = retrieve(queries, memories, { beta: 1 }).states;
    const eU = sse(states, memories);
    const eD = sse(dense, memories);
    assert.ok(eU < eD, `U-Hop error ${eU} must be below dense ${eD}`);
    tf.dispose([memories, queries, states, lossTrace, dense]);
  });

  it('with zero fit steps and identity Phi0 it is the plain network', () => {
    const memories = tf.randomUniform([10, 8], 0, 1, 'float32', 2);
    const queries = tf.randomUniform([4, 8], 0, 1, 'float32', 3);
    const a = uhopRetrieve(queries, memories, { fitSteps: 0, beta: 3 });
    const b = retrieve(queries, memories, { beta: 3 });
    assertClose(a.states, b.states, 1e-5);
    tf.dispose([memories, queries, a.states, a.lossTrace, b.states]);
  });

  it('batched memory sets are fitted independently', () => {
    const A = tf.randomUniform([6, 8], 0, 1, 'float32', 4);
    const B = tf.randomUniform([6, 8], 0, 1, 'float32', 5);
    const q = tf.randomUniform([2, 3, 8], 0, 1, 'float32', 6);
    const both = uhopRetrieve(q, tf.stack([A, B]), { fitSteps: 10 });
    const onlyA = uhopRetrieve(tf.squeeze(tf.slice(q, [0, 0, 0], [1, 3, 8]), [0]), A, { fitSteps: 10 });
    assertClose(tf.squeeze(tf.slice(both.states, [0, 0, 0], [1, 3, 8]), [0]), onlyA.states, 1e-4);
    tf.dispose([A, B, q, both.states, both.lossTrace, onlyA.states, onlyA.lossTrace]);
  });

  it('UHopMemory keeps one fitted Phi for many retrievals and frees it on dispose', () => {
    const memories = tf.randomUniform([12, 8], 0, 1, 'float32', 7);
    const queries = tf.randomUniform([5, 8], 0, 1, 'float32', 8);
    const before = tf.memory().numTensors;
    const memory = new UHopMemory({ fitSteps: 5, featureDim: 16, seed: 9 });
    memory.store(memories);
    assert.deepEqual(memory.featureMap.params[0].shape, [16, 8]);
    assertNoLeak(() => memory.retrieve(queries, { returnAssociation: true }));
    memory.dispose();
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => memory.retrieve(queries), /call store\(memories\) first/);
    assertNoLeak(() => uhopRetrieve(queries, memories, { fitSteps: 3, featureMap: 'mlp' }));
    tf.dispose([memories, queries]);
  });

  it('gives clear errors', () => {
    assert.throws(() => new UHopMemory({ fitSteps: -1 }), /UHopMemory: fitSteps must be an integer in \[0, 100000\], got -1/);
    assert.throws(
      () => new UHopMemory({ rowNormalize: true } as never),
      /UHopMemory: 'rowNormalize' was renamed 'fitRowNormalize' in 0.2.0/,
    );
    assert.throws(() => new UHopMemory({ tau: 0.1 } as never), /UHopMemory: 'tau' was renamed 'separationLossTau' in 0.2.0/);
    assert.throws(() => new UHopMemory({ steps: 2 } as never), /UHopMemory: 'steps' was renamed 'updateStepsMax' in 0.2.0/);
    assert.throws(() => new UHopMemory().store(tf.zeros([5])), /memories must be \[\.\.\., S, d\]/);
  });
});
