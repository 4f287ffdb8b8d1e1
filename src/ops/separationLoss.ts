/**
 * Stage-I separation losses of U-Hop: how evenly the normalized features
 * u_i = Phi(k_i) / ||Phi(k_i)|| of a memory set cover the unit sphere (lower = better separated).
 *
 * Pairs are i < j; a pair with a masked memory is left out; S below is the number of unmasked
 * memories of the set. With ||u_i - u_j||^2 = 2 - 2 <u_i, u_j>:
 * - 'uniform' (Wang and Isola):  log mean_{i<j} exp(-t ||u_i - u_j||^2), t = 2;
 * - 'worst-pair':                max_{i<j} -t ||u_i - u_j||^2 (only the closest pair counts);
 * - 'lse' (U-Hop+):              log( mean_{i<j} exp(<u_i, u_j> / tau) ) / S, tau = 0.1.
 * A set with fewer than two unmasked memories has loss 0 and gradient 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SeparationLossKind, SeparationLossOptions } from './types.js';
import { disposePairConsts, makePairConsts, pairLossAndGradF } from './pairKernel.js';
import { chooseLayout } from './stage1Layout.js';
import { prepareMask, resolveSpec } from './stage1Options.js';
import { shapeStr } from './shapes.js';

function checkFeatures(features: tf.Tensor, fn: string): void {
  if (
    !(features instanceof tf.Tensor) ||
    features.rank < 2 ||
    features.shape[features.rank - 1] < 1 ||
    features.shape[features.rank - 2] < 1
  ) {
    throw new Error(
      `${fn}: features must be [..., S, D] (one memory set per leading index), got ${features instanceof tf.Tensor ? `shape ${shapeStr(features.shape)}` : String(features)}`,
    );
  }
  if (features.dtype !== 'float32') throw new Error(`${fn}: features must be float32, got ${features.dtype}`);
}

function run(fn: string, features: tf.Tensor, kind: SeparationLossKind, options: SeparationLossOptions, withGrad: boolean) {
  checkFeatures(features, fn);
  const spec = resolveSpec(kind, options.t, options.tau, fn);
  const shape = features.shape;
  const S = shape[shape.length - 2];
  const D = shape[shape.length - 1];
  const lead = shape.slice(0, -2);
  const B = lead.reduce((a, b) => a * b, 1);
  const mask = prepareMask(options.mask, [...lead, S], fn);
  const layout = chooseLayout(B, S);
  const consts = makePairConsts(B, S, mask, spec, layout);
  try {
    return tf.tidy(() => {
      const F3 = tf.reshape(features, [B, S, D]);
      const F = layout.fromSetMajor(F3);
      const { loss, dF } = pairLossAndGradF(F, consts, withGrad);
      const lossOut = tf.reshape(loss, lead);
      if (!withGrad) return { loss: lossOut };
      const grad = layout.toSetMajor(dF!);
      return { loss: lossOut, grad: tf.reshape(grad, shape) };
    });
  } finally {
    mask?.dispose();
    disposePairConsts(consts);
  }
}

/**
 * Separation loss of each memory set of `features` [..., S, D] (unnormalized features; they are
 * normalized here). Returns one loss per set, shape [...] (a scalar for a single set).
 * Differentiable: tf.grad uses the analytic gradient of `separationLossAndGrad`.
 *
 * @example
 * ```ts
 * const loss = separationLoss(applyFeatureMap(phi, keys), 'lse');              // [...]
 * const uni = separationLoss(features, 'uniform', { t: 2, mask: keyMask });    // mask [..., S]
 * ```
 */
export function separationLoss(features: tf.Tensor, kind: SeparationLossKind = 'lse', options: SeparationLossOptions = {}): tf.Tensor {
  const fn = 'separationLoss';
  checkFeatures(features, fn);
  // A customGrad, so that tf.grad of the loss uses the analytic gradient (on every backend: the
  // wasm layout's depthwise convolutions have no backward kernels there).
  const f = tf.customGrad((...args: Array<tf.Tensor | unknown>) => {
    const x = args[0] as tf.Tensor;
    (args[1] as (t: tf.Tensor[]) => void)([x]);
    return {
      value: run(fn, x, kind, options, false).loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const { grad } = run(fn, saved[0], kind, options, true);
          return tf.mul(grad!, tf.reshape(dy, [...dy.shape, 1, 1]));
        }),
    };
  });
  return f(features);
}

/**
 * The separation loss of each set and its analytic gradient with respect to the UNNORMALIZED
 * features (through u = F / sqrt(||F||^2 + 1e-12)), computed without tf.grad: usable inside a
 * tf.customGrad forward pass, where the tape is off. `grad` is d(sum of the losses)/dF, of the
 * shape of `features`. For 'worst-pair' the gradient is that of the closest pair (averaged over
 * exact ties).
 *
 * @example
 * ```ts
 * const { loss, grad } = separationLossAndGrad(features, 'uniform');   // [...], [..., S, D]
 * ```
 */
export function separationLossAndGrad(
  features: tf.Tensor,
  kind: SeparationLossKind = 'lse',
  options: SeparationLossOptions = {},
): { loss: tf.Tensor; grad: tf.Tensor } {
  const out = run('separationLossAndGrad', features, kind, options, true);
  return { loss: out.loss, grad: out.grad! };
}
