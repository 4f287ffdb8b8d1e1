/**
 * Stage I with its exact gradient (second-order U-Hop): the in-layer fit of a linear Phi written
 * in plain differentiable ops, so that the task gradient reaches Phi0 THROUGH the fit steps
 * (tf.grad inside the forward pass gives each step's separation gradient; the outer tape then
 * differentiates that, a Hessian-vector product per step). `fitFeatureMapOp` (src/ops/fit.ts)
 * is the first-order alternative: the fitted Phi's gradient is passed to Phi0 unchanged.
 *
 * The step rules are those of fit.ts ('normalized' with per-set backtracking, or 'sgd'), with
 * the same values to float rounding; the accept/reject test of 'normalized' is held constant for
 * the tape (a 0/1 factor with zero gradient), as retrievalCore.ts does with its freeze test, so
 * the gradient is that of the piecewise-smooth map on the branch the forward pass took.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; tfjs-layers registers them all when it loads (as in separation.ts)
import '@tensorflow/tfjs-layers';
import type { SeparationLossKind } from './types.js';
import { detach } from './detach.js';
import { defaultFitLr, type FitOptimizer } from './fit.js';

/** How the task gradient reaches Phi0 through the in-layer fit. */
export type FitGradient = 'straight-through' | 'unrolled';
export const FIT_GRADIENTS: readonly FitGradient[] = ['straight-through', 'unrolled'];

export interface UnrolledFitOptions {
  /** Fit steps (integer >= 0). Default 5. */
  steps?: number;
  /** Step size (relative for 'normalized'). Default: the rule's default for a linear map. */
  lr?: number;
  /** Separation loss: 'lse' (default) or 'uniform' ('worst-pair' has no second-order gradient in tfjs). */
  loss?: SeparationLossKind;
  /** 'normalized' (default) or 'sgd'; 'adam' is not offered here. */
  optimizer?: FitOptimizer;
  /** Temperature of 'uniform'. Default 2. */
  t?: number;
  /** Temperature of 'lse'. Default 0.1. */
  tau?: number;
  /** [..., S] 1 = the memory takes part (broadcast to the keys' leading dims). */
  mask?: tf.Tensor;
  /** Unit rows of W after the fit. Default false. */
  rowNormalize?: boolean;
}

const NORM_EPS = 1e-12;
const EXCLUDED = -1e9;
const TINY_SQ_NORM = 1e-30;

/** 1 where a <= b else 0, with zero gradient to both (the tape never sees the comparison). */
const acceptOp = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
  value: tf.cast(tf.lessEqual(a, b), 'float32'),
  gradFunc: (dy: tf.Tensor) => [tf.zerosLike(dy), tf.zerosLike(dy)],
})) as Parameters<typeof tf.customGrad>[0]);

/** The row max of x [B, n] with zero gradient: a shift for a log-sum-exp, which does not depend on it. */
const rowMaxConst = tf.customGrad(((x: tf.Tensor) => {
  const shape = x.shape; // not x itself: the gradient needs only its shape
  return { value: tf.max(x, 1, true), gradFunc: () => tf.zeros(shape) };
}) as Parameters<typeof tf.customGrad>[0]);

/**
 * exp(x) whose gradient is computed from x: tfjs's own Exp gradient multiplies by the SAVED
 * output, which has no tape history, so a second-order tape would miss the output's dependence
 * on x (measured: 4.0947 against a finite difference of 4.0680 on a one-step unroll).
 */
const expOp = tf.customGrad(((x: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
  save([x]); // an input: kept as the tensor itself, with its tape history
  return { value: tf.exp(x), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.exp(saved[0])) };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/**
 * Per-set separation loss [B] of features F [B, S, D] in plain ops (the definition of
 * src/ops/separationLoss.ts: unit features, pairs i != j of unmasked memories; sets with fewer
 * than two memories have loss 0).
 */
function setLoss(F: tf.Tensor3D, kind: 'lse' | 'uniform', t: number, tau: number, pairBias: tf.Tensor, n: tf.Tensor1D, valid: tf.Tensor1D) {
  const U = tf.mul(F, tf.rsqrt(tf.add(tf.sum(tf.square(F), -1, true), NORM_EPS)));
  const scale = kind === 'lse' ? 1 / tau : 2 * t;
  const z = tf.add(tf.mul(tf.matMul(U, U, false, true), scale), pairBias); // [B, S, S]
  const [B, S] = F.shape;
  const flat = tf.reshape(z, [B, S * S]);
  const nSafe = tf.maximum(n, 2);
  // log-sum-exp by hand with a constant shift: tf.logSumExp's own gradient goes through max
  // (an Equal), which has no gradient of its own, so a second-order tape cannot pass it
  const m = rowMaxConst(flat) as tf.Tensor;
  const lse = tf.add(tf.reshape(m, [B]), tf.log(tf.sum(expOp(tf.sub(flat, m)) as tf.Tensor, 1)));
  const lme = tf.sub(lse, tf.log(tf.mul(nSafe, tf.sub(nSafe, 1))));
  const l = kind === 'lse' ? tf.div(lme, nSafe) : tf.sub(lme, 2 * t);
  return tf.mul(l, valid) as tf.Tensor1D;
}

/**
 * Fits a linear Phi (W [..., D, d] broadcasting to the keys' leading dims) on each memory set of
 * `keys` [..., S, d] like `fitFeatureMapOp`, but differentiably: the returned W [...lead, D, d]
 * carries the exact gradient of the fit with respect to `W0` (the keys are detached, as in the
 * first-order op). Costs about three times the first-order op's forward (a second loss per step
 * under the tape) and a Hessian-vector product per step in the backward pass.
 *
 * @example
 * ```ts
 * const W = unrolledLinearFit(keys, phi0Kernel, { steps: 5 });            // [B, H, D, d]
 * const g = tf.grad((w0) => tf.sum(unrolledLinearFit(keys, w0, { steps: 5 })))(phi0Kernel);
 * ```
 */
export function unrolledLinearFit(keys: tf.Tensor, W0: tf.Tensor, options: UnrolledFitOptions = {}): tf.Tensor {
  const fn = 'unrolledLinearFit';
  if (!(keys instanceof tf.Tensor) || keys.rank < 2) throw new Error(`${fn}: keys must be a tensor [..., S, d], got ${String(keys)}`);
  if (!(W0 instanceof tf.Tensor) || W0.rank < 2) throw new Error(`${fn}: W0 must be a tensor [..., D, d], got ${String(W0)}`);
  const { steps = 5, loss = 'lse', optimizer = 'normalized', t = 2, tau = 0.1, rowNormalize = false } = options;
  if (!Number.isInteger(steps) || steps < 0) throw new Error(`${fn}: steps must be an integer >= 0, got ${String(steps)}`);
  if (optimizer !== 'normalized' && optimizer !== 'sgd')
    throw new Error(`${fn}: optimizer must be 'normalized' or 'sgd', got '${String(optimizer)}'`);
  // 'worst-pair' is a max over pairs: its gradient has no gradient in tfjs (and is piecewise constant anyway)
  if (loss !== 'lse' && loss !== 'uniform') throw new Error(`${fn}: loss must be 'lse' or 'uniform', got '${String(loss)}'`);
  const lr = options.lr ?? defaultFitLr(optimizer, 'linear');
  if (!Number.isFinite(lr) || lr <= 0) throw new Error(`${fn}: lr must be a finite number > 0, got ${String(lr)}`);
  const S = keys.shape[keys.rank - 2];
  const d = keys.shape[keys.rank - 1];
  const lead = keys.shape.slice(0, -2);
  const D = W0.shape[W0.rank - 2];
  if (W0.shape[W0.rank - 1] !== d) throw new Error(`${fn}: W0 [${W0.shape}] must end in the keys' dim d = ${d}`);
  const B = lead.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    const K = tf.reshape(detach(keys), [B, S, d]) as tf.Tensor3D;
    const m = options.mask
      ? tf.reshape(tf.broadcastTo(tf.cast(tf.notEqual(options.mask, 0), 'float32'), [...lead, S]), [B, S])
      : tf.ones([B, S]);
    const eye = tf.eye(S);
    const keep = tf.mul(tf.mul(tf.expandDims(m, 2), tf.expandDims(m, 1)), tf.sub(1, eye)); // [B, S, S]
    const pairBias = tf.mul(tf.sub(1, keep), EXCLUDED);
    const n = tf.sum(m, 1) as tf.Tensor1D;
    const valid = tf.cast(tf.greaterEqual(n, 2), 'float32') as tf.Tensor1D;
    const Km = tf.mul(K, tf.expandDims(m, 2));
    const lossOf = (W: tf.Tensor) => setLoss(tf.matMul(K, W, false, true) as tf.Tensor3D, loss, t, tau, pairBias, n, valid);
    // W0 broadcast to one W per set: the gradient of the broadcast sums back into W0
    let W = tf.reshape(tf.broadcastTo(W0, [...lead, D, d]), [B, D, d]);
    let eta = tf.fill([B], lr) as tf.Tensor1D; // constant: only ever halved by constant factors
    const bySet = (v: tf.Tensor) => tf.reshape(v, [B, 1, 1]);
    for (let step = 0; step < steps; step++) {
      const L = lossOf(W);
      // each set's separation gradient (sets are independent, so the gradient of the sum is per set)
      const G = tf.grad((w: tf.Tensor) => tf.sum(lossOf(w)))(W);
      if (optimizer === 'sgd') {
        W = tf.sub(W, tf.mul(G, lr));
        continue;
      }
      const ref = tf.sum(tf.square(tf.matMul(Km, W, false, true)), [1, 2]);
      const dir = tf.sum(tf.square(tf.matMul(Km, G, false, true)), [1, 2]);
      const alpha = tf.mul(eta, tf.sqrt(tf.div(ref, tf.maximum(dir, TINY_SQ_NORM))));
      const cand = tf.sub(W, tf.mul(G, bySet(alpha)));
      const a = acceptOp(lossOf(cand), L) as tf.Tensor1D;
      W = tf.sub(W, tf.mul(G, bySet(tf.mul(alpha, a))));
      eta = tf.mul(eta, tf.add(0.5, tf.mul(a, 0.5))) as tf.Tensor1D; // a = 1: eta; a = 0: eta / 2
    }
    if (rowNormalize) W = tf.mul(W, tf.rsqrt(tf.maximum(tf.sum(tf.square(W), -1, true), 1e-24)));
    return tf.reshape(W, [...lead, D, d]);
  });
}
