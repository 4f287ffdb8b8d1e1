/**
 * Kernel counts of the in-layer U-Hop fit alone (`fitFeatureMapOp`, linear Phi, 'lse') on the
 * T2 and T4 shapes of bench/fit.ts, per step rule: the fixed part (a 1-step fit minus one
 * step) and the count per step ((5 steps - 1 step) / 4), with the kernels by name. Counts do
 * not depend on the machine's load, so they are the before/after measure of the fit's cuts.
 *
 *     npx tsx bench/fitKernels.ts --backend wasm [--optimizer sgd,normalized] [--times 10] [--json PATH]
 *
 * `--times N` also profiles N 5-step fits and prints the time per kernel name (tf.profile's
 * kernelTimeMs: wall time around each kernel, so inflated by the machine's load like any wall
 * time; the shares between kernels are what it is for).
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { initBackend } from '../src/node/backend.js';
import { fitFeatureMapOp, type FitOptimizer } from '../src/ops/fit.js';
import { linearFeatureMap } from '../src/ops/featureMap.js';

async function count(f: () => tf.Tensor[]): Promise<Record<string, number>> {
  const info = await tf.profile(() => {
    tf.dispose(f());
    return [] as tf.Tensor[];
  });
  const byKernel: Record<string, number> = {};
  for (const k of info.kernels) {
    if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
    byKernel[k.name] = (byKernel[k.name] ?? 0) + 1;
  }
  return byKernel;
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    optimizer: { type: 'string', default: 'sgd,normalized' },
    times: { type: 'string', default: '0' },
    json: { type: 'string' },
  },
});
const report = await initBackend(values.backend);
const phi0 = tf.stack([0, 1, 2, 3].map((s) => tf.tidy(() => linearFeatureMap(32, 32, { init: 'orthogonal', seed: s }).params[0])));
const shapes: Record<string, tf.Tensor> = {
  T2: tf.randomNormal([32, 4, 128, 32], 0, 1, 'float32', 1),
  T4: tf.randomNormal([16, 4, 64, 32], 0, 1, 'float32', 3),
};
const out: Record<string, unknown> = { backend: report.backend, date: new Date().toISOString(), results: {} };
for (const optimizer of values.optimizer!.split(',') as FitOptimizer[]) {
  for (const [id, keys] of Object.entries(shapes)) {
    const run = (steps: number) => () => fitFeatureMapOp(keys, [phi0], 'linear', { steps, lr: 0.1, loss: 'lse', tau: 0.1, optimizer });
    tf.dispose(run(5)()); // lazily created constants
    const c1 = await count(run(1));
    const c5 = await count(run(5));
    const names = [...new Set([...Object.keys(c1), ...Object.keys(c5)])];
    const perStep = Object.fromEntries(
      names
        .map((k) => [k, ((c5[k] ?? 0) - (c1[k] ?? 0)) / 4] as const)
        .filter(([, n]) => n !== 0)
        .sort((a, b) => b[1] - a[1]),
    );
    const fixed = total(c1) - (total(c5) - total(c1)) / 4;
    (out.results as Record<string, unknown>)[`${id} ${optimizer}`] = {
      steps5: total(c5),
      fixed,
      perStep: (total(c5) - total(c1)) / 4,
      byKernelPerStep: perStep,
      byKernel5: c5,
    };
    console.log(
      `${report.backend} ${id} ${optimizer}: 5 steps ${total(c5)} kernels = fixed ${fixed} + ${(total(c5) - total(c1)) / 4} per step; per step: ${Object.entries(
        perStep,
      )
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  }
}
const timesRuns = Number(values.times);
for (const optimizer of timesRuns > 0 ? (values.optimizer!.split(',') as FitOptimizer[]) : []) {
  for (const [id, keys] of Object.entries(shapes)) {
    const run = () => fitFeatureMapOp(keys, [phi0], 'linear', { steps: 5, lr: 0.1, loss: 'lse', tau: 0.1, optimizer });
    const agg: Record<string, { n: number; ms: number }> = {};
    let total = 0;
    for (let r = 0; r < timesRuns; r++) {
      const info = await tf.profile(() => {
        tf.dispose(run());
        return [] as tf.Tensor[];
      });
      for (const k of info.kernels) {
        if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
        const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        agg[k.name] ??= { n: 0, ms: 0 };
        agg[k.name].n++;
        agg[k.name].ms += ms;
        total += ms;
      }
    }
    const rows = Object.entries(agg).sort((a, b) => b[1].ms - a[1].ms);
    (out.results as Record<string, Record<string, unknown>>)[`${id} ${optimizer}`].kernelMsPerFit = Object.fromEntries(
      rows.map(([k, v]) => [k, +(v.ms / timesRuns).toFixed(3)]),
    );
    console.log(
      `${report.backend} ${id} ${optimizer}: ${(total / timesRuns).toFixed(1)} kernel ms per 5-step fit (${timesRuns} profiled fits): ${rows
        .slice(0, 10)
        .map(([k, v]) => `${k} ${(v.ms / timesRuns).toFixed(2)} ms (${v.n / timesRuns}x)`)
        .join(', ')}`,
    );
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 1));
tf.dispose([phi0, ...Object.values(shapes)]);
