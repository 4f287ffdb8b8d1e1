/**
 * U-Hop Stage I: fit the feature map Phi on each memory set by gradient descent on a separation
 * loss, starting from Phi0. One independent fit per memory set, all sets in one batched
 * computation; every gradient is analytic (no tf.grad), so the fit also runs inside a
 * tf.customGrad forward pass, where the tape is off.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureMap, FeatureMapKind, SeparationLossKind } from './types.js';
import { featureMapInfo } from './featureMap.js';
import { makeEngine, type FitPlan } from './fitEngines.js';
import { normalizedFit, plainFit } from './fitRules.js';
import { disposePairConsts, makePairConsts } from './pairKernel.js';
import { broadcastsTo, reduceToShape, shapeStr, sizeOf } from './shapes.js';
import { chooseLayout } from './stage1Layout.js';
import { prepareMask, resolveSpec } from './stage1Options.js';

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

/**
 * The fit itself, on keys [B, S, d]. Returns the fitted params [B, ...inner] and, when asked,
 * the loss trace [steps + 1, B]. Not tidy-wrapped (the callers are). The layout is chosen
 * here, once per fit, for the active backend and B.
 */
function runFit(K: tf.Tensor3D, params0: tf.Tensor[], mask: tf.Tensor2D | null, plan: FitPlan, wantTrace: boolean) {
  const consts = makePairConsts(plan.B, plan.S, mask, plan.spec, chooseLayout(plan.B, plan.S));
  const engine = makeEngine(K, params0, mask, consts, plan);
  try {
    if (plan.optimizer === 'normalized') return normalizedFit(engine, consts, plan, wantTrace);
    return plainFit(engine, consts, plan, wantTrace);
  } finally {
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
