/**
 * Mask conventions of the package, in one place.
 *
 * - Padding masks (`memoryMask`, `storedPatternPaddingMask`, MIL bag masks) are [B, S]:
 *   1/true = a real memory, 0/false = padding. A padded row never influences a result: its
 *   values are replaced by zeros before any product ({@link zeroPadded}), so NaN, Inf or
 *   1e30 there change nothing, forward or backward.
 * - Association masks say which memory each query may associate with. Two forms, chosen by
 *   the `maskType` option of the layers:
 *   - 'allowed' (default; Keras and tfjs MultiHeadAttention): bool, or numbers 0/1;
 *     1/true = allowed. A numeric mask with any other value is an error (a torch-style
 *     additive float mask of 0 / -inf would otherwise come out inverted).
 *   - 'additive' (PyTorch's float `attn_mask`): 0 = allowed, -Infinity (or a finite stand-in
 *     <= -1e4, such as -1e9) = blocked. Other values (soft score biases) are an error.
 *   The value check of a numeric mask reads one boolean back from the device, ONCE per mask
 *   tensor: tensors are immutable, so a mask that passed stays valid, and {@link allowedMask}
 *   remembers it (a WeakSet, per form). A layer called again and again with the same mask (a
 *   fixed causal or block mask, a padding mask of a fixed batch) syncs on its first call only;
 *   a bool mask in the 'allowed' form never needs a check. Why not on the device: a clear error
 *   for a bad mask needs its values on the CPU; a device-side check could only poison the
 *   output (NaN) or report a call late, and a debug-only check would let a PyTorch-style mask
 *   through silently inverted by default, the defect the check exists for.
 */
import * as tf from '@tensorflow/tfjs-core';

/** How an association mask is written: see the file header. */
export type MaskType = 'allowed' | 'additive';
export const MASK_TYPES: readonly MaskType[] = ['allowed', 'additive'];

/** Values at or below this count as "blocked" in an additive mask (finite stand-ins for -inf). */
export const ADDITIVE_BLOCKED_BELOW = -1e4;

/**
 * Numeric masks whose values passed the check, per form (see the file header): tensors are
 * immutable, so one check holds for a tensor's life; weak, so a mask is not kept alive.
 */
const CHECKED: Record<MaskType, WeakSet<tf.Tensor>> = { allowed: new WeakSet(), additive: new WeakSet() };

/**
 * Checks the maskType option; errors name `where`.
 *
 * @example
 * ```ts
 * checkMaskType('additive', 'Hopfield'); // 'additive'
 * ```
 */
export function checkMaskType(value: unknown, where: string): MaskType {
  const v = value ?? 'allowed';
  if (!MASK_TYPES.includes(v as MaskType)) {
    throw new Error(`${where}: maskType must be one of ${MASK_TYPES.map((t) => `'${t}'`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return v as MaskType;
}

/**
 * An association mask in either form as a float 0/1 "allowed" mask of the same shape,
 * after checking its values the first time this tensor is seen (see the file header: one
 * read-back per mask tensor, none for a bool 'allowed' mask).
 *
 * @param mask the mask as given
 * @param maskType 'allowed' (1/true = allowed) or 'additive' (0 = allowed, -inf = blocked)
 * @param where the function or layer, for the error message
 * @param name the argument name, for the error message
 *
 * @example
 * ```ts
 * allowedMask(tf.tensor2d([[0, -Infinity]]), 'additive', 'Hopfield', 'associationMask'); // [[1, 0]]
 * ```
 */
export function allowedMask(mask: tf.Tensor, maskType: MaskType, where: string, name: string): tf.Tensor {
  if (mask.dtype === 'string' || mask.dtype === 'complex64') {
    throw new Error(`${where}: ${name} must be bool or numeric, got dtype ${mask.dtype}`);
  }
  const seen = CHECKED[maskType];
  const check = !seen.has(mask);
  const out = tf.tidy(() => {
    if (maskType === 'allowed') {
      if (mask.dtype === 'bool') return tf.cast(mask, 'float32');
      if (check && tf.any(tf.logicalAnd(tf.notEqual(mask, 0), tf.notEqual(mask, 1))).dataSync()[0]) {
        const hint = tf.any(tf.less(mask, 0)).dataSync()[0]
          ? " (it holds negative values: for a PyTorch-style additive mask of 0 / -inf pass maskType: 'additive')"
          : '';
        throw new Error(`${where}: ${name} must hold 0/1 or bool values (1 = allowed) with maskType 'allowed'${hint}`);
      }
      return tf.cast(tf.equal(mask, 1), 'float32');
    }
    if (mask.dtype === 'bool') {
      throw new Error(
        `${where}: ${name} with maskType 'additive' must be a float mask (0 = allowed, -Infinity = blocked), got a bool mask`,
      );
    }
    const blocked = tf.lessEqual(mask, ADDITIVE_BLOCKED_BELOW);
    if (check && tf.any(tf.logicalAnd(tf.notEqual(mask, 0), tf.logicalNot(blocked))).dataSync()[0]) {
      throw new Error(
        `${where}: ${name} with maskType 'additive' must hold 0 (allowed) or -Infinity / values <= ${ADDITIVE_BLOCKED_BELOW} (blocked); score biases are not supported`,
      );
    }
    return tf.cast(tf.logicalNot(blocked), 'float32');
  });
  // only after the check passed (a bad mask throws above and is checked again next time)
  seen.add(mask);
  return out;
}

/**
 * 0/1 float product of broadcastable masks (undefined when none is given); any nonzero
 * value or true counts as 1. For masks already in the 'allowed' form.
 *
 * @example
 * ```ts
 * combineMasks(tf.tensor1d([1, 0, 1]), undefined, tf.tensor1d([1, 1, 0], 'bool')); // [1, 0, 0]
 * ```
 */
export function combineMasks(...masks: (tf.Tensor | undefined | null)[]): tf.Tensor | undefined {
  let out: tf.Tensor | undefined;
  for (const m of masks) {
    if (!m) continue;
    const f = m.dtype === 'bool' ? tf.cast(m, 'float32') : tf.cast(tf.notEqual(m, 0), 'float32');
    out = out ? tf.mul(out, f) : f;
  }
  return out;
}

/**
 * Appends `n` columns of `value` (1 = allowed) to the last axis of a mask.
 *
 * @example
 * ```ts
 * padMask(tf.tensor2d([[1, 0]]), 1); // [[1, 0, 1]]
 * ```
 */
export function padMask(mask: tf.Tensor, n: number, value = 1): tf.Tensor {
  return tf.tidy(() => {
    const m = tf.cast(mask, 'float32');
    const shape = m.shape.slice();
    shape[shape.length - 1] = n;
    return tf.concat([m, tf.fill(shape, value)], -1);
  });
}

/**
 * Replaces the padded rows of `x` [..., S, F] by zeros, where `mask` [..., S] (broadcastable
 * over the leading dims) is 0/false. The select drops whatever the padded rows hold (NaN, Inf,
 * 1e30) before any product, and sends them zero gradient, so padding cannot influence a
 * result or a weight's gradient.
 *
 * @example
 * ```ts
 * zeroPadded(tf.tensor3d([[[1, 2], [NaN, Infinity]]]), tf.tensor2d([[1, 0]])); // [[[1, 2], [0, 0]]]
 * ```
 */
export function zeroPadded(x: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let keep = mask.dtype === 'bool' ? mask : tf.notEqual(mask, 0);
    keep = tf.expandDims(keep, -1);
    const shape = tf.broadcast_util.assertAndGetBroadcastShape(x.shape, keep.shape);
    const xb = shape.every((s, i) => s === x.shape[i]) && shape.length === x.rank ? x : tf.broadcastTo(x, shape);
    return tf.where(tf.broadcastTo(keep, shape), xb, tf.zeros(shape, x.dtype));
  });
}
