/**
 * Shared vocabulary of the functional core. Names follow the papers: memories (stored
 * patterns, keys), queries (state patterns), values (pattern projections), beta,
 * similarity, separation, Phi (the feature map), fitSteps.
 */
import type { Tensor } from '@tensorflow/tfjs-core';

/** How a query is compared with each memory; distances enter as NEGATIVE scores. */
export type SimilarityKind = 'dot' | 'euclidean' | 'manhattan' | 'cosine';

/** Map from scores to a probability vector over the memories (UHN "separation"). */
export type SeparationKind = 'softmax' | 'sparsemax' | 'entmax15' | 'entmax' | 'softmax1' | 'topk' | 'max';

/** Stage-I loss that spreads the normalized features of a memory set over the sphere. */
export type SeparationLossKind = 'uniform' | 'worst-pair' | 'lse';

export type FeatureMapKind = 'linear' | 'mlp';

/**
 * A feature map Phi with its parameters. Parameters may carry leading batch dims (one map
 * per memory set, as `fitFeatureMap` returns) or none (one shared map, such as a layer's
 * Phi0).
 *
 * - linear: params = [W] with W of shape [..., D, d]; Phi(x) = x W^T.
 * - mlp:    params = [W1, b1, W2] with W1 [..., H, d], b1 [..., H], W2 [..., D, H];
 *           Phi(x) = relu(x W1^T + b1) W2^T.
 */
export interface FeatureMap {
  kind: FeatureMapKind;
  params: Tensor[];
}

export interface SeparationOptions {
  /**
   * Which memories take part: broadcastable to the scores, 1/true = keep, 0/false = masked.
   * Masked memories get exactly zero weight; a row with every memory masked gives all zeros.
   */
  mask?: Tensor;
  /** alpha of 'entmax', in [1, 2]; a scalar number or a (possibly trainable) tensor. Default 1.5. */
  alpha?: number | Tensor;
  /** k of 'topk' (number of memories kept per query; `k` before 0.2.0). Default 1; must be >= 1. */
  topK?: number;
}

export interface SeparationLossOptions {
  /** [..., S] 1/true = the memory takes part; pairs with a masked memory are excluded. */
  mask?: Tensor;
  /** temperature t of 'uniform' and 'worst-pair'. Default 2. */
  t?: number;
  /** temperature tau of 'lse'. Default 0.1. */
  tau?: number;
}
