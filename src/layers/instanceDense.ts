/**
 * `InstanceDense`: a Dense layer applied to every instance of every bag ([B, S, F] ->
 * [B, S, units]), with the wasm-fast product of `dense3d` (its backward pass avoids the
 * transposed matMuls that tfjs-backend-wasm runs through a plain loop, 4-5x faster than
 * `tf.layers.dense` on bag-shaped inputs there; other backends use tf.fused.matMul).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { bool, configOf, defineSchema, int, number, oneOf } from '../ops/schema.js';
import { parseLayerArgs } from './keras.js';
import type { LayerArgs } from './keras.js';
import type { Kwargs } from './keras.js';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import { dense3d } from '../ops/tensor.js';

/** Arguments of {@link InstanceDense}. */
export interface InstanceDenseArgs extends LayerArgs {
  /** Output width. */
  units: number;
  /** 'relu' (default) or 'linear'. */
  activation?: 'relu' | 'linear';
  /** Bias term. Default true. */
  useBias?: boolean;
  /** L2 coefficient on the kernel (loss += l2 * sum of squares). Default 0. */
  l2?: number;
  /** Seed of the Glorot-uniform kernel initializer. Default: unseeded. */
  seed?: number;
}

/**
 * Dense + activation on the last axis of [B, S, F] (or [N, F]) inputs.
 *
 * @example
 * ```ts
 * const x = tfl.input({ shape: [null, 166] });
 * const h = new InstanceDense({ units: 128, activation: 'relu' }).apply(x) as tfl.SymbolicTensor; // [B, S, 128]
 * ```
 */
/** The declaration of {@link InstanceDenseArgs} (src/ops/schema.ts). */
export const INSTANCE_DENSE_SCHEMA = defineSchema<Omit<InstanceDenseArgs, keyof LayerArgs>>()({
  units: { check: int(1), required: true, doc: 'Output width.' },
  activation: { check: oneOf(['relu', 'linear'] as const), default: 'relu', doc: "'relu' or 'linear'." },
  useBias: { check: bool, default: true, doc: 'Bias term.' },
  l2: { check: number({ ge: 0 }), default: 0, doc: 'L2 coefficient on the kernel.' },
  seed: { check: int(), doc: 'Seed of the Glorot-uniform kernel initializer.' },
});

export class InstanceDense extends tfl.layers.Layer {
  static readonly className = 'UhopInstanceDense';
  readonly units: number;
  readonly activation: 'relu' | 'linear';
  readonly useBias: boolean;
  readonly l2: number;
  readonly seed?: number;
  private kernel!: LayerVariable;
  private bias?: LayerVariable;

  constructor(args: InstanceDenseArgs) {
    super(args);
    const { units, activation, useBias, l2, seed } = parseLayerArgs(INSTANCE_DENSE_SCHEMA, args, 'InstanceDense');
    this.units = units;
    this.activation = activation;
    this.useBias = useBias;
    this.l2 = l2;
    this.seed = seed;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
    const F = shape[shape.length - 1];
    if (shape.length < 2 || shape.length > 3 || F == null) {
      throw new Error(`InstanceDense: input must be [B, S, F] or [N, F] with F known, got shape [${shape}]`);
    }
    const reg = this.l2 > 0 ? tfl.regularizers.l2({ l2: this.l2 }) : undefined;
    this.kernel = this.addWeight('kernel', [F, this.units], 'float32', tfl.initializers.glorotUniform({ seed: this.seed }), reg, true);
    if (this.useBias) this.bias = this.addWeight('bias', [this.units], 'float32', tfl.initializers.zeros(), undefined, true);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const x3 = x.rank === 2 ? tf.expandDims(x, 0) : x;
      if (x3.rank !== 3) throw new Error(`InstanceDense: input must be [B, S, F] or [N, F], got shape [${x.shape}]`);
      let y = dense3d(x3, this.kernel.read(), this.bias?.read());
      if (this.activation === 'relu') y = tf.relu(y);
      return x.rank === 2 ? tf.squeeze(y, [0]) : y;
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
    return [...shape.slice(0, -1), this.units];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...configOf(INSTANCE_DENSE_SCHEMA, this), ...super.getConfig() };
  }
}

tf.serialization.registerClass(InstanceDense);
