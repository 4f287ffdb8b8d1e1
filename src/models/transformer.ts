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
import { checkOptions, optionKeys, type Renamed } from '../ops/options.js';
import { checkValue, int, number, oneOf } from '../ops/schema.js';
import { RENAMED_IN, UPDATE_STEPS_MAX } from '../ops/vocabulary.js';
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

const HOPFIELD_OPTION_KEYS = ['separation', 'similarity', 'beta', 'alpha', 'updateStepsMax', ...UHOP_ARG_KEYS] as const;

/** The builders' renames of 0.2.0 (the old name given now is an error that names the new one). */
export const BUILDER_RENAMES: Renamed = {
  updateSteps: {
    to: 'updateStepsMax',
    since: RENAMED_IN,
    note: 'it counts the extra steps after the first: updateSteps n is updateStepsMax n - 1',
  },
};

// The builders check their values with the schema's checks (src/ops/schema.ts): one message form.
function posInt(v: unknown, name: string, where: string): number | undefined {
  return v == null ? undefined : checkValue(v, int(1), name, where);
}

function rate(v: unknown, name: string, where: string): number {
  return v == null ? 0 : checkValue(v, number({ ge: 0, lt: 1 }), name, where);
}

/** The U-Hop options that are set (undefined ones dropped, so the layers apply their defaults). */
function uhopOptions(o: EncoderAttentionOptions): UHopArgs {
  const out: Record<string, unknown> = {};
  for (const k of UHOP_ARG_KEYS) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return out as UHopArgs;
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
  const kind = checkValue(o.attention ?? 'mha', oneOf(ATTENTION_KINDS), 'attention', where);
  const numHeads = posInt(o.numHeads, 'numHeads', where) ?? defaultNumHeads(d);
  let keyDim = posInt(o.keyDim, 'keyDim', where);
  if (keyDim == null) {
    if (d % numHeads !== 0) throw new Error(`${where}: the model width ${d} is not divisible by numHeads ${numHeads}; set keyDim`);
    keyDim = d / numHeads;
  }
  const extraSteps = o.updateStepsMax === undefined ? 0 : checkValue(o.updateStepsMax, UPDATE_STEPS_MAX.check, 'updateStepsMax', where);
  const dropout = rate(o.attentionDropout, 'attentionDropout', where);
  const name = o.name;
  if (kind === 'mha') {
    const neutral = (k: (typeof HOPFIELD_OPTION_KEYS)[number]) =>
      (k === 'separation' && o[k] === 'softmax') ||
      (k === 'featureMap' && o[k] === 'none') ||
      (k === 'updateStepsMax' && o[k] === 0) ||
      (k === 'similarity' && o[k] === 'dot');
    const set = HOPFIELD_OPTION_KEYS.filter((k) => o[k] !== undefined && !neutral(k));
    if (set.length) {
      throw new Error(
        `${where}: attention 'mha' is plain softmax attention; the Hopfield/U-Hop options [${set.join(', ')}] need attention 'uhop-attention' or 'hopfield'`,
      );
    }
    return new MultiHeadAttention({ numHeads, keyDim, dropout, name, ...(o.seed !== undefined ? { seed: o.seed } : {}) });
  }
  if (kind === 'uhop-attention') {
    return new UHopAttention({
      numHeads,
      keyDim,
      dropout,
      name,
      ...(o.separation !== undefined ? { separation: o.separation } : {}),
      ...(o.similarity !== undefined ? { similarity: o.similarity } : {}),
      ...(o.beta !== undefined ? { beta: o.beta } : {}),
      ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
      updateStepsMax: extraSteps,
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...uhopOptions(o),
    });
  }
  return new Hopfield({
    numHeads,
    hiddenSize: keyDim,
    dropout,
    name,
    // The block's LayerNorm already normalizes the input; ml-jku's input norms would repeat it.
    normalizeStoredPattern: false,
    normalizeStatePattern: false,
    normalizePatternProjection: false,
    ...(o.separation !== undefined ? { separation: o.separation } : {}),
    ...(o.similarity !== undefined ? { similarity: o.similarity } : {}),
    ...(o.beta !== undefined ? { beta: o.beta } : {}),
    ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
    updateStepsMax: extraSteps,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...uhopOptions(o),
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
const ENCODER_ATTENTION_KEYS = optionKeys<EncoderAttentionOptions>()([
  'attention',
  'numHeads',
  'keyDim',
  'separation',
  'similarity',
  'beta',
  'alpha',
  'updateStepsMax',
  'attentionDropout',
  'seed',
  ...UHOP_ARG_KEYS,
]);
const TRANSFORMER_BLOCK_KEYS = optionKeys<TransformerBlockOptions>()([
  'mlpDim',
  'dropout',
  'activation',
  'layerNormEpsilon',
  'name',
  'attentionMask',
  ...ENCODER_ATTENTION_KEYS,
]);
/** The encoder options the classifiers pass on to the encoder stack (all but dModel, seqLen and name). */
export const ENCODER_STACK_KEYS = optionKeys<Omit<TransformerEncoderOptions, 'dModel' | 'seqLen' | 'name'>>()([
  'numLayers',
  'finalNorm',
  'mlpDim',
  'dropout',
  'activation',
  'layerNormEpsilon',
  ...ENCODER_ATTENTION_KEYS,
]);
const TRANSFORMER_ENCODER_KEYS = optionKeys<TransformerEncoderOptions>()(['dModel', 'seqLen', 'name', ...ENCODER_STACK_KEYS]);

export function transformerEncoderBlock(x: tfl.SymbolicTensor, options: TransformerBlockOptions = {}): tfl.SymbolicTensor {
  const where = 'transformerEncoderBlock';
  checkOptions(options, TRANSFORMER_BLOCK_KEYS, where, { renamed: BUILDER_RENAMES });
  const d = lastDim(x, where);
  const mlpDim = posInt(options.mlpDim, 'mlpDim', where) ?? 2 * d;
  const dropout = rate(options.dropout, 'dropout', where);
  const activation = checkValue(options.activation ?? 'gelu', oneOf(['gelu', 'relu'] as const), 'activation', where);
  const eps = checkValue(options.layerNormEpsilon ?? 1e-6, number({ gt: 0 }), 'layerNormEpsilon', where);
  const p = options.name;
  const n = (suffix: string) => (p ? `${p}_${suffix}` : undefined);
  const apply = (layer: tfl.layers.Layer, input: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(input) as tfl.SymbolicTensor;

  const seed = options.seed === undefined ? undefined : checkValue(options.seed, int(), 'seed', where);
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
export function encoderStack(
  x: tfl.SymbolicTensor,
  options: Omit<TransformerEncoderOptions, 'dModel' | 'seqLen' | 'name'> & { attentionMask?: tfl.SymbolicTensor },
  prefix = 'encoder_block',
): tfl.SymbolicTensor {
  const where = 'transformerEncoder';
  const numLayers = checkValue(options.numLayers ?? 2, int(0), 'numLayers', where);
  const { numLayers: _n, finalNorm, ...block } = options;
  let h = x;
  // Block i is seeded from seed + 100 i, so its parts (seed + 1 ... + 6) never meet another block's.
  for (let i = 0; i < numLayers; i++)
    h = transformerEncoderBlock(h, { ...block, seed: partSeed(block.seed, 100 * i), name: `${prefix}${i}` });
  if (finalNorm ?? true) {
    h = new LayerNorm({ epsilon: options.layerNormEpsilon ?? 1e-6, name: `${prefix}_final_ln` }).apply(h) as tfl.SymbolicTensor;
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
  checkOptions(options, TRANSFORMER_ENCODER_KEYS, where, { renamed: BUILDER_RENAMES });
  const dModel = posInt(options.dModel, 'dModel', where);
  if (dModel == null) throw new Error(`${where}: dModel (the token width) is required`);
  const seqLen = options.seqLen ?? null;
  if (seqLen !== null) posInt(seqLen, 'seqLen', where);
  const { dModel: _d, seqLen: _s, name, ...rest } = options;
  const x = tfl.input({ shape: [seqLen, dModel], name: `${name ?? 'transformer_encoder'}_input` });
  const y = encoderStack(x, rest);
  return tfl.model({ inputs: x, outputs: y, name: name ?? 'transformer_encoder' });
}
