/**
 * Why the former U-Hop+ default was unstable (docs/experiments/beyond-paper.md, section 2): the
 * separation losses see only the angles of Phi's features, but retrieval's softmax sees their
 * scale. For one MNIST memory set (M = 50, the retrieval experiment's draw for seed 0) this fits
 * the experiment's mlp U-Hop+ Phi (D = hidden = 2d, isometric start) with the former default
 * (lse, tau 0.1, SGD lr 10) and the new one (uniformity, SGD lr 0.1), and prints the mean
 * feature norms and the mean own / other scores of half-masked queries.
 *
 * Run: `npx tsx bench/uhopPlusScale.ts` (about 2 minutes of CPU on wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/node/backend.js';
import { loadIdxImageFolderRaw, mnistDirectory } from '../src/node/data.js';
import { seededRandom } from '../src/data/random.js';
import { maskQueries } from '../src/data/corruption.js';
import { fitFeatureMap, type FitFeatureMapOptions } from '../src/ops/fit.js';
import { mlpFeatureMap, applyFeatureMap, disposeFeatureMap } from '../src/ops/featureMap.js';
import type { FeatureMap } from '../src/ops/types.js';

await initBackend('wasm');
const raw = loadIdxImageFolderRaw(mnistDirectory(), { split: 'train' });
const d = raw.rows * raw.cols;
const M = 50;
const pixels = new Float32Array(M * d);
const order = Int32Array.from({ length: raw.n }, (_, i) => i);
const rng = seededRandom(0 * 1_000_003 + M);
for (let i = 0; i < M; i++) {
  const j = i + Math.floor(rng.uniform() * (raw.n - i));
  [order[i], order[j]] = [order[j], order[i]];
  for (let k = 0; k < d; k++) pixels[i * d + k] = raw.pixels[order[i] * d + k] / 255;
}
const K = tf.tensor2d(pixels, [M, d]);
const Q = maskQueries(K, { fraction: 0.5, seed: 5 });
const phi0 = mlpFeatureMap(d, 2 * d, { seed: 12345, hidden: 2 * d });

function describe(name: string, phi: FeatureMap): void {
  const line = tf.tidy(() => {
    const F = applyFeatureMap(phi, K);
    const Fq = applyFeatureMap(phi, Q);
    const S = tf.matMul(Fq, F, false, true);
    const own = tf.sum(tf.mul(S, tf.eye(M)), 1);
    const other = tf.div(tf.sub(tf.sum(S, 1), own), M - 1);
    const f = (t: tf.Tensor) => tf.mean(t).dataSync()[0].toFixed(2);
    return `${name}: mean ||Phi(k)|| ${f(tf.norm(F, 'euclidean', 1))}, mean ||Phi(q)|| ${f(tf.norm(Fq, 'euclidean', 1))}, mean own score ${f(own)}, mean other score ${f(other)}`;
  });
  console.log(line);
}

describe('Phi0 (isometry)', phi0);
const fits: [string, FitFeatureMapOptions][] = [
  ['lse tau 0.1, SGD lr 10 (former default)', { steps: 100, lr: 10, loss: 'lse', optimizer: 'sgd' }],
  ['uniform t 2, SGD lr 0.1 (new default)', { steps: 100, lr: 0.1, loss: 'uniform', optimizer: 'sgd' }],
];
for (const [name, options] of fits) {
  const { featureMap, lossTrace } = fitFeatureMap(K, phi0, options);
  describe(name, featureMap);
  disposeFeatureMap(featureMap);
  lossTrace.dispose();
}
tf.dispose([K, Q]);
disposeFeatureMap(phi0);
