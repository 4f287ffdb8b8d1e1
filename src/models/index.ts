/** src/models: builders that return ordinary tf.LayersModel objects, and training helpers. */
export * from './milIndex.js';
export * from './transformerIndex.js';
