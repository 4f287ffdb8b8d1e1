/**
 * Public names of the multiple-instance-learning models (merged into src/models/index.ts).
 */
export {
  AttentionMilPooling,
  GatedAttentionMilPooling,
  MaskedMeanPooling,
  MaskPadding,
  MaskedMaxPooling,
  BagDropout,
  maskedSoftmax,
  type AttentionMilPoolingArgs,
  type BagDropoutArgs,
} from '../layers/milPooling.js';
export { InstanceDense, type InstanceDenseArgs } from '../layers/instanceDense.js';
export { milClassifier, MIL_POOLINGS, type MilClassifierOptions, type MilHopfieldOptions, type MilPoolingKind } from './mil.js';
export {
  trainMilModel,
  predictBags,
  predictBagsAsync,
  bagBatch,
  rocAuc,
  bagAccuracy,
  exponentialDecay,
  setLearningRate,
  getLearningRate,
  LearningRateScheduler,
  type LearningRateSchedule,
  type TrainMilOptions,
  type PredictBagsOptions,
  type TrainMilResult,
  type MilEpochLog,
  type BagBatch,
} from './milTraining.js';
export { SeededDropout, mixSeed, type SeededDropoutArgs } from '../layers/seededDropout.js';
