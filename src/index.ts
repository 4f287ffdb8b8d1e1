/**
 * uhop: Keras-style TensorFlow.js Hopfield layers with U-Hop's learned feature map.
 */
export * from './backend.js';
export * from './backendPatches.js';
export * from './ops/index.js';
export * from './data/index.js';
export * from './layers/index.js';
export * from './models/index.js';
export * from './experiments/index.js';
