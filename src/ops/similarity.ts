/**
 * Similarity: the first stage of a Universal Hopfield Network (Millidge et al. 2022).
 * Distances enter as NEGATIVE scores so that the nearest memory gets the largest weight
 * (the public reference code uses positive distances, which makes softmax pick the farthest
 * memory; see DESIGN.md section 2).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SimilarityKind } from './types.js';

export const SIMILARITY_KINDS: readonly SimilarityKind[] = ['dot', 'euclidean', 'manhattan', 'cosine'];

/** Throws a clear error unless `kind` is a known similarity. */
export function checkSimilarityKind(kind: string, where = 'similarity'): asserts kind is SimilarityKind {
  if (!SIMILARITY_KINDS.includes(kind as SimilarityKind)) {
    throw new Error(`${where}: unknown similarity '${kind}'; expected one of ${SIMILARITY_KINDS.join(', ')}`);
  }
}

function checkPair(queries: tf.Tensor, memories: tf.Tensor, where: string): void {
  if (queries.rank < 2 || memories.rank < 2) {
    throw new Error(
      `${where}: queries and memories must have rank >= 2 ([..., L, d] and [..., S, d]), got shapes [${queries.shape}] and [${memories.shape}]`,
    );
  }
  const dq = queries.shape[queries.rank - 1];
  const dk = memories.shape[memories.rank - 1];
  if (dq !== dk) {
    throw new Error(`${where}: queries [..., L, ${dq}] and memories [..., S, ${dk}] must share the last dimension`);
  }
  const lq = queries.shape.slice(0, -2);
  const lk = memories.shape.slice(0, -2);
  const n = Math.max(lq.length, lk.length);
  for (let i = 1; i <= n; i++) {
    const a = lq[lq.length - i] ?? 1;
    const b = lk[lk.length - i] ?? 1;
    if (a !== b && a !== 1 && b !== 1) {
      throw new Error(`${where}: leading (batch) dims of queries [${queries.shape}] and memories [${memories.shape}] do not broadcast`);
    }
  }
}

/** Broadcasts the leading dims of a and b against each other (batchMatMul needs equal ranks). */
function alignRanks(a: tf.Tensor, b: tf.Tensor): [tf.Tensor, tf.Tensor] {
  while (a.rank < b.rank) a = tf.expandDims(a, 0);
  while (b.rank < a.rank) b = tf.expandDims(b, 0);
  return [a, b];
}

/**
 * Scores of every query against every memory.
 *
 * @param queries state patterns [..., L, d]
 * @param memories stored patterns [..., S, d]; leading dims broadcast against the queries'
 * @param kind 'dot' (q.k), 'euclidean' (-||q-k||^2), 'manhattan' (-||q-k||_1) or 'cosine'
 * @returns scores [..., L, S]
 *
 * @example
 * ```ts
 * const scores = similarity(tf.randomNormal([2, 5, 8]), tf.randomNormal([2, 10, 8]), 'euclidean');
 * // scores.shape == [2, 5, 10]; the nearest memory has the largest score
 * ```
 */
export function similarity(queries: tf.Tensor, memories: tf.Tensor, kind: SimilarityKind = 'dot'): tf.Tensor {
  checkSimilarityKind(kind);
  checkPair(queries, memories, 'similarity');
  return tf.tidy(() => {
    const [q, k] = alignRanks(queries, memories);
    switch (kind) {
      case 'dot':
        return tf.matMul(q, k, false, true);
      case 'cosine': {
        const eps = 1e-12;
        const qn = tf.div(q, tf.sqrt(tf.add(tf.sum(tf.square(q), -1, true), eps)));
        const kn = tf.div(k, tf.sqrt(tf.add(tf.sum(tf.square(k), -1, true), eps)));
        return tf.matMul(qn, kn, false, true);
      }
      case 'euclidean': {
        // -||q-k||^2 = 2 q.k - ||q||^2 - ||k||^2, one matMul instead of an [L, S, d] tensor;
        // clipped at 0 because cancellation may leave tiny positive values.
        const qk = tf.matMul(q, k, false, true);
        const qq = tf.sum(tf.square(q), -1, true); // [..., L, 1]
        const kk = tf.expandDims(tf.sum(tf.square(k), -1), -2); // [..., 1, S]
        return tf.minimum(tf.sub(tf.sub(tf.mul(qk, 2), qq), kk), 0);
      }
      case 'manhattan': {
        // L1 has no matMul form: [..., L, 1, d] - [..., 1, S, d] summed over d.
        const diff = tf.sub(tf.expandDims(q, -2), tf.expandDims(k, -3));
        return tf.neg(tf.sum(tf.abs(diff), -1));
      }
    }
  });
}
