/**
 * `Hopfield`: the general modern Hopfield layer (ml-jku's `Hopfield`), with U-Hop's learned
 * feature map as an option.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { HopfieldBase, type HopfieldBaseArgs, type HopfieldCallKwargs, type HopfieldPatterns } from './hopfieldBase.js';

/** Options of `Hopfield`: see `HopfieldBaseArgs` (every field documented with its default) and `UHopArgs`. */
export type HopfieldArgs = HopfieldBaseArgs;

/** The inputs of `Hopfield`, split: stored, state and projection patterns plus an optional padding mask. */
interface Split<T> {
  stored: T;
  state: T;
  projection: T;
  mask?: T;
  selfAssociation: boolean;
}

function splitInputs<T>(list: T[], rank: (t: T) => number, where: string): Split<T> {
  const usage =
    'expected one tensor [batch, n, features] (self-association), or [stored, state, projection], ' +
    'each optionally followed by a [batch, stored] padding mask';
  const isMask = (t: T) => rank(t) === 2;
  if (list.length === 1 || (list.length === 2 && isMask(list[1]))) {
    return { stored: list[0], state: list[0], projection: list[0], mask: list[1], selfAssociation: true };
  }
  if (list.length === 3 || (list.length === 4 && isMask(list[3]))) {
    return { stored: list[0], state: list[1], projection: list[2], mask: list[3], selfAssociation: false };
  }
  throw new Error(`${where}: got ${list.length} inputs of ranks [${list.map(rank)}]; ${usage}`);
}

/**
 * Modern Hopfield association: retrieves, for every state pattern (query), a convex
 * combination of the pattern projections (values) weighted by the separation of beta times
 * the similarity of that query with every stored pattern (key), in `numHeads` heads, then
 * projects the concatenated heads to `outputSize`.
 *
 * Inputs: one tensor [batch, n, features] (self-association: stored = state = projection),
 * or `[stored [B, S, Fs], state [B, L, Ft], projection [B, S, Fp]]` as in ml-jku; either may
 * be followed by a padding mask [B, S] (1 = real stored pattern), which lets a functional
 * model carry the mask as an input. Output: [B, L, outputSize], or
 * `[output, association [B, numHeads, L, S']]` with `returnAssociation` (S' counts the bias
 * and zero memories).
 *
 * Call kwargs: `associationMask` ([L, S] or [B, L, S], 1 = allowed),
 * `storedPatternPaddingMask` ([B, S], 1 = real), `training`. A Keras mask from upstream
 * (e.g. a Masking layer) is used as the stored patterns' padding mask; the output carries
 * the state patterns' mask.
 *
 * U-Hop (`featureMap: 'linear' | 'mlp'`): in every call, training and inference alike, Phi is
 * fitted on each sample's projected keys, per head, from the layer's Phi0 weight for
 * `fitSteps` steps of the separation loss; scores become beta * sim(Phi(q), Phi(k)). The fit
 * is detached from the task gradient; Phi0 learns straight through it (`phiTrainable`).
 *
 * Defaults follow ml-jku: hiddenSize = stateDim / numHeads, patternSize = hiddenSize,
 * outputSize = stateDim, scaling = 1/sqrt(hiddenSize), updateStepsMax 0 (one step),
 * LayerNorm (affine) on the three inputs, biases on.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { Hopfield } from 'uhop';
 * const x = tf.input({ shape: [128, 128] });
 * const y = new Hopfield({ numHeads: 4, featureMap: 'linear', fitSteps: 5 }).apply(x) as tf.SymbolicTensor;
 * const model = tf.model({ inputs: x, outputs: y });   // [batch, 128, 128] -> [batch, 128, 128]
 * ```
 */
export class Hopfield extends HopfieldBase {
  /** @nocollapse */
  static className = 'Hopfield';

  constructor(args: HopfieldArgs = {}) {
    super(args);
  }

  private splitShapes(inputShape: Shape | Shape[]): Split<Shape> {
    const list = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as Shape[];
    const s = splitInputs(list, (t) => t.length, this.where);
    for (const [t, what] of [
      [s.stored, 'stored pattern'],
      [s.state, 'state pattern'],
      [s.projection, 'pattern projection'],
    ] as const)
      this.checkPatternShape(t, what);
    return s;
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = this.splitShapes(inputShape);
    this.buildAssociation({ storedDim: s.stored[2]!, stateDim: s.state[2]!, projectionDim: s.projection[2]! });
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = this.splitShapes(inputShape);
    const out: Shape = [s.state[0], s.state[1], this.outDimFor(s.state[2]!)];
    if (!this.returnAssociation) return out;
    return [out, [s.state[0], this.numHeads, s.state[1], this.memoriesFor(s.stored[1])]];
  }

  protected override patterns(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): HopfieldPatterns {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    const s = splitInputs(list, (t) => t.rank, this.where);
    const kw = kwargs as HopfieldCallKwargs;
    const B = s.state.shape[0] as number;
    const S = s.stored.shape[1] as number;
    const paddingMask = this.storedPaddingMask(kw, s.mask, B, S);
    return { stored: s.stored, state: s.state, projection: s.projection, batchSize: B, paddingMask, associationMask: kw.associationMask };
  }

  /**
   * @param inputs see the class doc
   * @param kwargs `{associationMask?, storedPatternPaddingMask?, training?}` (and Keras' `mask`)
   */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => this.associate(this.patterns(inputs, kwargs), Boolean(kwargs?.['training'])));
  }

  override computeMask(inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    let stateMask: tf.Tensor | null = null;
    if (mask != null) {
      const masks = Array.isArray(mask) ? mask : [mask];
      stateMask = (list.length >= 3 ? masks[1] : masks[0]) ?? null;
    }
    return (this.returnAssociation ? [stateMask, null] : stateMask) as tf.Tensor | tf.Tensor[];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.baseConfig();
  }
}
tf.serialization.registerClass(Hopfield);
