/**
 * The engines of the Stage-I fit (src/ops/fit.ts): one parametrisation each (a linear map W,
 * a linear map in the span of the memories, an mlp), giving the loss, the step direction and
 * the norms the step rules (src/ops/fitRules.ts) need from the current parameters. Written
 * once against the layout interface (src/ops/stage1Layout.ts) that the fit chose.
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FitOptimizer } from './fit.js';
import { featureMapBackwardCached, featureMapForward, type FeatureMapInfo } from './featureMap.js';
import { pairLossAndGradF, type PairConsts, type PairSpec } from './pairKernel.js';
import { broadcastToFast, sizeOf } from './shapes.js';
import type { Stage1Layout } from './stage1Layout.js';

/** What one fit runs: the checked options and the memory sets' shape. */
export interface FitPlan {
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

/** phi0's params broadcast to the sets and flattened to one batch axis: [B, ...inner]. */
export function batchedParams(params: tf.Tensor[], plan: FitPlan): tf.Tensor[] {
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
export interface FitEngine {
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

export interface EngineOutput {
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
export function setSums(xs: tf.Tensor[], axis: number, B: number): tf.Tensor1D {
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
 * norms rowSq [B, S], dir from the step direction H = K G^T (pair layout), masked memories
 * out (`m`: the mask as `layout.perMemory` shapes it, once per fit).
 */
function featureNorms(rowSq: tf.Tensor2D, H: tf.Tensor | undefined, mask: tf.Tensor2D | null, m: tf.Tensor | null, layout: Stage1Layout) {
  const ref = maskedRowSum(rowSq, mask);
  if (!H) return { ref };
  const sq = tf.square(H);
  return { ref, dir: setSums([m ? tf.mul(sq, m) : sq], layout.setAxis, layout.B) };
}

/**
 * Linear Phi ('sgd', 'adam'): everything stays in the pair kernel's layout (the layout's
 * `linear` products; the keys are transposed once).
 */
function linearEngine(K: tf.Tensor3D, W0: tf.Tensor, consts: PairConsts, plan: FitPlan): FitEngine {
  const products = consts.layout.linear(K, plan.info.featureDim);
  const { fwd, bwd, setAxis } = products;
  return {
    init: () => [tf.tidy(() => products.init(batchedParams([W0], plan)[0]))],
    lossAndGrads: ([W], withGrad, withLoss = true) =>
      tf.tidy(() => {
        const { loss, dF } = pairLossAndGradF(fwd(W), consts, withGrad, withLoss);
        return { loss, grads: withGrad ? [bwd(dF!)] : undefined };
      }),
    finish: (p) => [products.finish(p[0])],
    setAxis,
    dispose: () => products.dispose(),
  };
}

/**
 * Linear Phi with the 'normalized' rule: the features are tracked next to W. The params are
 * [F, W] with F = K W^T, the step direction is [H, G] with G = dL/dW = dF^T K and
 * H = K G^T, the move of the features per unit step (F is linear in W). So a candidate is
 * F - a H, with no product, and the rule's norms are ||F||^2 (from the normalization) and
 * ||H||^2 over the unmasked memories: each step runs the two products of a gradient (bwd for
 * G, fwd for H), where evaluating K W^T per candidate and ||K G^T||^2 = <G, G C> (the keys'
 * d x d Gram matrix C, formed per fit) took one more product per step and one per fit.
 * F differs from K W^T by float rounding only, as in `spanEngine`.
 */
function trackedLinearEngine(K: tf.Tensor3D, W0: tf.Tensor, consts: PairConsts, plan: FitPlan, mask: tf.Tensor2D | null): FitEngine {
  const layout = consts.layout;
  const products = layout.linear(K, plan.info.featureDim);
  const { fwd, bwd } = products;
  if (products.setAxis !== layout.setAxis) throw new Error('fitFeatureMap: W and the features must keep the sets on one axis');
  const m = mask ? layout.perMemory(mask) : null; // shaped once per fit
  return {
    init: () =>
      tf.tidy(() => {
        const W = products.init(batchedParams([W0], plan)[0]);
        return [fwd(W), W];
      }),
    lossAndGrads: ([F], withGrad, withLoss = true, withNorms = false) =>
      tf.tidy(() => {
        const { loss, dF, rowSq } = pairLossAndGradF(F, consts, withGrad, withLoss, withNorms);
        let grads: tf.Tensor[] | undefined;
        if (withGrad) {
          const G = bwd(dF!);
          grads = [fwd(G), G];
        }
        return { loss, grads, norms: withNorms ? featureNorms(rowSq!, grads?.[0], mask, m, layout) : undefined };
      }),
    finish: ([, W]) => [products.finish(W)],
    setAxis: layout.setAxis,
    evalUses: [true, false],
    dispose: () => {
      products.dispose();
      m?.dispose();
    },
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
  const layout = consts.layout;
  const W0b = tf.tidy(() => batchedParams([W0], plan)[0]); // [B, D, d]
  const products = layout.span(K, W0b);
  const m = mask ? layout.perMemory(mask) : null; // shaped once per fit
  return {
    init: () => [products.F0.clone(), tf.zerosLike(products.F0)],
    lossAndGrads: ([F], withGrad, withLoss = true, withNorms = false) =>
      tf.tidy(() => {
        const { loss, dF, rowSq } = pairLossAndGradF(F, consts, withGrad, withLoss, withNorms);
        const grads = withGrad ? [products.step(dF!), dF!] : undefined;
        return { loss, grads, norms: withNorms ? featureNorms(rowSq!, grads?.[0], mask, m, layout) : undefined };
      }),
    finish: ([, M]) => [products.finish(M)],
    setAxis: layout.setAxis,
    evalUses: [true, false],
    dispose: () => {
      products.dispose();
      tf.dispose([W0b, ...(m ? [m] : [])]);
    },
  };
}

/** MLP Phi: the map's products are batched matMuls, the pair kernel runs in its own layout. */
function mlpEngine(K: tf.Tensor3D, params0: tf.Tensor[], consts: PairConsts, plan: FitPlan): FitEngine {
  const layout = consts.layout;
  return {
    init: () => batchedParams(params0, plan),
    lossAndGrads: (params, withGrad, withLoss = true, withNorms = false) =>
      tf.tidy(() => {
        const cache = featureMapForward('mlp', params, K, false);
        const { loss, dF } = pairLossAndGradF(layout.fromSetMajor(cache.F), consts, withGrad, withLoss);
        const grads = withGrad ? featureMapBackwardCached('mlp', params, K, cache, layout.toSetMajor(dF!), false) : undefined;
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
 * The engine of a fit: mlp maps get `mlpEngine`; linear maps the span engine for gradient
 * steps with S < 2d (or as `plan.span` forces), else `trackedLinearEngine` ('normalized') or
 * `linearEngine` ('sgd', 'adam').
 */
export function makeEngine(K: tf.Tensor3D, params0: tf.Tensor[], mask: tf.Tensor2D | null, consts: PairConsts, plan: FitPlan): FitEngine {
  const span = plan.span ?? (plan.optimizer !== 'adam' && plan.S < 2 * plan.d);
  if (plan.info.kind === 'mlp') return mlpEngine(K, params0, consts, plan);
  if (span && plan.optimizer !== 'adam') return spanEngine(K, params0[0], consts, plan, mask);
  if (plan.optimizer === 'normalized') return trackedLinearEngine(K, params0[0], consts, plan, mask);
  return linearEngine(K, params0[0], consts, plan);
}
