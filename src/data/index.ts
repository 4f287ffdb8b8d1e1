/**
 * src/data: parsers that validate their input and say what is wrong (IDX bytes, MIL CSV
 * text, MNIST-bags from an image set), seeded synthetic memory sets, query corruption and
 * retrieval metrics. Browser-safe: the file readers are in src/node (uhop/node).
 */
export { seededRandom, type SeededRandom } from './random.js';
export {
  parseIdx,
  decodeIdxFrom,
  encodeIdx,
  pixelsToUnit,
  type IdxDtype,
  type IdxTypedArray,
  type IdxArray,
  type IdxByteSource,
  type ReadIdxOptions,
  type ParseIdxOptions,
  type ImageSplit,
  type LoadImageFolderOptions,
  type ImageSet,
  type RawImageSet,
} from './idx.js';
export * from './synthetic.js';
export * from './corruption.js';
export * from './metrics.js';
export * from './mil.js';
export * from './mnistBags.js';
