/**
 * Shape helpers of the ops: printing, sizes, numpy-style broadcasting of shapes, and the two
 * tensor helpers that follow from it (a fast broadcastTo and its adjoint, a sum back to a shape).
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';

/** A shape as `[2, 3]`, for error messages. */
export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Number of entries of a tensor of this shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Numpy-style broadcast of two shapes (right-aligned), or null when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** True when `from` broadcasts to exactly `to`. */
export function broadcastsTo(from: readonly number[], to: readonly number[]): boolean {
  const b = broadcastShapes(from, to);
  return b !== null && b.length === to.length && b.every((x, i) => x === to[i]);
}

/**
 * tf.broadcastTo by a broadcasting multiply with a small ones tensor: same result, but
 * tfjs-backend-wasm's Tile kernel (behind broadcastTo) is about 20x slower than its Mul.
 * float32 only.
 */
export function broadcastToFast(x: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const offset = shape.length - x.rank;
  if (offset === 0 && x.shape.every((s, i) => s === shape[i])) return tf.clone(x);
  const ones = shape.map((s, i) => (i >= offset && x.shape[i - offset] === s ? 1 : s));
  return tf.tidy(() => tf.mul(x, tf.ones(ones)));
}

/** Sums `t` over the axes that broadcasting added or stretched, so that it gets `shape`. */
export function reduceToShape(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    const extra = t.rank - shape.length;
    let out = t;
    if (extra > 0)
      out = tf.sum(
        out,
        Array.from({ length: extra }, (_, i) => i),
      );
    const stretched: number[] = [];
    shape.forEach((s, i) => {
      if (s === 1 && out.shape[i] !== 1) stretched.push(i);
    });
    if (stretched.length > 0) out = tf.sum(out, stretched, true);
    return out === t ? tf.clone(t) : out;
  });
}
