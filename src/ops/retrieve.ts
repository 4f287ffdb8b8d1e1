/**
 * The Hopfield update as a Universal Hopfield Network: similarity, separation, projection.
 *
 *     x_next = sep( beta * sim(Phi(x), Phi(K)) ) V
 *
 * beta multiplies the scores BEFORE the separation (the reference scripts multiply after the
 * softmax, where it does nothing; DESIGN.md section 2).
 */
import * as tf from '@tensorflow/tfjs-core';
import { similarity, checkSimilarityKind } from './similarity.js';
import { separation, checkSeparationKind } from './separation.js';
import { applyFeatureMap } from './featureMap.js';
import { iterateRetrieval, checkUpdateSteps } from './retrievalCore.js';
import { toRank } from './tensor.js';
import { checkOptions, optionKeys } from './options.js';
import { allowedMask, checkMaskType, type MaskType } from './masks.js';
import type { FeatureMap, SeparationKind, SimilarityKind } from './types.js';

export interface RetrieveOptions {
  /** Pattern projections [..., S, dv] read out by the association; default: the memories. */
  values?: tf.Tensor;
  /** Inverse temperature, applied to the scores before the separation. Default 1. */
  beta?: number | tf.Tensor;
  /** Default 'dot'. Computed in feature space when `featureMap` is given. */
  similarity?: SimilarityKind;
  /** Default 'softmax'. */
  separation?: SeparationKind;
  /** alpha of 'entmax' (in [1, 2]). */
  alpha?: number | tf.Tensor;
  /** k of 'topk'. */
  k?: number;
  /** Number of update steps (1..1000). Default 1. */
  steps?: number;
  /**
   * The package's one stopping rule (src/ops/retrievalCore.ts): after an update, a query whose
   * association moved by at most eps (L2 norm over the memories) keeps it and is frozen for
   * the remaining steps. 0 (default) runs every step. No data is read back to decide, and
   * the result stays differentiable.
   */
  eps?: number;
  /** [..., L or 1, S] which memories take part for each query, in the form `maskType` says. */
  mask?: tf.Tensor;
  /**
   * How `mask` is written: 'allowed' (default; bool or 0/1, 1 = takes part) or 'additive'
   * (0 = takes part, -Infinity = left out, PyTorch's attn_mask). Other values are an error.
   */
  maskType?: MaskType;
  /** Phi: scores become sim(Phi(x), Phi(k)) (U-Hop Stage II). */
  featureMap?: FeatureMap;
  /** Also return the association matrix of the last step, [..., L, S]. */
  returnAssociation?: boolean;
}

export interface RetrieveResult {
  /** Retrieved patterns [..., L, dv]. */
  states: tf.Tensor;
  /** The last step's association (separation output) [..., L, S], when asked for. */
  association?: tf.Tensor;
}

export function checkPositiveInt(value: unknown, name: string, where: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new Error(`${where}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function checkBeta(beta: unknown, where: string): void {
  if (beta instanceof tf.Tensor) return;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0) {
    throw new Error(`${where}: beta must be a finite number > 0 or a tensor, got ${String(beta)}`);
  }
}

/**
 * Retrieves patterns from a Hopfield memory: iterates the update `steps` times in key space
 * (each state becomes the next query) and projects the last association onto the values.
 *
 * @param queries state patterns [..., L, d]
 * @param memories stored patterns [..., S, d]
 *
 * @example
 * ```ts
 * const memories = tf.randomUniform([100, 784]);
 * const noisy = memories.mul(tf.randomUniform([100, 784]).greater(0.5));
 * const { states } = retrieve(noisy, memories, { beta: 1, separation: 'sparsemax' });
 * ```
 */
const RETRIEVE_KEYS = optionKeys<RetrieveOptions>()([
  'values',
  'beta',
  'similarity',
  'separation',
  'alpha',
  'k',
  'steps',
  'eps',
  'mask',
  'maskType',
  'featureMap',
  'returnAssociation',
]);

export function retrieve(queries: tf.Tensor, memories: tf.Tensor, options: RetrieveOptions = {}): RetrieveResult {
  const where = 'retrieve';
  checkOptions(options, RETRIEVE_KEYS, where);
  const {
    values,
    beta = 1,
    similarity: simKind = 'dot',
    separation: sepKind = 'softmax',
    alpha,
    k,
    steps = 1,
    eps = 0,
    mask: givenMask,
    maskType = 'allowed',
    featureMap,
    returnAssociation = false,
  } = options;
  checkMaskType(maskType, where);
  checkBeta(beta, where);
  checkUpdateSteps(steps, eps, where);
  checkSimilarityKind(simKind, where);
  checkSeparationKind(sepKind, where);
  if (queries.rank < 2 || memories.rank < 2) {
    throw new Error(
      `${where}: queries [..., L, d] and memories [..., S, d] need rank >= 2, got [${queries.shape}] and [${memories.shape}]`,
    );
  }
  const S = memories.shape[memories.rank - 2];
  if (S === 0) {
    // The layers treat an empty memory as an empty weighted sum (zeros); a direct call with no
    // stored pattern is almost surely a mistake, so it is an error here, on every backend.
    throw new Error(`${where}: memories must hold at least one stored pattern, got shape [${memories.shape}]`);
  }
  if (values && (values.rank < 2 || values.shape[values.rank - 2] !== S)) {
    throw new Error(`${where}: values must be [..., S=${S}, dv] like the memories [${memories.shape}], got [${values.shape}]`);
  }
  if (steps > 1 && !featureMap && queries.shape[queries.rank - 1] !== memories.shape[memories.rank - 1]) {
    throw new Error(`${where}: several steps need queries and memories of one dimension`);
  }

  const result = tf.tidy(() => {
    const mask = givenMask ? allowedMask(givenMask, maskType, where, 'mask') : undefined;
    const keysPhi = featureMap ? applyFeatureMap(featureMap, memories) : memories;
    const associate = (x: tf.Tensor): tf.Tensor => {
      const xPhi = featureMap ? applyFeatureMap(featureMap, x) : x;
      const scores = tf.mul(similarity(xPhi, keysPhi, simKind), beta);
      return separation(scores, sepKind, { mask, alpha, k });
    };
    const association = iterateRetrieval(queries, associate, (xi) => tf.matMul(xi, toRank(memories, xi.rank)), steps, eps);
    const states = tf.matMul(association, toRank(values ?? memories, association.rank));
    return returnAssociation ? { states, association } : { states };
  });
  return result;
}
