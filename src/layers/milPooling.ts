/**
 * Bag poolings for multiple-instance learning (MIL), as registered tfjs-layers Layers.
 *
 * Every layer here takes `[instances [B, S, D], mask [B, S]]` (mask 1 = a real instance,
 * 0 = padding) and returns one vector per bag, `[B, D]`. A padded instance has NO influence
 * on the output: its features are replaced by constants (`tf.where`) before any arithmetic,
 * so even huge or non-finite padding values cannot leak through.
 *
 * - {@link MaskedMeanPooling}: mean over the real instances.
 * - {@link MaskedMaxPooling}: elementwise max over the real instances.
 * - {@link AttentionMilPooling}: attention-based deep MIL pooling of Ilse et al. (2018),
 *   a_k = softmax_k( w^T tanh(V h_k) ), z = sum_k a_k h_k.
 * - {@link GatedAttentionMilPooling}: the gated variant,
 *   a_k = softmax_k( w^T (tanh(V h_k) * sigmoid(U h_k)) ).
 * - {@link BagDropout}: drops instances of a bag during training by zeroing mask entries,
 *   never all of a bag's instances; the identity at inference.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { configOf, defineSchema, int, number } from '../ops/schema.js';
import { parseLayerArgs } from './keras.js';
import type { LayerArgs } from './keras.js';
import type { Kwargs } from './keras.js';
import type { Shape } from '@tensorflow/tfjs-layers';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { dense3d } from '../ops/tensor.js';

type Tensor = tf.Tensor;

/** The most negative finite float32: the score (or feature) a padded instance is given. */
const LOWEST = -3.4e38;

/** Splits and checks the `[instances, mask]` input pair of a MIL pooling layer. */
export function splitBagInputs(layer: string, inputs: Tensor | Tensor[]): [Tensor, Tensor] {
  if (!Array.isArray(inputs) || inputs.length !== 2) {
    const got = Array.isArray(inputs) ? `${inputs.length} tensors` : `one tensor of shape [${inputs.shape}]`;
    throw new Error(`${layer}: inputs must be [instances [B,S,D], mask [B,S]], got ${got}`);
  }
  const [x, mask] = inputs;
  if (x.rank !== 3) throw new Error(`${layer}: instances must have rank 3 [B,S,D], got shape [${x.shape}]`);
  if (mask.rank !== 2 || mask.shape[0] !== x.shape[0] || mask.shape[1] !== x.shape[1]) {
    throw new Error(`${layer}: mask must have shape [${x.shape[0]},${x.shape[1]}] (= [B,S] of the instances), got [${mask.shape}]`);
  }
  return [x, mask];
}

function checkBagShapes(layer: string, inputShape: Shape | Shape[]): [Shape, Shape] {
  if (!Array.isArray(inputShape[0])) {
    throw new Error(`${layer}: expects two inputs [instances [B,S,D], mask [B,S]], got one input of shape [${String(inputShape)}]`);
  }
  const shapes = inputShape as Shape[];
  if (shapes.length !== 2) throw new Error(`${layer}: expects two inputs [instances, mask], got ${shapes.length}`);
  const [xs, ms] = shapes;
  if (xs.length !== 3) throw new Error(`${layer}: instances must have rank 3 [B,S,D], got shape [${xs}]`);
  if (ms.length !== 2) throw new Error(`${layer}: mask must have rank 2 [B,S], got shape [${ms}]`);
  return [xs, ms];
}

/** `mask > 0` as bool, [B, S, 1]. */
function validInstances(mask: Tensor): Tensor {
  return tf.expandDims(tf.greater(mask, 0), -1);
}

/** 1 for bags with at least one real instance, [B, 1]. */
function nonEmptyBags(mask: Tensor): Tensor {
  return tf.cast(tf.greater(tf.sum(tf.cast(tf.greater(mask, 0), 'float32'), 1, true), 0), 'float32');
}

/**
 * Softmax over the instances of each bag with padded instances at exactly zero weight.
 * `scores` [B, S], `mask` [B, S]; a bag with no real instance gets all-zero weights.
 */
export function maskedSoftmax(scores: Tensor, mask: Tensor): Tensor {
  return tf.tidy(() => {
    const valid = tf.greater(mask, 0);
    const s = tf.where(valid, scores, tf.fill(scores.shape, LOWEST));
    const shifted = tf.sub(s, tf.max(s, 1, true));
    const e = tf.where(valid, tf.exp(shifted), tf.zerosLike(scores));
    const z = tf.maximum(tf.sum(e, 1, true), 1e-30);
    return tf.div(e, z);
  });
}

/** Base class of the parameter-free poolings: shape checks and output shape. */
abstract class BagPoolingBase extends tfl.layers.Layer {
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [xs] = checkBagShapes(this.getClassName(), inputShape);
    return [xs[0], xs[2]];
  }
}

/**
 * Mean of the real instances of each bag: sum_k m_k h_k / sum_k m_k. Input
 * `[instances [B,S,D], mask [B,S]]`, output [B, D]; a bag without real instances gives 0.
 *
 * @example
 * ```ts
 * const x = tfl.input({ shape: [null, 8] });
 * const m = tfl.input({ shape: [null] });
 * const z = new MaskedMeanPooling().apply([x, m]) as tfl.SymbolicTensor; // [B, 8]
 * ```
 */
export class MaskedMeanPooling extends BagPoolingBase {
  static readonly className = 'UhopMaskedMeanPooling';
  constructor(args: LayerArgs = {}) {
    super(args);
  }
  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const [x, mask] = splitBagInputs('MaskedMeanPooling', inputs);
      const h = tf.where(validInstances(mask), x, tf.zerosLike(x));
      const count = tf.sum(tf.cast(tf.greater(mask, 0), x.dtype), 1, true);
      return tf.div(tf.sum(h, 1), tf.maximum(count, 1));
    });
  }
}

/**
 * Elementwise max over the real instances of each bag. Input `[instances [B,S,D], mask [B,S]]`,
 * output [B, D]; a bag without real instances gives 0.
 *
 * @example
 * ```ts
 * const z = new MaskedMaxPooling().apply([x, m]) as tfl.SymbolicTensor; // [B, D]
 * ```
 */
export class MaskedMaxPooling extends BagPoolingBase {
  static readonly className = 'UhopMaskedMaxPooling';
  constructor(args: LayerArgs = {}) {
    super(args);
  }
  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const [x, mask] = splitBagInputs('MaskedMaxPooling', inputs);
      const h = tf.where(validInstances(mask), x, tf.fill(x.shape, LOWEST));
      return tf.mul(tf.max(h, 1), nonEmptyBags(mask));
    });
  }
}

/** Arguments of {@link AttentionMilPooling} and {@link GatedAttentionMilPooling}. */
export interface AttentionMilPoolingArgs extends LayerArgs {
  /** Width L of the attention network (rows of V and U). Default 128. */
  units?: number;
  /** L2 coefficient on the attention kernels V, U, w (loss += l2 * sum of squares). Default 0. */
  l2?: number;
  /** Seed of the Glorot-uniform initializers; default: unseeded. */
  seed?: number;
}

/**
 * Attention-based deep MIL pooling (Ilse, Tomczak and Welling, ICML 2018):
 *
 *     a_k = softmax_k( w^T tanh(V h_k + b_V) ),   z = sum_k a_k h_k
 *
 * with the softmax taken over the real instances only (padded ones get weight exactly 0).
 * Input `[instances [B,S,D], mask [B,S]]`, output [B, D]. {@link attentionWeights} returns a.
 *
 * @example
 * ```ts
 * const x = tfl.input({ shape: [null, 64] });
 * const m = tfl.input({ shape: [null] });
 * const z = new AttentionMilPooling({ units: 128 }).apply([x, m]) as tfl.SymbolicTensor;
 * ```
 */
/** The declaration of {@link AttentionMilPoolingArgs} (src/ops/schema.ts). */
export const ATTENTION_MIL_POOLING_SCHEMA = defineSchema<Omit<AttentionMilPoolingArgs, keyof LayerArgs>>()({
  units: { check: int(1), default: 128, doc: 'Width L of the attention network (rows of V and U).' },
  l2: { check: number({ ge: 0 }), default: 0, doc: 'L2 coefficient on the attention kernels V, U, w.' },
  seed: { check: int(), doc: 'Seed of the Glorot-uniform initializers.' },
});

export class AttentionMilPooling extends tfl.layers.Layer {
  static readonly className: string = 'UhopAttentionMilPooling';
  readonly units: number;
  readonly l2: number;
  readonly seed?: number;
  protected gated = false;
  private V!: LayerVariable;
  private bV!: LayerVariable;
  private U?: LayerVariable;
  private bU?: LayerVariable;
  private w!: LayerVariable;

  constructor(args: AttentionMilPoolingArgs = {}) {
    super(args);
    const name = this.getClassName().replace(/^Uhop/, '');
    const { units, l2, seed } = parseLayerArgs(ATTENTION_MIL_POOLING_SCHEMA, args, name);
    this.units = units;
    this.l2 = l2;
    this.seed = seed;
  }

  override build(inputShape: Shape | Shape[]): void {
    const [xs] = checkBagShapes(this.getClassName(), inputShape);
    const d = xs[2];
    if (d == null) throw new Error(`${this.getClassName()}: the feature size D of the instances must be known, got shape [${xs}]`);
    const reg = this.l2 > 0 ? tfl.regularizers.l2({ l2: this.l2 }) : undefined;
    const init = (k: number) => tfl.initializers.glorotUniform({ seed: this.seed === undefined ? undefined : this.seed + k });
    this.V = this.addWeight('V', [d, this.units], 'float32', init(0), reg, true);
    this.bV = this.addWeight('bV', [this.units], 'float32', tfl.initializers.zeros(), undefined, true);
    if (this.gated) {
      this.U = this.addWeight('U', [d, this.units], 'float32', init(1), reg, true);
      this.bU = this.addWeight('bU', [this.units], 'float32', tfl.initializers.zeros(), undefined, true);
    }
    this.w = this.addWeight('w', [this.units, 1], 'float32', init(2), reg, true);
    this.built = true;
  }

  /** Unnormalized attention scores [B, S] of the instances [B, S, D]. */
  protected scores(x: Tensor): Tensor {
    const [b, s] = x.shape;
    let g = tf.tanh(dense3d(x, this.V.read(), this.bV.read()));
    if (this.gated) g = tf.mul(g, tf.sigmoid(dense3d(x, this.U!.read(), this.bU!.read())));
    return tf.reshape(dense3d(g, this.w.read()), [b, s]);
  }

  /** Attention weights [B, S] over the instances (zero on padding, summing to 1 per bag). */
  attentionWeights(inputs: Tensor[]): Tensor {
    return tf.tidy(() => {
      const [x, mask] = splitBagInputs(this.getClassName(), inputs);
      // Building through apply() registers the layer as used (so dispose() works later).
      if (!this.built) this.apply([x, mask]);
      const clean = tf.where(validInstances(mask), x, tf.zerosLike(x));
      return maskedSoftmax(this.scores(clean), mask);
    });
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const [x, mask] = splitBagInputs(this.getClassName(), inputs);
      const clean = tf.where(validInstances(mask), x, tf.zerosLike(x));
      const a = maskedSoftmax(this.scores(clean), mask); // [B, S]
      return tf.sum(tf.mul(tf.expandDims(a, -1), clean), 1); // [B, D]
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [xs] = checkBagShapes(this.getClassName(), inputShape);
    return [xs[0], xs[2]];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...configOf(ATTENTION_MIL_POOLING_SCHEMA, this), ...super.getConfig() };
  }
}

/**
 * Gated attention MIL pooling (Ilse et al. 2018):
 *
 *     a_k = softmax_k( w^T (tanh(V h_k + b_V) * sigmoid(U h_k + b_U)) ),   z = sum_k a_k h_k
 *
 * Same inputs, outputs and arguments as {@link AttentionMilPooling}.
 *
 * @example
 * ```ts
 * const z = new GatedAttentionMilPooling({ units: 128 }).apply([x, m]) as tfl.SymbolicTensor;
 * ```
 */
export class GatedAttentionMilPooling extends AttentionMilPooling {
  static override readonly className: string = 'UhopGatedAttentionMilPooling';
  constructor(args: AttentionMilPoolingArgs = {}) {
    super(args);
    this.gated = true;
  }
}

/** Arguments of {@link BagDropout}. */
export interface BagDropoutArgs extends LayerArgs {
  /** Probability in [0, 1) of dropping each real instance during training. */
  rate: number;
  /** Seed of the drop pattern; each call advances it, so repeated calls differ. Default: unseeded. */
  seed?: number;
}

/**
 * Bag dropout: during training, drops each real instance of a bag with probability `rate`
 * by zeroing its mask entry (the features are untouched; the pooling then ignores the
 * instance). A bag never loses all its instances: when every real instance of a bag would be
 * dropped, one of them, chosen uniformly at random, is kept. So a bag of n instances keeps
 * on average n (1 - rate) + rate^n of them. At inference the mask passes through unchanged.
 * Input: mask [B, S]; output: mask [B, S].
 *
 * @example
 * ```ts
 * const m = tfl.input({ shape: [null] });
 * const mTrain = new BagDropout({ rate: 0.3 }).apply(m) as tfl.SymbolicTensor;
 * ```
 */
/** The declaration of {@link BagDropoutArgs} (src/ops/schema.ts). */
export const BAG_DROPOUT_SCHEMA = defineSchema<Omit<BagDropoutArgs, keyof LayerArgs>>()({
  rate: { check: number({ ge: 0, lt: 1 }), required: true, doc: 'Probability of dropping each real instance during training.' },
  seed: { check: int(), doc: 'Seed of the drop pattern; each call advances it.' },
});

export class BagDropout extends tfl.layers.Layer {
  static readonly className = 'UhopBagDropout';
  readonly rate: number;
  readonly seed?: number;
  private calls = 0;

  constructor(args: BagDropoutArgs) {
    super(args);
    const { rate, seed } = parseLayerArgs(BAG_DROPOUT_SCHEMA, args, 'BagDropout');
    this.rate = rate;
    this.seed = seed;
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const mask = Array.isArray(inputs) ? inputs[0] : inputs;
      if (Array.isArray(inputs) && inputs.length !== 1) {
        throw new Error(`BagDropout: expects one input (the mask [B,S]), got ${inputs.length}`);
      }
      if (mask.rank !== 2) throw new Error(`BagDropout: mask must have rank 2 [B,S], got shape [${mask.shape}]`);
      const training = kwargs?.training === true;
      if (!training || this.rate === 0) return tf.clone(mask);
      const seed = this.seed === undefined ? undefined : this.seed + this.calls;
      this.calls++;
      const u = tf.randomUniform(mask.shape, 0, 1, 'float32', seed);
      const real = tf.greater(mask, 0);
      const dropped = tf.where(tf.logicalAnd(real, tf.greaterEqual(u, this.rate)), mask, tf.zerosLike(mask));
      // A bag that lost every instance keeps one: its real instance with the largest draw
      // (a uniformly random one, since all its draws are below the rate).
      const left = tf.sum(tf.cast(tf.greater(dropped, 0), 'float32'), 1, true); // [B, 1]
      const pick = tf.oneHot(tf.argMax(tf.where(real, u, tf.fill(u.shape, -1)), 1), mask.shape[1] as number);
      const rescue = tf.mul(tf.cast(pick, mask.dtype), mask);
      return tf.where(tf.greater(left, 0), dropped, rescue);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...configOf(BAG_DROPOUT_SCHEMA, this), ...super.getConfig() };
  }
}

/**
 * Replaces the padded instances of each bag by zeros: input `[instances [B,S,F], mask [B,S]]`,
 * output [B,S,F]. Placed before the instance encoder, so that whatever padding holds (NaN,
 * Inf, 1e30) reaches no product, no output and no weight's gradient (a Dense layer's kernel
 * gradient sums x^T dy over all rows, where 0 * NaN would be NaN).
 *
 * @example
 * ```ts
 * const h = new MaskPadding().apply([x, m]) as tfl.SymbolicTensor; // [B, S, F]
 * ```
 */
export class MaskPadding extends tfl.layers.Layer {
  static readonly className = 'UhopMaskPadding';
  constructor(args: LayerArgs = {}) {
    super(args);
  }
  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const [x, mask] = splitBagInputs('MaskPadding', inputs);
      return tf.where(tf.broadcastTo(validInstances(mask), x.shape), x, tf.zerosLike(x));
    });
  }
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return checkBagShapes('MaskPadding', inputShape)[0];
  }
}

tf.serialization.registerClass(MaskPadding);
tf.serialization.registerClass(MaskedMeanPooling);
tf.serialization.registerClass(MaskedMaxPooling);
tf.serialization.registerClass(AttentionMilPooling);
tf.serialization.registerClass(GatedAttentionMilPooling);
tf.serialization.registerClass(BagDropout);
