/**
 * A token-sequence classifier: token embedding + learned position embedding + transformer
 * encoder (any of the attentions of ./transformer.ts) + a pooling head.
 *
 *     ids [B, maxLen] -> TokenEmbedding(vocabSize, d) (+ class token) + positions
 *       -> encoder blocks -> LayerNorm -> pool ('cls' | 'mean' | 'hopfield') -> Dense(numClasses)
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { HopfieldPooling } from '../layers/hopfieldPooling.js';
import type { UHopArgs } from '../layers/hopfieldCore.js';
import type { SeparationKind, SimilarityKind } from '../ops/types.js';
import { AddPositionEmbedding, ClassToken, SelectToken, TokenEmbedding } from '../layers/tokenLayers.js';
import { defaultNumHeads, encoderStack, type TransformerEncoderOptions } from './transformer.js';
import { checkOptions, optionKeys } from '../ops/options.js';
import { defineSchema, int, oneOf } from '../ops/schema.js';
import { DROPOUT_RATE, NAME, OPTIONS_OBJECT } from '../ops/vocabulary.js';
import { UHOP_ARG_KEYS } from '../layers/hopfieldCore.js';
import { ENCODER_BLOCKS_SCHEMA, parseBuilderOptions, type PASSED_ON_ATTENTION_KEYS } from './transformer.js';
import { builderDropout, partSeed, seededKernel } from './seeding.js';

/**
 * How the encoded sequence becomes one vector:
 * - 'cls': a learned class token is prepended and its encoding is read (BERT/ViT);
 * - 'mean': the mean over the tokens;
 * - 'last': the encoding of the last token (e.g. a query token at the end of the sequence);
 * - 'hopfield': `HopfieldPooling`, a learned state pattern retrieving from the tokens
 *   (with U-Hop's feature map when `pooling.featureMap` is set).
 */
export type PoolingKind = 'hopfield' | 'cls' | 'mean' | 'last';
export const POOLING_KINDS: readonly PoolingKind[] = ['hopfield', 'cls', 'mean', 'last'];

/** Options of the 'hopfield' pooling (passed to `HopfieldPooling`). */
export interface HopfieldPoolingOptions extends UHopArgs {
  /** Learned state patterns (queries); their outputs are concatenated. Default 1. */
  quantity?: number;
  /** Heads. Default: the encoder's. */
  numHeads?: number;
  /** Separation. Default 'softmax'. */
  separation?: SeparationKind;
  /** Similarity. Default 'dot'. */
  similarity?: SimilarityKind;
  /** beta. Default 1/sqrt(d / numHeads). */
  beta?: number;
  /** Seed of the pooling's initializers. Default: derived from the classifier's `seed` (unseeded without one). */
  seed?: number;
}

/** Options of {@link sequenceClassifier}. */
export interface SequenceClassifierOptions extends Omit<TransformerEncoderOptions, 'seqLen' | 'name'> {
  /** Number of distinct token ids (ids must lie in [0, vocabSize)). Required. */
  vocabSize: number;
  /** Sequence length of the input. Required. */
  maxLen: number;
  /** Number of classes. Required. */
  numClasses: number;
  /** Pooling head. Default 'cls'. */
  pooling?: PoolingKind;
  /** Options of the 'hopfield' pooling. Default: one state pattern, the encoder's heads, softmax. */
  poolingOptions?: HopfieldPoolingOptions;
  /** Dropout before the classifier (training only). Default 0. */
  classifierDropout?: number;
  /** 'softmax' (probabilities, for categoricalCrossentropy) or 'linear' (logits). Default 'softmax'. */
  outputActivation?: 'softmax' | 'linear';
  /** Model name. Default 'sequence_classifier'. */
  name?: string;
}

/** The checked head options of a token classifier. @internal */
export interface ClassifierHead {
  pooling: PoolingKind;
  outAct: 'softmax' | 'linear';
  cd: number;
}

/**
 * The declaration of the classifier-head options (src/ops/schema.ts).
 * @internal shared with the vision classifier
 */
export const CLASSIFIER_HEAD_SCHEMA = defineSchema<
  Pick<SequenceClassifierOptions, 'numClasses' | 'pooling' | 'poolingOptions' | 'classifierDropout' | 'outputActivation'>
>()({
  numClasses: { check: int(1), required: true, doc: 'Number of classes.' },
  pooling: { check: oneOf(POOLING_KINDS), default: 'cls', doc: "Pooling head: 'cls', 'mean', 'last' or 'hopfield'." },
  poolingOptions: {
    check: OPTIONS_OBJECT,
    appliesIf: { option: 'pooling', is: ['hopfield'] },
    defaultText: "one state pattern, the encoder's heads, softmax",
    doc: "Options of the 'hopfield' pooling (checked by HopfieldPooling's schema).",
  },
  classifierDropout: { ...DROPOUT_RATE, doc: 'Dropout before the classifier (training only).' },
  outputActivation: {
    check: oneOf(['softmax', 'linear'] as const),
    default: 'softmax',
    doc: "'softmax' (probabilities, for categoricalCrossentropy) or 'linear' (logits).",
  },
});

/**
 * Prepends the class token (pooling 'cls') to `n` tokens [B, n, d] and adds the learned positions.
 * @internal shared with the vision classifier
 */
export function addClassAndPositions(h: tfl.SymbolicTensor, pooling: PoolingKind, n: number, seed?: number): tfl.SymbolicTensor {
  if (pooling === 'cls') h = new ClassToken({ name: 'class_token' }).apply(h) as tfl.SymbolicTensor;
  const initializer = seed === undefined ? {} : { initializer: { className: 'RandomNormal', config: { mean: 0, stddev: 0.02, seed } } };
  return new AddPositionEmbedding({ maxLen: pooling === 'cls' ? n + 1 : n, name: 'position_embedding', ...initializer }).apply(
    h,
  ) as tfl.SymbolicTensor;
}

/**
 * The classifier on encoded tokens [B, L, d]: pooling, dropout (when > 0), Dense(numClasses).
 * @internal shared with the vision classifier
 */
export function classifierOutput(
  h: tfl.SymbolicTensor,
  head: ClassifierHead,
  d: number,
  numHeads: number,
  numClasses: number,
  poolingOptions?: HopfieldPoolingOptions,
  seed?: number,
): tfl.SymbolicTensor {
  let z = poolTokens(h, head.pooling, d, numHeads, { ...(seed !== undefined ? { seed: partSeed(seed, 1) } : {}), ...poolingOptions });
  if (head.cd > 0) z = builderDropout(head.cd, partSeed(seed, 2), 'classifier_dropout').apply(z) as tfl.SymbolicTensor;
  return tfl.layers
    .dense({ units: numClasses, activation: head.outAct, name: 'classifier', ...seededKernel(partSeed(seed, 3)) })
    .apply(z) as tfl.SymbolicTensor;
}

/**
 * The pooling head on encoded tokens [B, L, d] -> [B, d'] (the 'cls' token is at position 0).
 * @internal shared with the vision classifier
 */
export function poolTokens(
  h: tfl.SymbolicTensor,
  pooling: PoolingKind,
  d: number,
  numHeads: number,
  options: HopfieldPoolingOptions = {},
): tfl.SymbolicTensor {
  if (pooling === 'cls') return new SelectToken({ index: 0, name: 'cls_select' }).apply(h) as tfl.SymbolicTensor;
  if (pooling === 'last') return new SelectToken({ index: -1, name: 'last_select' }).apply(h) as tfl.SymbolicTensor;
  if (pooling === 'mean') return tfl.layers.globalAveragePooling1d({ name: 'mean_pool' }).apply(h) as tfl.SymbolicTensor;
  const { beta, quantity, numHeads: heads, ...rest } = options;
  return new HopfieldPooling({
    name: 'hopfield_pool',
    quantity: quantity ?? 1,
    numHeads: heads ?? numHeads,
    ...(beta !== undefined ? { beta } : {}),
    ...rest,
  }).apply(h) as tfl.SymbolicTensor;
}

/** The declaration of {@link SequenceClassifierOptions} but the options passed on to the attention (src/ops/schema.ts). */
export const SEQUENCE_CLASSIFIER_SCHEMA = defineSchema<Omit<SequenceClassifierOptions, (typeof PASSED_ON_ATTENTION_KEYS)[number]>>()({
  ...ENCODER_BLOCKS_SCHEMA,
  ...CLASSIFIER_HEAD_SCHEMA,
  vocabSize: { check: int(1), required: true, doc: 'Number of distinct token ids (ids must lie in [0, vocabSize)).' },
  maxLen: { check: int(1), required: true, doc: 'Sequence length of the input.' },
  dModel: { check: int(1), required: true, doc: 'Model (token) width d.' },
  name: { check: NAME, default: 'sequence_classifier', doc: 'Model name.' },
});

/**
 * A transformer sequence classifier: ids [B, maxLen] (int32) -> class probabilities
 * [B, numClasses] (or logits with outputActivation 'linear').
 *
 * @example
 * ```ts
 * import { sequenceClassifier } from 'uhop';
 * const model = sequenceClassifier({
 *   vocabSize: 32, maxLen: 20, dModel: 32, numClasses: 16, numLayers: 2, mlpDim: 64,
 *   attention: 'uhop-attention', featureMap: 'linear', fitSteps: 5, pooling: 'mean',
 * });
 * model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['acc'] });
 * ```
 */
/** The keys of {@link HopfieldPoolingOptions} (checked by the classifiers). */
export const HOPFIELD_POOLING_OPTION_KEYS = optionKeys<HopfieldPoolingOptions>()([
  'quantity',
  'numHeads',
  'separation',
  'similarity',
  'beta',
  'seed',
  ...UHOP_ARG_KEYS,
]);

export function sequenceClassifier(options: SequenceClassifierOptions): tfl.LayersModel {
  const where = 'sequenceClassifier';
  if (options == null || typeof options !== 'object') throw new Error(`${where}: options must be an object, got ${String(options)}`);
  const o = parseBuilderOptions(SEQUENCE_CLASSIFIER_SCHEMA, options, where);
  checkOptions(options.poolingOptions, HOPFIELD_POOLING_OPTION_KEYS, `${where} poolingOptions`);
  const { vocabSize, maxLen, dModel: d, numClasses, seed, name } = o;
  const head: ClassifierHead = { pooling: o.pooling, outAct: o.outputActivation, cd: o.classifierDropout };
  // The encoder gets the options as given (the passed-on ones stay absent where absent).
  const {
    vocabSize: _v,
    maxLen: _m,
    dModel: _d,
    numClasses: _c,
    pooling: _p,
    poolingOptions,
    classifierDropout: _cd,
    outputActivation: _oa,
    name: _n,
    ...encoder
  } = options;

  const ids = tfl.input({ shape: [maxLen], dtype: 'int32', name: 'token_ids' });
  const table =
    seed === undefined ? {} : { embeddingsInitializer: { className: 'RandomNormal', config: { mean: 0, stddev: 0.02, seed: seed + 1 } } };
  let h = new TokenEmbedding({ inputDim: vocabSize, outputDim: d, name: 'token_embedding', ...table }).apply(ids) as tfl.SymbolicTensor;
  h = addClassAndPositions(h, head.pooling, maxLen, partSeed(seed, 2));
  // The encoder blocks are seeded from seed + 1000 (+ 100 per block), the head from seed + 100000.
  h = encoderStack(h, { ...encoder, seed: partSeed(seed, 1000) });
  const out = classifierOutput(h, head, d, o.numHeads ?? defaultNumHeads(d), numClasses, poolingOptions, partSeed(seed, 100000));
  return tfl.model({ inputs: ids, outputs: out, name });
}
