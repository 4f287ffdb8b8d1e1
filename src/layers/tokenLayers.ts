/**
 * Small token layers the transformer-style builders need and tfjs-layers lacks (or has in a
 * form too slow to train):
 *
 * - `TokenEmbedding`: a token-id lookup table like tfjs' `Embedding`, but trainable on every
 *   backend (tfjs-backend-wasm has no UnsortedSegmentSum kernel, which the gather gradient of
 *   tfjs' Embedding needs; there the table's gradient is taken as one-hot^T x dy instead).
 * - `ClassToken`: prepends one learned token to a sequence, [B, N, d] -> [B, N+1, d] (ViT's
 *   [CLS] token).
 * - `AddPositionEmbedding`: adds a learned position embedding, [B, L, d] + P[:L] (L <= maxLen).
 * - `SelectToken`: takes one position of a sequence, [B, L, d] -> [B, d] (reads the class token).
 * - `LayerNorm`: layer normalization over the last axis. tfjs-layers' LayerNormalization tiles
 *   its gain and bias to the input's shape, and tf.tile's gradient is a JS loop of one slice and
 *   one add per repetition: B x L kernel launches per weight per step (measured: 0.6 s of a
 *   0.75 s training step of a small ViT on wasm). This one broadcasts instead.
 *
 * All of them are registered for serialization, so models holding them save and load.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from './keras.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { getInitializer, parseLayerArgs, serializeKerasObject, type Initializer, type InitializerLike } from './keras.js';
import { anything, bool, configOf, defineSchema, int, number } from '../ops/schema.js';

const INITIALIZER = anything<InitializerLike>('an initializer name, a {className, config} object or an initializer instance');

type Shape = tfl.Shape;

/** Default initializer of the token and position tables: N(0, 0.02^2), as in BERT and ViT (a fresh config per layer). */
const embeddingInitializer = () => ({ className: 'RandomNormal', config: { mean: 0, stddev: 0.02 } });

function single(inputs: tf.Tensor | tf.Tensor[], where: string): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new Error(`${where}: expects one input [batch, tokens, features], got ${inputs.length} inputs`);
    return inputs[0];
  }
  return inputs;
}

function singleShape(inputShape: Shape | Shape[], where: string): Shape {
  const s = Array.isArray(inputShape[0]) ? (inputShape as Shape[]) : [inputShape as Shape];
  if (s.length !== 1) throw new Error(`${where}: expects one input, got ${s.length}`);
  if (s[0].length !== 3) throw new Error(`${where}: expects inputs [batch, tokens, features], got shape [${s[0]}]`);
  return s[0];
}

function featureDim(shape: Shape, where: string): number {
  const d = shape[2];
  if (d == null || !Number.isInteger(d) || d < 1)
    throw new Error(`${where}: the feature (last) dimension must be known, got shape [${shape}]`);
  return d;
}

// ---------------------------------------------------------------------------------------

/**
 * Rows of `table` [V, d] at `ids` [...] -> [..., d], differentiable in `table` on every backend:
 * tf.gather's own gradient (UnsortedSegmentSum) where the backend has that kernel, otherwise
 * one-hot(ids)^T x dy (memory O(ids x V), fine for the vocabularies of this package's tasks).
 * `gradient: 'one-hot'` forces the second form.
 *
 * @example
 * ```ts
 * const g = tf.grad((t: tf.Tensor) => tf.sum(gatherRows(t, ids)))(table);   // works on wasm too
 * ```
 */
export function gatherRows(table: tf.Tensor, ids: tf.Tensor, gradient: 'auto' | 'one-hot' = 'auto'): tf.Tensor {
  if (gradient === 'auto' && tf.getKernel('UnsortedSegmentSum', tf.getBackend()) != null) return tf.gather(table, ids);
  const [V, d] = table.shape as [number, number];
  const f = tf.customGrad(((t: tf.Tensor) => {
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor) => {
        const flat = tf.reshape(ids, [-1]);
        const oneHot = tf.cast(tf.oneHot(flat, V), 'float32');
        return tf.matMul(oneHot, tf.reshape(dy, [flat.shape[0], d]), true, false);
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(table);
}

/** Options of {@link TokenEmbedding}. */
export interface TokenEmbeddingArgs extends LayerArgs {
  /** Vocabulary size V (ids in [0, V)). Required. */
  inputDim: number;
  /** Embedding width d. Required. */
  outputDim: number;
  /** Initializer of the table [V, d]. Default randomNormal with stddev 0.02. */
  embeddingsInitializer?: InitializerLike;
}

/**
 * Token embedding: ids [B, L] (int32 or integral floats) -> [B, L, d]. The same maths as tfjs'
 * `Embedding`, trainable on every backend (see {@link gatherRows}). Ids outside [0, V) are an
 * error on the cpu backend and give zeros elsewhere (tf.gather's behaviour).
 *
 * @example
 * ```ts
 * const ids = tfl.input({ shape: [20], dtype: 'int32' });
 * const x = new TokenEmbedding({ inputDim: 32, outputDim: 64 }).apply(ids) as tfl.SymbolicTensor; // [null, 20, 64]
 * ```
 */
/** The declaration of {@link TokenEmbeddingArgs} (src/ops/schema.ts). */
export const TOKEN_EMBEDDING_SCHEMA = defineSchema<Omit<TokenEmbeddingArgs, keyof LayerArgs>>()({
  inputDim: { check: int(1), required: true, doc: 'Vocabulary size V (ids in [0, V)).' },
  outputDim: { check: int(1), required: true, doc: 'Embedding width d.' },
  embeddingsInitializer: { check: INITIALIZER, defaultText: 'randomNormal(0, 0.02)', doc: 'Initializer of the table [V, d].' },
});

export class TokenEmbedding extends tfl.layers.Layer {
  static className = 'TokenEmbedding';
  readonly inputDim: number;
  readonly outputDim: number;
  private readonly initializer: Initializer;
  private table: LayerVariable | null = null;

  constructor(args: TokenEmbeddingArgs) {
    super(args);
    const where = 'TokenEmbedding';
    if (args == null || typeof args !== 'object')
      throw new Error(`${where}: args must be an object with inputDim and outputDim, got ${String(args)}`);
    const o = parseLayerArgs(TOKEN_EMBEDDING_SCHEMA, args, where);
    this.inputDim = o.inputDim;
    this.outputDim = o.outputDim;
    this.initializer = getInitializer(args.embeddingsInitializer ?? embeddingInitializer(), 'zeros', where, 'embeddingsInitializer');
  }

  override build(): void {
    this.table = this.addWeight('embeddings', [this.inputDim, this.outputDim], 'float32', this.initializer);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const ids = x.dtype === 'int32' ? x : tf.cast(x, 'int32');
      return gatherRows(this.table!.read(), ids);
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
    return [...s, this.outputDim];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inputDim: this.inputDim,
      outputDim: this.outputDim,
      embeddingsInitializer: serializeKerasObject(this.initializer),
    };
  }
}
tf.serialization.registerClass(TokenEmbedding);

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
/** The declaration of {@link ClassTokenArgs} (src/ops/schema.ts). */
export const CLASS_TOKEN_SCHEMA = defineSchema<Omit<ClassTokenArgs, keyof LayerArgs>>()({
  initializer: { check: INITIALIZER, defaultText: "'zeros'", doc: 'Initializer of the token [1, d] (zeros as in ViT).' },
});

export class ClassToken extends tfl.layers.Layer {
  static className = 'ClassToken';
  private readonly initializer: Initializer;
  private token: LayerVariable | null = null;

  constructor(args: ClassTokenArgs = {}) {
    super(args);
    parseLayerArgs(CLASS_TOKEN_SCHEMA, args, 'ClassToken');
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
      // broadcastTo, not tile: tf.tile's gradient loops over the repetitions (B slices + adds).
      return tf.concat([tf.broadcastTo(t, [x.shape[0], 1, t.shape[2] as number]), x], 1);
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
/** The declaration of {@link AddPositionEmbeddingArgs} (src/ops/schema.ts). */
export const ADD_POSITION_EMBEDDING_SCHEMA = defineSchema<Omit<AddPositionEmbeddingArgs, keyof LayerArgs>>()({
  maxLen: { check: int(1), required: true, doc: 'Longest sequence the layer accepts (rows of the learned table).' },
  initializer: { check: INITIALIZER, defaultText: 'randomNormal(0, 0.02)', doc: 'Initializer of the table [maxLen, d] (BERT/ViT).' },
});

export class AddPositionEmbedding extends tfl.layers.Layer {
  static className = 'AddPositionEmbedding';
  readonly maxLen: number;
  private readonly initializer: Initializer;
  private table: LayerVariable | null = null;

  constructor(args: AddPositionEmbeddingArgs) {
    super(args);
    const where = 'AddPositionEmbedding';
    if (args == null || typeof args !== 'object') throw new Error(`${where}: args must be an object with maxLen, got ${String(args)}`);
    this.maxLen = parseLayerArgs(ADD_POSITION_EMBEDDING_SCHEMA, args, where).maxLen;
    this.initializer = getInitializer(args.initializer ?? embeddingInitializer(), 'zeros', where, 'initializer');
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
/** The declaration of {@link SelectTokenArgs} (src/ops/schema.ts). */
export const SELECT_TOKEN_SCHEMA = defineSchema<Omit<SelectTokenArgs, keyof LayerArgs>>()({
  index: { check: int(), default: 0, doc: 'Position to take; negative counts from the end (0 = the class token).' },
});

export class SelectToken extends tfl.layers.Layer {
  static className = 'SelectToken';
  readonly index: number;

  constructor(args: SelectTokenArgs = {}) {
    super(args);
    this.index = parseLayerArgs(SELECT_TOKEN_SCHEMA, args, 'SelectToken').index;
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
    return { ...super.getConfig(), ...configOf(SELECT_TOKEN_SCHEMA, this) };
  }
}
tf.serialization.registerClass(SelectToken);

// ---------------------------------------------------------------------------------------

/** Options of {@link LayerNorm}. */
export interface LayerNormArgs extends LayerArgs {
  /** epsilon added to the variance. Default 1e-6. */
  epsilon?: number;
  /** Learn a bias (beta). Default true. */
  center?: boolean;
  /** Learn a gain (gamma). Default true. */
  scale?: boolean;
}

/**
 * Layer normalization over the last axis: y = (x - mean) / sqrt(var + eps) * gamma + beta, the
 * same maths as tfjs' `LayerNormalization` with axis -1, with a gradient that costs a few
 * kernels instead of a loop over the batch and sequence (see the file header).
 *
 * @example
 * ```ts
 * const y = new LayerNorm({ epsilon: 1e-6 }).apply(x) as tfl.SymbolicTensor;   // x [B, L, d]
 * ```
 */
/** The declaration of {@link LayerNormArgs} (src/ops/schema.ts). */
export const LAYER_NORM_SCHEMA = defineSchema<Omit<LayerNormArgs, keyof LayerArgs>>()({
  epsilon: { check: number({ gt: 0 }), default: 1e-6, doc: 'epsilon added to the variance.' },
  center: { check: bool, default: true, doc: 'Learn a bias (beta).' },
  scale: { check: bool, default: true, doc: 'Learn a gain (gamma).' },
});

export class LayerNorm extends tfl.layers.Layer {
  static className = 'LayerNorm';
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  private gamma: LayerVariable | null = null;
  private beta: LayerVariable | null = null;

  constructor(args: LayerNormArgs = {}) {
    super(args);
    const where = 'LayerNorm';
    const o = parseLayerArgs(LAYER_NORM_SCHEMA, args, where);
    this.epsilon = o.epsilon;
    this.center = o.center;
    this.scale = o.scale;
    this.supportsMasking = true;
  }

  override build(inputShape: Shape | Shape[]): void {
    const s = (Array.isArray(inputShape[0]) ? (inputShape as Shape[])[0] : inputShape) as Shape;
    const d = s[s.length - 1];
    if (d == null) throw new Error(`LayerNorm '${this.name}': the last dimension must be known, got shape [${s}]`);
    if (this.scale) this.gamma = this.addWeight('gamma', [d], 'float32', getInitializer('ones', 'ones', 'LayerNorm', 'gamma'));
    if (this.center) this.beta = this.addWeight('beta', [d], 'float32', getInitializer('zeros', 'zeros', 'LayerNorm', 'beta'));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const { mean, variance } = tf.moments(x, -1, true);
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
      if (this.gamma) y = tf.mul(y, this.gamma.read());
      if (this.beta) y = tf.add(y, this.beta.read());
      return y;
    });
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...configOf(LAYER_NORM_SCHEMA, this) };
  }
}
tf.serialization.registerClass(LayerNorm);
