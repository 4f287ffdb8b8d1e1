/**
 * Tutorial: put U-Hop into a transformer that is already trained.
 *
 *   npx tsx examples/finetune.ts [checkpoint-dir]
 *
 * Steps: (1) train a small ViT with ordinary MultiHeadAttention on MNIST, (2) save it to a
 * folder, (3) load it back, (4) swap every MultiHeadAttention for U-Hop attention with
 * `replaceAttention` (the projection weights carry over), (5) fine-tune briefly, and compare
 * with simply training the original for the same number of epochs.
 *
 * Copy it and change the model/data: the only U-Hop-specific lines are steps 4 and 5.
 * Runs in about a minute on one CPU core (wasm backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replaceAttention, UHopAttention, visionClassifier } from 'uhop';
import { initBackend, describeBackend, loadMnist, saveModel, loadModel } from 'uhop/node';

console.log(describeBackend(await initBackend()));
// UHOP_EXAMPLE_SMOKE=1: a tiny, fast run (the test suite runs every example this way).
const SMOKE = process.env.UHOP_EXAMPLE_SMOKE === '1';

// --- Data: the first 2000 training and 1000 test images of MNIST, pixels in [0, 1]. -------
const train = loadMnist({ split: 'train', limit: SMOKE ? 128 : 2000 });
const test = loadMnist({ split: 'test', limit: SMOKE ? 64 : 1000 });
const epochs = SMOKE ? 1 : 3;
const moreEpochs = SMOKE ? 1 : 2;
const xTrain = tf.tensor4d(train.images, [train.n, 28, 28, 1]);
const yTrain = tf.tensor1d(Float32Array.from(train.labels)); // class ids, for sparse cross-entropy
const xTest = tf.tensor4d(test.images, [test.n, 28, 28, 1]);

function testAccuracy(model: tfl.LayersModel): number {
  const predicted = tf.tidy(() => tf.argMax(model.predict(xTest) as tf.Tensor, -1));
  const p = predicted.dataSync();
  predicted.dispose();
  let hits = 0;
  for (let i = 0; i < test.n; i++) if (p[i] === test.labels[i]) hits++;
  return hits / test.n;
}

// --- 1. An ordinary transformer: 16 patch tokens (7x7), one pre-norm block with standard ----
//        softmax MultiHeadAttention ('mha'), mean pooling, softmax classifier.
const base = visionClassifier({
  imageSize: 28,
  patchSize: 7,
  dModel: 32,
  numClasses: 10,
  encoder: 'transformer',
  numLayers: 1,
  numHeads: 2,
  attention: 'mha',
  pooling: 'mean',
});
base.compile({ optimizer: tf.train.adam(3e-3), loss: 'sparseCategoricalCrossentropy' });
await base.fit(xTrain, yTrain, { epochs, batchSize: 64, verbose: 0 });
console.log(`1. trained with MultiHeadAttention: test accuracy ${(100 * testAccuracy(base)).toFixed(1)}%`);

// --- 2. Save it: model.json + weights.bin in a folder (the layout tfjs-node writes). -------
const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'uhop-example-'));
await saveModel(base, dir);
console.log(`2. saved to ${dir}`);

// --- 3. Load it back (any tfjs-layers model with MultiHeadAttention layers works here). ----
const loaded = await loadModel(dir);
console.log(
  `3. loaded: ${loaded.layers
    .map((l) => l.getClassName())
    .filter((c) => c.endsWith('Attention'))
    .join(', ')}`,
);

// --- 4. Swap the attention. Every MultiHeadAttention becomes a UHopAttention with the same --
//        config and projection weights; U-Hop's Phi starts at the identity and, in every
//        call, is fitted for `fitSteps` steps on each sample's projected keys (per head) so
//        that the keys spread out on the sphere before the softmax retrieves from them.
const uhop = replaceAttention(loaded, {
  featureMap: 'linear', // Phi(x) = W x (U-Hop); 'mlp' for a small MLP feature map
  fitSteps: 5, //          Stage-I gradient steps per call
  fitLr: 0.1,
  separationLoss: 'lse', // U-Hop+'s loss; 'uniform' is U-Hop's
  // separation: 'sparsemax',  // any separation of the Hopfield layers works too
});
const swapped = uhop.layers.filter((l) => l instanceof UHopAttention).length;
console.log(`4. replaced ${swapped} attention layer(s); accuracy before fine-tuning ${(100 * testAccuracy(uhop)).toFixed(1)}%`);

// --- 5. Fine-tune briefly (a loaded or swapped model must be compiled again). ---------------
uhop.compile({ optimizer: tf.train.adam(3e-3), loss: 'sparseCategoricalCrossentropy' });
await uhop.fit(xTrain, yTrain, { epochs: moreEpochs, batchSize: 64, verbose: 0 });
console.log(`5. U-Hop fine-tuned for ${moreEpochs} epochs: test accuracy ${(100 * testAccuracy(uhop)).toFixed(1)}%`);

// --- The control: keep training the original for the same 2 epochs. ------------------------
const control = await loadModel(dir);
control.compile({ optimizer: tf.train.adam(3e-3), loss: 'sparseCategoricalCrossentropy' });
await control.fit(xTrain, yTrain, { epochs: moreEpochs, batchSize: 64, verbose: 0 });
console.log(`   control, MultiHeadAttention trained ${moreEpochs} more epochs: test accuracy ${(100 * testAccuracy(control)).toFixed(1)}%`);

// The fine-tuned model saves and loads like any other (UHopAttention is registered).
await saveModel(uhop, join(dir, 'uhop'));
const reloaded = await loadModel(join(dir, 'uhop'));
console.log(`   U-Hop model reloaded from ${join(dir, 'uhop')}: test accuracy ${(100 * testAccuracy(reloaded)).toFixed(1)}%`);
// For the full comparison over seeds: `uhop finetune --task vision` (see the README).
