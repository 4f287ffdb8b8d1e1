/**
 * Small tensor helpers shared by the layers and the model builders: head split and merge,
 * layer normalization, a 3-D dense product that is fast on wasm, extra memories appended to
 * keys and values, and rank padding. Pure functions, no layer state.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * [B, N, H*d] -> [B, H, N, d].
 *
 * @example
 * ```ts
 * splitHeads(tf.zeros([2, 5, 8]), 4).shape; // [2, 4, 5, 2]
 * ```
 */
export function splitHeads(x: tf.Tensor, numHeads: number): tf.Tensor {
  const [B, N, F] = x.shape as number[];
  return tf.transpose(tf.reshape(x, [B, N, numHeads, F / numHeads]), [0, 2, 1, 3]);
}

/**
 * [B, H, N, d] -> [B, N, H*d] (the inverse of {@link splitHeads}).
 *
 * @example
 * ```ts
 * mergeHeads(tf.zeros([2, 4, 5, 2])).shape; // [2, 5, 8]
 * ```
 */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [B, H, N, d] = x.shape as number[];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, N, H * d]);
}

/**
 * Layer normalization over the last axis, with optional affine gamma/beta.
 *
 * @example
 * ```ts
 * layerNorm(tf.tensor2d([[1, 2, 3]]), 1e-5); // [[-1.22, 0, 1.22]]
 * ```
 */
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

/**
 * x [B, N, F] W [F, O] (+ b) -> [B, N, O] as one 2-D matMul.
 *
 * @example
 * ```ts
 * dense3d(tf.ones([2, 3, 4]), tf.ones([4, 5])).shape; // [2, 3, 5], every entry 4
 * ```
 */
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
 * `extraK` [H, dk] and `extraV` [H, dv] (zeros for the zero association).
 *
 * @example
 * ```ts
 * const { k } = appendMemory(tf.zeros([2, 4, 5, 8]), tf.zeros([2, 4, 5, 3]), tf.ones([4, 8]), tf.ones([4, 3]));
 * k.shape; // [2, 4, 6, 8]
 * ```
 */
export function appendMemory(k: tf.Tensor, v: tf.Tensor, extraK: tf.Tensor, extraV: tf.Tensor): { k: tf.Tensor; v: tf.Tensor } {
  return tf.tidy(() => {
    const [Bk, H, , dk] = k.shape as number[];
    const [Bv, , , dv] = v.shape as number[];
    const ek = tf.broadcastTo(tf.reshape(extraK, [1, H, 1, dk]), [Bk, H, 1, dk]);
    const ev = tf.broadcastTo(tf.reshape(extraV, [1, H, 1, dv]), [Bv, H, 1, dv]);
    return { k: tf.concat([k, ek], 2), v: tf.concat([v, ev], 2) };
  });
}

/**
 * Prepends unit dims until `t` has rank `rank` (for products with a shared operand).
 *
 * @example
 * ```ts
 * toRank(tf.zeros([3, 4]), 4).shape; // [1, 1, 3, 4]
 * ```
 */
export function toRank(t: tf.Tensor, rank: number): tf.Tensor {
  while (t.rank < rank) t = tf.expandDims(t, 0);
  return t;
}
