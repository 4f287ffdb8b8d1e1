/**
 * The browser test's model, built the same way in Node and in the page: a set model with a
 * U-Hop self-attention (`UHopAttention`) and U-Hop pooling (`HopfieldPooling`), trained for a few
 * SGD steps. Node runs it on the cpu backend with seeded weights and writes the weights and its
 * results as JSON; the page loads the same weights and runs it on each browser backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { HopfieldPooling, UHopAttention, seededRandom } from '../../src/index.js';

/** batch x set size x features of the inputs, and the output width. */
export const MODEL_SHAPE = { batch: 4, set: 6, features: 5, outputs: 2 } as const;
/** SGD steps of the training run (one full batch each). */
export const TRAIN_STEPS = 3;
const LEARNING_RATE = 0.01;

/** What one run of the model gives, as plain arrays (JSON between Node and the page). */
export interface ModelRun {
  /** model.predict on the inputs before training, flattened [batch * outputs]. */
  predictions: number[];
  /** Loss of each training step (the loss at the weights before that step). */
  losses: number[];
  /** model.predict after the training steps, flattened. */
  trainedPredictions: number[];
}

/** A model's weights, in `model.getWeights()` order. */
export interface ModelWeights {
  shapes: number[][];
  values: number[][];
}

/** The model: dense embedding, UHopAttention (U-Hop, self-attention), HopfieldPooling (U-Hop), dense head. */
export function buildModel(): tfl.LayersModel {
  const { set, features, outputs } = MODEL_SHAPE;
  const uhop = { featureMap: 'linear', fitSteps: 3, fitLr: 0.1, separationLoss: 'uniform' } as const;
  const x = tfl.input({ shape: [set, features], name: 'x' });
  const h = tfl.layers
    .dense({ units: 8, activation: 'tanh', name: 'embed', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) })
    .apply(x) as tfl.SymbolicTensor;
  const a = new UHopAttention({ numHeads: 2, keyDim: 4, ...uhop, name: 'attention', seed: 2 }).apply(h) as tfl.SymbolicTensor;
  const p = new HopfieldPooling({ numHeads: 2, ...uhop, name: 'pool', seed: 3 }).apply(a) as tfl.SymbolicTensor;
  const y = tfl.layers
    .dense({ units: outputs, name: 'head', kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) })
    .apply(p) as tfl.SymbolicTensor;
  return tfl.model({ inputs: x, outputs: y, name: 'uhop_browser_test' });
}

/** Seeded inputs [batch, set, features] and targets [batch, outputs]. */
export function modelData(): { x: tf.Tensor3D; y: tf.Tensor2D } {
  const { batch, set, features, outputs } = MODEL_SHAPE;
  const rng = seededRandom(11);
  const x = Float32Array.from({ length: batch * set * features }, () => rng.normal());
  const y = Float32Array.from({ length: batch * outputs }, () => rng.normal());
  return { x: tf.tensor3d(x, [batch, set, features]), y: tf.tensor2d(y, [batch, outputs]) };
}

/**
 * Seeded weights for the model: a weight whose initializer is deterministic (zeros, ones, the
 * isometric Phi0) keeps its initial value; a randomly initialized one gets seeded N(0, 0.4^2)
 * values instead. Two builds tell which is which.
 */
export function seededWeights(): ModelWeights {
  const first = buildModel();
  const second = buildModel();
  const rng = seededRandom(5);
  const shapes: number[][] = [];
  const values: number[][] = [];
  const a = first.getWeights();
  const b = second.getWeights();
  for (let i = 0; i < a.length; i++) {
    const va = Array.from(a[i].dataSync());
    const vb = b[i].dataSync();
    shapes.push(a[i].shape);
    values.push(va.every((v, j) => v === vb[j]) ? va : va.map(() => 0.4 * rng.normal()));
  }
  first.dispose();
  second.dispose();
  return { shapes, values };
}

/** Builds the model with `weights`, predicts, trains TRAIN_STEPS SGD steps, predicts again. */
export async function runModel(weights: ModelWeights): Promise<ModelRun> {
  const model = buildModel();
  const { x, y } = modelData();
  const optimizer = tf.train.sgd(LEARNING_RATE);
  try {
    const tensors = weights.values.map((v, i) => tf.tensor(v, weights.shapes[i]));
    model.setWeights(tensors);
    tf.dispose(tensors);
    // data(), not dataSync(): a synchronous read loses the webgpu device in headless Chromium.
    const read = async (t: tf.Tensor | tf.Tensor[]) => {
      const out = Array.from(await (t as tf.Tensor).data());
      tf.dispose(t);
      return out;
    };
    const predictions = await read(model.predict(x));
    model.compile({ optimizer, loss: 'meanSquaredError' });
    const history = await model.fit(x, y, { epochs: TRAIN_STEPS, batchSize: MODEL_SHAPE.batch, shuffle: false, verbose: 0 });
    const losses = (history.history.loss as number[]).map(Number);
    const trainedPredictions = await read(model.predict(x));
    return { predictions, losses, trainedPredictions };
  } finally {
    tf.dispose([x, y]);
    model.dispose();
    optimizer.dispose();
  }
}
