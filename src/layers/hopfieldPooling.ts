/**
 * `HopfieldPooling`: learned state patterns that pool a set (ml-jku's `HopfieldPooling`); the
 * workhorse of multiple-instance learning.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { bool, configOf, defineSchema, int, type Resolved } from '../ops/schema.js';
import { HopfieldBase, type HopfieldBaseArgs, type HopfieldCallKwargs, type HopfieldPatterns } from './hopfieldBase.js';

export interface HopfieldPoolingArgs extends HopfieldBaseArgs {
  /** Number of learned state patterns (queries), each pooling the set once. Default 1. */
  quantity?: number;
  /** Train the state patterns (ml-jku's `trainable`). Default true. */
  stateTrainable?: boolean;
  /**
   * Output [batch, quantity * outputSize] (true, ml-jku's flatten) or
   * [batch, quantity, outputSize] (false). Default true.
   */
  flatten?: boolean;
}

type HopfieldPoolingOwnArgs = Omit<HopfieldPoolingArgs, keyof HopfieldBaseArgs>;

/** The options HopfieldPooling adds to the trio's (HOPFIELD_BASE_SCHEMA). */
export const HOPFIELD_POOLING_SCHEMA = defineSchema<HopfieldPoolingOwnArgs>()({
  quantity: { check: int(1), default: 1, doc: 'Number of learned state patterns (queries), each pooling the set once.' },
  stateTrainable: { check: bool, default: true, doc: "Train the state patterns (ml-jku's `trainable`)." },
  flatten: { check: bool, default: true, doc: 'Output [batch, quantity * outputSize] (true) or [batch, quantity, outputSize] (false).' },
});

interface Split<T> {
  stored: T;
  projection: T;
  mask?: T;
}

function splitInputs<T>(list: T[], rank: (t: T) => number, where: string): Split<T> {
  const isMask = (t: T) => rank(t) === 2;
  if (list.length === 1 || (list.length === 2 && isMask(list[1]))) return { stored: list[0], projection: list[0], mask: list[1] };
  if (list.length === 2 || (list.length === 3 && isMask(list[2]))) return { stored: list[0], projection: list[1], mask: list[2] };
  throw new Error(
    `${where}: got ${list.length} inputs of ranks [${list.map(rank)}]; expected one set [batch, n, features] ` +
      '(stored = projection), or [stored, projection], each optionally followed by a [batch, n] padding mask',
  );
}

/**
 * Pools a set of patterns [batch, S, features] with `quantity` learned state patterns:
 * each state pattern retrieves from the set (stored = projection = the set, or
 * `[stored, projection]`) by the Hopfield association of `Hopfield`, in `numHeads` heads.
 * Output [batch, quantity * outputSize] (ml-jku flattens; `flatten: false` gives
 * [batch, quantity, outputSize]), or `[output, association [batch, numHeads, quantity, S']]`
 * with `returnAssociation`.
 *
 * Padding: pass a mask [batch, S] (1 = real instance) as a trailing input (`[bags, mask]`,
 * which a functional model can carry), as the `storedPatternPaddingMask` kwarg, or through
 * Keras masking; padded instances get zero weight and are left out of the U-Hop fit.
 *
 * The state patterns have the set's feature dim and are initialized N(0, 0.02^2) as in
 * ml-jku. All `Hopfield` options apply (U-Hop included: Phi is fitted per bag and head).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { HopfieldPooling } from 'uhop';
 * const bags = tf.input({ shape: [64, 128] }), mask = tf.input({ shape: [64] });
 * const pooled = new HopfieldPooling({ numHeads: 4, featureMap: 'linear' }).apply([bags, mask]) as tf.SymbolicTensor;
 * const logit = tf.layers.dense({ units: 1 }).apply(pooled) as tf.SymbolicTensor;   // pooled: [batch, 128]
 * const model = tf.model({ inputs: [bags, mask], outputs: logit });
 * ```
 */
export class HopfieldPooling extends HopfieldBase {
  /** @nocollapse */
  static className = 'HopfieldPooling';
  readonly quantity: number;
  readonly stateTrainable: boolean;
  readonly flatten: boolean;
  private poolingWeights: LayerVariable | null = null;

  constructor(args: HopfieldPoolingArgs = {}) {
    super(args, HOPFIELD_POOLING_SCHEMA);
    const o = this.parsedArgs as Resolved<HopfieldPoolingOwnArgs>;
    this.quantity = o.quantity;
    this.stateTrainable = o.stateTrainable;
    this.flatten = o.flatten;
  }

  private splitShapes(inputShape: Shape | Shape[]): Split<Shape> {
    const list = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as Shape[];
    const s = splitInputs(list, (t) => t.length, this.where);
    for (const [t, what] of [
      [s.stored, 'stored pattern'],
      [s.projection, 'pattern projection'],
    ] as const)
      this.checkPatternShape(t, what);
    return s;
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = this.splitShapes(inputShape);
    const stateDim = s.stored[2]!;
    this.poolingWeights = this.addWeight(
      'pooling_weights',
      [1, this.quantity, stateDim],
      'float32',
      this.nextInitializer({ className: 'RandomNormal', config: { mean: 0, stddev: 0.02, seed: this.seed } }, 'zeros', 'pooling weights'),
      undefined,
      this.stateTrainable,
    );
    this.buildAssociation({ storedDim: s.stored[2]!, stateDim, projectionDim: s.projection[2]! });
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = this.splitShapes(inputShape);
    const outDim = this.outDimFor(s.stored[2]!);
    const B = s.stored[0];
    const out: Shape = this.flatten ? [B, this.quantity * outDim] : [B, this.quantity, outDim];
    if (!this.returnAssociation) return out;
    return [out, [B, this.numHeads, this.quantity, this.memoriesFor(s.stored[1])]];
  }

  protected override patterns(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): HopfieldPatterns {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const s = splitInputs(list, (t) => t.rank, this.where);
    const kw = kwargs as HopfieldCallKwargs;
    const B = s.stored.shape[0] as number;
    const S = s.stored.shape[1] as number;
    const paddingMask = this.storedPaddingMask(kw, s.mask, B, S);
    return {
      stored: s.stored,
      state: this.poolingWeights!.read(),
      projection: s.projection,
      batchSize: B,
      paddingMask,
      associationMask: kw.associationMask,
    };
  }

  /**
   * @param inputs a set [B, S, F], or [stored, projection], optionally followed by a [B, S] padding mask
   * @param kwargs `{associationMask?, storedPatternPaddingMask?, training?}` (and Keras' `mask`)
   */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => {
      const result = this.associate(this.patterns(inputs, kwargs), Boolean(kwargs?.['training']));
      const flat = (t: tf.Tensor) =>
        this.flatten ? tf.reshape(t, [t.shape[0] as number, (t.shape[1] as number) * (t.shape[2] as number)]) : t; // no -1: a batch of 0 is allowed
      return Array.isArray(result) ? [flat(result[0]), result[1]] : flat(result);
    });
  }

  /** The pooled output has no set axis left: no mask. */
  override computeMask(): tf.Tensor | tf.Tensor[] {
    return (this.returnAssociation ? [null, null] : null) as unknown as tf.Tensor;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...configOf(HOPFIELD_POOLING_SCHEMA, this), ...this.baseConfig() };
  }
}
tf.serialization.registerClass(HopfieldPooling);
