// The wasm thread count is chosen once per process, and node --test runs each file in its own
// process: this file owns its process's wasm backend and starts it with 2 threads.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients; tfjs-layers registers them on load (tf.grad below).
import '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/node/backend.js';
import { setWasmThreads, wasmThreadsInUse } from '../../src/node/wasmThreads.js';
import { assertClose } from '../helpers.js';

/** Products big enough for XNNPACK to split across threads, a gradient, a depthwise convolution, a softmax. */
function workload(): tf.Tensor[] {
  return tf.tidy(() => {
    const x = tf.randomNormal([4, 64, 32], 0, 1, 'float32', 3);
    const a = tf.randomNormal([512, 256], 0, 1, 'float32', 4);
    const b = tf.randomNormal([256, 384], 0, 1, 'float32', 5);
    const img = tf.randomNormal([1, 32, 32, 64], 0, 1, 'float32', 6);
    const filter = tf.randomNormal([3, 3, 64, 1], 0, 1, 'float32', 7);
    const g = tf.grad((m: tf.Tensor) => tf.sum(tf.square(tf.matMul(m, b))))(a);
    return [
      tf.matMul(a, b),
      g,
      tf.softmax(tf.matMul(x, x, false, true)),
      tf.depthwiseConv2d(img as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same'),
    ];
  });
}

describe('wasm with 2 threads (threaded SIMD build on worker_threads)', () => {
  it('checks its arguments before anything starts', async () => {
    await assert.rejects(initBackend('wasm', { threads: 0 }), /initBackend: threads must be an integer from 1 to 8, got '0'/);
    await assert.rejects(initBackend('wasm', { threads: 1.5 }), /got '1.5'/);
    await assert.rejects(
      initBackend('cpu', { threads: 2 }),
      /option threads applies to the wasm backend only, got threads 2 with backend 'cpu'/,
    );
    await assert.rejects(initBackend('wasm', { thread: 2 } as object), /initBackend: unknown option 'thread' \(did you mean 'threads'\?\)/);
    assert.throws(() => setWasmThreads(9), /setWasmThreads: threads must be an integer from 1 to 8, got 9/);
    assert.equal(wasmThreadsInUse(), undefined, 'no wasm backend was created by the rejected calls');
  });

  it('runs on 2 threads and computes what the cpu backend computes', async () => {
    await initBackend('cpu');
    const expected = workload();
    const want = expected.map((t) => t.dataSync());
    tf.dispose(expected);
    assert.equal((await initBackend('wasm', { threads: 2 })).backend, 'wasm');
    assert.equal(wasmThreadsInUse(), 2);
    const got = workload();
    // Sums of 256-384 products in float32 in another order (tiles split across threads): about
    // 1e-4 of the partial sums' size. A wrong split would be off by whole terms.
    got.forEach((t, i) => assertClose(t, want[i], 1e-3, `output ${i}`));
    tf.dispose(got);
  });

  it('keeps its thread count: the same count again is fine, another one is an error', async () => {
    assert.equal((await initBackend('wasm', { threads: 2 })).backend, 'wasm');
    await assert.rejects(
      initBackend('wasm', { threads: 1 }),
      /already runs with 2 thread\(s\) in this process, so threads 1 cannot take effect/,
    );
    assert.equal(wasmThreadsInUse(), 2);
  });
});
