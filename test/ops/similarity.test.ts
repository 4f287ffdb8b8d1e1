import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { similarity } from '../../src/ops/similarity.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';

/** Plain-JS reference of every similarity for one pair of vectors. */
function reference(q: number[], k: number[], kind: string): number {
  const dot = q.reduce((s, v, i) => s + v * k[i], 0);
  if (kind === 'dot') return dot;
  if (kind === 'euclidean') return -q.reduce((s, v, i) => s + (v - k[i]) ** 2, 0);
  if (kind === 'manhattan') return -q.reduce((s, v, i) => s + Math.abs(v - k[i]), 0);
  const n = (x: number[]) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
  return dot / (n(q) * n(k));
}

forEachBackend('similarity', () => {
  for (const kind of ['dot', 'euclidean', 'manhattan', 'cosine'] as const) {
    it(`${kind} matches the closed form, batched over [batch, heads]`, () => {
      const q = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 1);
      const k = tf.randomNormal([2, 3, 6, 5], 0, 1, 'float32', 2);
      const s = similarity(q, k, kind);
      assert.deepEqual(s.shape, [2, 3, 4, 6]);
      const qa = q.arraySync() as number[][][][];
      const ka = k.arraySync() as number[][][][];
      const expected: number[] = [];
      for (let b = 0; b < 2; b++)
        for (let h = 0; h < 3; h++)
          for (let l = 0; l < 4; l++)
            for (let j = 0; j < 6; j++) {
              expected.push(reference(qa[b][h][l], ka[b][h][j], kind));
            }
      assertClose(s, expected, 1e-4, kind);
      tf.dispose([q, k, s]);
    });
  }

  it('distances are negative scores: the nearest memory scores highest', () => {
    const memories = tf.tensor2d([
      [0, 0],
      [10, 10],
      [3, 4],
    ]);
    const query = tf.tensor2d([[2.5, 3.5]]);
    for (const kind of ['euclidean', 'manhattan'] as const) {
      const s = similarity(query, memories, kind);
      assert.equal(tf.argMax(s, -1).dataSync()[0], 2, kind);
      assert.ok(
        s.dataSync().every((v) => v <= 0),
        `${kind} scores must be <= 0`,
      );
      s.dispose();
    }
    tf.dispose([memories, query]);
  });

  it('broadcasts shared memories over a batch of queries', () => {
    const q = tf.randomNormal([4, 3, 5], 0, 1, 'float32', 301);
    const k = tf.randomNormal([7, 5], 0, 1, 'float32', 302);
    const s = similarity(q, k, 'dot');
    assert.deepEqual(s.shape, [4, 3, 7]);
    tf.dispose([q, k, s]);
  });

  it('does not leak tensors', () => {
    const q = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 303);
    const k = tf.randomNormal([2, 6, 5], 0, 1, 'float32', 304);
    for (const kind of ['dot', 'euclidean', 'manhattan', 'cosine'] as const) assertNoLeak(() => similarity(q, k, kind));
    tf.dispose([q, k]);
  });

  it('gives clear errors', () => {
    const q = tf.zeros([2, 4, 5]);
    assert.throws(() => similarity(q, tf.zeros([2, 6, 3])), /share the last dimension/);
    assert.throws(() => similarity(tf.zeros([5]), q), /rank >= 2/);
    assert.throws(() => similarity(q, tf.zeros([3, 6, 5])), /do not broadcast/);
    assert.throws(() => similarity(q, q, 'hamming' as never), /unknown similarity 'hamming'; expected one of dot/);
    q.dispose();
  });
});
