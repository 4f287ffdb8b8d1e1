/** Helpers shared by the layer tests. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';

type AnyLayer = { weights: tfl.LayerVariable[]; getWeights(): tf.Tensor[]; setWeights(w: tf.Tensor[]): void };

/** The current value of a layer weight, by the name given to addWeight. */
export function weight(layer: AnyLayer, name: string): tf.Tensor {
  const w = layer.weights.find((v) => v.originalName.endsWith(`/${name}`) || v.originalName === name);
  if (!w) throw new Error(`no weight '${name}' in ${layer.weights.map((v) => v.originalName).join(', ')}`);
  return w.read();
}

/** Gives every weight of a layer seeded random values (so that biases and gains matter). */
export function randomizeWeights(layer: AnyLayer, seed = 1, scale = 0.5): void {
  const values = layer.getWeights().map((w, i) => {
    const n = w.shape[w.shape.length - 1] ?? 1;
    return tf.randomNormal(w.shape, 0, scale / Math.sqrt(Math.max(1, n / 4)), 'float32', seed + i);
  });
  layer.setWeights(values);
  tf.dispose(values);
}

/** Saves a model to memory and loads it back. */
export async function roundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
}

/** Asserts `fn` does not change the number of live tensors over `repeats` calls (after one warm-up). */
export async function assertNoLeakAsync(fn: () => Promise<unknown> | unknown, repeats: number, what: string): Promise<void> {
  await fn();
  const before = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) await fn();
  assert.equal(tf.memory().numTensors, before, `${what}: tensors leaked over ${repeats} calls`);
}

/** Max |a - b|. */
export function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}
