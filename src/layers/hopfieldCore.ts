/**
 * Multi-head Hopfield retrieval shared by the layers (`Hopfield`, `HopfieldPooling`,
 * `HopfieldLayer`, `UHopAttention`): everything that happens AFTER the input projections.
 *
 * Main entry point:
 *
 *     hopfieldRetrieval(q [B,H,L,dk], k [B|1,H,S,dk], v [B|1,H,S,dv], options)
 *       -> { output [B,H,L,dv], association? [B,H,L,S] }
 *
 * per head h and sample b (one batched computation, no JS loop over samples or heads):
 *
 *   1. U-Hop Stage I (only when `options.uhop` is given): Phi is fitted on this sample's
 *      projected keys k[b,h] (memories outside `fitMask`, default `memoryMask`, excluded;
 *      a shared memory k [1,H,S,dk] is fitted once per head), starting from Phi0[h], by
 *      `fitFeatureMapOp` (src/ops/fit.ts): the fit sees the keys detached, its result passes
 *      the task gradient straight through to Phi0 (first-order U-Hop).
 *   2. scores  = beta_h * sim(Phi(x_t), Phi(k))   (Phi = identity without U-Hop)
 *   3. xi_t    = sep(scores; mask)                 masked memories get exactly zero weight
 *   4. x_{t+1} = xi_t k                            (`steps` > 1: iterate in key space; a row
 *      whose association moved by <= `stepsEps` (L2 over the memories) is frozen with
 *      tf.where: no data download, and the test is per row, so samples never couple)
 *   5. output  = dropout(xi_last) v                (dropout only when `training`)
 *
 * Masks: `associationMask` (broadcastable to [B,H,L,S]) and `memoryMask` ([B,S] or [B,H,S]
 * padding) combine; 1 = allowed. On the wasm backend the batched products run through
 * `batchMatMul` (one depthwise convolution each, with its own backward pass).
 *
 * Also here: the U-Hop layer options (`UHopArgs`, defaults, validation, Phi0 weight specs),
 * so that every layer of the package reads them the same way; and the small tensor helpers
 * the layers share (head split/merge, layer norm, bias/zero memories, mask assembly).
 */
import * as tf from '@tensorflow/tfjs-core';
import { similarity, checkSimilarityKind } from '../ops/similarity.js';
import { separation, checkSeparationKind } from '../ops/separation.js';
import { applyFeatureMap, disposeFeatureMap, linearFeatureMap, mlpFeatureMap } from '../ops/featureMap.js';
import { fitFeatureMap, fitFeatureMapOp } from '../ops/fit.js';
import { batchMatMul } from '../ops/batchMatMul.js';
import type { FeatureMap, FeatureMapKind, SeparationKind, SeparationLossKind, SimilarityKind } from '../ops/types.js';
import { getInitializer, serializeKerasObject, type Initializer, type InitializerLike } from './keras.js';

// ---------------------------------------------------------------------------------------
// U-Hop options
// ---------------------------------------------------------------------------------------

/** Which feature map Phi a layer fits per memory set; 'none' = plain modern Hopfield. */
export type FeatureMapOption = 'none' | FeatureMapKind;

/** The U-Hop options every layer of this package accepts (camelCase, with the defaults below). */
export interface UHopArgs {
  /** Phi: 'none' (plain modern Hopfield), 'linear' (Phi(x) = W x, the paper's) or 'mlp'. Default 'none'. */
  featureMap?: FeatureMapOption;
  /** Feature dimension D of Phi; D > keyDim is U-Hop+ (spherical codes). Default: the key dimension per head. */
  featureDim?: number;
  /** Hidden width of the 'mlp' feature map. Default: 2 * featureDim (where its init is an exact isometry). */
  featureHiddenDim?: number;
  /** Stage-I separation loss: 'uniform', 'worst-pair' or 'lse' (U-Hop+). Default 'lse'. */
  separationLoss?: SeparationLossKind;
  /** Temperature t of the 'uniform' and 'worst-pair' losses. Default 2 (the ops' default). */
  separationLossT?: number;
  /** Temperature tau of the 'lse' loss. Default 0.1 (the ops' default). */
  separationLossTau?: number;
  /** Stage-I gradient steps per call (0 = use Phi0 as is). Default 5. */
  fitSteps?: number;
  /** Stage-I learning rate. Default 0.1. */
  fitLr?: number;
  /** Stage-I optimizer: 'sgd' (the paper's plain steps) or 'adam'. Default 'sgd'. */
  fitOptimizer?: 'sgd' | 'adam';
  /** Row-normalize W after the fit (the U-Hop paper's variant; 'linear' only). Default false. */
  fitRowNormalize?: boolean;
  /** Train Phi0 with the task loss (straight through the fit). Default true. */
  phiTrainable?: boolean;
  /**
   * Initializer of the linear Phi0 [heads, D, keyDim]: 'isometry' (default: W^T W = I, so
   * <Phi(q), Phi(k)> = q.k and fitSteps 0 reproduces the plain layer; W = I when D = keyDim,
   * random orthonormal columns when D > keyDim), 'identity' ([I; 0]: the extra D - keyDim
   * features start and, under the separation loss, stay at zero) or any Keras initializer.
   * The 'mlp' map always starts from the core's isometric init (`mlpFeatureMap`), so with
   * fitSteps 0 it too reproduces the plain layer.
   */
  phi0Initializer?: InitializerLike;
}

/** U-Hop options with every default filled in (what `resolveUHopArgs` returns). */
export interface UHopConfig {
  featureMap: FeatureMapOption;
  featureDim: number | null;
  featureHiddenDim: number | null;
  separationLoss: SeparationLossKind;
  separationLossT: number | null;
  separationLossTau: number | null;
  fitSteps: number;
  fitLr: number;
  fitOptimizer: 'sgd' | 'adam';
  fitRowNormalize: boolean;
  phiTrainable: boolean;
  phi0Initializer: string | tf.serialization.ConfigDict;
}

/** Names of the `UHopArgs` options (for unknown-option checks). */
export const UHOP_ARG_KEYS: readonly (keyof UHopArgs)[] = [
  'featureMap',
  'featureDim',
  'featureHiddenDim',
  'separationLoss',
  'separationLossT',
  'separationLossTau',
  'fitSteps',
  'fitLr',
  'fitOptimizer',
  'fitRowNormalize',
  'phiTrainable',
  'phi0Initializer',
];

const FEATURE_MAPS: readonly FeatureMapOption[] = ['none', 'linear', 'mlp'];
const SEPARATION_LOSSES: readonly SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

/** Validates the U-Hop options and fills in the defaults; errors name `where` and the option. */
export function resolveUHopArgs(args: UHopArgs, where: string): UHopConfig {
  const featureMap = args.featureMap ?? 'none';
  if (!FEATURE_MAPS.includes(featureMap)) {
    throw new Error(`${where}: featureMap must be one of ${FEATURE_MAPS.join(', ')}, got '${String(featureMap)}'`);
  }
  const posInt = (v: unknown, name: string): number | null => {
    if (v == null) return null;
    if (!isNonNegInt(v) || v < 1) throw new Error(`${where}: ${name} must be an integer >= 1, got ${String(v)}`);
    return v;
  };
  const posNum = (v: unknown, name: string): number | null => {
    if (v == null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: ${name} must be a finite number > 0, got ${String(v)}`);
    return v;
  };
  const separationLoss = args.separationLoss ?? 'lse';
  if (!SEPARATION_LOSSES.includes(separationLoss)) {
    throw new Error(`${where}: separationLoss must be one of ${SEPARATION_LOSSES.join(', ')}, got '${String(separationLoss)}'`);
  }
  const fitSteps = args.fitSteps ?? 5;
  if (!isNonNegInt(fitSteps)) throw new Error(`${where}: fitSteps must be an integer >= 0, got ${String(fitSteps)}`);
  const fitOptimizer = args.fitOptimizer ?? 'sgd';
  if (fitOptimizer !== 'sgd' && fitOptimizer !== 'adam') {
    throw new Error(`${where}: fitOptimizer must be 'sgd' or 'adam', got '${String(fitOptimizer)}'`);
  }
  for (const name of ['fitRowNormalize', 'phiTrainable'] as const) {
    if (args[name] != null && typeof args[name] !== 'boolean') {
      throw new Error(`${where}: ${name} must be a boolean, got ${String(args[name])}`);
    }
  }
  let phi0Initializer: string | tf.serialization.ConfigDict = 'isometry';
  if (args.phi0Initializer != null) {
    const p = args.phi0Initializer;
    if (p === 'isometry' || p === 'identity') phi0Initializer = p;
    else {
      // Resolve now so that a bad name fails at construction; keep the serializable form.
      const init = getInitializer(p, 'zeros', where, 'phi0Initializer');
      phi0Initializer = typeof p === 'string' ? p : (serializeKerasObject(init) as tf.serialization.ConfigDict);
    }
  }
  const cfg: UHopConfig = {
    featureMap,
    featureDim: posInt(args.featureDim, 'featureDim'),
    featureHiddenDim: posInt(args.featureHiddenDim, 'featureHiddenDim'),
    separationLoss,
    separationLossT: posNum(args.separationLossT, 'separationLossT'),
    separationLossTau: posNum(args.separationLossTau, 'separationLossTau'),
    fitSteps,
    fitLr: posNum(args.fitLr, 'fitLr') ?? 0.1,
    fitOptimizer,
    fitRowNormalize: args.fitRowNormalize ?? false,
    phiTrainable: args.phiTrainable ?? true,
    phi0Initializer,
  };
  if (cfg.fitRowNormalize && featureMap === 'mlp') {
    throw new Error(`${where}: fitRowNormalize applies to the 'linear' feature map only, got featureMap 'mlp'`);
  }
  return cfg;
}

/** The U-Hop part of a layer's getConfig (only what is needed to rebuild). */
export function uhopConfigToJSON(cfg: UHopConfig): tf.serialization.ConfigDict {
  const out: tf.serialization.ConfigDict = { featureMap: cfg.featureMap };
  if (cfg.featureMap === 'none') return out;
  Object.assign(out, {
    featureDim: cfg.featureDim,
    featureHiddenDim: cfg.featureHiddenDim,
    separationLoss: cfg.separationLoss,
    separationLossT: cfg.separationLossT,
    separationLossTau: cfg.separationLossTau,
    fitSteps: cfg.fitSteps,
    fitLr: cfg.fitLr,
    fitOptimizer: cfg.fitOptimizer,
    fitRowNormalize: cfg.fitRowNormalize,
    phiTrainable: cfg.phiTrainable,
    phi0Initializer: cfg.phi0Initializer,
  });
  return out;
}

/** A weight a layer must create (with its protected addWeight) to hold Phi0. */
export interface Phi0WeightSpec {
  name: string;
  shape: number[];
  initializer: Initializer;
  trainable: boolean;
}

/**
 * Initializers of Phi0's parameters for `numHeads` heads, stacked from the functional core's
 * per-map inits (one seed per head): the linear 'isometry' (identity when D = d, random
 * orthonormal columns when D > d) and the 'mlp' isometric init (relu(A x) - relu(-A x)
 * trick, exact when hidden >= 2 D). The three mlp initializers share one draw: tfjs creates
 * W1, b1 and W2 in that order, and the draw is freed after the last.
 */
function stackedInitializers(numHeads: number, make: (head: number) => FeatureMap): Initializer[] {
  let cache: FeatureMap[] | null = null;
  let used = 0;
  const count = () => (cache ? cache[0].params.length : 0);
  const get = (i: number): tf.Tensor => {
    if (!cache) cache = Array.from({ length: numHeads }, (_, h) => make(h));
    const out = tf.stack(cache.map((m) => m.params[i]));
    if (++used === count()) {
      for (const m of cache) disposeFeatureMap(m);
      cache = null;
      used = 0;
    }
    return out;
  };
  return [0, 1, 2].map((i) => ({ apply: () => get(i) }) as unknown as Initializer);
}

/** `[I; 0]` per head. */
function identityInitializer(): Initializer {
  return {
    apply(shape: number[]) {
      return tf.tidy(() => {
        const [D, d] = shape.slice(-2);
        return tf.broadcastTo(tf.eye(D, d), shape);
      });
    },
  } as unknown as Initializer;
}

/**
 * Phi0's weights for `numHeads` heads with key dimension `keyDim`:
 * linear: `phi0_kernel` [H, D, keyDim]; mlp: `phi0_w1` [H, Hd, keyDim], `phi0_b1` [H, Hd],
 * `phi0_w2` [H, D, Hd]. Empty for featureMap 'none'.
 */
export function phi0WeightSpecs(
  numHeads: number,
  keyDim: number,
  cfg: UHopConfig,
  where: string,
  seed: number | null = null,
): Phi0WeightSpec[] {
    if (cfg.featureMap === 'none') return [];
  const D = cfg.featureDim ?? keyDim;
  const trainable = cfg.phiTrainable;
  if (cfg.featureMap === 'linear') {
    if (D < keyDim && cfg.phi0Initializer === 'isometry') {
      throw new Error(
        `${where}: featureDim (${D}) < key dimension per head (${keyDim}) cannot start from an isometry; use featureDim >= ${keyDim} or another phi0Initializer`,
      );
    }
    const init =
      cfg.phi0Initializer === 'isometry'
        ? stackedInitializers(numHeads, (h) =>
            linearFeatureMap(keyDim, D, { init: D === keyDim ? 'identity' : 'orthogonal', ...(seed == null ? {} : { seed: seed + h }) }),
          )[0]
        : cfg.phi0Initializer === 'identity'
          ? identityInitializer()
          : getInitializer(cfg.phi0Initializer as InitializerLike, 'zeros', where, 'phi0Initializer', seed);
    return [{ name: 'phi0_kernel', shape: [numHeads, D, keyDim], initializer: init, trainable }];
  }
  const Hd = cfg.featureHiddenDim ?? 2 * D;
  const [i1, ib, i2] = stackedInitializers(numHeads, (h) => mlpFeatureMap(keyDim, D, { hidden: Hd, ...(seed == null ? {} : { seed: seed + h }) }));
  return [
    { name: 'phi0_w1', shape: [numHeads, Hd, keyDim], initializer: i1, trainable },
    { name: 'phi0_b1', shape: [numHeads, Hd], initializer: ib, trainable },
    { name: 'phi0_w2', shape: [numHeads, D, Hd], initializer: i2, trainable },
  ];
}

/** What `hopfieldRetrieval` needs to run U-Hop: the resolved options and Phi0's current values. */
export interface UHopRuntime {
  config: UHopConfig;
  /** Phi0 per head, as `phi0WeightSpecs` describes (values read from the layer's weights). */
  phi0: tf.Tensor[];
}

function fitOptions(cfg: UHopConfig, mask: tf.Tensor | undefined) {
  return {
    steps: cfg.fitSteps,
    lr: cfg.fitLr,
    loss: cfg.separationLoss,
    optimizer: cfg.fitOptimizer,
    rowNormalize: cfg.fitRowNormalize,
    mask,
    ...(cfg.separationLossT != null ? { t: cfg.separationLossT } : {}),
    ...(cfg.separationLossTau != null ? { tau: cfg.separationLossTau } : {}),
  };
}

/** Keys [B|1, H, S, dk] and a memory mask: both brought to the same leading dims for the fit. */
function fitInputs(keys: tf.Tensor, memoryMask: tf.Tensor | undefined): { keys: tf.Tensor; mask?: tf.Tensor } {
  if (!memoryMask) return { keys };
  const [B0, H, S, dk] = keys.shape as number[];
  const B = Math.max(B0, memoryMask.shape[0]);
  const k = B0 === B ? keys : tf.broadcastTo(keys, [B, H, S, dk]);
  const m = tf.broadcastTo(memoryMask, [B, H, S]);
  return { keys: k, mask: m };
}

/**
 * Stage I inside a layer: Phi fitted per (sample, head) on the projected keys, from Phi0.
 * Differentiable as `fitFeatureMapOp` defines it: zero gradient to the keys, the fitted
 * parameters' gradient straight through to Phi0.
 *
 * @param keys projected keys [B|1, H, S, dk]
 * @param memoryMask [B, 1|H, S] 1 = a real memory (others are left out of the fit)
 * @returns the fitted Phi, params with leading dims [B, H]
 */
export function uhopFit(keys: tf.Tensor, memoryMask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
  const kind = uhop.config.featureMap as FeatureMapKind;
  if (uhop.config.fitSteps === 0) return { kind, params: uhop.phi0 };
  return tf.tidy(() => {
    const { keys: k, mask } = fitInputs(keys, memoryMask);
    const params = fitFeatureMapOp(k, uhop.phi0, kind, fitOptions(uhop.config, mask));
    return { kind, params };
  }) as FeatureMap;
}

/**
 * The Stage-I loss trace of the fit `uhopFit` runs: [fitSteps + 1, B, H], the loss of every
 * (sample, head) memory set before each step and after the last (detached, for inspection).
 */
export function uhopFitLossTrace(keys: tf.Tensor, memoryMask: tf.Tensor | undefined, uhop: UHopRuntime): tf.Tensor {
  const kind = uhop.config.featureMap as FeatureMapKind;
  return tf.tidy(() => {
    const { keys: k, mask } = fitInputs(keys, memoryMask);
    const { featureMap, lossTrace } = fitFeatureMap(k, { kind, params: uhop.phi0 }, fitOptions(uhop.config, mask));
    tf.dispose(featureMap.params);
    return lossTrace;
  });
}

// ---------------------------------------------------------------------------------------
// Batched matMul that is fast on wasm: src/ops/batchMatMul.ts (re-exported for the layers)
// ---------------------------------------------------------------------------------------

export { batchMatMul };

// ---------------------------------------------------------------------------------------
// Retrieval
// ---------------------------------------------------------------------------------------

export interface HopfieldRetrievalOptions {
  /** beta: a number (all heads) or one number per head; multiplies the scores before the separation. */
  beta: number | readonly number[];
  /** Default 'dot'. With U-Hop it is computed between Phi(q) and Phi(k). */
  similarity?: SimilarityKind;
  /** Default 'softmax'. */
  separation?: SeparationKind;
  /** alpha of 'entmax' (a number or a scalar tensor, e.g. a trainable weight). */
  alpha?: number | tf.Tensor;
  /** k of 'topk'. */
  topK?: number;
  /**
   * Which memory each query may associate with, broadcastable to [B, H, L, S]
   * (e.g. [L, S], [B, 1, L, S]); 1/true = allowed.
   */
  associationMask?: tf.Tensor;
  /**
   * Padding mask of the stored patterns, [B, S] (or [B, H, S]); 1/true = a real memory.
   * Padded memories get zero weight and are left out of the U-Hop fit.
   */
  memoryMask?: tf.Tensor;
  /**
   * Which memories the U-Hop fit uses, [B or 1, S] or [B or 1, H, S]; 1 = fitted. Default:
   * memoryMask. (The layers leave the zero-association memory out: it has no direction.)
   */
  fitMask?: tf.Tensor;
  /** Total number of update steps (>= 1). Default 1. */
  steps?: number;
  /** A row whose association changed by <= eps (L2 norm over the memories) stops updating. Default 0. */
  stepsEps?: number;
  /** Dropout rate on the association matrix, applied only when `training`. Default 0. */
  dropout?: number;
  training?: boolean;
  /** U-Hop: fit Phi per (sample, head) from Phi0 and score with <Phi(q), Phi(k)>. */
  uhop?: UHopRuntime;
  /** Also return the association matrix of the last step (before dropout). Default false. */
  returnAssociation?: boolean;
}

export interface HopfieldRetrievalResult {
  /** Retrieved patterns [B, H, L, dv]. */
  output: tf.Tensor;
  /** The association (separation output) of the last step [B, H, L, S], when asked for. */
  association?: tf.Tensor;
}

function betaTensor(beta: number | readonly number[], H: number, where: string): number | tf.Tensor {
  if (typeof beta === 'number') {
    if (!Number.isFinite(beta) || beta <= 0) throw new Error(`${where}: beta (scaling) must be a finite number > 0, got ${beta}`);
    return beta;
  }
  if (!Array.isArray(beta) || beta.length !== H || beta.some((b) => typeof b !== 'number' || !Number.isFinite(b) || b <= 0)) {
    throw new Error(`${where}: beta (scaling) per head must be ${H} finite numbers > 0, got ${JSON.stringify(beta)}`);
  }
  return tf.reshape(tf.tensor1d(beta as number[]), [1, H, 1, 1]);
}

/** 0/1 float mask of the given broadcastable tensors (null when none). */
export function combineMasks(...masks: (tf.Tensor | undefined | null)[]): tf.Tensor | undefined {
  let out: tf.Tensor | undefined;
  for (const m of masks) {
    if (!m) continue;
    const f = m.dtype === 'float32' ? tf.cast(tf.notEqual(m, 0), 'float32') : tf.cast(m, 'float32');
    out = out ? tf.mul(out, f) : f;
  }
  return out;
}

/**
 * Multi-head Hopfield retrieval on projected patterns (see the file header for the maths).
 *
 * @param q state patterns (queries) [B, H, L, dk]
 * @param k stored patterns (keys) [B or 1, H, S, dk]
 * @param v pattern projections (values) [B or 1, H, S, dv]
 *
 * @example
 * ```ts
 * const q = tf.randomNormal([2, 4, 5, 8]), k = tf.randomNormal([2, 4, 10, 8]);
 * const { output } = hopfieldRetrieval(q, k, k, { beta: 1 / Math.sqrt(8) });
 * // output.shape == [2, 4, 5, 8]
 * ```
 */
export function hopfieldRetrieval(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: HopfieldRetrievalOptions,
): HopfieldRetrievalResult {
  const where = 'hopfieldRetrieval';
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`${where}: q, k, v must be [B, H, L|S, dim], got [${q.shape}], [${k.shape}], [${v.shape}]`);
  }
  const [B, H, , dk] = q.shape as number[];
  if (k.shape[1] !== H || v.shape[1] !== H || k.shape[3] !== dk || k.shape[2] !== v.shape[2]) {
    throw new Error(`${where}: shapes do not fit: q [${q.shape}] (B,H,L,dk), k [${k.shape}] (B,H,S,dk), v [${v.shape}] (B,H,S,dv)`);
  }
  for (const [t, name] of [[k, 'k'], [v, 'v']] as const) {
    if (t.shape[0] !== B && t.shape[0] !== 1) throw new Error(`${where}: ${name} batch must be ${B} or 1, got [${t.shape}]`);
  }
  const simKind = options.similarity ?? 'dot';
  const sepKind = options.separation ?? 'softmax';
  checkSimilarityKind(simKind, where);
  checkSeparationKind(sepKind, where);
  const steps = options.steps ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`${where}: steps must be an integer >= 1, got ${steps}`);
  const eps = options.stepsEps ?? 0;
  if (typeof eps !== 'number' || !(eps >= 0)) throw new Error(`${where}: stepsEps must be a number >= 0, got ${eps}`);
  const rate = options.dropout ?? 0;
  if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw new Error(`${where}: dropout must be in [0, 1), got ${rate}`);
  const S = k.shape[2] as number;
  const dv = v.shape[3] as number;
  const memoryMask = options.memoryMask;
  if (memoryMask && !((memoryMask.rank === 2 || memoryMask.rank === 3) && memoryMask.shape[memoryMask.rank - 1] === S)) {
    throw new Error(`${where}: memoryMask must be [B, S] or [B, H, S] with S=${S}, got [${memoryMask.shape}]`);
  }

  return tf.tidy(() => {
    const beta = betaTensor(options.beta, H, where);
    // Padding mask as [B, 1|H, S] (for the fit) and [B, 1|H, 1, S] (for the scores).
    const mem3 = memoryMask ? (memoryMask.rank === 2 ? tf.expandDims(memoryMask, 1) : memoryMask) : undefined;
    const mask = combineMasks(options.associationMask, mem3 ? tf.expandDims(mem3, 2) : undefined);

    let phi: FeatureMap | undefined;
    if (options.uhop && options.uhop.config.featureMap !== 'none') {
      const fm = options.fitMask ?? mem3;
      const fm3 = fm && fm.rank === 2 ? tf.expandDims(fm, 1) : fm;
      phi = uhopFit(k, fm3 ? tf.cast(tf.notEqual(fm3, 0), 'float32') : undefined, options.uhop);
    }
    // tfjs' BatchMatMul gradient does not reduce broadcast batch dims: broadcast a shared
    // memory (batch 1) explicitly (broadcastTo's gradient sums). The fit above ran once on it.
    const kB = k.shape[0] === B ? k : tf.broadcastTo(k, [B, H, S, dk]);
    const vB = v.shape[0] === B ? v : tf.broadcastTo(v, [B, H, S, dv]);
    // Linear Phi with dot scores: <W x, W k> = x (W^T W) k^T, through the Gram matrix M = W^T W
    // [.., dk, dk] when that is fewer multiply-adds than projecting the S memories (e.g. pooling,
    // L = 1). Otherwise x W^T as a batched product (fast on wasm); mlp through applyFeatureMap.
    const Wp = phi?.kind === 'linear' ? phi.params[0] : null;
    let M: tf.Tensor | null = null;
    if (Wp && simKind === 'dot') {
      const [D, L] = [Wp.shape[Wp.rank - 2] as number, q.shape[2] as number];
      const perStep = (viaM: boolean) => (viaM ? L * dk * dk + L * S * dk : L * dk * D + L * S * D);
      if (D * dk * dk + perStep(true) * steps < S * dk * D + perStep(false) * steps) {
        const r = Wp.rank;
        const Wt = tf.transpose(Wp, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]); // [.., dk, D]
        const M0 = batchMatMul(Wt, Wt); // Wt Wt^T = W^T W, computed before the broadcast over samples
        M = tf.broadcastTo(r === 4 ? M0 : tf.reshape(M0, [1, H, dk, dk]), [B, H, dk, dk]);
      }
    }
    const W = Wp && !M ? tf.broadcastTo(Wp, [B, H, ...(Wp.shape.slice(-2) as number[])]) : null;
    const applyPhi = (x: tf.Tensor) => (!phi ? x : W ? batchMatMul(x, W) : applyFeatureMap(phi, x));
    const kPhi = M ? kB : applyPhi(kB);
    const associate = (x: tf.Tensor): tf.Tensor => {
      const sim = M
        ? batchMatMul(batchMatMul(x, M), kB) // x M^T k^T, M symmetric
        : simKind === 'dot'
          ? batchMatMul(applyPhi(x), kPhi)
          : similarity(applyPhi(x), kPhi, simKind);
      const scores = tf.mul(sim, beta);
      return separation(scores, sepKind, { mask, alpha: options.alpha, k: options.topK });
    };

    let xi = associate(q);
    if (steps > 1) {
      let active: tf.Tensor | undefined; // [B, H, L, 1] bool, undefined = all active
      for (let step = 1; step < steps; step++) {
        const x = batchMatMul(xi, kB, false);
        let next = associate(x);
        if (active) next = tf.where(tf.broadcastTo(active, next.shape), next, xi);
        if (eps > 0) {
          const moved = tf.greater(tf.norm(tf.sub(next, xi), 'euclidean', -1, true), eps);
          active = active ? tf.logicalAnd(active, moved) : moved;
        }
        xi = next;
      }
    }
    const weights = options.training && rate > 0 ? tf.dropout(xi, rate) : xi;
    const output = batchMatMul(weights, vB, false);
    return options.returnAssociation ? { output, association: xi } : { output };
  }) as HopfieldRetrievalResult;
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the layers
// ---------------------------------------------------------------------------------------

/** [B, N, H*d] -> [B, H, N, d]. */
export function splitHeads(x: tf.Tensor, numHeads: number): tf.Tensor {
  const [B, N, F] = x.shape as number[];
  return tf.transpose(tf.reshape(x, [B, N, numHeads, F / numHeads]), [0, 2, 1, 3]);
}

/** [B, H, N, d] -> [B, N, H*d]. */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [B, H, N, d] = x.shape as number[];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, N, H * d]);
}

/** Layer normalization over the last axis, with optional affine gamma/beta. */
export function layerNorm(x: tf.Tensor, eps: number, gamma?: tf.Tensor, beta?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return y;
  });
}

/**
 * x W + b on 2-D x, with a backward pass made of plain (non-transposed) 2-D matMuls and
 * explicit transposes: tfjs' own matMul gradient asks for transposed products, which
 * tfjs-backend-wasm runs through a plain loop instead of XNNPACK (10x+ slower there).
 */
const denseWasmOp = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved;
      return [tf.matMul(dy, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy), tf.sum(dy, 0)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]);

/** x [B, N, F] W [F, O] (+ b) -> [B, N, O] as one 2-D matMul. */
export function dense3d(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [B, N, F] = x.shape as number[];
    const O = kernel.shape[1] as number;
    const x2 = tf.reshape(x, [B * N, F]);
    const y =
      tf.getBackend() === 'wasm'
        ? denseWasmOp(x2, kernel, bias ?? tf.zeros([O]))
        : tf.fused.matMul({ a: x2 as tf.Tensor2D, b: kernel as tf.Tensor2D, bias });
    return tf.reshape(y, [B, N, O]);
  });
}

/**
 * Appends one memory per head to keys and values (ml-jku's concat_bias_pattern / add_zero_association):
 * `extraK` [H, dk] and `extraV` [H, dv] (zeros for the zero association); masks gain a 1 column.
 */
export function appendMemory(
  k: tf.Tensor,
  v: tf.Tensor,
  extraK: tf.Tensor,
  extraV: tf.Tensor,
): { k: tf.Tensor; v: tf.Tensor } {
  return tf.tidy(() => {
    const [Bk, H, , dk] = k.shape as number[];
    const [Bv, , , dv] = v.shape as number[];
    const ek = tf.broadcastTo(tf.reshape(extraK, [1, H, 1, dk]), [Bk, H, 1, dk]);
    const ev = tf.broadcastTo(tf.reshape(extraV, [1, H, 1, dv]), [Bv, H, 1, dv]);
    return { k: tf.concat([k, ek], 2), v: tf.concat([v, ev], 2) };
  });
}

/** Appends `n` columns of `value` (1 = allowed) to the last axis of a mask. */
export function padMask(mask: tf.Tensor, n: number, value = 1): tf.Tensor {
  return tf.tidy(() => {
    const m = tf.cast(mask, 'float32');
    const shape = m.shape.slice();
    shape[shape.length - 1] = n;
    return tf.concat([m, tf.fill(shape, value)], -1);
  });
}
