/**
 * Kernel counts per training step, split into forward, backward and optimizer, and per layer
 * of the forward pass: what dispatch costs where. Counts do not depend on the machine's load
 * (times on a shared machine do), so they are the before/after measure of kernel cuts.
 *
 *     npx tsx bench/kernelCounts.ts --backend wasm --workload T1,T2,T3,T4 [--fit-optimizer sgd|normalized] [--json PATH]
 *
 * `--fit-optimizer` is the Stage-I step rule of T2 and T4 (default 'sgd', the workloads' SPEC
 * default; 'normalized' is the layers' default).
 * The U-Hop fit's share is T2 - T1 and T4 - T3 (same layers, fitSteps 5 against none).
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { initBackend } from '../src/node/backend.js';
import { createWorkload, type WorkloadId } from './workloads.js';
import type { FitOptimizer } from '../src/ops/fit.js';

async function count(f: () => tf.TensorContainer): Promise<{ kernels: number; byKernel: Record<string, number> }> {
  const info = await tf.profile(() => {
    tf.dispose(f());
    return [] as tf.Tensor[];
  });
  const byKernel: Record<string, number> = {};
  let kernels = 0;
  for (const k of info.kernels) {
    // Gradient scopes (customGrad ops) are listed beside the kernels they ran: not kernels.
    if (k.name.endsWith('__op') || k.name === 'unnamed scope') continue;
    kernels++;
    byKernel[k.name] = (byKernel[k.name] ?? 0) + 1;
  }
  return { kernels, byKernel };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      workload: { type: 'string', default: 'T1,T2,T3,T4' },
      'fit-optimizer': { type: 'string', default: 'sgd' },
      json: { type: 'string' },
    },
  });
  const report = await initBackend(values.backend);
  const fitOptimizer = values['fit-optimizer'] as FitOptimizer;
  const out: Record<string, unknown> = { backend: report.backend, fitOptimizer, date: new Date().toISOString(), results: {} };
  for (const id of values.workload!.split(',').map((s) => s.trim().toUpperCase()) as WorkloadId[]) {
    const w = createWorkload(id, { fitOptimizer });
    if (!w.forward || !w.forwardBackward || !w.model || !w.input) throw new Error(`kernelCounts: ${id} is not a training workload`);
    await w.run(); // weights, optimizer slots and lazily created constants exist from here on
    const fwd = await count(() => w.forward!());
    const fb = await count(() => w.forwardBackward!());
    const step = await count(() => w.runSync());
    const layers: Record<string, number> = {};
    let x = w.input;
    for (const [i, layer] of w.model.layers.entries()) {
      const input = x;
      layers[`${i}:${layer.getClassName()}`] =
        (await count(() => tf.clone(layer.apply(input, { training: true }) as tf.Tensor))).kernels - 1;
      const next = tf.tidy(() => layer.apply(input, { training: true }) as tf.Tensor);
      if (input !== w.input) input.dispose();
      x = next;
    }
    if (x !== w.input) x.dispose();
    const row = {
      forward: fwd.kernels,
      backward: fb.kernels - fwd.kernels,
      optimizer: step.kernels - fb.kernels,
      step: step.kernels,
      forward_layers: layers,
      step_by_kernel: Object.fromEntries(Object.entries(step.byKernel).sort((a, b) => b[1] - a[1])),
    };
    (out.results as Record<string, unknown>)[id] = row;
    console.log(
      `${report.backend} ${id} (fit ${fitOptimizer}): step ${row.step} kernels = forward ${row.forward} + backward ${row.backward} + optimizer ${row.optimizer}; forward by layer ${JSON.stringify(layers)}`,
    );
    console.log(
      `   ${Object.entries(row.step_by_kernel)
        .slice(0, 12)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
    w.dispose();
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(out, null, 1));
}

main().catch((e: unknown) => {
  console.error((e as Error).message ?? e);
  process.exit(1);
});
