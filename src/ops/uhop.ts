/**
 * U-Hop for plain associative memory: store patterns, fit Phi on them (Stage I), retrieve
 * from corrupted queries with the kernel <Phi(q), Phi(k)> (Stage II).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fitFeatureMap, type FitOptimizer } from './fit.js';
import { linearFeatureMap, mlpFeatureMap, disposeFeatureMap } from './featureMap.js';
import { retrieve, checkPositiveInt, type RetrieveOptions, type RetrieveResult } from './retrieve.js';
import type { FeatureMap, FeatureMapKind, SeparationLossKind } from './types.js';
import { checkOptions, optionKeys } from './options.js';
import { allowedMask, combineMasks } from './masks.js';

export interface UHopOptions extends Omit<RetrieveOptions, 'featureMap' | 'values' | 'returnAssociation'> {
  /** Kind of Phi. Default 'linear'. */
  featureMap?: FeatureMapKind;
  /** Feature dimension D; D > d is U-Hop+ (spherical-code paper). Default d. */
  featureDim?: number;
  /** Initial Phi0: 'identity' (default; with 0 fit steps U-Hop equals the plain network), 'orthogonal' or 'normal'. */
  init?: 'identity' | 'orthogonal' | 'normal';
  /** Stage-I steps. Default 100. */
  fitSteps?: number;
  /**
   * Stage-I step size: with 'normalized' (the default) a relative step (each step moves the
   * features Phi(k) by fitLr times their norm, or less after backtracking); with 'sgd' / 'adam'
   * the absolute learning rate. Default: 'normalized' 0.5 (linear) / 0.1 (mlp); 'sgd' and
   * 'adam' 0.1.
   */
  fitLr?: number;
  /** Stage-I step rule: 'normalized' (default; never raises the loss), 'sgd' (the papers' plain steps) or 'adam'. */
  fitOptimizer?: FitOptimizer;
  /** Separation loss of Stage I. Default 'lse' (U-Hop+). */
  separationLoss?: SeparationLossKind;
  /** Row-normalize W after Stage I (the U-Hop paper's variant). Default false. */
  rowNormalize?: boolean;
  /** Temperature t of 'uniform'/'worst-pair'. */
  t?: number;
  /** Temperature tau of 'lse'. */
  tau?: number;
  /** Seed for a random Phi0 init. */
  seed?: number;
  /** [..., S] 1 = the stored pattern takes part (in the fit and in the retrieval). */
  memoryMask?: tf.Tensor;
}

/**
 * The largest `fitSteps` UHopMemory accepts. The fit runs once per `store` (not per call as
 * in the layers), so the bound is generous: it only turns a typo (1e6) into an error instead
 * of a run of hours.
 */
export const MAX_MEMORY_FIT_STEPS = 100_000;

/**
 * A U-Hop associative memory. `store` runs Stage I on the memory set(s); `retrieve` runs
 * Stage II. Memory sets may be batched ([..., S, d]): each set gets its own Phi.
 *
 * @example
 * ```ts
 * const memory = new UHopMemory({ fitSteps: 100, beta: 1 });
 * memory.store(patterns);                               // [M, d] in [0, 1]
 * const { states } = memory.retrieve(corruptedQueries); // [L, d]
 * memory.dispose();
 * ```
 */
const UHOP_MEMORY_KEYS = optionKeys<UHopOptions>()([
  'featureMap',
  'featureDim',
  'init',
  'fitSteps',
  'fitLr',
  'fitOptimizer',
  'separationLoss',
  'rowNormalize',
  't',
  'tau',
  'seed',
  'memoryMask',
  'separation',
  'similarity',
  'beta',
  'alpha',
  'k',
  'steps',
  'eps',
  'mask',
  'maskType',
]);

export class UHopMemory {
  readonly options: UHopOptions;
  private memories?: tf.Tensor;
  private phi?: FeatureMap;
  private trace?: tf.Tensor;

  constructor(options: UHopOptions = {}) {
    checkOptions(options, UHOP_MEMORY_KEYS, 'UHopMemory');
    this.options = { ...options };
    const fitSteps = checkPositiveInt(options.fitSteps ?? 100, 'fitSteps', 'UHopMemory', 0);
    if (fitSteps > MAX_MEMORY_FIT_STEPS) {
      throw new Error(
        `UHopMemory: fitSteps must be at most ${MAX_MEMORY_FIT_STEPS}, got ${fitSteps} (Stage I runs once per store; the loss flattens within a few hundred steps)`,
      );
    }
    if (options.featureDim !== undefined) checkPositiveInt(options.featureDim, 'featureDim', 'UHopMemory');
  }

  /** The fitted Phi (params carry the memory sets' leading dims). */
  get featureMap(): FeatureMap {
    if (!this.phi) throw new Error('UHopMemory: call store(memories) before reading featureMap');
    return this.phi;
  }

  /** Stage-I loss before each step and after the last, [fitSteps + 1, ...]. */
  get lossTrace(): tf.Tensor {
    if (!this.trace) throw new Error('UHopMemory: call store(memories) before reading lossTrace');
    return this.trace;
  }

  /** Stores the memory set(s) [..., S, d] and fits Phi on them (Stage I). Replaces earlier memories. */
  store(memories: tf.Tensor): this {
    if (memories.rank < 2) {
      throw new Error(`UHopMemory.store: memories must be [..., S, d], got shape [${memories.shape}]`);
    }
    this.dispose();
    const o = this.options;
    const d = memories.shape[memories.rank - 1];
    const D = o.featureDim ?? d;
    const kind = o.featureMap ?? 'linear';
    const phi0 =
      kind === 'linear' ? linearFeatureMap(d, D, { init: o.init ?? 'identity', seed: o.seed }) : mlpFeatureMap(d, D, { seed: o.seed });
    try {
      const { featureMap, lossTrace } = fitFeatureMap(memories, phi0, {
        steps: o.fitSteps ?? 100,
        lr: o.fitLr,
        loss: o.separationLoss ?? 'lse',
        optimizer: o.fitOptimizer ?? 'normalized',
        rowNormalize: o.rowNormalize ?? false,
        mask: o.memoryMask,
        t: o.t,
        tau: o.tau,
      });
      this.phi = featureMap;
      this.trace = lossTrace;
    } finally {
      disposeFeatureMap(phi0);
    }
    this.memories = tf.keep(memories.clone());
    return this;
  }

  /** Retrieves from queries [..., L, d] with the fitted kernel (Stage II). */
  retrieve(queries: tf.Tensor, options: { returnAssociation?: boolean } = {}): RetrieveResult {
    checkOptions(options, ['returnAssociation'], 'UHopMemory.retrieve');
    if (!this.memories || !this.phi) throw new Error('UHopMemory.retrieve: call store(memories) first');
    const {
      featureMap: _f,
      featureDim: _D,
      init: _i,
      fitSteps: _s,
      fitLr: _l,
      fitOptimizer: _o,
      separationLoss: _L,
      rowNormalize: _r,
      t: _t,
      tau: _tau,
      seed: _seed,
      memoryMask,
      mask: associationMask,
      ...retrieveOptions
    } = this.options;
    // The padding mask [..., S] and the association mask [..., L, S] both apply.
    // With a padding mask, the association mask is brought to the 'allowed' form first.
    const mask = memoryMask
      ? tf.tidy(() =>
          combineMasks(
            associationMask
              ? allowedMask(associationMask, retrieveOptions.maskType ?? 'allowed', 'UHopMemory.retrieve', 'mask')
              : undefined,
            tf.expandDims(memoryMask, -2),
          ),
        )
      : associationMask;
    try {
      return retrieve(queries, this.memories, {
        ...retrieveOptions,
        mask,
        ...(memoryMask ? { maskType: 'allowed' as const } : {}),
        featureMap: this.phi,
        returnAssociation: options.returnAssociation,
      });
    } finally {
      if (mask !== associationMask) mask?.dispose();
    }
  }

  /** Frees the stored memories, Phi and the loss trace. */
  dispose(): void {
    this.memories?.dispose();
    if (this.phi) disposeFeatureMap(this.phi);
    this.trace?.dispose();
    this.memories = this.phi = this.trace = undefined;
  }
}

/**
 * One-shot U-Hop: fit Phi on `memories`, retrieve from `queries`, free everything but the
 * returned tensors.
 *
 * @example
 * ```ts
 * const { states, lossTrace } = uhopRetrieve(memories, queries, { fitSteps: 100, separation: 'softmax' });
 * ```
 */
export function uhopRetrieve(
  memories: tf.Tensor,
  queries: tf.Tensor,
  options: UHopOptions & { returnAssociation?: boolean } = {},
): RetrieveResult & { lossTrace: tf.Tensor } {
  const { returnAssociation: _r, ...memoryOptions } = options;
  const memory = new UHopMemory(memoryOptions);
  try {
    memory.store(memories);
    const result = memory.retrieve(queries, { returnAssociation: options.returnAssociation });
    return { ...result, lossTrace: memory.lossTrace.clone() };
  } finally {
    memory.dispose();
  }
}
