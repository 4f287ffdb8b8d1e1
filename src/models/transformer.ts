/**
 * Pre-norm transformer encoder blocks whose attention is plain multi-head attention, U-Hop
 * attention (`UHopAttention`, a drop-in for MultiHeadAttention) or a `Hopfield` layer.
 *
 *     x -> LayerNorm -> attention(self) -> Dropout -> + x   =: h
 *     h -> LayerNorm -> Dense(mlpDim, gelu|relu) -> Dropout -> Dense(d) -> Dropout -> + h
 *
 * Everything is built with the tfjs-layers functional API out of registered layers, so the
 * models train with `model.fit`, save with `saveModel` and load with `loadModel`, and
 * `replaceAttention` turns the 'mha' variant into a U-Hop one after training.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { UHopAttention } from '../layers/uhopAttention.js';
import { MultiHeadAttention } from '../layers/multiHeadAttention.js';
import { Hopfield } from '../layers/hopfield.js';
import { UHOP_ARG_KEYS, type UHopArgs } from '../layers/hopfieldCore.js';
import { LayerNorm } from '../layers/tokenLayers.js';
import type { SeparationKind, SimilarityKind } from '../ops/types.js';
import type { Renamed } from '../ops/options.js';
import { bool, custom, defineSchema, int, number, oneOf, parseOptions, type Resolved, type Schema } from '../ops/schema.js';
import { DROPOUT_RATE, MODEL_SEED, NAME, RENAMED_IN } from '../ops/vocabulary.js';
import { builderDropout, partSeed, seededKernel } from './seeding.js';

/**
 * Which attention an encoder block uses:
 * - 'mha': standard softmax multi-head attention (this package's `MultiHeadAttention`, which
 *   `replaceAttention` can turn into U-Hop later);
 * - 'uhop-attention': `UHopAttention` with the Hopfield/U-Hop options below (with the
 *   defaults it computes exactly what 'mha' computes);
 * - 'hopfield': a `Hopfield` self-association layer (ml-jku's layer, with the same options;
 *   its own input LayerNorms are switched off because the block already normalizes).
 */
export type AttentionKind = 'mha' | 'uhop-attention' | 'hopfield';
export const ATTENTION_KINDS: readonly AttentionKind[] = ['mha', 'uhop-attention', 'hopfield'];

/** Hopfield / U-Hop options of the attention (ignored by nothing: 'mha' rejects them). */
export interface EncoderAttentionOptions extends UHopArgs {
  /** Which attention layer. Default 'mha'. */
  attention?: AttentionKind;
  /** Attention heads. Default 4 (or 1 when dModel is not divisible by 4). */
  numHeads?: number;
  /** Query/key width per head. Default dModel / numHeads. */
  keyDim?: number;
  /** Separation of the association: 'softmax', 'sparsemax', 'entmax15', 'entmax', ... Default 'softmax'. */
  separation?: SeparationKind;
  /** Similarity of queries and keys (with U-Hop: of their features). Default 'dot'. */
  similarity?: SimilarityKind;
  /** Inverse temperature beta, applied before the separation. Default 1/sqrt(keyDim). */
  beta?: number;
  /** alpha of separation 'entmax', in [1, 2]. */
  alpha?: number;
  /**
   * Extra Hopfield update steps after the first retrieval (0 = attention-like), as the layers'
   * `updateStepsMax` (`updateSteps`, the total, before 0.2.0). Default 0.
   */
  updateStepsMax?: number;
  /** Dropout on the association (attention weights), training only. Default 0. */
  attentionDropout?: number;
  /**
   * Seed of the weight initializers and dropout masks of the block(s), so that a model built
   * and trained twice with one seed gives the same numbers (see {@link SeededDropout}); the
   * attention layer gets it as its own `seed`. Default: unseeded (Math.random, as tfjs).
   */
  seed?: number;
}

/** Options of one encoder block. */
export interface TransformerBlockOptions extends EncoderAttentionOptions {
  /** Width of the MLP's hidden layer. Default 2 * the model width. */
  mlpDim?: number;
  /** Dropout after the attention and in the MLP (training only). Default 0. */
  dropout?: number;
  /** MLP activation. Default 'gelu'. */
  activation?: 'gelu' | 'relu';
  /** epsilon of the LayerNorms. Default 1e-6. */
  layerNormEpsilon?: number;
  /** Name prefix of the block's layers. Default: tfjs' automatic unique names. */
  name?: string;
  /**
   * Attention mask [B, L, L] as a model input (1 = a query may attend to that key);
   * 'mha' and 'uhop-attention' only.
   */
  attentionMask?: tfl.SymbolicTensor;
}

/** Options of {@link transformerEncoder}. */
export interface TransformerEncoderOptions extends Omit<TransformerBlockOptions, 'name' | 'attentionMask'> {
  /** Model (token) width d. Required. */
  dModel: number;
  /** Number of blocks. Default 2. */
  numLayers?: number;
  /** Sequence length of the model's input; null = any. Default null. */
  seqLen?: number | null;
  /** A LayerNorm after the last block (pre-norm transformers have one). Default true. */
  finalNorm?: boolean;
  /** Model name. Default 'transformer_encoder'. */
  name?: string;
}

/**
 * The Hopfield/U-Hop options the builders pass on to the attention layer as given: the
 * layer's own schema (UHopAttention's, Hopfield's) checks them and fills their defaults, so
 * the builders' schemas do not declare them a second time.
 */
export const PASSED_ON_ATTENTION_KEYS = ['separation', 'similarity', 'beta', 'alpha', 'updateStepsMax', ...UHOP_ARG_KEYS] as const;
type PassedOn = (typeof PASSED_ON_ATTENTION_KEYS)[number];

/** The builders' renames of 0.2.0 (the old name given now is an error that names the new one). */
export const BUILDER_RENAMES: Renamed = {
  updateSteps: {
    to: 'updateStepsMax',
    since: RENAMED_IN,
    note: 'it counts the extra steps after the first: updateSteps n is updateStepsMax n - 1',
  },
};

/** The declaration of {@link EncoderAttentionOptions} but the passed-on ones (src/ops/schema.ts). */
export const ENCODER_ATTENTION_SCHEMA = defineSchema<Omit<EncoderAttentionOptions, PassedOn>>()({
  attention: { check: oneOf(ATTENTION_KINDS), default: 'mha', doc: "Which attention layer: 'mha', 'uhop-attention' or 'hopfield'." },
  numHeads: { check: int(1), defaultText: '4 (2 or 1 when 4 does not divide dModel)', doc: 'Attention heads.' },
  keyDim: { check: int(1), defaultText: 'dModel / numHeads', doc: 'Query/key width per head.' },
  attentionDropout: { ...DROPOUT_RATE, doc: 'Dropout on the association (attention weights), training only.' },
  seed: MODEL_SEED,
});

/** The declaration of {@link TransformerBlockOptions} but the passed-on ones. */
export const TRANSFORMER_BLOCK_SCHEMA = defineSchema<Omit<TransformerBlockOptions, PassedOn>>()({
  ...ENCODER_ATTENTION_SCHEMA,
  mlpDim: { check: int(1), defaultText: '2 * dModel', doc: "Width of the MLP's hidden layer." },
  dropout: { ...DROPOUT_RATE, doc: 'Dropout after the attention and in the MLP (training only).' },
  activation: { check: oneOf(['gelu', 'relu'] as const), default: 'gelu', doc: 'MLP activation.' },
  layerNormEpsilon: { check: number({ gt: 0 }), default: 1e-6, doc: 'epsilon of the LayerNorms.' },
  name: { check: NAME, defaultText: "tfjs' automatic unique names", doc: "Name prefix of the block's layers." },
  attentionMask: {
    check: custom<tfl.SymbolicTensor>('a symbolic tensor [B, L, L] (a model input)', (v) => v instanceof tfl.SymbolicTensor),
    doc: "Attention mask [B, L, L] (1 = a query may attend to that key); 'mha' and 'uhop-attention' only.",
  },
});

/** Options of {@link encoderStack}: the encoder's but its width, length and name. */
export type EncoderStackOptions = Omit<TransformerEncoderOptions, 'dModel' | 'seqLen' | 'name'> & { attentionMask?: tfl.SymbolicTensor };

const { name: _blockName, ...STACK_BLOCK_SCHEMA } = TRANSFORMER_BLOCK_SCHEMA;

/** The declaration of {@link EncoderStackOptions} but the passed-on ones. */
export const ENCODER_STACK_SCHEMA = defineSchema<Omit<EncoderStackOptions, PassedOn>>()({
  ...STACK_BLOCK_SCHEMA,
  numLayers: { check: int(0), default: 2, doc: 'Number of blocks.' },
  finalNorm: { check: bool, default: true, doc: 'A LayerNorm after the last block (pre-norm transformers have one).' },
});

/** The encoder options of the models (transformerEncoder and the classifiers): the stack's but the mask. */
export const { attentionMask: _stackMask, ...ENCODER_BLOCKS_SCHEMA } = ENCODER_STACK_SCHEMA;

/** The declaration of {@link TransformerEncoderOptions} but the passed-on ones. */
export const TRANSFORMER_ENCODER_SCHEMA = defineSchema<Omit<TransformerEncoderOptions, PassedOn>>()({
  ...ENCODER_BLOCKS_SCHEMA,
  dModel: { check: int(1), required: true, doc: 'Model (token) width d.' },
  seqLen: { check: int(1), defaultText: 'null (any)', doc: "Sequence length of the model's input; null = any." },
  name: { check: NAME, default: 'transformer_encoder', doc: 'Model name.' },
});

/**
 * Parses the options of a builder whose schema leaves out the passed-on attention options
 * (they are accepted here and checked by the attention layer).
 * @internal shared with the classifiers
 */
export function parseBuilderOptions<T>(schema: Schema<T>, options: unknown, where: string): Resolved<T> {
  return parseOptions(schema, options, where, { renamed: BUILDER_RENAMES, extraKeys: PASSED_ON_ATTENTION_KEYS });
}

/** The passed-on attention options that are set (undefined ones dropped, so the layer applies its defaults). */
function passedOn(o: EncoderAttentionOptions): Pick<EncoderAttentionOptions, PassedOn> {
  const out: Record<string, unknown> = {};
  for (const k of PASSED_ON_ATTENTION_KEYS) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return out as Pick<EncoderAttentionOptions, PassedOn>;
}

/** Default number of heads for a width: 4 when it divides d, else 2, else 1. */
export function defaultNumHeads(d: number): number {
  return d % 4 === 0 ? 4 : d % 2 === 0 ? 2 : 1;
}

/**
 * The attention layer of a block (not yet applied), for model width `d`.
 *
 * @example
 * ```ts
 * const attn = attentionLayer(64, { attention: 'uhop-attention', featureMap: 'linear', fitSteps: 5 });
 * const y = attn.apply(x) as tfl.SymbolicTensor;   // self-attention, [B, L, 64]
 * ```
 */
export function attentionLayer(d: number, o: EncoderAttentionOptions & { name?: string }): tfl.layers.Layer {
  const where = 'transformerEncoderBlock';
  const {
    attention: kind,
    numHeads: heads,
    keyDim: kd,
    attentionDropout: dropout,
  } = parseOptions(ENCODER_ATTENTION_SCHEMA, o, where, {
    renamed: BUILDER_RENAMES,
    extraKeys: [...PASSED_ON_ATTENTION_KEYS, ...Object.keys(ENCODER_STACK_SCHEMA), 'name'],
  });
  const numHeads = heads ?? defaultNumHeads(d);
  let keyDim = kd;
  if (keyDim == null) {
    if (d % numHeads !== 0) throw new Error(`${where}: the model width ${d} is not divisible by numHeads ${numHeads}; set keyDim`);
    keyDim = d / numHeads;
  }
  const name = o.name;
  const seed = o.seed !== undefined ? { seed: o.seed } : {};
  if (kind === 'mha') {
    const neutral = (k: PassedOn) =>
      (k === 'separation' && o[k] === 'softmax') ||
      (k === 'featureMap' && o[k] === 'none') ||
      (k === 'updateStepsMax' && o[k] === 0) ||
      (k === 'similarity' && o[k] === 'dot');
    const set = PASSED_ON_ATTENTION_KEYS.filter((k) => o[k] !== undefined && !neutral(k));
    if (set.length) {
      throw new Error(
        `${where}: attention 'mha' is plain softmax attention; the Hopfield/U-Hop options [${set.join(', ')}] need attention 'uhop-attention' or 'hopfield'`,
      );
    }
    return new MultiHeadAttention({ numHeads, keyDim, dropout, name, ...seed });
  }
  if (kind === 'uhop-attention') return new UHopAttention({ numHeads, keyDim, dropout, name, ...seed, ...passedOn(o) });
  return new Hopfield({
    numHeads,
    hiddenSize: keyDim,
    dropout,
    name,
    // The block's LayerNorm already normalizes the input; ml-jku's input norms would repeat it.
    normalizeStoredPattern: false,
    normalizeStatePattern: false,
    normalizePatternProjection: false,
    ...seed,
    ...passedOn(o),
  });
}

function lastDim(x: tfl.SymbolicTensor, where: string): number {
  if (!(x instanceof tfl.SymbolicTensor))
    throw new Error(`${where}: x must be a symbolic tensor (tfl.input or a layer output), got ${typeof x}`);
  const d = x.shape[x.shape.length - 1];
  if (x.shape.length !== 3 || d == null)
    throw new Error(`${where}: x must be [batch, tokens, features] with known features, got shape [${x.shape}]`);
  return d;
}

/**
 * One pre-norm encoder block on a symbolic sequence x [B, L, d] -> [B, L, d]:
 * `h = x + Dropout(Attn(LN(x)))`, `y = h + Dropout(W2 Dropout(act(W1 LN(h))))`.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { transformerEncoderBlock } from 'uhop';
 * const x = tfl.input({ shape: [16, 32] });
 * const y = transformerEncoderBlock(x, { attention: 'uhop-attention', numHeads: 4, featureMap: 'linear' });
 * const model = tfl.model({ inputs: x, outputs: y });   // [B, 16, 32] -> [B, 16, 32]
 * ```
 */
export function transformerEncoderBlock(x: tfl.SymbolicTensor, options: TransformerBlockOptions = {}): tfl.SymbolicTensor {
  const where = 'transformerEncoderBlock';
  const { mlpDim: mlp, dropout, activation, layerNormEpsilon: eps, seed } = parseBuilderOptions(TRANSFORMER_BLOCK_SCHEMA, options, where);
  const d = lastDim(x, where);
  const mlpDim = mlp ?? 2 * d;
  const p = options.name;
  const n = (suffix: string) => (p ? `${p}_${suffix}` : undefined);
  const apply = (layer: tfl.layers.Layer, input: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(input) as tfl.SymbolicTensor;

  const attn = attentionLayer(d, { ...options, seed: partSeed(seed, 1), name: n('attention') });
  const normed = apply(new LayerNorm({ epsilon: eps, name: n('ln1') }), x);
  let a: tfl.SymbolicTensor;
  if (options.attentionMask) {
    if (options.attention === 'hopfield') {
      throw new Error(
        `${where}: attentionMask is supported with attention 'mha' and 'uhop-attention'; the 'hopfield' layer takes a padding mask as a second input instead`,
      );
    }
    a = attn.apply(normed, { value: normed, attentionMask: options.attentionMask }) as tfl.SymbolicTensor;
  } else {
    a = apply(attn, normed);
  }
  if (dropout > 0) a = apply(builderDropout(dropout, partSeed(seed, 4), n('attention_dropout')), a);
  const h = apply(tfl.layers.add({ name: n('attention_residual') }), [x, a]);

  const normed2 = apply(new LayerNorm({ epsilon: eps, name: n('ln2') }), h);
  let m = apply(tfl.layers.dense({ units: mlpDim, activation, name: n('mlp_dense1'), ...seededKernel(partSeed(seed, 2)) }), normed2);
  if (dropout > 0) m = apply(builderDropout(dropout, partSeed(seed, 5), n('mlp_dropout1')), m);
  m = apply(tfl.layers.dense({ units: d, name: n('mlp_dense2'), ...seededKernel(partSeed(seed, 3)) }), m);
  if (dropout > 0) m = apply(builderDropout(dropout, partSeed(seed, 6), n('mlp_dropout2')), m);
  return apply(tfl.layers.add({ name: n('mlp_residual') }), [h, m]);
}

/**
 * `numLayers` encoder blocks (and a final LayerNorm) on a symbolic sequence; the layers are
 * named `${prefix}${i}_...`. Use it to put an encoder inside a larger functional model.
 *
 * @example
 * ```ts
 * const y = encoderStack(tokens, { numLayers: 2, attention: 'mha', mlpDim: 64 }, 'enc');
 * ```
 */
export function encoderStack(x: tfl.SymbolicTensor, options: EncoderStackOptions, prefix = 'encoder_block'): tfl.SymbolicTensor {
  const { numLayers, finalNorm, layerNormEpsilon } = parseBuilderOptions(ENCODER_STACK_SCHEMA, options, 'transformerEncoder');
  const { numLayers: _n, finalNorm: _f, ...block } = options;
  let h = x;
  // Block i is seeded from seed + 100 i, so its parts (seed + 1 ... + 6) never meet another block's.
  for (let i = 0; i < numLayers; i++)
    h = transformerEncoderBlock(h, { ...block, seed: partSeed(block.seed, 100 * i), name: `${prefix}${i}` });
  if (finalNorm) {
    h = new LayerNorm({ epsilon: layerNormEpsilon, name: `${prefix}_final_ln` }).apply(h) as tfl.SymbolicTensor;
  }
  return h;
}

/**
 * A transformer encoder as its own model: [B, seqLen, dModel] -> [B, seqLen, dModel].
 *
 * @example
 * ```ts
 * import { transformerEncoder } from 'uhop';
 * const enc = transformerEncoder({ numLayers: 2, dModel: 32, numHeads: 4, mlpDim: 64, attention: 'uhop-attention', featureMap: 'linear', fitSteps: 5 });
 * const y = enc.predict(tf.randomNormal([8, 10, 32])) as tf.Tensor;   // [8, 10, 32]
 * ```
 */
export function transformerEncoder(options: TransformerEncoderOptions): tfl.LayersModel {
  const where = 'transformerEncoder';
  if (options == null || typeof options !== 'object')
    throw new Error(`${where}: options must be an object with dModel, got ${String(options)}`);
  const { dModel, seqLen = null, name } = parseBuilderOptions(TRANSFORMER_ENCODER_SCHEMA, options, where);
  const { dModel: _d, seqLen: _s, name: _name, ...rest } = options;
  const x = tfl.input({ shape: [seqLen, dModel], name: `${name}_input` });
  const y = encoderStack(x, rest);
  return tfl.model({ inputs: x, outputs: y, name });
}
