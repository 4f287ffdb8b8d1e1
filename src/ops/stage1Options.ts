/**
 * Argument checks of Stage I shared by `separationLoss` and `fitFeatureMap`: the loss kind and
 * its temperatures, and the memory mask (brought to the pair kernel's [B, S] form).
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SeparationLossKind } from './types.js';
import type { PairSpec } from './pairKernel.js';
import { broadcastToFast, broadcastsTo, shapeStr } from './shapes.js';

export const SEPARATION_LOSS_KINDS: readonly SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

/** Checks the loss kind and temperatures; returns the resolved spec (t = 2, tau = 0.1 by default). */
export function resolveSpec(kind: unknown, t: unknown, tau: unknown, fn: string): PairSpec {
  if (!SEPARATION_LOSS_KINDS.includes(kind as SeparationLossKind)) {
    throw new Error(`${fn}: the separation loss must be one of ${SEPARATION_LOSS_KINDS.join(', ')}, got '${String(kind)}'`);
  }
  const tt = t ?? 2;
  const tauu = tau ?? 0.1;
  if (typeof tt !== 'number' || !Number.isFinite(tt) || tt <= 0) throw new Error(`${fn}: t must be a finite number > 0, got ${String(t)}`);
  if (typeof tauu !== 'number' || !Number.isFinite(tauu) || tauu <= 0) {
    throw new Error(`${fn}: tau must be a finite number > 0, got ${String(tau)}`);
  }
  return { kind: kind as SeparationLossKind, t: tt, tau: tauu };
}

/**
 * Checks that `mask` broadcasts to `setShape` ([..., S], the memory sets' shape without the
 * feature dim) and returns it as a float [B, S] tensor of 1/0 (a new tensor), or null.
 */
export function prepareMask(mask: tf.Tensor | undefined, setShape: readonly number[], fn: string): tf.Tensor2D | null {
  if (mask === undefined || mask === null) return null;
  if (!(mask instanceof tf.Tensor)) throw new Error(`${fn}: mask must be a tensor [..., S], got ${String(mask)}`);
  if (!broadcastsTo(mask.shape, setShape)) {
    throw new Error(
      `${fn}: mask must broadcast to ${shapeStr(setShape)} (the memory sets without the feature dim), got shape ${shapeStr(mask.shape)}`,
    );
  }
  const S = setShape[setShape.length - 1];
  return tf.tidy(() => {
    const m = mask.dtype === 'bool' ? mask : tf.notEqual(mask, 0);
    return tf.reshape(broadcastToFast(tf.cast(m, 'float32'), setShape), [-1, S]) as tf.Tensor2D;
  });
}
