import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { forEachBackend, assertNoLeak, assertClose } from '../helpers.js';
import { retrievalError, exactRetrievalRate, nearestMemory, metastableSize } from '../../src/data/index.js';

forEachBackend('retrieval metrics', () => {
  it('retrievalError: per-pattern sum of squared differences and their mean', () => {
    const retrieved = tf.tensor2d([
      [1, 0, 0.5],
      [0, 0, 0],
      [0.2, 0.4, 1],
    ]);
    const truth = tf.tensor2d([
      [1, 1, 1],
      [1, 1, 1],
      [0, 0, 1],
    ]);
    const { mean, perPattern } = retrievalError(retrieved, truth);
    // row 0: 0 + 1 + 0.25; row 1: 3; row 2: 0.04 + 0.16 + 0
    assertClose(perPattern, [1.25, 3, 0.2], 1e-6);
    assertClose(mean, [(1.25 + 3 + 0.2) / 3], 1e-6);
    assert.deepEqual(mean.shape, []);
    // leading batch dims are kept in perPattern
    const batched = retrievalError(tf.stack([retrieved, truth]), tf.stack([truth, truth]));
    assert.deepEqual(batched.perPattern.shape, [2, 3]);
    assertClose(batched.perPattern, [1.25, 3, 0.2, 0, 0, 0], 1e-6);
    assertClose(batched.mean, [4.45 / 6], 1e-6);
    tf.dispose([retrieved, truth, mean, perPattern, batched.mean, batched.perPattern]);
  });

  it('nearestMemory and exactRetrievalRate', () => {
    const memories = tf.tensor2d([
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    const retrieved = tf.tensor2d([
      [0.1, 0.1],
      [0.9, 0.2],
      [0.6, 0.7],
      [0.4, 0.45],
    ]);
    // nearest: 0, 1, 3, 0 (|0.4,0.45| is 0.602 from [0,0], 0.743 from [0,1], 0.606 from [1,0])
    assert.deepEqual(Array.from(nearestMemory(retrieved, memories).dataSync()), [0, 1, 3, 0]);
    assertClose(exactRetrievalRate(retrieved, memories), [0.5], 1e-7); // true index = row index
    assertClose(exactRetrievalRate(retrieved, memories, [0, 1, 3, 0]), [1], 1e-7);
    assertClose(exactRetrievalRate(retrieved, memories, tf.tensor1d([2, 2, 2, 2], 'int32')), [0], 1e-7);
    // fewer queries than memories, default index
    assertClose(exactRetrievalRate(tf.tensor2d([[0.9, 1]]), memories), [0], 1e-7);
    tf.dispose([memories, retrieved]);
  });

  it('metastableSize: mean count of weights above the threshold', () => {
    const softmaxLike = tf.tensor2d([
      [0.97, 0.02, 0.005, 0.005],
      [0.25, 0.25, 0.25, 0.25],
      [1, 0, 0, 0],
    ]);
    assertClose(metastableSize(softmaxLike), [(2 + 4 + 1) / 3], 1e-6); // default threshold 0.01
    assertClose(metastableSize(softmaxLike, { threshold: 0.3 }), [(1 + 0 + 1) / 3], 1e-6);
    const sparse = tf.tensor3d([
      [
        [0.5, 0.5, 0],
        [1, 0, 0],
      ],
      [
        [0.2, 0.3, 0.5],
        [0, 0, 1],
      ],
    ]);
    assertClose(metastableSize(sparse, { threshold: 0 }), [(2 + 1 + 3 + 1) / 4], 1e-6);
    tf.dispose([softmaxLike, sparse]);
  });

  it('clear errors', () => {
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([3, 3]);
    assert.throws(() => retrievalError(a, b), /retrievalError: retrieved and truth must have the same shape, got \[2, 3\] and \[3, 3\]/);
    assert.throws(() => nearestMemory(a, tf.zeros([3, 4])), /nearestMemory: retrieved has d = 3 but memories has d = 4/);
    assert.throws(() => exactRetrievalRate(a, b, [0]), /trueIndex has 1 entries, expected n = 2/);
    assert.throws(() => exactRetrievalRate(a, b, [0, 3]), /trueIndex\[1\] must be an integer in \[0, 3\), got 3/);
    assert.throws(() => exactRetrievalRate(b, a), /trueIndex is needed when there are more queries \(3\) than memories \(2\)/);
    assert.throws(() => metastableSize(a, { threshold: NaN }), /metastableSize: threshold must be a finite number, got NaN/);
    tf.dispose([a, b]);
  });

  it('no tensor leaks', () => {
    const r = tf.randomUniform([5, 4], 0, 1, 'float32', 1);
    const m = tf.randomUniform([6, 4], 0, 1, 'float32', 2);
    const w = tf.softmax(tf.randomNormal([5, 6], 0, 1, 'float32', 3));
    const truth = tf.slice(m, [0, 0], [5, 4]);
    assertNoLeak(() => retrievalError(r, truth));
    assertNoLeak(() => nearestMemory(r, m));
    assertNoLeak(() => exactRetrievalRate(r, m));
    assertNoLeak(() => exactRetrievalRate(r, m, [5, 4, 3, 2, 1]));
    assertNoLeak(() => metastableSize(w));
    tf.dispose([r, m, w, truth]);
  });
});
