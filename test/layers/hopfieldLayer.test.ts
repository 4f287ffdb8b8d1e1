import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, assertClose } from '../helpers.js';
import { HopfieldLayer, type HopfieldLayerArgs } from '../../src/layers/index.js';
import { addRow, layerNormRows, matmul, multiHeadSoftmax, toMat } from './reference.js';
import { assertNoLeakAsync, randomizeWeights, roundTrip, weight } from './util.js';
import { maxAbsDiff, splitHeads64, uhopAssociation } from './uhopReference.js';
import { SIMILARITY_KINDS } from '../../src/ops/similarity.js';

const [B, L, F, Q] = [3, 4, 8, 10];
const x = () => tf.randomNormal([B, L, F], 0, 1, 'float32', 51);
const UHOP: HopfieldLayerArgs = { featureMap: 'linear', fitSteps: 3, fitLr: 0.2 };

function look(layer: tfl.layers.Layer, inputs: tf.Tensor, kwargs: object = {}): tf.Tensor {
  return layer.apply(inputs, kwargs) as tf.Tensor;
}

forEachBackend('HopfieldLayer', () => {
  it('output shapes, association, symbolic model', () => {
    const xs = x();
    assert.deepEqual(look(new HopfieldLayer({ quantity: Q, numHeads: 2, seed: 101 }), xs).shape, [B, L, F]);
    const l = new HopfieldLayer({
      quantity: Q,
      numHeads: 4,
      outputSize: 3,
      returnAssociation: true,
      addZeroAssociation: true,
      ...UHOP,
      seed: 102,
    });
    const [o, a] = l.apply(xs) as tf.Tensor[];
    assert.deepEqual(o.shape, [B, L, 3]);
    assert.deepEqual(a.shape, [B, 4, L, Q + 1]);
    assert.deepEqual(l.computeOutputShape([null, null, F]), [
      [null, null, 3],
      [null, 4, null, Q + 1],
    ]);
    const model = tfl.sequential({ layers: [new HopfieldLayer({ inputShape: [L, F], quantity: Q, numHeads: 2, ...UHOP, seed: 103 })] });
    assert.deepEqual(model.outputs[0].shape, [null, L, F]);
    assert.deepEqual((model.predict(xs) as tf.Tensor).shape, [B, L, F]);
    tf.dispose([xs, o, a]);
  });

  it('equals a hand-written lookup: softmax(beta Q(x) K(stored)^T) V(stored or targets), out projection', () => {
    const xs = x();
    for (const sep of [false, true]) {
      const layer = new HopfieldLayer({ quantity: Q, numHeads: 2, lookupWeightsAsSeparated: sep, seed: 104 });
      look(layer, xs).dispose();
      randomizeWeights(layer, 9);
      const y = look(layer, xs).arraySync() as number[][][];
      const r = (n: string) => toMat(weight(layer, n));
      const vec = (n: string) => weight(layer, n).arraySync() as number[];
      const ln = (m: number[][], p: string) => layerNormRows(m, 1e-5, vec(`${p}_gamma`), vec(`${p}_beta`));
      const stored = (weight(layer, 'lookup_weights').arraySync() as number[][][])[0];
      const targets = sep ? (weight(layer, 'target_weights').arraySync() as number[][][])[0] : stored;
      const K = addRow(matmul(ln(stored, 'stored_norm'), r('key_kernel')), vec('key_bias'));
      const V = addRow(matmul(ln(targets, 'projection_norm'), r('value_kernel')), vec('value_bias'));
      const X = xs.arraySync() as number[][][];
      for (let b = 0; b < B; b++) {
        const Qm = addRow(matmul(ln(X[b], 'state_norm'), r('query_kernel')), vec('query_bias'));
        const ref = addRow(matmul(multiHeadSoftmax(Qm, K, V, 2, 0.5), r('output_kernel')), vec('output_bias'));
        assertClose(y[b].flat(), ref.flat(), 1e-5, `separated ${sep}, sample ${b}`);
      }
    }
    xs.dispose();
  });

  it('U-Hop: one fit per head shared by the batch; predict(x)[i] equals predict(x[i]); the fit loss falls', () => {
    const xs = x();
    const layer = new HopfieldLayer({ quantity: Q, numHeads: 2, seed: 11, ...UHOP });
    const all = look(layer, xs);
    for (let i = 0; i < B; i++)
      assertClose(look(layer, tf.slice(xs, [i, 0, 0], [1, L, F])), tf.slice(all, [i, 0, 0], [1, L, F]), 1e-5, `sample ${i}`);
    const trace = layer.fitLossTrace(xs);
    assert.deepEqual(trace.shape, [4, 1, 2]);
    const t = trace.arraySync() as number[][][];
    for (let h = 0; h < 2; h++) assert.ok(t[3][0][h] < t[0][0][h], `head ${h}`);
    tf.dispose([xs, all, trace]);
  });

  it('U-Hop forward pass: the association scores with Phi fitted on the projected stored patterns (reference from fitFeatureMap), linear and mlp Phi, every similarity', () => {
    const xs = x();
    const X = xs.arraySync() as number[][][];
    for (const featureMap of ['linear', 'mlp'] as const) {
      for (const similarity of SIMILARITY_KINDS) {
        const what = `${featureMap} ${similarity}`;
        const make = (fitSteps: number) =>
          new HopfieldLayer({ quantity: Q, numHeads: 2, featureMap, fitSteps, fitLr: 1, similarity, returnAssociation: true, seed: 61 });
        const fitted = make(5);
        const plain = make(0);
        tf.dispose([look(fitted, xs), look(plain, xs)]);
        randomizeWeights(fitted, 17);
        plain.setWeights(fitted.getWeights());
        const r = (n: string) => toMat(weight(fitted, n));
        const vec = (n: string) => weight(fitted, n).arraySync() as number[];
        const ln = (m: number[][], pre: string) => layerNormRows(m, 1e-5, vec(`${pre}_gamma`), vec(`${pre}_beta`));
        const stored = (weight(fitted, 'lookup_weights').arraySync() as number[][][])[0];
        const K = addRow(matmul(ln(stored, 'stored_norm'), r('key_kernel')), vec('key_bias'));
        const q = X.map((xb) => splitHeads64(addRow(matmul(ln(xb, 'state_norm'), r('query_kernel')), vec('query_bias')), 2));
        const phi0 = fitted.weights.filter((w) => /phi0_/.test(w.originalName)).map((w) => w.read());
        const ref = uhopAssociation(q, [splitHeads64(K, 2)], phi0, fitted.uhop, 0.5, similarity);
        const ref0 = uhopAssociation(q, [splitHeads64(K, 2)], phi0, { ...fitted.uhop, fitSteps: 0 }, 0.5, similarity);
        const [o, a] = fitted.apply(xs) as tf.Tensor[];
        const [o0, a0] = plain.apply(xs) as tf.Tensor[];
        // Measured (cpu, wasm): within 1e-5 of the reference; under the 'normalized' step rule the fit
        // moves the association by 0.0039 (linear, dot) to 0.035, so a layer that skipped the fit would
        // be off by at least 0.0039, far outside the 5e-4 match: the bar below is set under that.
        assert.ok(
          maxAbsDiff(a.arraySync(), ref) < 5e-4,
          `${what}: association vs the fitted reference, max |diff| ${maxAbsDiff(a.arraySync(), ref)}`,
        );
        assert.ok(maxAbsDiff(a0.arraySync(), ref0) < 5e-4, `${what}: fitSteps 0 vs the Phi0 reference`);
        assert.ok(maxAbsDiff(ref, ref0) > 2e-3, `${what}: the fit must change the association (max change ${maxAbsDiff(ref, ref0)})`);
        tf.dispose([o, a, o0, a0]);
      }
    }
    xs.dispose();
  });

  it('trains (Sequential fit), gradients reach the stored patterns and Phi0, save / load, config round trip', async () => {
    const xs = x();
    const target = tf.randomNormal([B, L, F], 0, 1, 'float32', 52);
    const layer = new HopfieldLayer({ inputShape: [L, F], quantity: Q, numHeads: 2, lookupWeightsAsSeparated: true, ...UHOP, seed: 105 });
    const model = tfl.sequential({ layers: [layer] });
    model.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
    const h = await model.fit(xs, target, { epochs: 15, batchSize: B, verbose: 0 });
    const losses = h.history.loss as number[];
    assert.ok(losses[losses.length - 1] < losses[0]);
    const { grads } = tf.variableGrads(() => tf.losses.meanSquaredError(target, look(layer, xs, { training: true })) as tf.Scalar);
    for (const name of ['lookup_weights', 'target_weights', 'phi0_kernel']) {
      const w = layer.trainableWeights.find((v) => v.originalName.endsWith(name))!;
      assert.ok(tf.norm(grads[w.name]).dataSync()[0] > 0, name);
    }
    tf.dispose(Object.values(grads));
    const before = model.predict(xs) as tf.Tensor;
    const loaded = await roundTrip(model);
    assertClose(loaded.predict(xs) as tf.Tensor, before, 1e-6);
    const cfg = layer.getConfig();
    assert.deepEqual((tfl.layers.Layer.fromConfig(HopfieldLayer, cfg) as HopfieldLayer).getConfig(), cfg);
    tf.dispose([xs, target, before]);
  });

  it('no tensor leaks over 100 training steps and 100 predicts', async () => {
    const xs = tf.randomNormal([2, 3, F], 0, 1, 'float32', 53);
    const model = tfl.sequential({ layers: [new HopfieldLayer({ inputShape: [3, F], quantity: 5, numHeads: 2, ...UHOP, seed: 106 })] });
    model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    await assertNoLeakAsync(() => model.fit(xs, xs, { epochs: 1, batchSize: 2, verbose: 0 }), 100, 'model.fit');
    await assertNoLeakAsync(() => tf.dispose(model.predict(xs) as tf.Tensor), 100, 'predict');
    xs.dispose();
  });

  it('clear errors', () => {
    assert.throws(() => new HopfieldLayer({ quantity: 1.5 }), /HopfieldLayer: quantity must be an integer >= 1, got 1.5/);
    assert.throws(
      () => new HopfieldLayer({ lookupTargetsAsTrainable: false }),
      /lookupTargetsAsTrainable applies to lookupWeightsAsSeparated true only/,
    );
    assert.throws(() => new HopfieldLayer().apply([tf.zeros([1, 2, 3]), tf.zeros([1, 2, 3])]), /expects one input \[batch, n, features\]/);
  });
});
