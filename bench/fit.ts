/**
 * Cost of the in-layer U-Hop Stage I alone (fitFeatureMapOp) on the T2 shapes of the shared
 * SPEC: keys [B=32, heads=4, S=128, head_dim=32], a linear Phi0 per head [4, 32, 32],
 * 5 plain gradient steps, lr 0.1, the 'lse' loss (tau 0.1). Also times the fitFeatureMap
 * variant (with the loss trace) and R1's Stage I (M=100, d=784, 100 steps).
 *
 *     npx tsx bench/fit.ts --backend wasm --reps 10
 *
 * Prints min / median / max wall time of `reps` runs after 2 warm-up runs; each run ends with a
 * read of the result, so the work is finished on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { initBackend, describeBackend } from '../src/backend.js';
import { fitFeatureMap, fitFeatureMapOp } from '../src/ops/fit.js';
import { linearFeatureMap, disposeFeatureMap } from '../src/ops/featureMap.js';

const { values } = parseArgs({
  options: { backend: { type: 'string' }, reps: { type: 'string', default: '10' }, r1: { type: 'boolean', default: true } },
});
const report = await initBackend(values.backend);
console.log(describeBackend(report));
const reps = Number(values.reps);

async function time(name: string, run: () => tf.Tensor[]): Promise<void> {
  const once = async () => {
    const t0 = performance.now();
    const out = run();
    await out[0].data();
    tf.dispose(out);
    return performance.now() - t0;
  };
  for (let i = 0; i < 2; i++) await once();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) ms.push(await once());
  ms.sort((a, b) => a - b);
  console.log(`${name}: min ${ms[0].toFixed(1)} ms, median ${ms[Math.floor(ms.length / 2)].toFixed(1)} ms, max ${ms[ms.length - 1].toFixed(1)} ms (${reps} runs)`);
}

const keys = tf.randomNormal([32, 4, 128, 32], 0, 1, 'float32', 1);
const phi0 = tf.stack([0, 1, 2, 3].map((s) => tf.tidy(() => linearFeatureMap(32, 32, { init: 'orthogonal', seed: s }).params[0])));
const t2 = { steps: 5, lr: 0.1, loss: 'lse' as const, tau: 0.1 };
await time('T2 fitFeatureMapOp (5 steps, 128 sets of 128 x 32)', () => fitFeatureMapOp(keys, [phi0], 'linear', t2));
await time('T2 fitFeatureMap with loss trace', () => {
  const { featureMap, lossTrace } = fitFeatureMap(keys, { kind: 'linear', params: [phi0] }, t2);
  return [lossTrace, ...featureMap.params];
});
if (values.r1) {
  const memories = tf.randomUniform([100, 784], 0, 1, 'float32', 2);
  const identity = linearFeatureMap(784, 784);
  await time('R1 Stage I (M=100, d=784, 100 steps, lse)', () => {
    const { featureMap, lossTrace } = fitFeatureMap(memories, identity, { steps: 100, lr: 0.1, loss: 'lse' });
    return [...featureMap.params, lossTrace];
  });
  memories.dispose();
  disposeFeatureMap(identity);
}
tf.dispose([keys, phi0]);
