/**
 * U-Hop for plain associative memory: store patterns, fit Phi on them (Stage I), retrieve
 * from corrupted queries with the kernel <Phi(q), Phi(k)> (Stage II).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fitFeatureMap, type FitOptimizer } from './fit.js';
import { linearFeatureMap, mlpFeatureMap, disposeFeatureMap } from './featureMap.js';
import { retrieve, RETRIEVE_SCHEMA, type RetrieveOptions, type RetrieveResult } from './retrieve.js';
import type { FeatureMap, FeatureMapKind, SeparationLossKind } from './types.js';
import { checkOptions } from './options.js';
import { defineSchema, int, oneOf, parseOptions, type Resolved } from './schema.js';
import {
  FEATURE_DIM,
  FEATURE_MAP_KINDS,
  FIT_LR,
  FIT_OPTIMIZER,
  FIT_ROW_NORMALIZE,
  MEMORY_FIT_RENAMES,
  RETRIEVE_RENAMES,
  SEED,
  SEPARATION_LOSS,
  SEPARATION_LOSS_T,
  SEPARATION_LOSS_TAU,
} from './vocabulary.js';
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
  /** Row-normalize W after Stage I (the U-Hop paper's variant; `rowNormalize` before 0.2.0). Default false. */
  fitRowNormalize?: boolean;
  /** Temperature t of 'uniform'/'worst-pair' (`t` before 0.2.0). Default 2. */
  separationLossT?: number;
  /** Temperature tau of 'lse' (`tau` before 0.2.0). Default 0.1. */
  separationLossTau?: number;
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
const { featureMap: _featureMap, values: _values, returnAssociation: _returnAssociation, ...RETRIEVE_PART } = RETRIEVE_SCHEMA;

/** The declaration of {@link UHopOptions} (src/ops/schema.ts): the Stage-I options carry the layers' names. */
export const UHOP_MEMORY_SCHEMA = defineSchema<UHopOptions>()({
  featureMap: { check: oneOf(FEATURE_MAP_KINDS), default: 'linear', doc: "Kind of Phi: 'linear' or 'mlp'." },
  featureDim: { ...FEATURE_DIM, defaultText: "the memories' dimension d" },
  init: {
    check: oneOf(['identity', 'orthogonal', 'normal'] as const),
    default: 'identity',
    doc: "Initial linear Phi0: 'identity' (fitSteps 0 equals the plain network), 'orthogonal' or 'normal'.",
  },
  fitSteps: {
    check: int(0, MAX_MEMORY_FIT_STEPS),
    default: 100,
    doc: 'Stage-I steps (once per store).',
  },
  fitLr: FIT_LR,
  fitOptimizer: FIT_OPTIMIZER,
  separationLoss: SEPARATION_LOSS,
  fitRowNormalize: FIT_ROW_NORMALIZE,
  separationLossT: SEPARATION_LOSS_T,
  separationLossTau: SEPARATION_LOSS_TAU,
  seed: { ...SEED, doc: 'Seed for a random Phi0 init.' },
  memoryMask: { check: RETRIEVE_SCHEMA.mask.check, doc: '[..., S] 1 = the stored pattern takes part (in the fit and in the retrieval).' },
  ...RETRIEVE_PART,
});

const UHOP_MEMORY_RENAMES = { ...RETRIEVE_RENAMES, ...MEMORY_FIT_RENAMES };

export class UHopMemory {
  readonly options: UHopOptions;
  private readonly resolved: Resolved<UHopOptions>;
  private memories?: tf.Tensor;
  private phi?: FeatureMap;
  private trace?: tf.Tensor;

  constructor(options: UHopOptions = {}) {
    this.resolved = parseOptions(UHOP_MEMORY_SCHEMA, options, 'UHopMemory', { renamed: UHOP_MEMORY_RENAMES });
    this.options = { ...options };
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
    const o = this.resolved;
    const d = memories.shape[memories.rank - 1];
    const D = o.featureDim ?? d;
    const phi0 = o.featureMap === 'linear' ? linearFeatureMap(d, D, { init: o.init, seed: o.seed }) : mlpFeatureMap(d, D, { seed: o.seed });
    try {
      const { featureMap, lossTrace } = fitFeatureMap(memories, phi0, {
        steps: o.fitSteps,
        lr: o.fitLr,
        loss: o.separationLoss,
        optimizer: o.fitOptimizer,
        rowNormalize: o.fitRowNormalize,
        mask: o.memoryMask,
        t: o.separationLossT,
        tau: o.separationLossTau,
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
      fitRowNormalize: _r,
      separationLossT: _t,
      separationLossTau: _tau,
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
 * returned tensors. Queries first, as in `retrieve` (before 0.2.0 the memories came first).
 *
 * @example
 * ```ts
 * const { states, lossTrace } = uhopRetrieve(queries, memories, { fitSteps: 100, separation: 'softmax' });
 * ```
 */
export function uhopRetrieve(
  queries: tf.Tensor,
  memories: tf.Tensor,
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
