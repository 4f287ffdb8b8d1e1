/**
 * src/layers: Keras-style tfjs-layers Layer subclasses (thin: state + serialization; the maths
 * lives in src/ops and ./hopfieldCore.ts).
 */
export { Hopfield, type HopfieldArgs } from './hopfield.js';
export { HopfieldPooling, type HopfieldPoolingArgs } from './hopfieldPooling.js';
export { HopfieldLayer, type HopfieldLayerArgs } from './hopfieldLayer.js';
export type { HopfieldBaseArgs, HopfieldCallKwargs } from './hopfieldBase.js';
export {
  hopfieldRetrieval,
  uhopFit,
  uhopFitLossTrace,
  resolveUHopArgs,
  phi0WeightSpecs,
  type HopfieldRetrievalOptions,
  type HopfieldRetrievalResult,
  type UHopArgs,
  type UHopConfig,
  type UHopRuntime,
  type FeatureMapOption,
} from './hopfieldCore.js';
export type { InitializerLike, RegularizerLike, ConstraintLike } from './keras.js';
export * from './attentionIndex.js';
