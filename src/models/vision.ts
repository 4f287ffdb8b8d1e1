/**
 * A patch-token image classifier (ViT-style), whose token mixer is a transformer encoder with
 * any of the attentions of ./transformer.ts, or a single Hopfield layer over the patch tokens
 * (the U-Hop paper's image-classification setup, "one Hopfield layer over patch tokens").
 *
 *     image [B, H, W, C] -> patches (reshape + Dense, or Conv2D with kernel = stride = patchSize)
 *       -> [B, N, d] (+ class token) + positions
 *       -> 'transformer': numLayers pre-norm blocks        | 'single-hopfield': x + Hopfield(LN(x))
 *       -> LayerNorm -> pool ('cls' | 'mean' | 'hopfield') -> Dense(numClasses)
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { partSeed, seededKernel, builderDropout } from './seeding.js';
import { LayerNorm } from '../layers/tokenLayers.js';
import { attentionLayer, defaultNumHeads, encoderStack, type TransformerEncoderOptions } from './transformer.js';
import {
  addClassAndPositions,
  CLASSIFIER_HEAD_SCHEMA,
  classifierOutput,
  HOPFIELD_POOLING_OPTION_KEYS,
  type ClassifierHead,
  type HopfieldPoolingOptions,
  type PoolingKind,
} from './sequence.js';
import { checkOptions } from '../ops/options.js';
import { custom, defineSchema, int, oneOf } from '../ops/schema.js';
import { INT_LIST, NAME } from '../ops/vocabulary.js';
import { ENCODER_BLOCKS_SCHEMA, parseBuilderOptions, type PASSED_ON_ATTENTION_KEYS } from './transformer.js';

/** The token mixer of {@link visionClassifier}. */
export type VisionEncoderKind = 'transformer' | 'single-hopfield';
export const VISION_ENCODERS: readonly VisionEncoderKind[] = ['transformer', 'single-hopfield'];

/** Options of {@link visionClassifier}. */
export interface VisionClassifierOptions extends Omit<TransformerEncoderOptions, 'seqLen' | 'name'> {
  /** Image height and width (one number for square images). Required. */
  imageSize: number | [number, number];
  /** Channels of the image. Default 1. */
  channels?: number;
  /** Side of the square patches; must divide the image sides. Required. */
  patchSize: number;
  /** Number of classes. Required. */
  numClasses: number;
  /**
   * 'transformer' (numLayers pre-norm blocks with `attention`) or 'single-hopfield' (one
   * `Hopfield` layer over the patch tokens, residual, no MLP). Default 'transformer'.
   */
  encoder?: VisionEncoderKind;
  /**
   * 'dense' (cut into patches by reshape/permute, then Dense) or 'conv' (Conv2D with
   * kernel = stride = patchSize): the same linear map. Default 'dense', because
   * tfjs-backend-wasm has no Conv2DBackpropFilter kernel, so 'conv' trains only on the cpu,
   * webgpu and tensorflow backends (it predicts everywhere).
   */
  patchEmbedding?: 'conv' | 'dense';
  /** Pooling head. Default 'cls'. */
  pooling?: PoolingKind;
  /** Options of the 'hopfield' pooling. */
  poolingOptions?: HopfieldPoolingOptions;
  /** Dropout before the classifier. Default 0. */
  classifierDropout?: number;
  /** 'softmax' or 'linear'. Default 'softmax'. */
  outputActivation?: 'softmax' | 'linear';
  /** Model name. Default 'vision_classifier'. */
  name?: string;
}

/** The declaration of {@link VisionClassifierOptions} but the options passed on to the attention (src/ops/schema.ts). */
export const VISION_CLASSIFIER_SCHEMA = defineSchema<Omit<VisionClassifierOptions, (typeof PASSED_ON_ATTENTION_KEYS)[number]>>()({
  ...ENCODER_BLOCKS_SCHEMA,
  ...CLASSIFIER_HEAD_SCHEMA,
  imageSize: {
    check: custom<number | [number, number]>('an integer >= 1 or [height, width] of them', (v) =>
      INT_LIST.test(v) ? (v as number[]).length === 2 : int(1).test(v),
    ),
    required: true,
    doc: 'Image height and width (one number for square images).',
  },
  channels: { check: int(1), default: 1, doc: 'Channels of the image.' },
  patchSize: { check: int(1), required: true, doc: 'Side of the square patches; must divide the image sides.' },
  dModel: { check: int(1), required: true, doc: 'Model (token) width d.' },
  encoder: {
    check: oneOf(VISION_ENCODERS),
    default: 'transformer',
    doc: "'transformer' (numLayers pre-norm blocks with attention) or 'single-hopfield' (one Hopfield layer over the patch tokens).",
  },
  patchEmbedding: {
    check: oneOf(['conv', 'dense'] as const),
    default: 'dense',
    doc: "'dense' (reshape + Dense) or 'conv' (Conv2D, kernel = stride = patchSize; trains on cpu/webgpu/tensorflow only).",
  },
  name: { check: NAME, default: 'vision_classifier', doc: 'Model name.' },
});

/**
 * A ViT-style classifier: images [B, H, W, C] in, class probabilities [B, numClasses] out.
 *
 * @example
 * ```ts
 * import { visionClassifier } from 'uhop';
 * // MNIST, 7x7 patches (16 tokens), one Hopfield layer with U-Hop's feature map:
 * const model = visionClassifier({
 *   imageSize: 28, patchSize: 7, dModel: 32, numClasses: 10,
 *   encoder: 'single-hopfield', numHeads: 2, featureMap: 'linear', fitSteps: 5,
 * });
 * model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['acc'] });
 * ```
 */
export function visionClassifier(options: VisionClassifierOptions): tfl.LayersModel {
  const where = 'visionClassifier';
  if (options == null || typeof options !== 'object') throw new Error(`${where}: options must be an object, got ${String(options)}`);
  const o = parseBuilderOptions(VISION_CLASSIFIER_SCHEMA, options, where);
  checkOptions(options.poolingOptions, HOPFIELD_POOLING_OPTION_KEYS, `${where} poolingOptions`);
  const [Hh, Ww] = Array.isArray(o.imageSize) ? o.imageSize : [o.imageSize, o.imageSize];
  const { channels: C, patchSize: p, dModel: d, numClasses, encoder: encoderKind, patchEmbedding, seed, name } = o;
  if (Hh % p !== 0 || Ww % p !== 0) throw new Error(`${where}: patchSize ${p} must divide the image size ${Hh}x${Ww}`);
  const head: ClassifierHead = { pooling: o.pooling, outAct: o.outputActivation, cd: o.classifierDropout };
  // The encoder gets the options as given (the passed-on ones stay absent where absent).
  const {
    imageSize: _i,
    channels: _ch,
    patchSize: _ps,
    dModel: _d,
    numClasses: _nc,
    encoder: _e,
    patchEmbedding: _pe,
    pooling: _p,
    poolingOptions,
    classifierDropout: _cd,
    outputActivation: _oa,
    name: _n,
    ...encoder
  } = options;

  const gh = Hh / p;
  const gw = Ww / p;
  const N = gh * gw;
  const image = tfl.input({ shape: [Hh, Ww, C], name: 'image' });
  let h: tfl.SymbolicTensor;
  if (patchEmbedding === 'conv') {
    h = tfl.layers
      .conv2d({ filters: d, kernelSize: p, strides: p, padding: 'valid', name: 'patch_embedding', ...seededKernel(partSeed(seed, 1)) })
      .apply(image) as tfl.SymbolicTensor;
    h = tfl.layers.reshape({ targetShape: [N, d], name: 'patch_tokens' }).apply(h) as tfl.SymbolicTensor;
  } else {
    h = tfl.layers.reshape({ targetShape: [gh, p, gw, p, C], name: 'patch_split' }).apply(image) as tfl.SymbolicTensor;
    h = tfl.layers.permute({ dims: [1, 3, 2, 4, 5], name: 'patch_order' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.reshape({ targetShape: [N, p * p * C], name: 'patch_flatten' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.dense({ units: d, name: 'patch_embedding', ...seededKernel(partSeed(seed, 1)) }).apply(h) as tfl.SymbolicTensor;
  }
  h = addClassAndPositions(h, head.pooling, N, partSeed(seed, 2));

  const eps = o.layerNormEpsilon;
  if (encoderKind === 'transformer') {
    // The encoder is seeded from seed + 1000 (+ 100 per block), the head from seed + 100000.
    h = encoderStack(h, { ...encoder, seed: partSeed(seed, 1000) });
  } else {
    if (encoder.attention !== undefined && encoder.attention !== 'hopfield') {
      throw new Error(
        `${where}: encoder 'single-hopfield' uses a Hopfield layer; attention '${encoder.attention}' applies to encoder 'transformer'`,
      );
    }
    if (encoder.numLayers !== undefined && encoder.numLayers !== 1) {
      throw new Error(
        `${where}: encoder 'single-hopfield' has exactly one layer, got numLayers ${encoder.numLayers}; use encoder 'transformer' with attention 'hopfield' for a stack`,
      );
    }
    const normed = new LayerNorm({ epsilon: eps, name: 'hopfield_ln' }).apply(h) as tfl.SymbolicTensor;
    let a = attentionLayer(d, { ...encoder, seed: partSeed(seed, 1001), attention: 'hopfield', name: 'hopfield' }).apply(
      normed,
    ) as tfl.SymbolicTensor;
    const rate = o.dropout;
    if (rate > 0) a = builderDropout(rate, partSeed(seed, 1004), 'hopfield_dropout').apply(a) as tfl.SymbolicTensor;
    h = tfl.layers.add({ name: 'hopfield_residual' }).apply([h, a]) as tfl.SymbolicTensor;
    h = new LayerNorm({ epsilon: eps, name: 'final_ln' }).apply(h) as tfl.SymbolicTensor;
  }
  const out = classifierOutput(h, head, d, o.numHeads ?? defaultNumHeads(d), numClasses, poolingOptions, partSeed(seed, 100000));
  return tfl.model({ inputs: image, outputs: out, name });
}
