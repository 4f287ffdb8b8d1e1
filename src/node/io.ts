/**
 * Saving and loading tfjs-layers models to and from a folder, without tfjs-node.
 *
 * tfjs-core alone has no `file://` handler (tfjs-node registers it, and its install downloads
 * libtensorflow). `saveModel` and `loadModel` read and write the layout tfjs-node's
 * `model.save('file://dir')` writes, so the folders go both ways:
 *
 *     dir/model.json    {modelTopology, weightsManifest: [{paths: ['weights.bin'], weights}],
 *                        format, generatedBy, convertedBy, trainingConfig?, ...}
 *     dir/weights.bin   all weights, concatenated in manifest order
 *
 * `loadModel` also reads converter output with several shards (`group1-shard1of3.bin`, ...),
 * and Keras 2 models holding MultiHeadAttention (converted with tensorflowjs_converter): their
 * attention nodes are rewritten to this package's MultiHeadAttention, whose weight names
 * (`<layer>/query/kernel`, ..., `<layer>/attention_output/bias`) are Keras'.
 * Custom layers load when their class is registered (`tf.serialization.registerClass`); this
 * package's layers register when their modules are imported.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rewriteKerasAttentionNodes } from '../layers/io.js';
// Side effects: register the attention layers so that their models load.
import '../layers/uhopAttention.js';
import '../layers/multiHeadAttention.js';
import { bool, defineSchema, parseOptions } from '../ops/schema.js';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/** Options of `saveModel`. */
export interface SaveModelOptions {
  /** Also save the optimizer's state (tfjs `SaveConfig.includeOptimizer`). Default false. */
  includeOptimizer?: boolean;
}

/** Options of `loadModel`. */
export interface LoadModelOptions {
  /** Require every weight of the file to match one of the model (tfjs' `strict`). Default true. */
  strict?: boolean;
}

/** The declaration of {@link SaveModelOptions} (src/ops/schema.ts). */
export const SAVE_MODEL_SCHEMA = defineSchema<SaveModelOptions>()({
  includeOptimizer: { check: bool, default: false, doc: "Also save the optimizer's state (tfjs SaveConfig.includeOptimizer)." },
});

/** The declaration of {@link LoadModelOptions}. */
export const LOAD_MODEL_SCHEMA = defineSchema<LoadModelOptions>()({
  strict: { check: bool, default: true, doc: "Require every weight of the file to match one of the model (tfjs' strict)." },
});

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * The weights as one buffer. tfjs >= 4.12 may hand them over as several buffers (its
 * `CompositeArrayBuffer.join` does this, but older 4.x, which the package supports, lacks it).
 */
function joinWeightData(data: ArrayBuffer | ArrayBuffer[] | undefined): ArrayBuffer {
  if (data == null) return new ArrayBuffer(0);
  if (!Array.isArray(data)) return data;
  const out = new Uint8Array(data.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out.buffer;
}

/**
 * The file-system path a user means: a plain path (relative to the working directory), or a
 * `file://` URL (string or URL object, tfjs-node's spelling). Any other scheme is an error
 * that points at `model.save` / `tf.loadLayersModel`, which own those handlers.
 */
export function toFilePath(fn: string, arg: string, value: unknown): string {
  if (value instanceof URL) {
    if (value.protocol !== 'file:')
      throw new Error(`${fn}: ${arg} must be a path or a file:// URL, got the ${value.protocol}// URL ${value.href}`);
    return fileURLToPath(value);
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new Error(`${fn}: ${arg} must be a non-empty path or file:// URL, got ${value === '' ? "''" : String(value)}`);
  }
  if (/^file:\/\//i.test(value)) {
    try {
      return fileURLToPath(value);
    } catch (e) {
      throw new Error(
        `${fn}: ${arg} ${value} is not a valid file:// URL (${(e as Error).message}); write file:///absolute/path or a plain path`,
        { cause: e },
      );
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme) {
    throw new Error(
      `${fn}: ${arg} '${value}' uses the ${scheme}:// scheme; ${fn} works on the file system (a path or a file:// URL). ` +
        `For other tfjs IO handlers use ${fn === 'saveModel' ? 'model.save' : 'tf.loadLayersModel'}('${value}') directly.`,
    );
  }
  return resolve(value);
}

/**
 * Saves a tfjs-layers model to `dir` as model.json + weights.bin (tfjs-node's `file://` layout);
 * the folder is created if needed. Files are written under temporary names and renamed, so an
 * interrupted save never leaves a model.json that points at missing weights.
 *
 * @returns tfjs' SaveResult (sizes of topology and weights).
 *
 * @example
 * ```ts
 * import { saveModel, loadModel } from 'uhop/node';
 * await saveModel(model, './checkpoints/run1');            // or 'file:///abs/checkpoints/run1'
 * const again = await loadModel('./checkpoints/run1');   // or tfl.loadLayersModel('file://…/model.json') with tfjs-node
 * ```
 */
export async function saveModel(model: tfl.LayersModel, dir: string | URL, options: SaveModelOptions = {}): Promise<tf.io.SaveResult> {
  if (!(model instanceof tfl.LayersModel)) {
    throw new Error(
      `saveModel: model must be a tf.LayersModel (tfl.model / tfl.sequential), got ${model === null ? 'null' : typeof model}`,
    );
  }
  const path = toFilePath('saveModel', 'dir', dir);
  const { includeOptimizer } = parseOptions(SAVE_MODEL_SCHEMA, options, 'saveModel');
  const info = await statOrNull(path);
  if (info && !info.isDirectory()) throw new Error(`saveModel: ${path} exists and is not a directory`);
  await mkdir(path, { recursive: true });
  const handler = tf.io.withSaveHandler(async (artifacts: tf.io.ModelArtifacts) => {
    if (artifacts.modelTopology instanceof ArrayBuffer) {
      throw new Error('saveModel: binary (GraphDef) topologies are not supported; this saves tfjs-layers models');
    }
    const weightSpecs = artifacts.weightSpecs ?? [];
    const weightData = joinWeightData(artifacts.weightData);
    const modelJSON: tf.io.ModelJSON = {
      modelTopology: artifacts.modelTopology as object,
      weightsManifest: [{ paths: [WEIGHTS_BIN], weights: weightSpecs }],
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy,
    };
    if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
    if (artifacts.signature != null) modelJSON.signature = artifacts.signature;
    if (artifacts.userDefinedMetadata != null) modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
    if (artifacts.modelInitializer != null) modelJSON.modelInitializer = artifacts.modelInitializer;
    const jsonPath = join(path, MODEL_JSON);
    const binPath = join(path, WEIGHTS_BIN);
    await writeFile(`${binPath}.tmp`, new Uint8Array(weightData));
    await writeFile(`${jsonPath}.tmp`, JSON.stringify(modelJSON), 'utf8');
    await rename(`${binPath}.tmp`, binPath);
    await rename(`${jsonPath}.tmp`, jsonPath);
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  });
  return model.save(handler, { includeOptimizer });
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** Bytes a manifest entry occupies, or null when it cannot be known (strings). */
function entryBytes(spec: tf.io.WeightsManifestEntry): number | null {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.quantization) return size * (BYTES[spec.quantization.dtype] ?? NaN);
  if (spec.dtype === 'string') return null;
  return size * (BYTES[spec.dtype] ?? NaN);
}

/**
 * Reads the model.json / weights layout (as `saveModel` and tfjs-node write it) into
 * tfjs ModelArtifacts, with clear errors for a missing folder or file, bad JSON and weight
 * files whose size does not match the manifest.
 *
 * @param pathOrDir the folder, or the model.json file itself (a path or a file:// URL).
 */
export async function readModelArtifacts(pathOrDir: string | URL): Promise<tf.io.ModelArtifacts> {
  const path = toFilePath('loadModel', 'path (a folder or its model.json)', pathOrDir);
  const info = await statOrNull(path);
  if (!info)
    throw new Error(`loadModel: ${path} does not exist (expected a folder holding model.json and weights.bin, or the model.json file)`);
  const jsonPath = info.isDirectory() ? join(path, MODEL_JSON) : path;
  if (info.isDirectory() && !(await statOrNull(jsonPath))) {
    throw new Error(
      `loadModel: ${path} has no ${MODEL_JSON} (expected the layout saveModel and tfjs-node write: model.json + weights.bin)`,
    );
  }
  const text = await readFile(jsonPath, 'utf8');
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text) as tf.io.ModelJSON;
  } catch (e) {
    throw new Error(`loadModel: ${jsonPath} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (json == null || typeof json !== 'object' || json.modelTopology == null) {
    throw new Error(`loadModel: ${jsonPath} has no modelTopology; it is not a tfjs-layers model.json`);
  }
  rewriteKerasAttentionNodes(json.modelTopology);
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
  if (json.trainingConfig != null) artifacts.trainingConfig = json.trainingConfig;
  if (json.signature != null) artifacts.signature = json.signature;
  if (json.userDefinedMetadata != null) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  if (json.modelInitializer != null) artifacts.modelInitializer = json.modelInitializer;
  const manifest = json.weightsManifest;
  if (manifest != null) {
    if (!Array.isArray(manifest))
      throw new Error(`loadModel: ${jsonPath}: weightsManifest must be an array of {paths, weights}, got ${typeof manifest}`);
    const base = dirname(jsonPath);
    const specs: tf.io.WeightsManifestEntry[] = [];
    const buffers: Uint8Array[] = [];
    const files: string[] = [];
    let expected: number | null = 0;
    for (const group of manifest) {
      if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
        throw new Error(
          `loadModel: ${jsonPath}: each weightsManifest entry needs paths and weights arrays, got ${JSON.stringify(group)?.slice(0, 200)}`,
        );
      }
      for (const p of group.paths) {
        const file = join(base, p);
        files.push(p);
        try {
          buffers.push(await readFile(file));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
            throw new Error(`loadModel: weight file ${file} (listed in ${jsonPath}) does not exist`, { cause: e });
          }
          throw e;
        }
      }
      for (const spec of group.weights) {
        const b = entryBytes(spec);
        if (b == null || expected == null) expected = null;
        else expected += b;
      }
      specs.push(...group.weights);
    }
    const total = buffers.reduce((a, b) => a + b.byteLength, 0);
    if (expected != null && (Number.isNaN(expected) || expected !== total)) {
      throw new Error(
        `loadModel: weight size mismatch in ${dirname(jsonPath)}: the manifest describes ${specs.length} weights of ${expected} bytes, the files [${files.join(', ')}] hold ${total} bytes`,
      );
    }
    const data = new Uint8Array(total);
    let offset = 0;
    for (const b of buffers) {
      data.set(b, offset);
      offset += b.byteLength;
    }
    artifacts.weightSpecs = specs;
    artifacts.weightData = data.buffer;
  }
  return artifacts;
}

/**
 * Loads a tfjs-layers model saved by `saveModel`, by tfjs-node (`model.save('file://dir')`) or
 * by the tfjs converter, from its folder or its model.json path. The layers of this package
 * load as they are; other custom layers must be registered first.
 *
 * @example
 * ```ts
 * import { loadModel } from 'uhop/node';
 * const model = await loadModel('./checkpoints/run1');
 * const y = model.predict(x);
 * ```
 */
export async function loadModel(pathOrDir: string | URL, options: LoadModelOptions = {}): Promise<tfl.LayersModel> {
  const { strict } = parseOptions(LOAD_MODEL_SCHEMA, options, 'loadModel');
  const artifacts = await readModelArtifacts(pathOrDir);
  const where = toFilePath('loadModel', 'path (a folder or its model.json)', pathOrDir);
  try {
    return await tfl.loadLayersModel({ load: async () => artifacts }, { strict });
  } catch (e) {
    const msg = (e as Error).message;
    if (/Unknown (layer|initializer|regularizer|constraint|loss|metric)/i.test(msg)) {
      throw new Error(
        `loadModel: ${where}: ${msg.split('\n')[0]} Register custom classes with tf.serialization.registerClass (this package's layers register when 'uhop' is imported) before loading.`,
        { cause: e },
      );
    }
    throw new Error(`loadModel: ${where}: ${msg}`, { cause: e });
  }
}
