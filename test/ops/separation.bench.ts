/**
 * Timing of the separation maps (not a test: the test glob is *.test.ts).
 *
 *     node --import tsx test/ops/separation.bench.ts [backend] [B,H,L,S] [repeats]
 *     node --import tsx test/ops/separation.bench.ts wasm 32,4,128,128 5
 *
 * Prints the median ms of a forward pass and of forward + backward (tf.grad of a weighted
 * sum) per map, on scores of shape [B, H, L, S]; every unit ends with a read of one value so
 * asynchronous backends are timed to completion.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/node/backend.js';
import { separation } from '../../src/ops/separation.js';
import type { SeparationKind } from '../../src/ops/types.js';

const backend = process.argv[2] ?? 'wasm';
const shape = (process.argv[3] ?? '32,4,128,128').split(',').map(Number);
const repeats = Number(process.argv[4] ?? 5);
await initBackend(backend);

const x = tf.randomNormal(shape, 0, 2, 'float32', 1);
const w = tf.randomNormal(shape, 0, 1, 'float32', 2);
const alphaT = tf.fill([shape[0], shape[1], 1, 1], 1.3);
const cases: [string, SeparationKind, Record<string, unknown>][] = [
  ['softmax', 'softmax', {}],
  ['sparsemax', 'sparsemax', {}],
  ['entmax15', 'entmax15', {}],
  ['entmax alpha=1.3 (Newton)', 'entmax', { alpha: 1.3 }],
  ['entmax alpha Tensor [B,H,1,1] (Newton, d alpha)', 'entmax', { alpha: alphaT }],
  ['softmax1', 'softmax1', {}],
  ['topk k=8', 'topk', { k: 8 }],
  ['max', 'max', {}],
];

async function median(unit: () => tf.Tensor): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    const out = unit();
    await out.data();
    out.dispose();
    if (i > 0) times.push(performance.now() - t0); // first run is warm-up
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

console.log(`backend ${tf.getBackend()}, scores [${shape.join(', ')}], median of ${repeats}`);
console.log('| map | forward ms | forward + backward ms |');
console.log('| --- | ---: | ---: |');
for (const [name, kind, opts] of cases) {
  const fwd = await median(() => tf.tidy(() => separation(x, kind, opts)));
  const bwd = await median(() =>
    tf.tidy(() => {
      if (opts.alpha instanceof tf.Tensor) {
        const [gx, ga] = tf.grads((z: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(separation(z, kind, { alpha: a }), w)))([x, opts.alpha]);
        return tf.add(tf.sum(gx), tf.sum(ga));
      }
      return tf.grad((z: tf.Tensor) => tf.sum(tf.mul(separation(z, kind, opts), w)))(x);
    }),
  );
  console.log(`| ${name} | ${fwd.toFixed(1)} | ${bwd.toFixed(1)} |`);
}
tf.dispose([x, w, alphaT]);
