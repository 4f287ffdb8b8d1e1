/**
 * Issue 13's layer measurement, per step rule: a `Hopfield` layer (2 heads x 16, seeded) on
 * random inputs [4, 32, 64] (32 memories a set); the separation loss drop of every (sample, head) set over the
 * layer's fit (fitLossTrace), and the largest change of an association weight between the
 * same layer with fitSteps 0 and with the fit (same weights).
 *
 *     npx tsx bench/fitStepLayer.ts --backend wasm
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { Hopfield, type HopfieldArgs } from '../src/layers/index.js';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, seed: { type: 'string', default: '1' } } });
console.log(describeBackend(await initBackend(values.backend)));
const x = tf.randomNormal([4, 32, 64], 0, 1, 'float32', Number(values.seed));
const cases: Array<[string, HopfieldArgs]> = [
  ['sgd, lr 0.1 (the earlier default)', { fitOptimizer: 'sgd', fitLr: 0.1 }],
  ['sgd, lr 1', { fitOptimizer: 'sgd', fitLr: 1 }],
  ['adam, lr 0.1', { fitOptimizer: 'adam', fitLr: 0.1 }],
  ['normalized, lr 0.5 (the default)', {}],
  ['normalized, lr 0.5, uniform', { separationLoss: 'uniform' }],
  ['normalized, lr 0.5, worst-pair', { separationLoss: 'worst-pair' }],
  ['normalized, mlp (its default lr 0.1)', { featureMap: 'mlp' }],
];
console.log('| rule | loss drop mean | loss drop min | steps that raised a loss | max association change |');
console.log('|---|---|---|---|---|');
for (const [name, opts] of cases) {
  const base: HopfieldArgs = {
    numHeads: 2,
    hiddenSize: 16,
    featureMap: 'linear',
    seed: Number(values.seed),
    returnAssociation: true,
    ...opts,
  };
  const fitted = new Hopfield(base);
  const plain = new Hopfield({ ...base, fitSteps: 0 });
  tf.dispose(fitted.apply(x) as tf.Tensor[]);
  tf.dispose(plain.apply(x) as tf.Tensor[]);
  plain.setWeights(fitted.getWeights());
  const t = (await fitted.fitLossTrace(x).array()) as number[][][];
  const n = t.length - 1;
  const drops: number[] = [];
  let rises = 0;
  for (let b = 0; b < 4; b++) {
    for (let h = 0; h < 2; h++) {
      // relative to the room down to the loss's lower bound (bench/fitStep.ts), 0 for lse (> 0 here)
      const shift = opts.separationLoss === 'uniform' || opts.separationLoss === 'worst-pair' ? (4 * 32) / 31 : 0;
      drops.push(1 - (t[n][b][h] + shift) / (t[0][b][h] + shift));
      for (let k = 1; k <= n; k++) if (t[k][b][h] > t[k - 1][b][h]) rises++;
    }
  }
  const [, a1] = fitted.apply(x) as tf.Tensor[];
  const [, a0] = plain.apply(x) as tf.Tensor[];
  const dXi = tf.max(tf.abs(tf.sub(a1, a0))).dataSync()[0];
  const mean = drops.reduce((p, q) => p + q, 0) / drops.length;
  console.log(`| ${name} | ${(100 * mean).toFixed(1)}% | ${(100 * Math.min(...drops)).toFixed(1)}% | ${rises} | ${dXi.toFixed(3)} |`);
  fitted.dispose();
  plain.dispose();
}
