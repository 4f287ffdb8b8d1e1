/**
 * The U-Hop side of the layers: the U-Hop layer options (`UHopArgs`, defaults, validation,
 * Phi0 weight specs), so that every layer of the package reads them the same way; Stage I as
 * a layer runs it (`uhopFit`: Phi fitted per sample and head on the projected keys, from
 * Phi0, keys detached, the task gradient straight through to Phi0); and `hopfieldRetrieval`,
 * the retrieval core of src/ops/retrievalCore.ts (one update loop, one stopping rule) with
 * that fit plugged in:
 *
 *     hopfieldRetrieval(q [B,H,L,dk], k [B|1,H,S,dk], v [B|1,H,S,dv], options)
 *       -> { output [B,H,L,dv], association? [B,H,L,S] }
 *
 * The tensor helpers the layers share (head split/merge, layer norm, dense3d, extra memories,
 * masks) live in src/ops/tensor.ts and src/ops/masks.ts and are re-exported here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeFeatureMap, linearFeatureMap, mlpFeatureMap } from '../ops/featureMap.js';
import { fitFeatureMap, fitFeatureMapOp, defaultFitLr, type FitOptimizer } from '../ops/fit.js';
import { FIT_GRADIENTS, unrolledLinearFit, type FitGradient } from '../ops/fitGradient.js';
import { batchMatMul } from '../ops/batchMatMul.js';
import { multiHeadRetrieval, type MultiHeadRetrievalOptions, type MultiHeadRetrievalResult } from '../ops/retrievalCore.js';
import type { FeatureMap, FeatureMapKind, SeparationLossKind } from '../ops/types.js';
import { getInitializer, serializeKerasObject, type Initializer, type InitializerLike } from './keras.js';
import { anything, bool, custom, defineSchema, int, number, oneOf, parseOptions } from '../ops/schema.js';
import {
  FEATURE_DIM,
  FIT_LR,
  FIT_OPTIMIZER,
  FIT_ROW_NORMALIZE,
  SEPARATION_LOSS,
  SEPARATION_LOSS_T,
  SEPARATION_LOSS_TAU,
} from '../ops/vocabulary.js';

// ---------------------------------------------------------------------------------------
// U-Hop options
// ---------------------------------------------------------------------------------------

/** Which feature map Phi a layer fits per memory set; 'none' = plain modern Hopfield. */
export type FeatureMapOption = 'none' | FeatureMapKind;

const FEATURE_MAPS: readonly FeatureMapOption[] = ['none', 'linear', 'mlp'];

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
  /** Stage-I steps per call (0 = use Phi0 as is). Default 5. */
  fitSteps?: number;
  /**
   * Stage-I step size. With fitOptimizer 'normalized' (the default) a RELATIVE step: each step
   * moves every memory set's features Phi(k) by fitLr times their norm (to first order), or
   * less where backtracking halved it, whatever the keys' scale, the set size and the loss
   * (an 'mlp' map: its parameters by fitLr times their norm). With 'sgd' / 'adam' the absolute
   * learning rate of those rules. Default: 'normalized' 0.5 ('linear') / 0.1 ('mlp'); 'sgd'
   * and 'adam' 0.1 (the earlier default).
   */
  fitLr?: number;
  /**
   * Stage-I step rule (see `FitOptimizer` in the ops): 'normalized' (default: relative step
   * with per-set backtracking, so no step raises any set's separation loss), 'sgd' (the
   * papers' plain gradient steps, the default before the 'normalized' rule; configs saved then
   * say 'sgd' and keep meaning it) or 'adam'.
   */
  fitOptimizer?: FitOptimizer;
  /** Row-normalize W after the fit (the U-Hop paper's variant; 'linear' only). Default false. */
  fitRowNormalize?: boolean;
  /** Train Phi0 with the task loss (through the fit, see fitGradient). Default true. */
  phiTrainable?: boolean;
  /**
   * How the task gradient reaches Phi0 through the fit: 'straight-through' (default, first-order
   * U-Hop: the fitted Phi's gradient is given to Phi0 unchanged) or 'unrolled' (the exact
   * gradient through the fit steps, a Hessian-vector product per step; 'linear' map and the
   * 'normalized' / 'sgd' rules only; about 3x the fit's cost). docs/experiments/where-uhop-helps.md
   * measures both.
   */
  fitGradient?: FitGradient;
  /**
   * Rescale each fitted linear W to the Frobenius norm of Phi0 (per sample and head). The
   * separation loss is invariant to W's scale, so the fit's gradient is orthogonal to W and
   * every step grows ||W||; scores are quadratic in W, so an unscaled fit also raises the
   * effective beta. With this on, the fit changes only the direction of W. Default false.
   */
  fitKeepNorm?: boolean;
  /**
   * Fit strength gamma: the layer uses Phi = Phi0 + gamma (Phi_fit - Phi0) (per head). 1 (the
   * default) is the fitted Phi, 0 is Phi0 (the fitSteps-0 layer). With `fitStrengthTrainable`
   * this is the initial value of a trainable per-head weight `fit_strength` [heads].
   */
  fitStrength?: number;
  /** Learn gamma (see `fitStrength`) with the task loss. Default false. */
  fitStrengthTrainable?: boolean;
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
  fitOptimizer: FitOptimizer;
  fitRowNormalize: boolean;
  phiTrainable: boolean;
  phi0Initializer: string | tf.serialization.ConfigDict;
  /** The options added with the fit-strength study: absent (a config built by hand before them) = the default. */
  fitGradient?: FitGradient;
  fitKeepNorm?: boolean;
  fitStrength?: number;
  fitStrengthTrainable?: boolean;
}

/**
 * The largest `fitSteps` a layer accepts. The Stage-I fit runs in every call of the layer,
 * training and inference alike, so its steps multiply the cost of every forward pass;
 * 1000 steps is already minutes per call on a CPU backend, far beyond the few steps the
 * layer is designed around (default 5).
 */
export const MAX_LAYER_FIT_STEPS = 1000;

/** The declaration of every U-Hop option (src/ops/schema.ts): check, default, doc. */
export const UHOP_SCHEMA = defineSchema<UHopArgs>()({
  featureMap: {
    check: oneOf(FEATURE_MAPS),
    default: 'none',
    doc: "Phi: 'none' (plain modern Hopfield), 'linear' (Phi(x) = W x, the paper's) or 'mlp'.",
  },
  featureDim: FEATURE_DIM,
  featureHiddenDim: { check: int(1), defaultText: '2 * featureDim', doc: "Hidden width of the 'mlp' feature map." },
  separationLoss: SEPARATION_LOSS,
  separationLossT: SEPARATION_LOSS_T,
  separationLossTau: SEPARATION_LOSS_TAU,
  fitSteps: {
    check: custom<number>(
      `an integer in [0, ${MAX_LAYER_FIT_STEPS}] (the fit runs in every call, training and inference alike: each step costs every forward pass)`,
      (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_LAYER_FIT_STEPS,
    ),
    default: 5,
    doc: 'Stage-I steps per call (0 = use Phi0 as is).',
  },
  fitLr: FIT_LR,
  fitOptimizer: FIT_OPTIMIZER,
  fitRowNormalize: FIT_ROW_NORMALIZE,
  phiTrainable: { check: bool, default: true, doc: 'Train Phi0 with the task loss (straight through the fit).' },
  phi0Initializer: {
    check: anything<InitializerLike>("'isometry', 'identity' or a Keras initializer"),
    default: 'isometry',
    doc: "Initializer of the linear Phi0: 'isometry' (fitSteps 0 reproduces the plain layer), 'identity' or any Keras initializer.",
  },
  fitGradient: {
    check: oneOf(FIT_GRADIENTS),
    default: 'straight-through',
    doc: "How the task gradient reaches Phi0 through the fit: 'straight-through' (first-order U-Hop) or 'unrolled' (exact, 'linear' only).",
  },
  fitKeepNorm: {
    check: bool,
    default: false,
    doc: 'Rescale each fitted linear W to the Frobenius norm of Phi0 (the fit changes its direction only).',
  },
  fitStrength: {
    check: number(),
    default: 1,
    doc: 'Fit strength gamma: Phi = Phi0 + gamma (Phi_fit - Phi0) per head (1 = the fitted Phi, 0 = Phi0).',
  },
  fitStrengthTrainable: { check: bool, default: false, doc: 'Learn gamma (fitStrength, per head) with the task loss.' },
});

/** Names of the `UHopArgs` options (for unknown-option checks). */
export const UHOP_ARG_KEYS = Object.keys(UHOP_SCHEMA) as (keyof UHopArgs)[];

/**
 * Validates the U-Hop options and fills in the defaults (UHOP_SCHEMA); errors name `where` and
 * the option. Keys that are not U-Hop options are left to the caller's unknown-key check.
 */
export function resolveUHopArgs(args: UHopArgs, where: string): UHopConfig {
  const uhopOnly = Object.fromEntries(UHOP_ARG_KEYS.filter((k) => args[k] !== undefined).map((k) => [k, args[k]]));
  const o = parseOptions(UHOP_SCHEMA, uhopOnly, where);
  const featureMap = o.featureMap;
  let phi0Initializer: string | tf.serialization.ConfigDict;
  const p = o.phi0Initializer;
  if (p === 'isometry' || p === 'identity') phi0Initializer = p;
  else {
    // Resolve now so that a bad name fails at construction; keep the serializable form.
    const init = getInitializer(p, 'zeros', where, 'phi0Initializer');
    phi0Initializer = typeof p === 'string' ? p : (serializeKerasObject(init) as tf.serialization.ConfigDict);
  }
  const fitGradient = o.fitGradient;
  const fitOptimizer = o.fitOptimizer;
  const cfg: UHopConfig = {
    featureMap,
    featureDim: o.featureDim ?? null,
    featureHiddenDim: o.featureHiddenDim ?? null,
    separationLoss: o.separationLoss,
    separationLossT: o.separationLossT ?? null,
    separationLossTau: o.separationLossTau ?? null,
    fitSteps: o.fitSteps,
    fitLr: o.fitLr ?? defaultFitLr(fitOptimizer, featureMap === 'mlp' ? 'mlp' : 'linear'),
    fitOptimizer,
    fitRowNormalize: o.fitRowNormalize,
    phiTrainable: o.phiTrainable,
    phi0Initializer,
    fitGradient,
    fitKeepNorm: o.fitKeepNorm,
    fitStrength: o.fitStrength,
    fitStrengthTrainable: o.fitStrengthTrainable,
  };
  if (featureMap === 'mlp' && (fitGradient === 'unrolled' || cfg.fitKeepNorm)) {
    throw new Error(
      `${where}: ${fitGradient === 'unrolled' ? "fitGradient 'unrolled'" : 'fitKeepNorm'} applies to the 'linear' feature map only, got featureMap 'mlp'`,
    );
  }
  if (fitGradient === 'unrolled' && fitOptimizer === 'adam') {
    throw new Error(`${where}: fitGradient 'unrolled' takes fitOptimizer 'normalized' or 'sgd', got 'adam'`);
  }
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
  // Written only when not the default, so configs saved before these options stay as they were.
  if (cfg.fitGradient && cfg.fitGradient !== 'straight-through') out.fitGradient = cfg.fitGradient;
  if (cfg.fitKeepNorm) out.fitKeepNorm = true;
  if (cfg.fitStrength != null && cfg.fitStrength !== 1) out.fitStrength = cfg.fitStrength;
  if (cfg.fitStrengthTrainable) out.fitStrengthTrainable = true;
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
    return [{ name: 'phi0_kernel', shape: [numHeads, D, keyDim], initializer: init, trainable }, ...fitStrengthSpec(numHeads, cfg)];
  }
  const Hd = cfg.featureHiddenDim ?? 2 * D;
  const [i1, ib, i2] = stackedInitializers(numHeads, (h) =>
    mlpFeatureMap(keyDim, D, { hidden: Hd, ...(seed == null ? {} : { seed: seed + h }) }),
  );
  return [
    { name: 'phi0_w1', shape: [numHeads, Hd, keyDim], initializer: i1, trainable },
    { name: 'phi0_b1', shape: [numHeads, Hd], initializer: ib, trainable },
    { name: 'phi0_w2', shape: [numHeads, D, Hd], initializer: i2, trainable },
    ...fitStrengthSpec(numHeads, cfg),
  ];
}

/** The trainable fit strength gamma [heads] (only with fitStrengthTrainable), after Phi0's params. */
function fitStrengthSpec(numHeads: number, cfg: UHopConfig): Phi0WeightSpec[] {
  if (!cfg.fitStrengthTrainable) return [];
  const value = cfg.fitStrength ?? 1;
  const initializer = {
    apply: (shape: number[]) => tf.fill(shape, value),
    getClassName: () => 'Constant',
  } as unknown as Initializer;
  return [{ name: 'fit_strength', shape: [numHeads], initializer, trainable: true }];
}

/** What `hopfieldRetrieval` needs to run U-Hop: the resolved options and Phi0's current values. */
export interface UHopRuntime {
  config: UHopConfig;
  /**
   * Phi0 per head, as `phi0WeightSpecs` describes (values read from the layer's weights): the
   * map's params, then (with fitStrengthTrainable) the fit strength [heads].
   */
  phi0: tf.Tensor[];
}

/** The map's params and the fit strength (a tensor [heads] when trainable, else the number). */
function splitRuntime(uhop: UHopRuntime): { params: tf.Tensor[]; gamma: tf.Tensor | number } {
  const n = uhop.config.featureMap === 'mlp' ? 3 : 1;
  const params = uhop.phi0.slice(0, n);
  return { params, gamma: uhop.config.fitStrengthTrainable ? uhop.phi0[n] : (uhop.config.fitStrength ?? 1) };
}

/** Each fitted W [B, H, D, d] scaled to the Frobenius norm of its Phi0 W0 [H, D, d] (or [B, H, D, d]). */
function keepNorm(W: tf.Tensor, W0: tf.Tensor): tf.Tensor {
  const sq = (x: tf.Tensor) => tf.sum(tf.square(x), [-2, -1], true);
  return tf.mul(W, tf.sqrt(tf.div(sq(W0), tf.maximum(sq(W), 1e-30))));
}

/** Phi0 + gamma (fit - Phi0) per head (gamma [H] or a number), params with leading dims [B, H]. */
function blend(fit: tf.Tensor[], phi0: tf.Tensor[], gamma: tf.Tensor | number): tf.Tensor[] {
  return fit.map((p, i) => {
    const g = typeof gamma === 'number' ? gamma : tf.reshape(gamma, [1, -1, ...p.shape.slice(2).map(() => 1)]);
    return tf.add(phi0[i], tf.mul(g, tf.sub(p, phi0[i])));
  });
}

function fitOptions(cfg: UHopConfig, mask: tf.Tensor | undefined) {
  // the options fitFeatureMap and unrolledLinearFit share
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
  const cfg = uhop.config;
  const kind = cfg.featureMap as FeatureMapKind;
  const { params: phi0, gamma } = splitRuntime(uhop);
  if (cfg.fitSteps === 0) return { kind, params: phi0 };
  return tf.tidy(() => {
    const { keys: k, mask } = fitInputs(keys, memoryMask);
    let params =
      cfg.fitGradient === 'unrolled'
        ? [unrolledLinearFit(k, phi0[0], fitOptions(cfg, mask))]
        : fitFeatureMapOp(k, phi0, kind, fitOptions(cfg, mask));
    if (cfg.fitKeepNorm) params = [keepNorm(params[0], phi0[0])];
    if (typeof gamma !== 'number' || gamma !== 1) params = blend(params, phi0, gamma);
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
    const { featureMap, lossTrace } = fitFeatureMap(k, { kind, params: splitRuntime(uhop).params }, fitOptions(uhop.config, mask));
    tf.dispose(featureMap.params);
    return lossTrace;
  });
}

// ---------------------------------------------------------------------------------------
// Retrieval: the core lives in src/ops/retrievalCore.ts; the layers add the U-Hop runtime
// ---------------------------------------------------------------------------------------

// Tensor helpers the layers (and older imports) take from here; they live in src/ops.
export { batchMatMul };
export { splitHeads, mergeHeads, layerNorm, dense3d, appendMemory } from '../ops/tensor.js';
export { combineMasks, padMask } from '../ops/masks.js';

export interface HopfieldRetrievalOptions extends Omit<MultiHeadRetrievalOptions, 'fit'> {
  /** U-Hop: fit Phi per (sample, head) from Phi0 and score with <Phi(q), Phi(k)>. */
  uhop?: UHopRuntime;
}

export type HopfieldRetrievalResult = MultiHeadRetrievalResult;

/**
 * Multi-head Hopfield retrieval on projected patterns with the layers' U-Hop runtime: the
 * retrieval core `multiHeadRetrieval` (src/ops/retrievalCore.ts, one loop and one stopping
 * rule for the whole package) with Stage I run by {@link uhopFit} when `options.uhop` is given.
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
export function hopfieldRetrieval(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: HopfieldRetrievalOptions): HopfieldRetrievalResult {
  const { uhop, ...rest } = options;
  const fit =
    uhop && uhop.config.featureMap !== 'none' ? (keys: tf.Tensor, mask: tf.Tensor | undefined) => uhopFit(keys, mask, uhop) : undefined;
  return multiHeadRetrieval(q, k, v, { ...rest, fit });
}
