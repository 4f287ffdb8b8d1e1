/**
 * The package's one vocabulary as option declarations (./schema.ts): every layer, op and
 * builder that takes one of these options declares it with the spec here, so that the same
 * name means the same thing, with the same range and default, everywhere (the papers' names:
 * beta, separation, similarity, updateStepsMax ...). A layer that needs a different default
 * spreads the spec and says why beside it.
 *
 * The renames of 0.2.0 (old name -> new name) are declared here too, once per old name.
 */
import { bool, custom, int, number, oneOf, type Check, type OptionSpec, type Renamed } from './schema.js';
import { SEPARATION_KINDS } from './separation.js';
import { SIMILARITY_KINDS } from './similarity.js';
import { MASK_TYPES, type MaskType } from './masks.js';
import { MAX_UPDATE_STEPS } from './retrievalCore.js';
import { FIT_OPTIMIZERS, type FitOptimizer } from './fit.js';
import type { FeatureMapKind, SeparationKind, SeparationLossKind, SimilarityKind } from './types.js';

/** The package version that made the renames below. */
export const RENAMED_IN = '0.2.0';

/** beta as a plain number (one for all heads). */
export const BETA_NUMBER = number({ gt: 0 });

/** beta: the inverse temperature that multiplies the scores before the separation. */
export const BETA: OptionSpec<number | number[]> = {
  check: custom<number | number[]>(
    'a finite number > 0 or an array of them (one per head)',
    (v) => BETA_NUMBER.test(v) || (Array.isArray(v) && v.length > 0 && v.every(BETA_NUMBER.test)),
  ),
  defaultText: '1/sqrt(keyDim)',
  doc: 'Inverse temperature beta, multiplies the scores before the separation; one number or one per head.',
};

export const SEPARATION: OptionSpec<SeparationKind> = {
  check: oneOf(SEPARATION_KINDS),
  default: 'softmax',
  doc: "Map from scores to association weights: 'softmax', 'sparsemax', 'entmax15', 'entmax' (alpha), 'softmax1', 'topk' (topK) or 'max'.",
};

export const SIMILARITY: OptionSpec<SimilarityKind> = {
  check: oneOf(SIMILARITY_KINDS),
  default: 'dot',
  doc: "Score between a query and a memory: 'dot', 'euclidean' (-||q-k||^2), 'manhattan' (-||q-k||_1) or 'cosine'.",
};

/** alpha of 'entmax' (a number; the layers hold it as a weight, see ALPHA_TRAINABLE). */
export const ALPHA: OptionSpec<number> = {
  check: number({ ge: 1, le: 2 }),
  default: 1.5,
  appliesIf: { option: 'separation', is: ['entmax'] },
  doc: "alpha of separation 'entmax', in [1, 2] (1 = softmax, 1.5 = entmax15, 2 = sparsemax); a layer's initial value when trainable.",
};

export const ALPHA_TRAINABLE: OptionSpec<boolean> = {
  check: bool,
  default: true,
  appliesIf: { option: 'separation', is: ['entmax'] },
  doc: "Learn alpha (one per head) with the task loss (separation 'entmax').",
};

export const TOP_K: OptionSpec<number> = {
  check: int(1),
  default: 1,
  appliesIf: { option: 'separation', is: ['topk'] },
  doc: "k of separation 'topk': memories kept per query.",
};

/**
 * updateStepsMax: the number of EXTRA update steps after the first retrieval (ml-jku's
 * meaning): 0 = one retrieval (attention-like), n = up to n + 1 steps.
 */
export const UPDATE_STEPS_MAX: OptionSpec<number> = {
  check: custom<number>(
    `an integer in [0, ${MAX_UPDATE_STEPS - 1}] (extra update steps after the first retrieval; ml-jku's None, iterate until convergence, is not offered: it needs a data read-back per step; give a bound and updateStepsEps > 0 to stop rows early)`,
    (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_UPDATE_STEPS - 1,
  ),
  default: 0,
  nullIsValue: true,
  doc: 'Extra update steps after the first retrieval (ml-jku): 0 = one retrieval, n = up to n + 1 steps, each state becoming the next query.',
};

export const UPDATE_STEPS_EPS: OptionSpec<number> = {
  check: number({ ge: 0 }),
  default: 1e-4,
  doc: 'A query row stops updating once its association moved by <= this (L2 over the memories) in one step (per row: samples never couple).',
};

export const MASK_TYPE: OptionSpec<MaskType> = {
  check: oneOf(MASK_TYPES),
  default: 'allowed',
  doc: "How the association mask is written: 'allowed' (bool or 0/1, 1 = may associate) or 'additive' (0 = allowed, -Infinity = blocked).",
};

export const SEPARATION_LOSS_KINDS: readonly SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

export const SEPARATION_LOSS: OptionSpec<SeparationLossKind> = {
  check: oneOf(SEPARATION_LOSS_KINDS),
  default: 'lse',
  doc: "Stage-I separation loss: 'uniform', 'worst-pair' or 'lse' (U-Hop+).",
};

export const SEPARATION_LOSS_T: OptionSpec<number> = {
  check: number({ gt: 0 }),
  defaultText: '2',
  doc: "Temperature t of the 'uniform' and 'worst-pair' separation losses.",
};

export const SEPARATION_LOSS_TAU: OptionSpec<number> = {
  check: number({ gt: 0 }),
  defaultText: '0.1',
  doc: "Temperature tau of the 'lse' separation loss.",
};

export const FIT_OPTIMIZER: OptionSpec<FitOptimizer> = {
  check: oneOf(FIT_OPTIMIZERS),
  default: 'normalized',
  doc: "Stage-I step rule: 'normalized' (relative step with backtracking; never raises the loss), 'sgd' (the papers' plain steps) or 'adam'.",
};

export const FIT_LR: OptionSpec<number> = {
  check: number({ gt: 0 }),
  defaultText: "'normalized': 0.5 (linear) / 0.1 (mlp); 'sgd', 'adam': 0.1",
  doc: "Stage-I step size (relative with 'normalized', the learning rate with 'sgd'/'adam').",
};

export const FIT_ROW_NORMALIZE: OptionSpec<boolean> = {
  check: bool,
  default: false,
  doc: "Row-normalize W after the Stage-I fit (the U-Hop paper's variant; 'linear' only).",
};

export const FEATURE_DIM: OptionSpec<number> = {
  check: int(1),
  defaultText: 'the key dimension',
  doc: 'Feature dimension D of Phi; D > keyDim is U-Hop+ (spherical codes).',
};

export const FEATURE_MAP_KINDS: readonly FeatureMapKind[] = ['linear', 'mlp'];

export const SEED: OptionSpec<number> = {
  check: number(),
  doc: 'Seed of the random initial weights (reproducible runs).',
};

/** The options shared by the public builders (src/models). */

/** A dropout rate. */
export const DROPOUT_RATE: OptionSpec<number> = {
  check: number({ ge: 0, lt: 1 }),
  default: 0,
  doc: 'Dropout rate.',
};

/** A builder's seed: every initializer and dropout stream derives its own from it. */
export const MODEL_SEED: OptionSpec<number> = {
  check: int(),
  doc: 'Seed of the weight initializers and dropout streams (the same seed builds and trains the same model); unseeded when absent.',
};

/** A layer or model name. */
export const NAME: Check<string> = { expected: 'a string', test: (v): v is string => typeof v === 'string' };

/** A list of widths (e.g. hidden layers). */
export const INT_LIST = custom<number[]>(
  'an array of integers >= 1',
  (v) => Array.isArray(v) && v.every((h) => Number.isInteger(h) && h >= 1),
);

/** A nested options object (checked by the schema of whatever it is passed on to). */
export const OPTIONS_OBJECT = custom<never>('an options object', (v) => v !== null && typeof v === 'object' && !Array.isArray(v));

/**
 * Renames shared by the layers (a layer adds its own): the trio's `scaling` (ml-jku's name)
 * is `beta`, the papers' and UHopAttention's.
 */
export const LAYER_RENAMES: Renamed = {
  scaling: { to: 'beta', since: RENAMED_IN },
};

/** Renames of the retrieval ops (`retrieve`, `uhopRetrieve`, `UHopMemory`). */
export const RETRIEVE_RENAMES: Renamed = {
  k: { to: 'topK', since: RENAMED_IN },
  steps: {
    to: 'updateStepsMax',
    since: RENAMED_IN,
    note: 'it now counts the extra steps after the first: steps n is updateStepsMax n - 1',
  },
  eps: { to: 'updateStepsEps', since: RENAMED_IN, note: 'default 1e-4, was 0' },
};

/** Renames of the Stage-I options of `UHopMemory` / `uhopRetrieve` (the layers' names). */
export const MEMORY_FIT_RENAMES: Renamed = {
  rowNormalize: { to: 'fitRowNormalize', since: RENAMED_IN },
  t: { to: 'separationLossT', since: RENAMED_IN },
  tau: { to: 'separationLossTau', since: RENAMED_IN },
};
