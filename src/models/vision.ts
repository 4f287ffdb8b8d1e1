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
  checkClassifierHead,
  classifierOutput,
  requirePosInt,
  type HopfieldPoolingOptions,
  type PoolingKind,
} from './sequence.js';
import { checkOptions, optionKeys } from '../ops/options.js';
import { HOPFIELD_POOLING_OPTION_KEYS } from './sequence.js';
import { checkValue, int, oneOf } from '../ops/schema.js';
import { BUILDER_RENAMES, ENCODER_STACK_KEYS } from './transformer.js';

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
const VISION_CLASSIFIER_KEYS = optionKeys<VisionClassifierOptions>()([
  'imageSize',
  'channels',
  'patchSize',
  'numClasses',
  'encoder',
  'patchEmbedding',
  'pooling',
  'poolingOptions',
  'classifierDropout',
  'outputActivation',
  'name',
  'dModel',
  ...ENCODER_STACK_KEYS,
]);

export function visionClassifier(options: VisionClassifierOptions): tfl.LayersModel {
  const where = 'visionClassifier';
  if (options == null || typeof options !== 'object') throw new Error(`${where}: options must be an object, got ${String(options)}`);
  checkOptions(options, VISION_CLASSIFIER_KEYS, where, { renamed: BUILDER_RENAMES });
  checkOptions(options.poolingOptions, HOPFIELD_POOLING_OPTION_KEYS, `${where} poolingOptions`);
  const [Hh, Ww] = Array.isArray(options.imageSize) ? options.imageSize : [options.imageSize, options.imageSize];
  requirePosInt(Hh, 'imageSize (height)', where);
  requirePosInt(Ww, 'imageSize (width)', where);
  const C = options.channels == null ? 1 : requirePosInt(options.channels, 'channels', where);
  const p = requirePosInt(options.patchSize, 'patchSize', where);
  if (Hh % p !== 0 || Ww % p !== 0) throw new Error(`${where}: patchSize ${p} must divide the image size ${Hh}x${Ww}`);
  const d = requirePosInt(options.dModel, 'dModel', where);
  const numClasses = requirePosInt(options.numClasses, 'numClasses', where);
  const encoderKind = checkValue(options.encoder ?? 'transformer', oneOf(VISION_ENCODERS), 'encoder', where);
  const patchEmbedding = checkValue(options.patchEmbedding ?? 'dense', oneOf(['conv', 'dense'] as const), 'patchEmbedding', where);
  const head = checkClassifierHead(options, where);
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
    name,
    ...encoder
  } = options;
  const seed = encoder.seed;
  if (seed !== undefined) checkValue(seed, int(), 'seed', where);

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

  const eps = encoder.layerNormEpsilon ?? 1e-6;
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
    const rate = encoder.dropout ?? 0;
    if (rate > 0) a = builderDropout(rate, partSeed(seed, 1004), 'hopfield_dropout').apply(a) as tfl.SymbolicTensor;
    h = tfl.layers.add({ name: 'hopfield_residual' }).apply([h, a]) as tfl.SymbolicTensor;
    h = new LayerNorm({ epsilon: eps, name: 'final_ln' }).apply(h) as tfl.SymbolicTensor;
  }
  const out = classifierOutput(h, head, d, encoder.numHeads ?? defaultNumHeads(d), numClasses, poolingOptions, partSeed(seed, 100000));
  return tfl.model({ inputs: image, outputs: out, name: name ?? 'vision_classifier' });
}
