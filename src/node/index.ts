/**
 * uhop/node: what only Node can do. Backend selection with tfjs-node(-gpu), webgpu (Dawn),
 * wasm and cpu; saving and loading models in folders (paths or file:// URLs); reading IDX
 * image files and MIL CSV files. The layers, ops and models come from the root entry, 'uhop'.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { HopfieldPooling } from 'uhop';
 * import { initBackend, saveModel } from 'uhop/node';
 * await initBackend();
 * const model = tfl.sequential({ layers: [new HopfieldPooling({ inputShape: [5, 8], hiddenSize: 8 })] });
 * await saveModel(model, 'file:///tmp/pooling');
 * ```
 */
export {
  initBackend,
  describeBackend,
  wasmDirectory,
  BACKENDS,
  WASM_MAX_THREADS,
  type BackendName,
  type BackendReport,
  type InitBackendOptions,
} from './backend.js';
export { saveModel, loadModel, readModelArtifacts, type SaveModelOptions, type LoadModelOptions } from './io.js';
export {
  readIdx,
  writeIdx,
  loadIdxImageFolder,
  loadIdxImageFolderRaw,
  mnistDirectory,
  loadMnist,
  readMilCsv,
  loadMilDataset,
} from './data.js';
