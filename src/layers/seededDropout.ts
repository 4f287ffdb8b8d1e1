/**
 * Dropout whose masks are reproducible from a seed and still differ from step to step.
 *
 * tfjs-layers' `Dropout({ seed })` hands the same seed to every call, so a seeded Dropout draws
 * the SAME mask at every training step; an unseeded one draws from `Math.random` and cannot be
 * repeated. This layer derives the seed of call n from (seed, n), so a model built and trained
 * twice with the same seed sees the same sequence of masks, and consecutive steps differ.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { parseLayerArgs, type LayerArgs, type Kwargs } from './keras.js';
import { defineSchema, int, number } from '../ops/schema.js';
import type { Shape } from '@tensorflow/tfjs-layers';

type Tensor = tf.Tensor;

/** Arguments of {@link SeededDropout}. */
export interface SeededDropoutArgs extends LayerArgs {
  /** Probability in [0, 1) of zeroing each entry during training (the others are scaled by 1 / (1 - rate)). */
  rate: number;
  /** Seed of the mask stream; call n uses a seed mixed from (seed, n). Default: unseeded (Math.random, like tfjs's Dropout). */
  seed?: number;
}

/** The options of {@link SeededDropout}, declared once: validation, unknown keys and defaults. */
export const SEEDED_DROPOUT_SCHEMA = defineSchema<Omit<SeededDropoutArgs, keyof LayerArgs>>()({
  rate: { check: number({ ge: 0, lt: 1 }), required: true, doc: 'Probability of zeroing each entry during training.' },
  seed: { check: int(), doc: 'Seed of the mask stream; call n uses a seed mixed from (seed, n).' },
});

/**
 * A 32-bit mix of (seed, call) (murmur3's finalizer over both words), so that the streams of
 * nearby seeds (layer k's call n and layer k+1's call n-1, say) do not repeat each other.
 */
export function mixSeed(seed: number, call: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(call | 0, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Inverted dropout with a seeded mask stream: during training each entry is zeroed with
 * probability `rate` and the rest scaled by 1 / (1 - rate); at inference the input passes
 * through. With `seed`, call n of the layer draws its mask from `mixSeed(seed, n)`.
 *
 * @example
 * ```ts
 * const x = tfl.input({ shape: [16] });
 * const y = new SeededDropout({ rate: 0.1, seed: 7 }).apply(x) as tfl.SymbolicTensor;
 * ```
 */
export class SeededDropout extends tfl.layers.Layer {
  static readonly className = 'UhopSeededDropout';
  readonly rate: number;
  readonly seed?: number;
  private calls = 0;

  constructor(args: SeededDropoutArgs) {
    super(args);
    const { rate, seed } = parseLayerArgs(SEEDED_DROPOUT_SCHEMA, args, 'SeededDropout');
    this.rate = rate;
    this.seed = seed;
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      if (Array.isArray(inputs) && inputs.length !== 1) throw new Error(`SeededDropout: expects one input, got ${inputs.length}`);
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      if (kwargs?.training !== true || this.rate === 0) return tf.clone(x);
      const seed = this.seed === undefined ? undefined : mixSeed(this.seed, this.calls);
      this.calls++;
      return tf.dropout(x, this.rate, undefined, seed);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { rate: this.rate };
    if (this.seed !== undefined) config.seed = this.seed;
    return { ...config, ...super.getConfig() };
  }
}

tf.serialization.registerClass(SeededDropout);
