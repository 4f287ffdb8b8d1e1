/**
 * Energies of modern Hopfield networks. Each retrieval step with softmax separation is a
 * CCCP step on these, so it never increases them (Ramsauer et al. 2020; U-Hop section 3).
 */
import * as tf from '@tensorflow/tfjs-core';
import { applyFeatureMap } from './featureMap.js';
import { checkBeta } from './retrieve.js';
import type { FeatureMap } from './types.js';

export interface EnergyOptions {
  /** Inverse temperature. Default 1. */
  beta?: number | tf.Tensor;
  /** Phi for the kernelized (U-Hop) energy. */
  featureMap?: FeatureMap;
}

/**
 * Energy of each state pattern, up to an additive constant.
 *
 * - dense: E(x) = -lse(beta, K x)/beta + x.x/2
 * - kernelized: E(x) = -lse(beta, <Phi(K), Phi(x)>)/beta + <Phi(x), Phi(x)>/2. For a linear
 *   Phi(x) = W x, the U-Hop update x <- K^T softmax(beta Phi(K) Phi(x)) is the CCCP step of
 *   this energy (the quadratic term x^T W^T W x is its convex part), so it never increases.
 *
 * @param states [..., L, d]
 * @param memories [..., S, d]
 * @returns [..., L]
 *
 * @example
 * ```ts
 * const e0 = energy(queries, memories, { beta: 4 });
 * const e1 = energy(retrieve(queries, memories, { beta: 4 }).states, memories, { beta: 4 });
 * // every entry of e1 is <= the matching entry of e0
 * ```
 */
export function energy(states: tf.Tensor, memories: tf.Tensor, options: EnergyOptions = {}): tf.Tensor {
  const { beta = 1, featureMap } = options;
  checkBeta(beta, 'energy');
  if (states.rank < 2 || memories.rank < 2) {
    throw new Error(`energy: states [..., L, d] and memories [..., S, d] need rank >= 2, got [${states.shape}] and [${memories.shape}]`);
  }
  return tf.tidy(() => {
    const x = featureMap ? applyFeatureMap(featureMap, states) : states;
    let k = featureMap ? applyFeatureMap(featureMap, memories) : memories;
    if (x.shape[x.rank - 1] !== k.shape[k.rank - 1]) {
      throw new Error(`energy: states and memories must share the last dimension, got [${states.shape}] and [${memories.shape}]`);
    }
    while (k.rank < x.rank) k = tf.expandDims(k, 0);
    const scores = tf.mul(tf.matMul(x, k, false, true), beta);
    const lse = tf.div(tf.logSumExp(scores, -1), beta);
    return tf.sub(tf.mul(tf.sum(tf.square(x), -1), 0.5), lse);
  });
}
