/**
 * Retrieval metrics for associative-memory experiments. Pure tensor functions: each is tidy,
 * returns new tensors the caller owns, and leaves its inputs alone.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Output of {@link retrievalError}. */
export interface RetrievalError {
  /** Scalar: mean over patterns of the per-pattern error (the U-Hop paper's metric). */
  mean: tf.Scalar;
  /** [...] one value per pattern: sum over the last axis of the squared differences. */
  perPattern: tf.Tensor;
}

function checkTensor(fn: string, name: string, x: unknown, minRank: number): asserts x is tf.Tensor {
  if (!(x instanceof tf.Tensor)) throw new Error(`${fn}: ${name} must be a tf.Tensor, got ${typeof x}`);
  if (x.rank < minRank) throw new Error(`${fn}: ${name} must have rank >= ${minRank}, got shape [${x.shape.join(', ')}]`);
}

/**
 * Retrieval error as in the U-Hop paper: for each pattern the sum over its entries of the
 * squared difference between the retrieved and the true pattern, then the mean over patterns.
 *
 * @param retrieved [..., n, d] retrieved patterns.
 * @param truth [..., n, d] the true stored patterns, same shape.
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { retrievalError } from 'uhop';
 * const { mean, perPattern } = retrievalError(tf.tensor2d([[1, 0], [0, 0]]), tf.tensor2d([[1, 1], [1, 1]]));
 * mean.dataSync();       // [1.5]
 * perPattern.dataSync(); // [1, 2]
 * ```
 */
export function retrievalError(retrieved: tf.Tensor, truth: tf.Tensor): RetrievalError {
  const fn = 'retrievalError';
  checkTensor(fn, 'retrieved', retrieved, 1);
  checkTensor(fn, 'truth', truth, 1);
  if (!tf.util.arraysEqual(retrieved.shape, truth.shape)) {
    throw new Error(
      `${fn}: retrieved and truth must have the same shape, got [${retrieved.shape.join(', ')}] and [${truth.shape.join(', ')}]`,
    );
  }
  return tf.tidy(() => {
    const diff = tf.sub(tf.cast(retrieved, 'float32'), tf.cast(truth, 'float32'));
    const perPattern = tf.sum(tf.square(diff), -1);
    return { mean: tf.mean(perPattern) as tf.Scalar, perPattern };
  });
}

/**
 * Index of the nearest stored pattern (Euclidean distance) for each retrieved pattern; ties go
 * to the lowest index.
 *
 * @param retrieved [n, d].
 * @param memories [M, d].
 * @returns int32 tf.Tensor1D [n].
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { nearestMemory } from 'uhop';
 * nearestMemory(tf.tensor2d([[0.9, 0.1]]), tf.tensor2d([[0, 1], [1, 0]])).dataSync(); // [1]
 * ```
 */
export function nearestMemory(retrieved: tf.Tensor, memories: tf.Tensor): tf.Tensor1D {
  const fn = 'nearestMemory';
  checkTensor(fn, 'retrieved', retrieved, 2);
  checkTensor(fn, 'memories', memories, 2);
  if (retrieved.rank !== 2 || memories.rank !== 2) {
    throw new Error(
      `${fn}: retrieved [n, d] and memories [M, d] must be 2-D, got [${retrieved.shape.join(', ')}] and [${memories.shape.join(', ')}]`,
    );
  }
  if (retrieved.shape[1] !== memories.shape[1]) {
    throw new Error(`${fn}: retrieved has d = ${retrieved.shape[1]} but memories has d = ${memories.shape[1]}`);
  }
  return tf.tidy(() => {
    const r = tf.cast(retrieved, 'float32') as tf.Tensor2D;
    const m = tf.cast(memories, 'float32') as tf.Tensor2D;
    // argmin_j ||r - m_j||^2 = argmax_j (2 r.m_j - ||m_j||^2): ||r||^2 does not change the order.
    const score = tf.sub(tf.mul(2, tf.matMul(r, m, false, true)), tf.sum(tf.square(m), 1));
    return tf.argMax(score, 1) as tf.Tensor1D;
  });
}

/**
 * Fraction of retrieved patterns whose nearest stored pattern (Euclidean) is the true one.
 *
 * @param retrieved [n, d].
 * @param memories [M, d] the stored patterns.
 * @param trueIndex [n] index into `memories` of each query's true pattern (tensor or array).
 *   Default: 0, 1, ..., n-1 (query i was made from memory i).
 * @returns a scalar in [0, 1].
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { exactRetrievalRate } from 'uhop';
 * const memories = tf.tensor2d([[0, 1], [1, 0]]);
 * exactRetrievalRate(tf.tensor2d([[0.1, 0.8], [0.2, 0.9]]), memories).dataSync(); // [0.5]
 * ```
 */
export function exactRetrievalRate(retrieved: tf.Tensor, memories: tf.Tensor, trueIndex?: tf.Tensor | ArrayLike<number>): tf.Scalar {
  const fn = 'exactRetrievalRate';
  checkTensor(fn, 'retrieved', retrieved, 2);
  checkTensor(fn, 'memories', memories, 2);
  const n = retrieved.shape[0];
  const M = memories.shape[0];
  let index: Int32Array;
  if (trueIndex === undefined) {
    if (n > M) throw new Error(`${fn}: trueIndex is needed when there are more queries (${n}) than memories (${M})`);
    index = Int32Array.from({ length: n }, (_, i) => i);
  } else {
    const values = trueIndex instanceof tf.Tensor ? trueIndex.dataSync() : trueIndex;
    if (trueIndex instanceof tf.Tensor && trueIndex.rank !== 1) {
      throw new Error(`${fn}: trueIndex must be 1-D [n], got shape [${trueIndex.shape.join(', ')}]`);
    }
    if (values.length !== n)
      throw new Error(`${fn}: trueIndex has ${values.length} entries, expected n = ${n} (one per retrieved pattern)`);
    index = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!Number.isInteger(v) || v < 0 || v >= M) throw new Error(`${fn}: trueIndex[${i}] must be an integer in [0, ${M}), got ${v}`);
      index[i] = v;
    }
  }
  if (n === 0) throw new Error(`${fn}: retrieved has no patterns (n = 0)`);
  return tf.tidy(() => {
    const nearest = nearestMemory(retrieved, memories);
    const hit = tf.equal(nearest, tf.tensor1d(index, 'int32'));
    return tf.mean(tf.cast(hit, 'float32')) as tf.Scalar;
  });
}

export interface MetastableSizeOptions {
  /**
   * A memory counts when its weight is strictly greater than this. Default 0.01 (for softmax);
   * use 0 for sparse maps (sparsemax, entmax), whose weights are exactly zero off the support.
   */
  threshold?: number;
}

/**
 * Mean size of the metastable state: the number of memories whose association weight exceeds
 * `threshold`, averaged over all queries.
 *
 * @param association [..., L, S] separation output (weights over the S memories per query).
 * @returns a scalar.
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { metastableSize } from 'uhop';
 * metastableSize(tf.tensor2d([[0.5, 0.5, 0], [1, 0, 0]]), { threshold: 0 }).dataSync(); // [1.5]
 * ```
 */
export function metastableSize(association: tf.Tensor, { threshold = 0.01 }: MetastableSizeOptions = {}): tf.Scalar {
  const fn = 'metastableSize';
  checkTensor(fn, 'association', association, 1);
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    throw new Error(`${fn}: threshold must be a finite number, got ${String(threshold)}`);
  }
  if (association.size === 0) throw new Error(`${fn}: association is empty (shape [${association.shape.join(', ')}])`);
  return tf.tidy(() => {
    const count = tf.sum(tf.cast(tf.greater(association, threshold), 'float32'), -1);
    return tf.mean(count) as tf.Scalar;
  });
}
