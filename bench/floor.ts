/**
 * The hardware floor behind bench/README.md: one-thread CPU time of single products and of
 * op dispatch on the current tfjs backend (PyTorch's side: torch_reference.py --floor).
 *
 *     npx tsx bench/floor.ts --backend wasm
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { batchMatMul } from '../src/layers/hopfieldCore.js';

const { values } = parseArgs({ options: { backend: { type: 'string' }, reps: { type: 'string', default: '10' } } });
console.log(describeBackend(await initBackend(values.backend)));
const reps = Number(values.reps);

/** Median-free mean CPU ms per call over `r` calls after 2 warm-ups, each call read back. */
function cpuMs(f: () => tf.Tensor, r = reps): number {
  for (let i = 0; i < 2; i++) f().dispose();
  const c0 = process.cpuUsage();
  for (let i = 0; i < r; i++) {
    const y = f();
    y.dataSync();
    y.dispose();
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / r;
}

function report(name: string, ms: number, flops: number): void {
  console.log(`${name.padEnd(52)} ${ms.toFixed(3).padStart(9)} ms cpu  ${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
}

const a = tf.randomNormal([4096, 128]);
const w = tf.randomNormal([128, 128]);
report(
  'matMul [4096,128] x [128,128]',
  cpuMs(() => tf.matMul(a, w)),
  2 * 4096 * 128 * 128,
);
report(
  'matMul [4096,128] x [128,128]^T (transposeB)',
  cpuMs(() => tf.matMul(a, w, false, true)),
  2 * 4096 * 128 * 128,
);
report(
  'matMul [4096,128]^T x [4096,128] (transposeA)',
  cpuMs(() => tf.matMul(a, a, true, false)),
  2 * 4096 * 128 * 128,
);
const s = tf.randomNormal([512, 512]);
report(
  'matMul 512 x 512 x 512',
  cpuMs(() => tf.matMul(s, s)),
  2 * 512 ** 3,
);
const q = tf.randomNormal([32, 4, 128, 32]);
const k = tf.randomNormal([32, 4, 128, 32]);
const f = 2 * 128 * 128 * 32 * 128;
report(
  'batched [32,4,128,32] x [32,4,128,32]^T, tf.matMul',
  cpuMs(() => tf.matMul(q, k, false, true)),
  f,
);
report(
  "batched, the layers' batchMatMul",
  cpuMs(() => batchMatMul(q, k, true)),
  f,
);

/** Smallest of 3 rounds of mean CPU microseconds per call (the first rounds include JIT warm-up). */
function cpuUs(fn: () => void, n: number): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / n);
  }
  return best;
}
const x = tf.ones([128]);
const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(v, v)));
console.log(
  `${'tiny op: add [128] + dispose (dispatch)'.padEnd(52)} ${cpuUs(() => tf.add(x, x).dispose(), 5000)
    .toFixed(1)
    .padStart(9)} us cpu`,
);
console.log(
  `${'tape: grad(sum(x*x)) on [128]'.padEnd(52)} ${cpuUs(() => g(x).dispose(), 2000)
    .toFixed(1)
    .padStart(9)} us cpu`,
);
