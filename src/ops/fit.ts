/**
 * U-Hop Stage I: fit the feature map Phi on each memory set by gradient descent on a separation
 * loss, starting from Phi0. One independent fit per memory set, all sets in one batched
 * computation; every gradient is analytic (no tf.grad), so the fit also runs inside a
 * tf.customGrad forward pass, where the tape is off.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureMap, FeatureMapKind, SeparationLossKind } from './types.js';
import { featureMapBackwardCached, featureMapForward, featureMapInfo, type FeatureMapInfo } from './featureMap.js';
import {
  bmm,
  broadcastToFast,
  broadcastsTo,
  disposePairConsts,
  makePairConsts,
  pairLossAndGradF,
  pairScalar,
  preferredLayout,
  prepareMask,
  reduceToShape,
  resolveSpec,
  shapeStr,
  sizeOf,
  type PairConsts,
  type PairSpec,
} from './stage1Internal.js';

/**
 * The Stage-I step rule.
 * - 'normalized' (default): a step of relative size lr per memory set: W <- W - a G with
 *   G = dL/dW and a = lr ||F|| / ||K G^T||, so that the set's features F = K W^T move by lr ||F||
 *   (to first order; an mlp map: a = lr ||params|| / ||G||, relative to its parameters). The
 *   step is taken only where it does not raise that set's loss; a set whose loss would rise
 *   keeps its parameters and its direction and halves its own lr. So every set's loss is
 *   non-increasing, and the step is exactly invariant to the keys' scale and to the loss's
 *   scale (the 1/S of 'lse'). docs/experiments/fit-step.md has the measurements.
 * - 'sgd': plain gradient steps W <- W - lr dL/dW, as in the papers (lr is absolute, so the
 *   step's effect depends on S, d and the loss, and it can raise the loss).
 * - 'adam': Adam with beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 and bias correction, moments
 *   kept per set (elementwise; lr is the per-entry step).
 */
export type FitOptimizer = 'normalized' | 'sgd' | 'adam';

export interface FitFeatureMapOptions {
  /** Gradient steps (an integer >= 0). Default 100. */
  steps?: number;
  /**
   * Step size (finite, > 0). With 'normalized' (the default) a relative step: each step moves
   * every set's features Phi(k) (linear maps; an mlp: its parameters) by lr times their norm, to
   * first order, or less after backtracking. With 'sgd' and 'adam' the usual absolute learning
   * rate. Default: 'normalized' 0.5 (linear) / 0.1 (mlp); 'sgd' and 'adam' 0.1.
   */
  lr?: number;
  /** Separation loss. Default 'lse' (U-Hop+). */
  loss?: SeparationLossKind;
  /** The step rule (see {@link FitOptimizer}). Default 'normalized'. */
  optimizer?: FitOptimizer;
  /** Scale every row of the fitted W to unit length after the fit (the U-Hop paper's variant; linear maps only). Default false. */
  rowNormalize?: boolean;
  /** [..., S] (broadcastable to the memory sets without the feature dim): 1/true = the memory takes part. */
  mask?: tf.Tensor;
  /** Temperature t of 'uniform' and 'worst-pair'. Default 2. */
  t?: number;
  /** Temperature tau of 'lse'. Default 0.1. */
  tau?: number;
}

export interface FitFeatureMapResult {
  /** The fitted maps, one per memory set: params carry the memory sets' leading dims. */
  featureMap: FeatureMap;
  /**
   * Loss of each set before each step and after the last, [steps + 1, ...leading dims]. With
   * `rowNormalize`, the last entry is the loss before the normalization.
   */
  lossTrace: tf.Tensor;
}

export const FIT_OPTIMIZERS: readonly FitOptimizer[] = ['normalized', 'sgd', 'adam'];
/**
 * Default relative step of 'normalized' per feature map kind (chosen in
 * docs/experiments/fit-step.md): the linear map's step is relative to its features, the mlp's
 * to its parameters, where 0.5 is too large (most steps are halved away).
 */
export const NORMALIZED_DEFAULT_LR: Readonly<Record<FeatureMapKind, number>> = { linear: 0.5, mlp: 0.1 };
/** Default learning rate of 'sgd' and 'adam' (the earlier default of every fit). */
export const PLAIN_DEFAULT_LR = 0.1;

/** The default step size of a step rule for a feature map kind. */
export function defaultFitLr(optimizer: FitOptimizer, kind: FeatureMapKind = 'linear'): number {
  return optimizer === 'normalized' ? NORMALIZED_DEFAULT_LR[kind] : PLAIN_DEFAULT_LR;
}
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

interface FitPlan {
  info: FeatureMapInfo;
  spec: PairSpec;
  steps: number;
  lr: number;
  optimizer: FitOptimizer;
  rowNormalize: boolean;
  /** Leading dims of the memory sets (and of the fitted params). */
  lead: number[];
  B: number;
  S: number;
  d: number;
  /** Linear, sgd or normalized: fit in the span of the memories (default: when S < 2d). For tests. */
  span?: boolean;
}

function checkOptions(options: FitFeatureMapOptions, kind: FeatureMapKind, fn: string): Omit<FitPlan, 'info' | 'lead' | 'B' | 'S' | 'd'> {
  if (options === null || typeof options !== 'object') throw new Error(`${fn}: options must be an object, got ${String(options)}`);
  const { steps = 100, loss = 'lse', optimizer = 'normalized', rowNormalize = false } = options;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 0) {
    throw new Error(`${fn}: steps must be an integer >= 0, got ${String(steps)}`);
  }
  if (!FIT_OPTIMIZERS.includes(optimizer))
    throw new Error(`${fn}: optimizer must be one of ${FIT_OPTIMIZERS.join(', ')}, got '${String(optimizer)}'`);
  const lr = options.lr ?? defaultFitLr(optimizer, kind);
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0)
    throw new Error(`${fn}: lr must be a finite number > 0, got ${String(lr)}`);
  if (typeof rowNormalize !== 'boolean') throw new Error(`${fn}: rowNormalize must be a boolean, got ${String(rowNormalize)}`);
  const spec = resolveSpec(loss, options.t, options.tau, fn);
  return { spec, steps, lr, optimizer, rowNormalize };
}

function makePlan(memorySets: tf.Tensor, phi0: FeatureMap, options: FitFeatureMapOptions, fn: string): FitPlan {
  if (!(memorySets instanceof tf.Tensor) || memorySets.rank < 2) {
    throw new Error(
      `${fn}: memory sets must be [..., S, d], got ${memorySets instanceof tf.Tensor ? `shape ${shapeStr(memorySets.shape)}` : String(memorySets)}`,
    );
  }
  if (memorySets.dtype !== 'float32') throw new Error(`${fn}: memory sets must be float32, got ${memorySets.dtype}`);
  const info = featureMapInfo(phi0, fn);
  const base = checkOptions(options, info.kind, fn);
  const shape = memorySets.shape;
  const S = shape[shape.length - 2];
  const d = shape[shape.length - 1];
  const lead = shape.slice(0, -2);
  if (S < 1) throw new Error(`${fn}: a memory set needs at least one memory, got shape ${shapeStr(shape)}`);
  if (d !== info.inputDim) {
    throw new Error(
      `${fn}: the memories' dim d = ${d} (shape ${shapeStr(shape)}) does not match the feature map's input dim ${info.inputDim}`,
    );
  }
  if (!broadcastsTo(info.leadingShape, lead)) {
    throw new Error(
      `${fn}: the feature map's leading dims ${shapeStr(info.leadingShape)} must broadcast to the memory sets' leading dims ${shapeStr(lead)}`,
    );
  }
  if (base.rowNormalize && info.kind !== 'linear') {
    throw new Error(`${fn}: rowNormalize applies to a linear feature map only, got kind '${info.kind}'`);
  }
  return { ...base, info, lead, B: sizeOf(lead), S, d };
}

/** phi0's params broadcast to the sets and flattened to one batch axis: [B, ...inner]. */
function batchedParams(params: tf.Tensor[], plan: FitPlan): tf.Tensor[] {
  const { lead, B, info } = plan;
  return params.map((p) => {
    const inner = p.shape.slice(info.leadingShape.length);
    return tf.reshape(broadcastToFast(p, [...lead, ...inner]), [B, ...inner]);
  });
}

/**
 * One parametrisation of the fit: how to get the loss and the parameter gradients from the
 * current parameters (in whatever layout the engine keeps them).
 */
interface FitEngine {
  /** Initial parameters in the engine's layout. */
  init(): tf.Tensor[];
  /**
   * Loss [B] (unless withLoss is false) and, when asked, the step direction (same layout as the
   * params): dL/dparams, or (span engine) the move of its parameters that a gradient step on W
   * makes. A step P - a * grads is a step W - a * dL/dW.
   */
  lossAndGrads(params: tf.Tensor[], withGrad: boolean, withLoss?: boolean, withNorms?: boolean): EngineOutput;
  /** Parameters back in the standard [B, ...inner] layout. */
  finish(params: tf.Tensor[]): tf.Tensor[];
  /** The axis of the memory sets in every params and grads tensor. */
  setAxis: number;
  /** Which params `lossAndGrads` reads (default all): a candidate needs only those. */
  evalUses?: boolean[];
  dispose(): void;
}

interface EngineOutput {
  loss?: tf.Tensor1D;
  grads?: tf.Tensor[];
  /**
   * withNorms (the 'normalized' rule), per set [B]: `ref`, the squared norm a step is relative
   * to, and (with grads) `dir`, the squared norm of the change the step direction makes to it
   * per unit step. Linear maps: ||F||^2 of the features F = K W^T and ||K G^T||^2, over the
   * unmasked memories (a masked memory must not change the step), so a step moves each set's
   * features by eta ||F||; mlp: all parameters and all gradients.
   */
  norms?: { ref: tf.Tensor1D; dir?: tf.Tensor1D };
}

/**
 * Sum of each set's entries over all tensors `xs` (set axis `axis`, B sets): [B]. The trailing
 * axes are reduced first (no transpose), then the leading ones of a small [lead, B] matrix.
 */
function setSums(xs: tf.Tensor[], axis: number, B: number): tf.Tensor1D {
  return tf.tidy(() => {
    let total: tf.Tensor | null = null;
    for (const x of xs) {
      const lead = sizeOf(x.shape.slice(0, axis));
      let t = tf.sum(tf.reshape(x, [lead, B, -1]), 2);
      t = lead === 1 ? tf.reshape(t, [B]) : tf.sum(t, 0);
      total = total ? tf.add(total, t) : t;
    }
    return total as tf.Tensor1D;
  });
}

/** Per-set sum [B] of the unmasked memories' entries of x [B, S]. */
function maskedRowSum(x: tf.Tensor2D, mask: tf.Tensor2D | null): tf.Tensor1D {
  return tf.sum(mask ? tf.mul(x, mask) : x, 1) as tf.Tensor1D;
}

/**
 * The span engine's norms (see `EngineOutput.norms`): ref from the memories' squared feature
 * norms rowSq [B, S], dir from the step direction H = C dF = K G^T (pair layout), masked
 * memories out.
 */
function featureNorms(rowSq: tf.Tensor2D, H: tf.Tensor | undefined, mask: tf.Tensor2D | null, layout: 'bsd' | 'dbs', B: number) {
  const ref = maskedRowSum(rowSq, mask);
  if (!H) return { ref };
  const sq = tf.square(H);
  const m = mask ? (layout === 'bsd' ? tf.expandDims(mask, 2) : tf.expandDims(mask, 0)) : null; // [B,S,1] / [1,B,S]
  return { ref, dir: setSums([m ? tf.mul(sq, m) : sq], layout === 'bsd' ? 0 : 1, B) };
}

/** A per-set value [B] shaped to broadcast against a tensor of rank `rank` with the sets on `axis`. */
function bySet(v: tf.Tensor, rank: number, axis: number): tf.Tensor {
  return tf.reshape(
    v,
    Array.from({ length: rank }, (_, i) => (i === axis ? -1 : 1)),
  );
}

/**
 * Linear Phi: everything stays in the pair kernel's layout, the keys are transposed once.
 * For the 'normalized' rule, the norms (see `EngineOutput.norms`) come without any pass over
 * the features: ||F||^2 from the normalization, and ||K G^T||^2 = <G, G C> with the keys' d x d
 * Gram matrix C = K^T K (unmasked memories), formed once (D d^2 per set and step, against the
 * 2 S d D of the step's two products; this engine runs when S >= 2d).
 */
function linearEngine(K: tf.Tensor3D, W0: tf.Tensor, consts: PairConsts, plan: FitPlan, mask: tf.Tensor2D | null): FitEngine {
  const { B, S, d } = plan;
  const D = plan.info.featureDim;
  const normalized = plan.optimizer === 'normalized';
  let fwd: (W: tf.Tensor) => tf.Tensor; // W (engine layout) -> F = K W^T (pair layout)
  let bwd: (dF: tf.Tensor) => tf.Tensor; // dF -> dF^T K (engine layout)
  let initW: () => tf.Tensor;
  let finishW: (W: tf.Tensor) => tf.Tensor;
  let gramTimes: (G: tf.Tensor) => tf.Tensor = (G) => G; // G -> G C (engine layout); set when normalized
  let setAxis: number;
  let consts2: tf.Tensor[] = [];
  // the keys of the memories that take part (C must not see a masked memory)
  const Km = normalized && mask ? tf.tidy(() => tf.mul(K, tf.expandDims(mask, 2))) : K;
  if (Km !== K) consts2.push(Km);
  if (consts.layout === 'bsd') {
    // W [B, D, d]; F = K W^T [B, S, D]; dW = dF^T K.
    fwd = (W) => tf.matMul(K, W, false, true);
    bwd = (dF) => tf.matMul(dF, K, true, false);
    initW = () => batchedParams([W0], plan)[0];
    finishW = (W) => W.clone();
    setAxis = 0;
    if (normalized) {
      const C = tf.matMul(Km, Km, true, false); // [B, d, d]
      consts2.push(C);
      gramTimes = (G) => tf.matMul(G, C);
    }
  } else {
    // dbs: W kept as [D, B, d]; features as [D, B, S]. Both products are depthwise convolutions
    // over the B sets (channels): F^T_b = W_b K_b^T and dW_b = dF^T_b K_b.
    const Kf = tf.transpose(K, [2, 0, 1]); // [d, B, S]
    const Kb = tf.transpose(K, [1, 0, 2]); // [S, B, d]
    consts2 = [Kf, Kb];
    setAxis = 1;
    if (B === 1) {
      // One set: plain 2-D matMuls whose right operand (the keys) never changes, so XNNPACK packs
      // it once for the whole fit.
      const Kf2 = tf.reshape(Kf, [d, S]);
      const Kb2 = tf.reshape(Kb, [S, d]);
      consts2.push(Kf2, Kb2);
      fwd = (W) => tf.reshape(tf.matMul(tf.reshape(W, [D, d]), Kf2), [D, 1, S]);
      bwd = (dF) => tf.reshape(tf.matMul(tf.reshape(dF, [D, S]), Kb2), [D, 1, d]);
      initW = () => tf.tidy(() => tf.reshape(batchedParams([W0], plan)[0], [D, 1, d]));
      finishW = (W) => tf.reshape(W, [1, D, d]);
      if (normalized) {
        const C = tf.tidy(() => tf.matMul(tf.reshape(Km, [S, d]), tf.reshape(Km, [S, d]), true, false)); // [d, d]
        consts2.push(C);
        gramTimes = (G) => tf.reshape(tf.matMul(tf.reshape(G, [D, d]), C), [D, 1, d]);
      }
    } else {
      const conv = (x: tf.Tensor, xs: [number, number, number, number], f: tf.Tensor, fs: [number, number, number, number]) =>
        tf.depthwiseConv2d(tf.reshape(x, xs) as tf.Tensor4D, tf.reshape(f, fs) as tf.Tensor4D, 1, 'valid');
      fwd = (W) => tf.reshape(conv(tf.transpose(W, [0, 2, 1]), [1, D, d, B], Kf, [1, d, B, S]), [D, B, S]);
      bwd = (dF) => tf.reshape(conv(tf.transpose(dF, [0, 2, 1]), [1, D, S, B], Kb, [1, S, B, d]), [D, B, d]);
      initW = () => tf.tidy(() => tf.transpose(batchedParams([W0], plan)[0], [1, 0, 2]));
      finishW = (W) => tf.transpose(W, [1, 0, 2]);
      if (normalized) {
        // C as a depthwise filter [d, B, d] (C symmetric): (G C)_b = G_b C_b, like bwd
        const C = tf.tidy(() => tf.transpose(bmm(Km, Km, true, false), [1, 0, 2]));
        consts2.push(C);
        gramTimes = (G) => tf.reshape(conv(tf.transpose(G, [0, 2, 1]), [1, D, d, B], C, [1, d, B, d]), [D, B, d]);
      }
    }
  }
  return {
    init: () => [initW()],
    lossAndGrads: ([W], withGrad, withLoss = true, withNorms = false) =>
      tf.tidy(() => {
        const { loss, dF, rowSq } = pairLossAndGradF(fwd(W), consts, withGrad, withLoss, withNorms);
        const G = withGrad ? bwd(dF!) : undefined;
        if (!withNorms) return { loss, grads: G ? [G] : undefined };
        const ref = maskedRowSum(rowSq!, mask);
        return { loss, grads: G ? [G] : undefined, norms: { ref, dir: G ? setSums([tf.mul(G, gramTimes(G))], setAxis, B) : undefined } };
      }),
    finish: (p) => [finishW(p[0])],
    setAxis,
    dispose: () => tf.dispose(consts2),
  };
}

/**
 * Linear Phi with gradient steps ('sgd', 'normalized') and fewer memories than twice the input
 * dim (S < 2d, e.g. R1: 100 patterns of dim 784): the iterates stay in the span of the memories.
 * With F = K W^T, the step W <- W - a dF^T K moves the features by F <- F - a (K K^T) dF, so the
 * fit runs on F with the fixed S x S Gram matrix C of the keys (S^2 D multiply-adds per step
 * instead of 2 S d D). The params are [F, M] with W = W0 + M^T K (so F = F0 + C M), the step
 * direction is [C dF, dF], and W is formed once at the end. The normalized rule's norms are
 * those of F and of C dF = K G^T, as in `linearEngine`. Same iterates as `linearEngine` up to
 * float rounding.
 */
function spanEngine(K: tf.Tensor3D, W0: tf.Tensor, consts: PairConsts, plan: FitPlan, mask: tf.Tensor2D | null): FitEngine {
  const { B, S, d } = plan;
  const D = plan.info.featureDim;
  const W0b = tf.tidy(() => batchedParams([W0], plan)[0]); // [B, D, d]
  let F0: tf.Tensor;
  if (consts.layout === 'bsd') {
    const C = tf.matMul(K, K, false, true); // [B, S, S]
    F0 = tf.matMul(K, W0b, false, true); // [B, S, D]
    return {
      init: () => [F0.clone(), tf.zerosLike(F0)],
      lossAndGrads: ([F], withGrad, withLoss = true, withNorms = false) =>
        tf.tidy(() => {
          const { loss, dF, rowSq } = pairLossAndGradF(F, consts, withGrad, withLoss, withNorms);
          const grads = withGrad ? [tf.matMul(C, dF!), dF!] : undefined;
          return { loss, grads, norms: withNorms ? featureNorms(rowSq!, grads?.[0], mask, 'bsd', B) : undefined };
        }),
      finish: ([, M]) => [tf.tidy(() => tf.add(W0b, tf.matMul(M, K, true, false)))],
      setAxis: 0,
      evalUses: [true, false],
      dispose: () => tf.dispose([C, W0b, F0]),
    };
  }
  // dbs: F as [D, B, S]; (C dF)^T_b = dF^T_b C_b (C symmetric).
  const K2 = B === 1 ? tf.reshape(K, [S, d]) : null;
  const C = tf.tidy(() => (B === 1 ? tf.matMul(K2!, tf.transpose(K2!)) : tf.transpose(bmm(K, K, false, true), [1, 0, 2]))); // [S, S] or [S, B, S]
  const Kt = tf.transpose(K, [2, 0, 1]); // [d, B, S]
  const Kb = tf.transpose(K, [1, 0, 2]); // [S, B, d]
  const conv = (x: tf.Tensor, xs: [number, number, number, number], f: tf.Tensor, fs: [number, number, number, number]) =>
    tf.depthwiseConv2d(tf.reshape(x, xs) as tf.Tensor4D, tf.reshape(f, fs) as tf.Tensor4D, 1, 'valid');
  const W0l = tf.transpose(W0b, [1, 2, 0]); // [D, d, B]
  F0 = tf.tidy(() =>
    B === 1
      ? tf.reshape(tf.matMul(tf.reshape(W0l, [D, d]), tf.reshape(Kt, [d, S])), [D, 1, S])
      : tf.reshape(conv(W0l, [1, D, d, B], Kt, [1, d, B, S]), [D, B, S]),
  );
  return {
    init: () => [F0.clone(), tf.zerosLike(F0)],
    lossAndGrads: ([F], withGrad, withLoss = true, withNorms = false) =>
      tf.tidy(() => {
        const { loss, dF, rowSq } = pairLossAndGradF(F, consts, withGrad, withLoss, withNorms);
        const step = !withGrad
          ? undefined
          : B === 1
            ? tf.reshape(tf.matMul(tf.reshape(dF!, [D, S]), C), [D, 1, S])
            : tf.reshape(conv(tf.transpose(dF!, [0, 2, 1]), [1, D, S, B], C, [1, S, B, S]), [D, B, S]);
        return { loss, grads: step ? [step, dF!] : undefined, norms: withNorms ? featureNorms(rowSq!, step, mask, 'dbs', B) : undefined };
      }),
    finish: ([, M]) => [
      tf.tidy(() => {
        const dW =
          B === 1
            ? tf.reshape(tf.matMul(tf.reshape(M, [D, S]), K2!), [1, D, d])
            : tf.transpose(tf.reshape(conv(tf.transpose(M, [0, 2, 1]), [1, D, S, B], Kb, [1, S, B, d]), [D, B, d]), [1, 0, 2]);
        return tf.add(W0b, dW);
      }),
    ],
    setAxis: 1,
    evalUses: [true, false],
    dispose: () => tf.dispose([C, Kt, Kb, W0b, W0l, F0, ...(K2 ? [K2] : [])]),
  };
}

/** MLP Phi: the map's products are batched matMuls, the pair kernel runs in its own layout. */
function mlpEngine(K: tf.Tensor3D, params0: tf.Tensor[], consts: PairConsts, plan: FitPlan): FitEngine {
  const toPair = (F: tf.Tensor) => (consts.layout === 'bsd' ? F : tf.transpose(F, [2, 0, 1]));
  const fromPair = (dF: tf.Tensor) => (consts.layout === 'bsd' ? dF : tf.transpose(dF, [1, 2, 0]));
  return {
    init: () => batchedParams(params0, plan),
    lossAndGrads: (params, withGrad, withLoss = true, withNorms = false) =>
      tf.tidy(() => {
        const cache = featureMapForward('mlp', params, K, false);
        const { loss, dF } = pairLossAndGradF(toPair(cache.F), consts, withGrad, withLoss);
        const grads = withGrad ? featureMapBackwardCached('mlp', params, K, cache, fromPair(dF!), false) : undefined;
        // the mlp's step is relative to its parameters (its features are not linear in them)
        const sq = (xs: tf.Tensor[]) =>
          setSums(
            xs.map((x) => tf.square(x)),
            0,
            plan.B,
          );
        return { loss, grads, norms: withNorms ? { ref: sq(params), dir: grads ? sq(grads) : undefined } : undefined };
      }),
    finish: (p) => p.map((t) => t.clone()),
    setAxis: 0,
    dispose: () => {},
  };
}

/**
 * The fit itself, on keys [B, S, d]. Returns the fitted params [B, ...inner] and, when asked,
 * the loss trace [steps + 1, B]. Not tidy-wrapped (the callers are).
 */
function runFit(K: tf.Tensor3D, params0: tf.Tensor[], mask: tf.Tensor2D | null, plan: FitPlan, wantTrace: boolean) {
  const consts = makePairConsts(plan.B, plan.S, mask, plan.spec, preferredLayout());
  const span = plan.span ?? (plan.optimizer !== 'adam' && plan.S < 2 * plan.d);
  const engine =
    plan.info.kind === 'mlp'
      ? mlpEngine(K, params0, consts, plan)
      : span && plan.optimizer !== 'adam'
        ? spanEngine(K, params0[0], consts, plan, mask)
        : linearEngine(K, params0[0], consts, plan, mask);
  try {
    if (plan.optimizer === 'normalized') return normalizedFit(engine, consts, plan, wantTrace);
    return plainFit(engine, consts, plan, wantTrace);
  } finally {
    engine.dispose();
    disposePairConsts(consts);
  }
}

/** 'sgd' and 'adam': one loss-and-gradient evaluation per step, no loss needed unless traced. */
function plainFit(engine: FitEngine, consts: PairConsts, plan: FitPlan, wantTrace: boolean) {
  const losses: tf.Tensor[] = [];
  let params = engine.init();
  let m: tf.Tensor[] = [];
  let v: tf.Tensor[] = [];
  try {
    if (plan.optimizer === 'adam') {
      m = params.map((p) => tf.zerosLike(p));
      v = params.map((p) => tf.zerosLike(p));
    }
    for (let step = 1; step <= plan.steps; step++) {
      const next = tf.tidy(() => {
        const { loss, grads } = engine.lossAndGrads(params, true, wantTrace);
        if (plan.optimizer === 'sgd') {
          return { loss, params: params.map((p, i) => tf.sub(p, tf.mul(grads![i], pairScalar(consts, plan.lr)))), m: [], v: [] };
        }
        const c1 = 1 - ADAM_BETA1 ** step;
        const c2 = 1 - ADAM_BETA2 ** step;
        const m2 = m.map((mi, i) => tf.add(tf.mul(mi, ADAM_BETA1), tf.mul(grads![i], 1 - ADAM_BETA1)));
        const v2 = v.map((vi, i) => tf.add(tf.mul(vi, ADAM_BETA2), tf.mul(tf.square(grads![i]), 1 - ADAM_BETA2)));
        const p2 = params.map((p, i) => tf.sub(p, tf.div(tf.mul(m2[i], plan.lr / c1), tf.add(tf.sqrt(tf.div(v2[i], c2)), ADAM_EPSILON))));
        return { loss, params: p2, m: m2, v: v2 };
      });
      tf.dispose([...params, ...m, ...v]);
      params = next.params;
      m = next.m;
      v = next.v;
      if (next.loss) losses.push(next.loss);
    }
    if (wantTrace) losses.push(engine.lossAndGrads(params, false).loss!);
    const fitted = engine.finish(params);
    const trace = wantTrace ? tf.stack(losses) : null;
    return { params: fitted, trace };
  } finally {
    tf.dispose([...params, ...m, ...v, ...losses]);
  }
}

/** A squared gradient norm below this counts as zero (the set does not move). */
const TINY_SQ_NORM = 1e-30;

/**
 * 'normalized': per set, the candidate W - eta ||F|| G / ||K G^T|| (see `EngineOutput.norms`)
 * is evaluated (loss and, except after the last step, gradient); where its loss is not above
 * the current one it is taken (its gradient is the next step's), elsewhere the set keeps W and
 * its gradient and halves its eta. So every set's loss is non-increasing, by construction. The
 * accept/reject choice is per-set arithmetic with a 0/1 factor (exact, no data-dependent
 * branch, nothing read back to the CPU). Cost: one loss-and-gradient evaluation per step plus
 * a final loss-only one, and a few elementwise passes.
 */
function normalizedFit(engine: FitEngine, consts: PairConsts, plan: FitPlan, wantTrace: boolean) {
  const { B } = plan;
  const axis = engine.setAxis;
  const uses = engine.evalUses;
  const losses: tf.Tensor[] = [];
  let params = engine.init();
  // per set: loss, step direction, s = sqrt(ref / dir) (the step per unit eta), eta
  type State = { loss: tf.Tensor1D; grads: tf.Tensor[]; s: tf.Tensor1D; eta: tf.Tensor1D };
  let state: State | null = null;
  const disposeState = () => {
    if (state) tf.dispose([state.loss, ...state.grads, state.s, state.eta]);
  };
  // a set without gradient (dir 0) gets a finite s and a zero step
  const stepScale = (n: { ref: tf.Tensor1D; dir?: tf.Tensor1D }) =>
    tf.sqrt(tf.div(n.ref, tf.maximum(n.dir!, pairScalar(consts, TINY_SQ_NORM)))) as tf.Tensor1D;
  try {
    if (plan.steps > 0) {
      state = tf.tidy(() => {
        const { loss, grads, norms } = engine.lossAndGrads(params, true, true, true);
        return { loss: loss!, grads: grads!, s: stepScale(norms!), eta: tf.fill([B], plan.lr) as tf.Tensor1D };
      });
      if (wantTrace) losses.push(state.loss.clone());
    }
    for (let step = 1; step <= plan.steps; step++) {
      const last = step === plan.steps;
      const cur: State = state!;
      const next = tf.tidy(() => {
        // the step moves what `ref` measures by eta times its norm (to first order)
        const alpha = tf.mul(cur.eta, cur.s);
        const move = (a: tf.Tensor, i: number) => tf.sub(params[i], tf.mul(cur.grads[i], bySet(a, params[i].rank, axis)));
        // only the params the evaluation reads (the others are placeholders it ignores)
        const candidate = params.map((p, i) => (uses && !uses[i] ? p : move(alpha, i)));
        const out = engine.lossAndGrads(candidate, !last, true, !last);
        const accept = tf.lessEqual(out.loss!, cur.loss) as tf.Tensor1D;
        const a = tf.cast(accept, 'float32');
        // the candidate where accepted, else the old params: a zero step (exact: the same
        // arithmetic as the candidate where a = 1; alpha is finite, so no NaN either)
        const aAlpha = tf.mul(alpha, a);
        const newParams = params.map((_, i) => move(aAlpha, i));
        const newLoss = select(accept, out.loss!, cur.loss) as tf.Tensor1D;
        if (last) return { params: newParams, loss: newLoss };
        const notA = tf.sub(pairScalar(consts, 1), a);
        // x a + y (1 - a): exactly x or y for a in {0, 1}
        const pick = (x: tf.Tensor, y: tf.Tensor) => tf.add(tf.mul(x, bySet(a, x.rank, axis)), tf.mul(y, bySet(notA, y.rank, axis)));
        return {
          params: newParams,
          loss: newLoss,
          grads: out.grads!.map((g, i) => pick(g, cur.grads[i])),
          s: select(accept, stepScale(out.norms!), cur.s) as tf.Tensor1D,
          eta: select(accept, cur.eta, tf.mul(cur.eta, pairScalar(consts, 0.5))) as tf.Tensor1D,
        };
      });
      tf.dispose(params);
      params = next.params;
      if (wantTrace) losses.push(next.loss.clone());
      disposeState();
      state = next.grads ? { loss: next.loss, grads: next.grads, s: next.s!, eta: next.eta! } : null;
      if (!state) next.loss.dispose();
    }
    if (wantTrace && plan.steps === 0) losses.push(engine.lossAndGrads(params, false).loss!);
    const fitted = engine.finish(params);
    const trace = wantTrace ? tf.stack(losses) : null;
    return { params: fitted, trace };
  } finally {
    disposeState();
    tf.dispose([...params, ...losses]);
  }
}

/**
 * tf.where for a condition of the same shape as a and b, by the Select kernel itself: tf.where
 * first broadcasts all three (three copies), which costs more than the select on [B] vectors.
 */
function select(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel('Select', { condition: cond, t: a, e: b }) as tf.Tensor;
}

/** W with unit rows (norm over the input dim). */
function unitRows(W: tf.Tensor): tf.Tensor {
  return tf.mul(W, tf.rsqrt(tf.maximum(tf.sum(tf.square(W), -1, true), 1e-24)));
}

/**
 * Runs `body` (which may create tensors freely) as the forward pass of a tf.customGrad, so that
 * nothing inside is recorded on an outer gradient tape, and packs its outputs into one tensor.
 * `grads(dyParts)` gives the gradient of each input from the gradients of the outputs.
 */
function opaque(inputs: tf.Tensor[], body: () => tf.Tensor[], grads: (dy: tf.Tensor[]) => tf.Tensor[]): tf.Tensor[] {
  let shapes: number[][] = [];
  const unpack = (flat: tf.Tensor): tf.Tensor[] => {
    const sizes = shapes.map(sizeOf);
    const parts = tf.split(flat, sizes);
    return parts.map((p, i) => tf.reshape(p, shapes[i]));
  };
  const f = tf.customGrad((...args: unknown[]) => {
    void args;
    const value = tf.tidy(() => {
      const outs = body();
      shapes = outs.map((o) => o.shape);
      return outs.length === 1 ? tf.reshape(outs[0], [-1]) : tf.concat(outs.map((o) => tf.reshape(o, [-1])));
    });
    return { value, gradFunc: (dy: tf.Tensor) => tf.tidy(() => grads(shapes.length === 1 ? [tf.reshape(dy, shapes[0])] : unpack(dy))) };
  });
  return tf.tidy(() => {
    const flat = f(...inputs);
    return shapes.length === 1 ? [tf.reshape(flat, shapes[0])] : unpack(flat);
  });
}

/**
 * U-Hop Stage I: fits Phi on every memory set of `memorySets` [..., S, d], starting from `phi0`
 * (whose params have no leading dims, or leading dims that broadcast to the sets'), by `steps`
 * plain gradient (or Adam) steps on the separation loss. One independent fit per set, all sets
 * in one batched computation. The result is detached: no gradient flows back to `memorySets` or
 * `phi0` (see `fitFeatureMapOp` for the in-layer variant that passes gradients to Phi0).
 *
 * @returns the fitted map (params with the sets' leading dims; caller disposes) and the loss trace
 *   [steps + 1, ...leading dims] (loss before each step and after the last).
 *
 * @example
 * ```ts
 * const phi0 = linearFeatureMap(784, 784);                       // identity
 * const { featureMap, lossTrace } = fitFeatureMap(patterns, phi0, { steps: 100, lr: 0.1 });
 * const scores = similarity(applyFeatureMap(featureMap, queries), applyFeatureMap(featureMap, patterns));
 * disposeFeatureMap(featureMap); disposeFeatureMap(phi0); lossTrace.dispose();
 * ```
 */
export function fitFeatureMap(memorySets: tf.Tensor, phi0: FeatureMap, options: FitFeatureMapOptions = {}): FitFeatureMapResult {
  return fitImpl(memorySets, phi0, options);
}

/**
 * `fitFeatureMap` with the span-of-the-memories engine forced on or off (linear Phi, sgd).
 * @internal For tests: both engines must give the same fit.
 */
export function fitFeatureMapSpanForTest(
  memorySets: tf.Tensor,
  phi0: FeatureMap,
  options: FitFeatureMapOptions,
  span: boolean,
): FitFeatureMapResult {
  return fitImpl(memorySets, phi0, options, span);
}

function fitImpl(memorySets: tf.Tensor, phi0: FeatureMap, options: FitFeatureMapOptions, span?: boolean): FitFeatureMapResult {
  const fn = 'fitFeatureMap';
  const plan = { ...makePlan(memorySets, phi0, options, fn), span };
  const mask = prepareMask(options.mask, [...plan.lead, plan.S], fn);
  try {
    const inputs = [memorySets, ...phi0.params];
    const outs = opaque(
      inputs,
      () => {
        const K = tf.reshape(memorySets, [plan.B, plan.S, plan.d]) as tf.Tensor3D;
        const { params, trace } = runFit(K, phi0.params, mask, plan, true);
        let out = params.map((p) => tf.reshape(p, [...plan.lead, ...p.shape.slice(1)]));
        if (plan.rowNormalize) out = [unitRows(out[0])];
        return [...out, tf.reshape(trace!, [plan.steps + 1, ...plan.lead])];
      },
      () => inputs.map((t) => tf.zerosLike(t)),
    );
    const lossTrace = outs.pop()!;
    return { featureMap: { kind: plan.info.kind, params: outs }, lossTrace };
  } finally {
    mask?.dispose();
  }
}

/**
 * The in-layer Stage I (first-order U-Hop): fits Phi on `keys` [..., S, d] starting from the
 * parameters `phi0Params` (no leading dims, or dims that broadcast to the keys' leading dims) and
 * returns the fitted parameters with the keys' leading dims, e.g. [B, heads, D, d] for a linear
 * map. A tf.customGrad: the forward pass runs the fit without any tape (tidy, no loss trace);
 * the backward pass gives ZERO to the keys and passes the fitted parameters' gradient straight
 * through to `phi0Params`, summed over the dims they were broadcast along. With `rowNormalize`
 * the normalization is straight-through as well.
 *
 * `kind` is read from the number of params (1 linear, 3 mlp) when not given.
 *
 * @example
 * ```ts
 * // keys [B, heads, S, d], phi0 [heads, D, d] (a layer weight):
 * const [W] = fitFeatureMapOp(keys, [phi0], 'linear', { steps: 5, lr: 0.1, loss: 'lse' });   // [B, heads, D, d]
 * const scores = tf.matMul(applyFeatureMap({ kind: 'linear', params: [W] }, q),
 *                          applyFeatureMap({ kind: 'linear', params: [W] }, keys), false, true);
 * ```
 */
export function fitFeatureMapOp(
  keys: tf.Tensor,
  phi0Params: tf.Tensor[],
  kindOrOptions?: FeatureMapKind | FitFeatureMapOptions,
  options: FitFeatureMapOptions = {},
): tf.Tensor[] {
  const fn = 'fitFeatureMapOp';
  if (!Array.isArray(phi0Params)) throw new Error(`${fn}: phi0Params must be an array of tensors, got ${String(phi0Params)}`);
  let kind: FeatureMapKind;
  let opts: FitFeatureMapOptions;
  if (typeof kindOrOptions === 'string') {
    kind = kindOrOptions;
    opts = options;
  } else {
    opts = kindOrOptions ?? options;
    if (phi0Params.length === 1) kind = 'linear';
    else if (phi0Params.length === 3) kind = 'mlp';
    else throw new Error(`${fn}: phi0Params must be [W] (linear) or [W1, b1, W2] (mlp), got ${phi0Params.length} tensors`);
  }
  const phi0: FeatureMap = { kind, params: phi0Params };
  const plan = makePlan(keys, phi0, opts, fn);
  const mask = prepareMask(opts.mask, [...plan.lead, plan.S], fn);
  try {
    return opaque(
      [keys, ...phi0Params],
      () => {
        const K = tf.reshape(keys, [plan.B, plan.S, plan.d]) as tf.Tensor3D;
        const { params } = runFit(K, phi0Params, mask, plan, false);
        let out = params.map((p) => tf.reshape(p, [...plan.lead, ...p.shape.slice(1)]));
        if (plan.rowNormalize) out = [unitRows(out[0])];
        return out;
      },
      (dy) => [tf.zerosLike(keys), ...dy.map((g, i) => reduceToShape(g, phi0Params[i].shape))],
    );
  } finally {
    mask?.dispose();
  }
}
