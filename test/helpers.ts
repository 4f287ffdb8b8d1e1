import * as tf from '@tensorflow/tfjs-core';
import { describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, type BackendName } from '../src/node/backend.js';

/** Backends every test suite of the core runs on: both are always available. */
export const TEST_BACKENDS: BackendName[] = (process.env.UHOP_TEST_BACKENDS ?? 'cpu,wasm')
  .split(',')
  .map((s) => s.trim() as BackendName);

/** Runs `body` as one describe() per backend, with that backend active. */
export function forEachBackend(name: string, body: (backend: BackendName) => void): void {
  for (const backend of TEST_BACKENDS) {
    describe(`${name} [${backend}]`, () => {
      before(async () => {
        await initBackend(backend);
      });
      body(backend);
    });
  }
}

/** Asserts two arrays (or tensors) agree elementwise within `tol` (absolute + relative). */
export function assertClose(actual: tf.Tensor | ArrayLike<number>, expected: tf.Tensor | ArrayLike<number>, tol = 1e-5, what = ''): void {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const e = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  assert.equal(a.length, e.length, `${what} length ${a.length} vs ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - e[i]);
    if (!(diff <= tol * (1 + Math.abs(e[i])))) {
      assert.fail(`${what} element ${i}: ${a[i]} vs ${e[i]} (|diff| ${diff} > tol ${tol})`);
    }
  }
}

/** Asserts `fn` leaves the number of live tensors unchanged over `repeats` calls. */
export function assertNoLeak(fn: () => unknown, repeats = 3): void {
  const run = () => {
    const out = fn();
    tf.dispose(out as tf.TensorContainer);
  };
  run(); // warm-up: lazily created constants are allowed once
  const before = tf.memory().numTensors;
  for (let i = 0; i < repeats; i++) run();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
}

/**
 * Central finite-difference check of d(sum(w * f(x)))/dx against tf.grad, in float32;
 * `w` is a fixed random weighting so that every output element matters.
 */
export function checkGradient(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, { h = 1e-2, tol = 2e-2 } = {}): void {
  tf.tidy(() => {
    const y0 = f(x);
    const w = tf.randomNormal(y0.shape, 0, 1, 'float32', 7);
    const scalar = (z: tf.Tensor) => tf.sum(tf.mul(f(z), w));
    const analytic = tf.grad(scalar)(x).dataSync();
    const xs = x.dataSync();
    for (let i = 0; i < xs.length; i++) {
      const plus = Float32Array.from(xs);
      const minus = Float32Array.from(xs);
      plus[i] += h;
      minus[i] -= h;
      const fp = scalar(tf.tensor(plus, x.shape)).dataSync()[0];
      const fm = scalar(tf.tensor(minus, x.shape)).dataSync()[0];
      const numeric = (fp - fm) / (2 * h);
      const diff = Math.abs(numeric - analytic[i]);
      if (!(diff <= tol * (1 + Math.abs(numeric)))) {
        assert.fail(`gradient element ${i}: analytic ${analytic[i]} vs finite-difference ${numeric}`);
      }
    }
  });
}
