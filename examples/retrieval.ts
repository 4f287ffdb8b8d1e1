/**
 * Associative retrieval on MNIST: dense modern Hopfield against U-Hop on one memory set, then
 * a small sweep with the experiment function behind `uhop retrieval`.
 *
 *   npx tsx examples/retrieval.ts [M]
 */
import * as tf from '@tensorflow/tfjs-core';
import { maskQueries, retrieve, retrievalError, UHopMemory } from 'uhop';
import { initBackend, describeBackend, loadMnist } from 'uhop/node';
import { runRetrievalExperiment } from 'uhop/experiments';

console.log(describeBackend(await initBackend()));
// UHOP_EXAMPLE_SMOKE=1: a tiny, fast run (the test suite runs every example this way).
const SMOKE = process.env.UHOP_EXAMPLE_SMOKE === '1';
const M = Number(process.argv[2] ?? (SMOKE ? 20 : 100));

// One memory set: the first M training images, pixels in [0, 1]; queries = the same images
// with half of their pixels zeroed (no rescaling of the survivors).
const { images } = loadMnist({ split: 'train', limit: M });
const memories = tf.tensor2d(images, [M, 28 * 28]);
const queries = maskQueries(memories, { fraction: 0.5, seed: 0 });
const error = (states: tf.Tensor) => tf.tidy(() => retrievalError(states, memories).mean.dataSync()[0]);

// Dense modern Hopfield: one step of softmax(beta * Q K^T) K.
const dense = retrieve(queries, memories, { beta: 1 });

// U-Hop: Stage I fits Phi (linear, from the identity) so the stored patterns spread out on
// the sphere; Stage II retrieves with softmax(beta * Phi(Q) Phi(K)^T) K.
const memory = new UHopMemory({ beta: 1, fitSteps: SMOKE ? 10 : 100, fitLr: 0.1, separationLoss: 'uniform' });
memory.store(memories);
const uhop = memory.retrieve(queries);
const loss = memory.lossTrace.dataSync();
console.log(`Stage I uniformity loss ${loss[0].toFixed(3)} -> ${loss[loss.length - 1].toFixed(3)}`);
console.log(`M=${M}: error dense ${error(dense.states).toFixed(2)}, U-Hop ${error(uhop.states).toFixed(2)}`);
tf.dispose([memories, queries, dense.states, uhop.states]);
memory.dispose();

// The same comparison as a sweep: memory sets drawn at random per seed, batched per size.
const res = await runRetrievalExperiment({
  sizes: SMOKE ? [10] : [10, 100],
  seeds: SMOKE ? 1 : 2,
  methods: ['dense', 'sparse', 'uhop'],
  noiseLevels: [],
  fit: { steps: SMOKE ? 5 : 50 },
});
for (const r of res.capacity) {
  console.log(
    `${r.method.padEnd(6)} M=${String(r.M).padEnd(4)} error ${r.error.mean.toFixed(2)} ± ${r.error.std.toFixed(2)}, exact ${(100 * r.exact.mean).toFixed(0)}%`,
  );
}
