/**
 * src/data: loaders that validate their input and say what is wrong (IDX / MNIST /
 * Fashion-MNIST, MIL CSV benchmarks, MNIST-bags), seeded synthetic memory sets, query
 * corruption and retrieval metrics.
 */
export { seededRandom, type SeededRandom } from './random.js';
export * from './idx.js';
export * from './synthetic.js';
export * from './corruption.js';
export * from './metrics.js';
export * from './mil.js';
export * from './mnistBags.js';
