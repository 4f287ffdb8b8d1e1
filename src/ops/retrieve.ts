/**
 * The Hopfield update as a Universal Hopfield Network: similarity, separation, projection.
 *
 *     x_next = sep( beta * sim(Phi(x), Phi(K)) ) V
 *
 * beta multiplies the scores BEFORE the separation (the reference scripts multiply after the
 * softmax, where it does nothing; DESIGN.md section 2).
 */
import * as tf from '@tensorflow/tfjs-core';
import { similarity } from './similarity.js';
import { separation } from './separation.js';
import { applyFeatureMap } from './featureMap.js';
import { iterateRetrieval } from './retrievalCore.js';
import { toRank } from './tensor.js';
import { bool, checkValue, custom, defineSchema, int, parseOptions, type OptionSpec } from './schema.js';
import {
  ALPHA,
  BETA,
  BETA_NUMBER,
  MASK_TYPE,
  RETRIEVE_RENAMES,
  SEPARATION,
  SIMILARITY,
  TOP_K,
  UPDATE_STEPS_EPS,
  UPDATE_STEPS_MAX,
} from './vocabulary.js';
import { allowedMask, type MaskType } from './masks.js';
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
  /** alpha of 'entmax' (in [1, 2]). Default 1.5. */
  alpha?: number | tf.Tensor;
  /** k of 'topk': memories kept per query (`k` before 0.2.0). Default 1. */
  topK?: number;
  /**
   * Extra update steps after the first retrieval, as in every layer and ml-jku: 0 (default) =
   * one retrieval, n = up to n + 1 steps, each state becoming the next query (at most 999).
   * Before 0.2.0 this was `steps`, the total: steps n is updateStepsMax n - 1.
   */
  updateStepsMax?: number;
  /**
   * The package's one stopping rule (src/ops/retrievalCore.ts): after an update, a query whose
   * association moved by at most this (L2 norm over the memories) keeps it and is frozen for
   * the remaining steps. Default 1e-4 (as in every layer; `eps`, default 0, before 0.2.0);
   * 0 runs every step. No data is read back to decide, and the result stays differentiable.
   */
  updateStepsEps?: number;
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

/** An integer >= min (the ops' and experiments' one integer check; src/ops/schema.ts words the error). */
export function checkPositiveInt(value: unknown, name: string, where: string, min = 1): number {
  return checkValue(value, int(min), name, where);
}

const TENSOR = custom<tf.Tensor>('a tensor', (v) => v instanceof tf.Tensor);
const BETA_OP = custom<number | tf.Tensor>('a finite number > 0 or a tensor', (v) => v instanceof tf.Tensor || BETA_NUMBER.test(v));

export function checkBeta(beta: unknown, where: string): void {
  checkValue(beta, BETA_OP, 'beta', where);
}

/** The ops ignore alpha and topK under another separation (a sweep may pass one set of options). */
const lenient = <T>(spec: OptionSpec<T>): OptionSpec<T> => ({ ...spec, appliesIf: { ...spec.appliesIf!, strict: false } });

const ALPHA_OP = custom<number | tf.Tensor>(`${ALPHA.check.expected} or a tensor`, (v) => v instanceof tf.Tensor || ALPHA.check.test(v));

/** The declaration of {@link RetrieveOptions} (src/ops/schema.ts; the shared specs in ./vocabulary.ts). */
export const RETRIEVE_SCHEMA = defineSchema<RetrieveOptions>()({
  values: { check: TENSOR, defaultText: 'the memories', doc: 'Pattern projections [..., S, dv] read out by the association.' },
  beta: { check: BETA_OP, default: 1, doc: BETA.doc },
  similarity: SIMILARITY,
  separation: SEPARATION,
  alpha: lenient({ ...ALPHA, check: ALPHA_OP }),
  topK: lenient(TOP_K),
  updateStepsMax: UPDATE_STEPS_MAX,
  updateStepsEps: UPDATE_STEPS_EPS,
  mask: { check: TENSOR, doc: '[..., L or 1, S] which memories take part for each query.' },
  maskType: MASK_TYPE,
  featureMap: {
    check: custom<FeatureMap>('a feature map {kind, params}', (v) => v != null && typeof v === 'object' && 'params' in v),
    doc: 'Phi: scores become sim(Phi(x), Phi(k)) (U-Hop Stage II).',
  },
  returnAssociation: { check: bool, default: false, doc: 'Also return the association matrix of the last step.' },
});

/**
 * Retrieves patterns from a Hopfield memory: runs the update once and then up to
 * `updateStepsMax` more times in key space (each state becomes the next query) and projects
 * the last association onto the values.
 *
 * @param queries state patterns [..., L, d]
 * @param memories stored patterns [..., S, d]
 *
 * @example
 * ```ts
 * const memories = tf.randomUniform([100, 784]);
 * const noisy = memories.mul(tf.randomUniform([100, 784]).greater(0.5));
 * const { states } = retrieve(noisy, memories, { beta: 1, separation: 'sparsemax', updateStepsMax: 2 });
 * ```
 */
export function retrieve(queries: tf.Tensor, memories: tf.Tensor, options: RetrieveOptions = {}): RetrieveResult {
  const where = 'retrieve';
  const {
    values,
    beta,
    similarity: simKind,
    separation: sepKind,
    alpha,
    topK,
    updateStepsMax,
    updateStepsEps,
    mask: givenMask,
    maskType,
    featureMap,
    returnAssociation,
  } = parseOptions(RETRIEVE_SCHEMA, options, where, { renamed: RETRIEVE_RENAMES });
  const steps = updateStepsMax + 1;
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
    throw new Error(`${where}: updateStepsMax > 0 (several steps) needs queries and memories of one dimension`);
  }

  const result = tf.tidy(() => {
    const mask = givenMask ? allowedMask(givenMask, maskType, where, 'mask') : undefined;
    const keysPhi = featureMap ? applyFeatureMap(featureMap, memories) : memories;
    const associate = (x: tf.Tensor): tf.Tensor => {
      const xPhi = featureMap ? applyFeatureMap(featureMap, x) : x;
      const scores = tf.mul(similarity(xPhi, keysPhi, simKind), beta);
      return separation(scores, sepKind, { mask, alpha, topK });
    };
    const association = iterateRetrieval(queries, associate, (xi) => tf.matMul(xi, toRank(memories, xi.rank)), steps, updateStepsEps);
    const states = tf.matMul(association, toRank(values ?? memories, association.rank));
    return returnAssociation ? { states, association } : { states };
  });
  return result;
}
