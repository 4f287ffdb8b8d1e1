/**
 * uhop: Keras-style TensorFlow.js Hopfield layers with U-Hop's learned feature map.
 *
 * The root entry: ops, layers, models and in-memory data helpers. Browser-safe (no `node:`
 * module, no file system, no `process`), and importing it only registers the layer classes
 * with tfjs' serialization: no backend is registered or chosen. Node extras (backend
 * selection, model files, data files) are in 'uhop/node'; browser backend selection in
 * 'uhop/browser'; the experiments in 'uhop/experiments'.
 */
export { describeBackend, type BackendReport } from './backend.js';
export * from './backendPatches.js';
export * from './ops/index.js';
export * from './data/index.js';
export * from './layers/index.js';
export * from './models/index.js';
