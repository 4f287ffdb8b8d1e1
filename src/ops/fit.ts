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

export type FitOptimizer = 'sgd' | 'adam';

export interface FitFeatureMapOptions {
  /** Gradient steps (an integer >= 0). Default 100. */
  steps?: number;
  /** Learning rate (finite, > 0). Default 0.1. */
  lr?: number;
  /** Separation loss. Default 'lse' (U-Hop+). */
  loss?: SeparationLossKind;
  /**
   * 'sgd' (default): plain gradient steps W <- W - lr dL/dW, as in the papers. 'adam': Adam with
   * beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 and bias correction, moments kept per set.
   */
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

const OPTIMIZERS: readonly FitOptimizer[] = ['sgd', 'adam'];
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
  /** Linear + sgd: fit in the span of the memories (default: when S < 2d). For tests. */
  span?: boolean;
}

function checkOptions(options: FitFeatureMapOptions, fn: string): Omit<FitPlan, 'info' | 'lead' | 'B' | 'S' | 'd'> {
  if (options === null || typeof options !== 'object') throw new Error(`${fn}: options must be an object, got ${String(options)}`);
  const { steps = 100, lr = 0.1, loss = 'lse', optimizer = 'sgd', rowNormalize = false } = options;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 0) {
    throw new Error(`${fn}: steps must be an integer >= 0, got ${String(steps)}`);
  }
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new Error(`${fn}: lr must be a finite number > 0, got ${String(lr)}`);
  if (!OPTIMIZERS.includes(optimizer)) throw new Error(`${fn}: optimizer must be one of ${OPTIMIZERS.join(', ')}, got '${String(optimizer)}'`);
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
  const base = checkOptions(options, fn);
  const info = featureMapInfo(phi0, fn);
  const shape = memorySets.shape;
  const S = shape[shape.length - 2];
  const d = shape[shape.length - 1];
  const lead = shape.slice(0, -2);
  if (S < 1) throw new Error(`${fn}: a memory set needs at least one memory, got shape ${shapeStr(shape)}`);
  if (d !== info.inputDim) {
    throw new Error(`${fn}: the memories' dim d = ${d} (shape ${shapeStr(shape)}) does not match the feature map's input dim ${info.inputDim}`);
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
  /** Loss [B] (unless withLoss is false) and, when asked, dL/dparams (same layout). */
  lossAndGrads(params: tf.Tensor[], withGrad: boolean, withLoss?: boolean): { loss?: tf.Tensor1D; grads?: tf.Tensor[] };
  /** Parameters back in the standard [B, ...inner] layout. */
  finish(params: tf.Tensor[]): tf.Tensor[];
  dispose(): void;
}

/** Linear Phi: everything stays in the pair kernel's layout, the keys are transposed once. */
function linearEngine(K: tf.Tensor3D, W0: tf.Tensor, consts: PairConsts, plan: FitPlan): FitEngine {
  const { B, S, d } = plan;
  const D = plan.info.featureDim;
  if (consts.layout === 'bsd') {
    // W [B, D, d]; F = K W^T [B, S, D]; dW = dF^T K.
    return {
      init: () => batchedParams([W0], plan),
      lossAndGrads: ([W], withGrad, withLoss = true) =>
        tf.tidy(() => {
          const { loss, dF } = pairLossAndGradF(tf.matMul(K, W, false, true), consts, withGrad, withLoss);
          return withGrad ? { loss, grads: [tf.matMul(dF!, K, true, false)] } : { loss };
        }),
      finish: (p) => p.map((t) => t.clone()),
      dispose: () => {},
    };
  }
  // dbs: W kept as [D, B, d]; features as [D, B, S]. Both products are depthwise convolutions
  // over the B sets (channels): F^T_b = W_b K_b^T and dW_b = dF^T_b K_b.
  const Kf = tf.transpose(K, [2, 0, 1]); // [d, B, S]
  const Kb = tf.transpose(K, [1, 0, 2]); // [S, B, d]
  const conv = (x: tf.Tensor, xs: [number, number, number, number], f: tf.Tensor, fs: [number, number, number, number]) =>
    tf.depthwiseConv2d(tf.reshape(x, xs) as tf.Tensor4D, tf.reshape(f, fs) as tf.Tensor4D, 1, 'valid');
  if (B === 1) {
    // One set: plain 2-D matMuls whose right operand (the keys) never changes, so XNNPACK packs
    // it once for the whole fit.
    const Kf2 = tf.reshape(Kf, [d, S]);
    const Kb2 = tf.reshape(Kb, [S, d]);
    return {
      init: () => tf.tidy(() => batchedParams([W0], plan).map((w) => tf.reshape(w, [D, 1, d]))),
      lossAndGrads: ([W], withGrad, withLoss = true) =>
        tf.tidy(() => {
          const F = tf.reshape(tf.matMul(tf.reshape(W, [D, d]), Kf2), [D, 1, S]);
          const { loss, dF } = pairLossAndGradF(F, consts, withGrad, withLoss);
          if (!withGrad) return { loss };
          return { loss, grads: [tf.reshape(tf.matMul(tf.reshape(dF!, [D, S]), Kb2), [D, 1, d])] };
        }),
      finish: (p) => p.map((t) => tf.reshape(t, [1, D, d])),
      dispose: () => tf.dispose([Kf, Kb, Kf2, Kb2]),
    };
  }
  return {
    init: () => tf.tidy(() => batchedParams([W0], plan).map((w) => tf.transpose(w, [1, 0, 2]))),
    lossAndGrads: ([W], withGrad, withLoss = true) =>
      tf.tidy(() => {
        const F = tf.reshape(conv(tf.transpose(W, [0, 2, 1]), [1, D, d, B], Kf, [1, d, B, S]), [D, B, S]);
        const { loss, dF } = pairLossAndGradF(F, consts, withGrad, withLoss);
        if (!withGrad) return { loss };
        const dW = tf.reshape(conv(tf.transpose(dF!, [0, 2, 1]), [1, D, S, B], Kb, [1, S, B, d]), [D, B, d]);
        return { loss, grads: [dW] };
      }),
    finish: (p) => p.map((t) => tf.transpose(t, [1, 0, 2])),
    dispose: () => tf.dispose([Kf, Kb]),
  };
}

/**
 * Linear Phi with plain gradient steps and fewer memories than twice the input dim (S < 2d, e.g.
 * R1: 100 patterns of dim 784): the iterates stay in the span of the memories. With F = K W^T,
 * the step W <- W - lr dF^T K moves the features by F <- F - lr (K K^T) dF, so the fit runs on
 * F with the fixed S x S Gram matrix of the keys (S^2 D multiply-adds per step instead of
 * 2 S d D) and W = W0 - lr (sum_t dF_t)^T K is formed once at the end. Same iterates as
 * `linearEngine` up to float rounding.
 */
function spanEngine(K: tf.Tensor3D, W0: tf.Tensor, consts: PairConsts, plan: FitPlan): FitEngine {
  const { B, S, d, lr } = plan;
  const D = plan.info.featureDim;
  let dFsum: tf.Tensor | null = null; // sum of dL/dF over the steps, layout of F
  const accumulate = (dF: tf.Tensor) => {
    const next = tf.keep(dFsum ? tf.add(dFsum, dF) : tf.clone(dF));
    dFsum?.dispose();
    dFsum = next;
  };
  const W0b = tf.tidy(() => batchedParams([W0], plan)[0]); // [B, D, d]
  if (consts.layout === 'bsd') {
    const C = tf.matMul(K, K, false, true); // [B, S, S]
    return {
      init: () => [tf.matMul(K, W0b, false, true)],
      lossAndGrads: ([F], withGrad, withLoss = true) =>
        tf.tidy(() => {
          const { loss, dF } = pairLossAndGradF(F, consts, withGrad, withLoss);
          if (!withGrad) return { loss };
          accumulate(dF!);
          return { loss, grads: [tf.matMul(C, dF!)] };
        }),
      finish: () => [dFsum ? tf.tidy(() => tf.sub(W0b, tf.mul(tf.matMul(dFsum!, K, true, false), lr))) : W0b.clone()],
      dispose: () => tf.dispose([C, W0b, ...(dFsum ? [dFsum] : [])]),
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
  return {
    init: () =>
      tf.tidy(() => [
        B === 1
          ? tf.reshape(tf.matMul(tf.reshape(W0l, [D, d]), tf.reshape(Kt, [d, S])), [D, 1, S])
          : tf.reshape(conv(W0l, [1, D, d, B], Kt, [1, d, B, S]), [D, B, S]),
      ]),
    lossAndGrads: ([F], withGrad, withLoss = true) =>
      tf.tidy(() => {
        const { loss, dF } = pairLossAndGradF(F, consts, withGrad, withLoss);
        if (!withGrad) return { loss };
        accumulate(dF!);
        const step =
          B === 1
            ? tf.reshape(tf.matMul(tf.reshape(dF!, [D, S]), C), [D, 1, S])
            : tf.reshape(conv(tf.transpose(dF!, [0, 2, 1]), [1, D, S, B], C, [1, S, B, S]), [D, B, S]);
        return { loss, grads: [step] };
      }),
    finish: () => [
      dFsum
        ? tf.tidy(() => {
            const dW =
              B === 1
                ? tf.reshape(tf.matMul(tf.reshape(dFsum!, [D, S]), K2!), [1, D, d])
                : tf.transpose(tf.reshape(conv(tf.transpose(dFsum!, [0, 2, 1]), [1, D, S, B], Kb, [1, S, B, d]), [D, B, d]), [1, 0, 2]);
            return tf.sub(W0b, tf.mul(dW, lr));
          })
        : W0b.clone(),
    ],
    dispose: () => tf.dispose([C, Kt, Kb, W0b, W0l, ...(K2 ? [K2] : []), ...(dFsum ? [dFsum] : [])]),
  };
}

/** MLP Phi: the map's products are batched matMuls, the pair kernel runs in its own layout. */
function mlpEngine(K: tf.Tensor3D, params0: tf.Tensor[], consts: PairConsts, plan: FitPlan): FitEngine {
  const toPair = (F: tf.Tensor) => (consts.layout === 'bsd' ? F : tf.transpose(F, [2, 0, 1]));
  const fromPair = (dF: tf.Tensor) => (consts.layout === 'bsd' ? dF : tf.transpose(dF, [1, 2, 0]));
  return {
    init: () => batchedParams(params0, plan),
    lossAndGrads: (params, withGrad, withLoss = true) =>
      tf.tidy(() => {
        const cache = featureMapForward('mlp', params, K, false);
        const { loss, dF } = pairLossAndGradF(toPair(cache.F), consts, withGrad, withLoss);
        if (!withGrad) return { loss };
        return { loss, grads: featureMapBackwardCached('mlp', params, K, cache, fromPair(dF!), false) };
      }),
    finish: (p) => p.map((t) => t.clone()),
    dispose: () => {},
  };
}

/**
 * The fit itself, on keys [B, S, d]. Returns the fitted params [B, ...inner] and, when asked,
 * the loss trace [steps + 1, B]. Not tidy-wrapped (the callers are).
 */
function runFit(K: tf.Tensor3D, params0: tf.Tensor[], mask: tf.Tensor2D | null, plan: FitPlan, wantTrace: boolean) {
  const consts = makePairConsts(plan.B, plan.S, mask, plan.spec, preferredLayout());
  const span = plan.span ?? (plan.optimizer === 'sgd' && plan.S < 2 * plan.d);
  const engine =
    plan.info.kind === 'mlp'
      ? mlpEngine(K, params0, consts, plan)
      : span && plan.optimizer === 'sgd'
        ? spanEngine(K, params0[0], consts, plan)
        : linearEngine(K, params0[0], consts, plan);
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
        const p2 = params.map((p, i) =>
          tf.sub(p, tf.div(tf.mul(m2[i], plan.lr / c1), tf.add(tf.sqrt(tf.div(v2[i], c2)), ADAM_EPSILON))),
        );
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
    engine.dispose();
    disposePairConsts(consts);
  }
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
export function fitFeatureMapSpanForTest(memorySets: tf.Tensor, phi0: FeatureMap, options: FitFeatureMapOptions, span: boolean): FitFeatureMapResult {
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
