/**
 * Cost of the in-layer U-Hop Stage I alone (fitFeatureMapOp) on the T2 shapes of the shared
 * SPEC: keys [B=32, heads=4, S=128, head_dim=32], a linear Phi0 per head [4, 32, 32],
 * 5 steps, lr 0.1, the 'lse' loss (tau 0.1); and on the T4 shapes (keys [16, 4, 64, 32]). Also
 * times the fitFeatureMap variant (with the loss trace) and R1's Stage I (M=100, d=784, 100 steps).
 * `--optimizer sgd|normalized|adam` picks the step rule (default: the library's default, so
 * the same command measures the code it runs on; docs/experiments/fit-step.md compares two).
 * `--only T2,T4,trace` picks the measurements (default all three).
 *
 *     npx tsx bench/fit.ts --backend wasm --reps 10 --optimizer sgd --only T4
 *
 * Prints min / median / max wall time of `reps` runs after 2 warm-up runs; each run ends with a
 * read of the result, so the work is finished on every backend. With --t1, one training step of
 * the layers' T1 workload (bench/workloads.ts) is timed in the same loop, alternating with the
 * fit, so that both see the same machine load, and the ratio fit / T1 step is printed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { fitFeatureMap, fitFeatureMapOp, type FitOptimizer } from '../src/ops/fit.js';
import { linearFeatureMap, disposeFeatureMap } from '../src/ops/featureMap.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    reps: { type: 'string', default: '10' },
    r1: { type: 'boolean', default: true },
    'no-r1': { type: 'boolean', default: false },
    t1: { type: 'boolean', default: false },
    optimizer: { type: 'string' },
    only: { type: 'string', default: 'T2,T4,trace' },
  },
});
const only = new Set(values.only!.split(',').map((s) => s.trim()));
const report = await initBackend(values.backend);
console.log(describeBackend(report));
const reps = Number(values.reps);

/** Wall and process CPU milliseconds of one call (CPU time is what a shared machine's load does not inflate). */
async function measure(run: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function time(name: string, run: () => tf.Tensor[]): Promise<void> {
  const once = () =>
    measure(async () => {
      const out = run();
      await out[0].data();
      tf.dispose(out);
    });
  for (let i = 0; i < 2; i++) await once();
  const m: Array<{ wall: number; cpu: number }> = [];
  for (let i = 0; i < reps; i++) m.push(await once());
  const wall = m.map((x) => x.wall).sort((a, b) => a - b);
  console.log(
    `${name}: wall min ${wall[0].toFixed(1)} / median ${median(wall).toFixed(1)} / max ${wall[wall.length - 1].toFixed(1)} ms, CPU median ${median(m.map((x) => x.cpu)).toFixed(1)} ms (${reps} runs)`,
  );
}

const keys = tf.randomNormal([32, 4, 128, 32], 0, 1, 'float32', 1);
const phi0 = tf.stack([0, 1, 2, 3].map((s) => tf.tidy(() => linearFeatureMap(32, 32, { init: 'orthogonal', seed: s }).params[0])));
const t2 = {
  steps: 5,
  lr: 0.1,
  loss: 'lse' as const,
  tau: 0.1,
  ...(values.optimizer ? { optimizer: values.optimizer as FitOptimizer } : {}),
};
console.log(`step rule: ${values.optimizer ?? 'the default'}`);
const keys4 = tf.randomNormal([16, 4, 64, 32], 0, 1, 'float32', 3);
if (values.t1) {
  const { createWorkload } = await import('./workloads.js');
  const t1 = createWorkload('T1', 0);
  const fitOnce = () =>
    measure(async () => {
      const [W] = fitFeatureMapOp(keys, [phi0], 'linear', t2);
      await W.data();
      W.dispose();
    });
  const stepOnce = () => measure(async () => void (await t1.run()));
  for (let i = 0; i < 2; i++) (await fitOnce(), await stepOnce());
  const fits: Array<{ wall: number; cpu: number }> = [];
  const steps: Array<{ wall: number; cpu: number }> = [];
  for (let i = 0; i < reps; i++) (fits.push(await fitOnce()), steps.push(await stepOnce()));
  for (const k of ['wall', 'cpu'] as const) {
    const f = median(fits.map((x) => x[k]));
    const st = median(steps.map((x) => x[k]));
    console.log(
      `interleaved (${k}): T2 fit median ${f.toFixed(1)} ms, T1 training step median ${st.toFixed(1)} ms, fit / step ${(f / st).toFixed(2)} (${reps} pairs)`,
    );
  }
  t1.dispose();
}

if (only.has('T2')) await time('T2 fitFeatureMapOp (5 steps, 128 sets of 128 x 32)', () => fitFeatureMapOp(keys, [phi0], 'linear', t2));
if (only.has('T4')) await time('T4 fitFeatureMapOp (5 steps, 64 sets of 64 x 32)', () => fitFeatureMapOp(keys4, [phi0], 'linear', t2));
if (only.has('trace')) {
  await time('T2 fitFeatureMap with loss trace', () => {
    const { featureMap, lossTrace } = fitFeatureMap(keys, { kind: 'linear', params: [phi0] }, t2);
    return [lossTrace, ...featureMap.params];
  });
}
if (values.r1 && !values['no-r1']) {
  const memories = tf.randomUniform([100, 784], 0, 1, 'float32', 2);
  const identity = linearFeatureMap(784, 784);
  await time('R1 Stage I (M=100, d=784, 100 steps, lse)', () => {
    const { featureMap, lossTrace } = fitFeatureMap(memories, identity, { ...t2, steps: 100 });
    return [...featureMap.params, lossTrace];
  });
  memories.dispose();
  disposeFeatureMap(identity);
}
tf.dispose([keys, keys4, phi0]);
