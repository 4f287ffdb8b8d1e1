export * from './types.js';
export * from './similarity.js';
export * from './separation.js';
export { detach } from './detach.js';
export {
  linearFeatureMap,
  mlpFeatureMap,
  applyFeatureMap,
  featureMapBackward,
  featureMapInfo,
  rowNormalize,
  disposeFeatureMap,
  type LinearInit,
  type LinearFeatureMapOptions,
  type MlpFeatureMapOptions,
  type FeatureMapInfo,
} from './featureMap.js';
export { separationLoss, separationLossAndGrad } from './separationLoss.js';
export { fitFeatureMap, fitFeatureMapOp, type FitOptimizer, type FitFeatureMapOptions, type FitFeatureMapResult } from './fit.js';
export { retrieve, type RetrieveOptions, type RetrieveResult } from './retrieve.js';
export { energy, type EnergyOptions } from './energy.js';
export { UHopMemory, uhopRetrieve, type UHopOptions } from './uhop.js';
export {
  iterateRetrieval,
  multiHeadRetrieval,
  checkUpdateSteps,
  MAX_UPDATE_STEPS,
  type MultiHeadRetrievalOptions,
  type MultiHeadRetrievalResult,
} from './retrievalCore.js';
export { allowedMask, zeroPadded, checkMaskType, MASK_TYPES, type MaskType } from './masks.js';
export { checkOptions, suggestKeys } from './options.js';
