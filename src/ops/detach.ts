/**
 * Gradient stopping for TensorFlow.js, which has no `stopGradient` op.
 */
import * as tf from '@tensorflow/tfjs-core';

const detachOp = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as Parameters<typeof tf.customGrad>[0]);

/**
 * Returns a tensor equal to `x` whose gradient is zero (PyTorch's `x.detach()`, TensorFlow's
 * `tf.stop_gradient`). The value is a new tensor handle sharing `x`'s data; nothing recorded
 * before it on the gradient tape receives gradient through it, and ops without a registered
 * gradient (TopK, ArgMax, ...) applied to the result still sit on the tape, so compute those
 * inside a `tf.customGrad` instead when they must run under `tf.grad`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { detach } from 'uhop';
 * const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, detach(x))))(tf.tensor1d([1, 2]));
 * g.print(); // [1, 2]: only the first factor is differentiated
 * ```
 */
export function detach<T extends tf.Tensor>(x: T): T {
  if (!(x instanceof tf.Tensor)) {
    throw new Error(`detach: x must be a tf.Tensor, got ${x === null ? 'null' : typeof x}`);
  }
  return detachOp(x) as T;
}
