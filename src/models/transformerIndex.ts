/**
 * The transformer part of src/models: encoder blocks with plain, U-Hop or Hopfield attention,
 * sequence and vision classifiers, their token layers, and the alternating-fit callback.
 * (Merged into src/models/index.ts.)
 */
export {
  transformerEncoderBlock,
  transformerEncoder,
  encoderStack,
  attentionLayer,
  defaultNumHeads,
  ATTENTION_KINDS,
  type AttentionKind,
  type EncoderAttentionOptions,
  type TransformerBlockOptions,
  type TransformerEncoderOptions,
} from './transformer.js';
export {
  sequenceClassifier,
  POOLING_KINDS,
  type PoolingKind,
  type HopfieldPoolingOptions,
  type SequenceClassifierOptions,
} from './sequence.js';
export { visionClassifier, VISION_ENCODERS, type VisionEncoderKind, type VisionClassifierOptions } from './vision.js';
export {
  TokenEmbedding,
  gatherRows,
  ClassToken,
  AddPositionEmbedding,
  SelectToken,
  LayerNorm,
  type LayerNormArgs,
  type TokenEmbeddingArgs,
  type ClassTokenArgs,
  type AddPositionEmbeddingArgs,
  type SelectTokenArgs,
} from '../layers/tokenLayers.js';
export {
  AlternatingFitCallback,
  findUHopLayers,
  type AlternatingFitOptions,
  type PhiEpochLog,
  type UHopLayerInfo,
  type UHopKeys,
  type UHopKeysHook,
} from './alternatingFit.js';
