/**
 * `HopfieldLayer`: learned stored patterns (and pattern projections) queried by the input
 * (ml-jku's `HopfieldLayer`): a learned associative memory / lookup table.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable, Shape } from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { bool, configOf, defineSchema, int, type Resolved } from '../ops/schema.js';
import { HopfieldBase, type HopfieldBaseArgs, type HopfieldCallKwargs, type HopfieldPatterns } from './hopfieldBase.js';

export interface HopfieldLayerArgs extends HopfieldBaseArgs {
  /** Number of learned stored patterns. Default 1 (as ml-jku; a lookup table usually wants more). */
  quantity?: number;
  /** Separate learned pattern projections (values) instead of reusing the stored patterns (ml-jku's lookup_weights_as_separated). Default false. */
  lookupWeightsAsSeparated?: boolean;
  /** Train the stored patterns (ml-jku's `trainable`). Default true. */
  lookupWeightsTrainable?: boolean;
  /** Train the separate pattern projections (ml-jku's lookup_targets_as_trainable). Default true. */
  lookupTargetsAsTrainable?: boolean;
}

type HopfieldLayerOwnArgs = Omit<HopfieldLayerArgs, keyof HopfieldBaseArgs>;

/** The options HopfieldLayer adds to the trio's (HOPFIELD_BASE_SCHEMA). */
export const HOPFIELD_LAYER_SCHEMA = defineSchema<HopfieldLayerOwnArgs>()({
  quantity: { check: int(1), default: 1, doc: 'Number of learned stored patterns.' },
  lookupWeightsAsSeparated: {
    check: bool,
    default: false,
    doc: 'Separate learned pattern projections (values) instead of reusing the stored patterns.',
  },
  lookupWeightsTrainable: { check: bool, default: true, doc: "Train the stored patterns (ml-jku's `trainable`)." },
  lookupTargetsAsTrainable: {
    check: bool,
    default: true,
    appliesIf: { option: 'lookupWeightsAsSeparated', is: [true] },
    doc: 'Train the separate pattern projections.',
  },
});

/**
 * A learned memory queried by its input: the input [batch, L, features] is the state
 * pattern; `quantity` learned stored patterns (features wide, N(0, 0.02^2) as in ml-jku) are
 * the memory, and by default also the pattern projections. Output [batch, L, outputSize],
 * or `[output, association [batch, numHeads, L, S']]` with `returnAssociation`.
 *
 * All `Hopfield` options apply. With U-Hop the memory is the same for every sample, so Phi is
 * fitted once per head (not per sample) in each call. The input's Keras mask passes through.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { HopfieldLayer } from 'uhop';
 * const model = tf.sequential({ layers: [
 *   new HopfieldLayer({ inputShape: [10, 32], quantity: 64, numHeads: 4, separation: 'sparsemax' }),
 * ] });                                                  // [batch, 10, 32] -> [batch, 10, 32]
 * ```
 */
export class HopfieldLayer extends HopfieldBase {
  /** @nocollapse */
  static className = 'HopfieldLayer';
  readonly quantity: number;
  readonly lookupWeightsAsSeparated: boolean;
  readonly lookupWeightsTrainable: boolean;
  readonly lookupTargetsAsTrainable: boolean;
  private lookupWeights: LayerVariable | null = null;
  private targetWeights: LayerVariable | null = null;

  constructor(args: HopfieldLayerArgs = {}) {
    super(args, HOPFIELD_LAYER_SCHEMA);
    const o = this.parsedArgs as Resolved<HopfieldLayerOwnArgs>;
    this.quantity = o.quantity;
    this.lookupWeightsAsSeparated = o.lookupWeightsAsSeparated;
    this.lookupWeightsTrainable = o.lookupWeightsTrainable;
    this.lookupTargetsAsTrainable = o.lookupTargetsAsTrainable;
  }

  private checkShape(inputShape: Shape | Shape[]): Shape {
    const list = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as Shape[];
    if (list.length !== 1 || list[0].length !== 3 || list[0][2] == null) {
      throw new Error(
        `${this.where}: expects one input [batch, n, features] with a known feature dim, got shape(s) ${JSON.stringify(list)}`,
      );
    }
    return list[0];
  }

  override build(inputShape: Shape | Shape[]): void {
    const F = this.checkShape(inputShape)[2]!;
    const init = () =>
      this.nextInitializer({ className: 'RandomNormal', config: { mean: 0, stddev: 0.02, seed: this.seed } }, 'zeros', 'lookup weights');
    this.lookupWeights = this.addWeight('lookup_weights', [1, this.quantity, F], 'float32', init(), undefined, this.lookupWeightsTrainable);
    if (this.lookupWeightsAsSeparated) {
      this.targetWeights = this.addWeight(
        'target_weights',
        [1, this.quantity, F],
        'float32',
        init(),
        undefined,
        this.lookupTargetsAsTrainable,
      );
    }
    this.buildAssociation({ storedDim: F, stateDim: F, projectionDim: F });
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = this.checkShape(inputShape);
    const out: Shape = [s[0], s[1], this.outDimFor(s[2]!)];
    if (!this.returnAssociation) return out;
    return [out, [s[0], this.numHeads, s[1], this.memoriesFor(this.quantity)]];
  }

  protected override patterns(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): HopfieldPatterns {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    if (list.length !== 1) throw new Error(`${this.where}: expects one input [batch, n, features], got ${list.length} inputs`);
    const kw = kwargs as HopfieldCallKwargs;
    const stored = this.lookupWeights!.read();
    return {
      stored,
      state: list[0],
      projection: this.targetWeights ? this.targetWeights.read() : stored,
      batchSize: list[0].shape[0] as number,
      paddingMask: kw.storedPatternPaddingMask,
      associationMask: kw.associationMask,
    };
  }

  /**
   * @param inputs the state patterns [B, L, F]
   * @param kwargs `{associationMask?, storedPatternPaddingMask?, training?}`
   */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => this.associate(this.patterns(inputs, kwargs), Boolean(kwargs?.['training'])));
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    const m = (Array.isArray(mask) ? mask[0] : mask) ?? null;
    return (this.returnAssociation ? [m, null] : m) as tf.Tensor | tf.Tensor[];
  }

  /** Builds from the first input's shape, as a call does (fitLossTrace's batch is 1: one memory for all samples). */
  protected override buildFor(inputs: tf.Tensor | tf.Tensor[]): void {
    this.build((Array.isArray(inputs) ? inputs[0] : inputs).shape);
  }

  override getConfig(): tf.serialization.ConfigDict {
    const cfg = configOf(HOPFIELD_LAYER_SCHEMA, this);
    return { ...cfg, ...this.baseConfig() };
  }
}
tf.serialization.registerClass(HopfieldLayer);
