/**
 * Padding has no influence whatever it holds: NaN, Inf, -Inf or 1e30 in padded (mask 0)
 * rows give the same outputs as zeros there, and finite gradients equal to those of the
 * clean input, for HopfieldPooling, Hopfield and milClassifier with every pooling.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { milClassifier, MIL_POOLINGS } from '../../src/models/mil.js';
import { forEachBackend, assertClose } from '../helpers.js';

const B = 2;
const S = 5;
const F = 4;
const FILLS = [NaN, Infinity, -Infinity, 1e30];
// Sample 0 has two padded instances, sample 1 none.
const MASK = [
  [1, 0, 1, 1, 0],
  [1, 1, 1, 1, 1],
];

/** A seeded bag batch whose padded rows hold `fill` (0 gives the clean reference). */
function bags(fill: number): tf.Tensor3D {
  const x = tf.randomNormal([B, S, F], 0, 1, 'float32', 17).arraySync() as number[][][];
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) if (MASK[b][s] === 0) x[b][s] = x[b][s].map(() => fill);
  return tf.tensor3d(x);
}

/** Output and the gradient of a fixed weighted sum of it w.r.t. every trainable weight. */
function outputAndGrads(run: () => tf.Tensor, weights: tfl.LayerVariable[]): { y: Float32Array; grads: Float32Array[] } {
  const y = tf.tidy(() => run().dataSync() as Float32Array);
  const vars = weights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { value, grads } = tf.variableGrads(
    () =>
      tf.tidy(() => {
        const out = run();
        return tf.sum(tf.mul(out, tf.randomNormal(out.shape, 0, 1, 'float32', 3))) as tf.Scalar;
      }),
    vars,
  );
  const g = vars.map((v) => grads[v.name].dataSync() as Float32Array);
  tf.dispose([value, ...Object.values(grads)]);
  return { y, grads: g };
}

function assertSame(what: string, got: { y: Float32Array; grads: Float32Array[] }, ref: { y: Float32Array; grads: Float32Array[] }): void {
  assert.ok(got.y.every(Number.isFinite), `${what}: non-finite output`);
  assertClose(got.y, ref.y, 1e-5, `${what}: output`);
  got.grads.forEach((g, i) => {
    assert.ok(g.every(Number.isFinite), `${what}: non-finite gradient to weight ${i}`);
    assertClose(g, ref.grads[i], 1e-4, `${what}: gradient to weight ${i}`);
  });
}

forEachBackend('padding has no influence whatever its values', () => {
  it('HopfieldPooling (plain and U-Hop): NaN, Inf, -Inf, 1e30 in padded rows', () => {
    for (const featureMap of ['none', 'linear'] as const) {
      const layer = new HopfieldPooling({ numHeads: 2, seed: 5, featureMap, ...(featureMap === 'linear' ? { fitSteps: 2 } : {}) });
      const mask = tf.tensor2d(MASK);
      const clean = bags(0);
      const run = (x: tf.Tensor) => () => layer.apply([x, mask], { training: true }) as tf.Tensor;
      tf.tidy(() => run(clean)());
      const ref = outputAndGrads(run(clean), layer.trainableWeights);
      for (const fill of FILLS) {
        const x = bags(fill);
        assertSame(`HopfieldPooling ${featureMap} fill ${fill}`, outputAndGrads(run(x), layer.trainableWeights), ref);
        x.dispose();
      }
      tf.dispose([mask, clean]);
      layer.dispose();
    }
  });

  it('Hopfield (self-association with a padding mask): outputs at real positions and gradients', () => {
    const layer = new Hopfield({ numHeads: 2, seed: 6, updateStepsMax: 1 });
    const mask = tf.tensor2d(MASK);
    const keep = tf.reshape(mask, [B, S, 1]);
    const clean = bags(0);
    // Outputs at padded query positions are not defined by the layer: compare the real ones.
    const run = (x: tf.Tensor) => () => tf.mul(layer.apply([x, mask]) as tf.Tensor, keep);
    tf.tidy(() => run(clean)());
    const ref = outputAndGrads(run(clean), layer.trainableWeights);
    for (const fill of FILLS) {
      const x = bags(fill);
      assertSame(`Hopfield fill ${fill}`, outputAndGrads(run(x), layer.trainableWeights), ref);
      x.dispose();
    }
    tf.dispose([mask, keep, clean]);
    layer.dispose();
  });

  for (const pooling of MIL_POOLINGS) {
    it(`milClassifier pooling '${pooling}': predictions and gradients ignore padded values`, () => {
      const model = milClassifier({
        numFeatures: F,
        hidden: [6],
        pooling,
        seed: 7,
        ...(pooling === 'hopfield' ? { hopfield: { numHeads: 2, featureMap: 'linear', fitSteps: 2 } } : {}),
      });
      const mask = tf.tensor2d(MASK);
      const clean = bags(0);
      const run = (x: tf.Tensor) => () => model.apply([x, mask], { training: true }) as tf.Tensor;
      const ref = outputAndGrads(run(clean), model.trainableWeights);
      for (const fill of FILLS) {
        const x = bags(fill);
        assertSame(`mil ${pooling} fill ${fill}`, outputAndGrads(run(x), model.trainableWeights), ref);
        x.dispose();
      }
      tf.dispose([mask, clean]);
      model.dispose();
    });
  }
});
