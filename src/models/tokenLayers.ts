/**
 * Three small token layers the transformer-style builders need and tfjs-layers lacks:
 *
 * - `ClassToken`: prepends one learned token to a sequence, [B, N, d] -> [B, N+1, d] (ViT's
 *   [CLS] token).
 * - `AddPositionEmbedding`: adds a learned position embedding, [B, L, d] + P[:L] (L <= maxLen).
 * - `SelectToken`: takes one position of a sequence, [B, L, d] -> [B, d] (reads the class token).
 *
 * All three are registered for serialization, so models holding them save and load.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import type { Kwargs } from '@tensorflow/tfjs-layers/dist/types';
import { checkKnownArgs, getInitializer, serializeKerasObject, type Initializer, type InitializerLike } from '../layers/keras.js';

type Shape = tfl.Shape;

function single(inputs: tf.Tensor | tf.Tensor[], where: string): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new Error(`${where}: expects one input [batch, tokens, features], got ${inputs.length} inputs`);
    return inputs[0];
  }
  return inputs;
}

function singleShape(inputShape: Shape | Shape[], where: string): Shape {
  const s = (Array.isArray(inputShape[0]) ? (inputShape as Shape[]) : [inputShape as Shape]);
  if (s.length !== 1) throw new Error(`${where}: expects one input, got ${s.length}`);
  if (s[0].length !== 3) throw new Error(`${where}: expects inputs [batch, tokens, features], got shape [${s[0]}]`);
  return s[0];
}

function featureDim(shape: Shape, where: string): number {
  const d = shape[2];
  if (d == null || !Number.isInteger(d) || d < 1) throw new Error(`${where}: the feature (last) dimension must be known, got shape [${shape}]`);
  return d;
}

// ---------------------------------------------------------------------------------------

/** Options of {@link ClassToken}. */
export interface ClassTokenArgs extends LayerArgs {
  /** Initializer of the token [1, d]. Default zeros (as in ViT). */
  initializer?: InitializerLike;
}

/**
 * Prepends one learned token (ViT's class token) to every sequence: [B, N, d] -> [B, N+1, d].
 *
 * @example
 * ```ts
 * const patches = tfl.input({ shape: [49, 64] });
 * const tokens = new ClassToken().apply(patches) as tfl.SymbolicTensor;   // [null, 50, 64]
 * ```
 */
export class ClassToken extends tfl.layers.Layer {
  static className = 'ClassToken';
  private readonly initializer: Initializer;
  private token: LayerVariable | null = null;

  constructor(args: ClassTokenArgs = {}) {
    super(args);
    checkKnownArgs(args, ['initializer'], 'ClassToken');
    this.initializer = getInitializer(args.initializer, 'zeros', 'ClassToken', 'initializer');
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = singleShape(inputShape, `ClassToken '${this.name}'`);
    this.token = this.addWeight('token', [1, 1, featureDim(shape, `ClassToken '${this.name}'`)], 'float32', this.initializer);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs, `ClassToken '${this.name}'`);
      const t = this.token!.read();
      return tf.concat([tf.tile(t, [x.shape[0], 1, 1]), x], 1);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = singleShape(inputShape, `ClassToken '${this.name}'`);
    return [s[0], s[1] == null ? null : s[1] + 1, s[2]];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initializer: serializeKerasObject(this.initializer) };
  }
}
tf.serialization.registerClass(ClassToken);

// ---------------------------------------------------------------------------------------

/** Options of {@link AddPositionEmbedding}. */
export interface AddPositionEmbeddingArgs extends LayerArgs {
  /** Longest sequence the layer accepts (rows of the learned table). Required. */
  maxLen: number;
  /** Initializer of the table [maxLen, d]. Default randomNormal with stddev 0.02 (BERT/ViT). */
  initializer?: InitializerLike;
}

/**
 * Adds a learned position embedding to a sequence: y[b, i] = x[b, i] + P[i] for i < L, with a
 * table P [maxLen, d]; sequences may be shorter than maxLen.
 *
 * @example
 * ```ts
 * const emb = tfl.layers.embedding({ inputDim: 100, outputDim: 32 }).apply(ids) as tfl.SymbolicTensor;
 * const x = new AddPositionEmbedding({ maxLen: 64 }).apply(emb) as tfl.SymbolicTensor;
 * ```
 */
export class AddPositionEmbedding extends tfl.layers.Layer {
  static className = 'AddPositionEmbedding';
  readonly maxLen: number;
  private readonly initializer: Initializer;
  private table: LayerVariable | null = null;

  constructor(args: AddPositionEmbeddingArgs) {
    super(args);
    const where = 'AddPositionEmbedding';
    if (args == null || typeof args !== 'object') throw new Error(`${where}: args must be an object with maxLen, got ${String(args)}`);
    checkKnownArgs(args, ['maxLen', 'initializer'], where);
    if (!Number.isInteger(args.maxLen) || args.maxLen < 1) throw new Error(`${where}: maxLen must be an integer >= 1, got ${String(args.maxLen)}`);
    this.maxLen = args.maxLen;
    this.initializer = getInitializer(args.initializer ?? { className: 'RandomNormal', config: { mean: 0, stddev: 0.02 } }, 'zeros', where, 'initializer');
  }

  override build(inputShape: Shape | Shape[]): void {
    const where = `AddPositionEmbedding '${this.name}'`;
    const shape = singleShape(inputShape, where);
    if (shape[1] != null && shape[1] > this.maxLen) {
      throw new Error(`${where}: sequences of length ${shape[1]} exceed maxLen ${this.maxLen}`);
    }
    this.table = this.addWeight('embeddings', [this.maxLen, featureDim(shape, where)], 'float32', this.initializer);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs, `AddPositionEmbedding '${this.name}'`);
      const L = x.shape[1] as number;
      if (L > this.maxLen) throw new Error(`AddPositionEmbedding '${this.name}': sequence length ${L} exceeds maxLen ${this.maxLen}`);
      const p = this.table!.read();
      return tf.add(x, L === this.maxLen ? p : tf.slice(p, [0, 0], [L, -1]));
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return singleShape(inputShape, `AddPositionEmbedding '${this.name}'`);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), maxLen: this.maxLen, initializer: serializeKerasObject(this.initializer) };
  }
}
tf.serialization.registerClass(AddPositionEmbedding);

// ---------------------------------------------------------------------------------------

/** Options of {@link SelectToken}. */
export interface SelectTokenArgs extends LayerArgs {
  /** Position to take; negative counts from the end. Default 0 (the class token). */
  index?: number;
}

/**
 * Takes one position of a sequence: [B, L, d] -> [B, d].
 *
 * @example
 * ```ts
 * const cls = new SelectToken({ index: 0 }).apply(encoded) as tfl.SymbolicTensor; // [null, d]
 * ```
 */
export class SelectToken extends tfl.layers.Layer {
  static className = 'SelectToken';
  readonly index: number;

  constructor(args: SelectTokenArgs = {}) {
    super(args);
    checkKnownArgs(args, ['index'], 'SelectToken');
    const index = args.index ?? 0;
    if (!Number.isInteger(index)) throw new Error(`SelectToken: index must be an integer, got ${String(index)}`);
    this.index = index;
  }

  private position(L: number): number {
    const i = this.index < 0 ? L + this.index : this.index;
    if (i < 0 || i >= L) throw new Error(`SelectToken '${this.name}': index ${this.index} is outside a sequence of length ${L}`);
    return i;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs, `SelectToken '${this.name}'`);
      const [B, L, d] = x.shape as [number, number, number];
      const i = this.position(L);
      return tf.reshape(tf.slice(x, [0, i, 0], [-1, 1, -1]), [B, d]);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = singleShape(inputShape, `SelectToken '${this.name}'`);
    if (s[1] != null) this.position(s[1]);
    return [s[0], s[2]];
  }

  /** The selected token has no sequence axis left: no mask. */
  override computeMask(): tf.Tensor | tf.Tensor[] {
    return null as unknown as tf.Tensor;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), index: this.index };
  }
}
tf.serialization.registerClass(SelectToken);
