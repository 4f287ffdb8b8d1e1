/**
 * Batched matrix products that are fast on tfjs-backend-wasm, shared by Stage I (analytic code,
 * `bmm`) and the layers (differentiable, `batchMatMul`).
 *
 * tfjs-backend-wasm runs a batched or transposed tf.matMul through a plain loop (about
 * 2 GFLOP/s) but depthwise convolutions and 2-D non-transposed products through XNNPACK. With N
 * products [m, k] x [k, n], `bmm` runs ONE depthwise convolution with the N sets as channels (a
 * as an m x k image per channel, b as n filters of 1 x k per channel), or, for N = 1, a 2-D
 * matMul of explicitly transposed operands. Every other backend gets tf.matMul.
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * c_b = op(a_b) op(b_b) for operands with one leading batch axis N ([N, ., .]), op = transpose
 * when asked. NOT differentiable by the tape on wasm (it has no backward kernels for depthwise
 * convolutions): for analytic code; `batchMatMul` is the differentiable form.
 */
export function bmm(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB);
  const [N, a1, a2] = a.shape as number[];
  const [, b1, b2] = b.shape as number[];
  const m = transposeA ? a2 : a1;
  const k = transposeA ? a1 : a2;
  const n = transposeB ? b1 : b2;
  return tf.tidy(() => {
    if (N === 1) {
      const a2d = tf.reshape(a, [a1, a2]);
      const b2d = tf.reshape(b, [b1, b2]);
      return tf.reshape(tf.matMul(transposeA ? tf.transpose(a2d) : a2d, transposeB ? tf.transpose(b2d) : b2d), [1, m, n]);
    }
    const x = tf.transpose(a, transposeA ? [2, 1, 0] : [1, 2, 0]); // [m, k, N]
    const f = tf.transpose(b, transposeB ? [2, 0, 1] : [1, 0, 2]); // [k, N, n]
    const out = tf.depthwiseConv2d(tf.reshape(x, [1, m, k, N]) as tf.Tensor4D, tf.reshape(f, [1, k, N, n]) as tf.Tensor4D, 1, 'valid');
    return tf.transpose(tf.reshape(out, [m, N, n]), [1, 0, 2]); // [1, m, 1, N*n] -> [N, m, n]
  });
}

/**
 * a b^T for a [N, m, k], b [N, n, k] -> [N, m, n] by `bmm`, differentiable: the backward
 * products are `bmm`s too, dA = dC B and dB = dC^T A.
 */
const bmmABtOp = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: bmm(a, b, false, true),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved;
      return [bmm(dy, sb), bmm(dy, sa, true, false)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]);

/**
 * Batched a b^T (`transposeB`, default) or a b over equal leading dims: a [..., m, k],
 * b [..., n, k] (or [..., k, n]) -> [..., m, n]. tf.matMul everywhere but on wasm, where it is
 * `bmm` with a backward pass of `bmm`s (differentiable by the tape).
 *
 * @example
 * ```ts
 * const q = tf.randomNormal([2, 4, 8, 16]), k = tf.randomNormal([2, 4, 10, 16]);
 * const scores = batchMatMul(q, k);              // [2, 4, 8, 10] = q k^T per (sample, head)
 * const out = batchMatMul(tf.softmax(scores), tf.randomNormal([2, 4, 10, 16]), false); // [2, 4, 8, 16]
 * ```
 */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor, transposeB = true): tf.Tensor {
  if (tf.getBackend() !== 'wasm' || a.rank < 3) return tf.matMul(a, b, false, transposeB);
  return tf.tidy(() => {
    const lead = a.shape.slice(0, -2) as number[];
    const N = lead.reduce((p, q) => p * q, 1);
    const [m, k] = a.shape.slice(-2) as number[];
    const bt = transposeB ? b : tf.transpose(b, [...lead.map((_, i) => i), lead.length + 1, lead.length]);
    const n = bt.shape[bt.rank - 2] as number;
    const c = bmmABtOp(tf.reshape(a, [N, m, k]), tf.reshape(bt, [N, n, k]));
    return tf.reshape(c, [...lead, m, n]);
  });
}
