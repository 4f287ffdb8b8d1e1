import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, assertClose } from '../helpers.js';
import { HopfieldPooling, type HopfieldPoolingArgs } from '../../src/layers/index.js';
import { addRow, layerNormRows, matmul, multiHeadSoftmax, toMat } from './reference.js';
import { assertNoLeakAsync, maxDiff, randomizeWeights, roundTrip, weight } from './util.js';
import { maxAbsDiff, splitHeads64, uhopAssociation } from './uhopReference.js';
import { SIMILARITY_KINDS } from '../../src/ops/similarity.js';

const [B, S, F] = [3, 7, 8];
const bags = () => tf.randomNormal([B, S, F], 0, 1, 'float32', 41);
const maskOf = () =>
  tf.tensor2d([
    [1, 1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 1, 1, 1],
    [1, 1, 0, 0, 0, 0, 0],
  ]);
const UHOP: HopfieldPoolingArgs = { featureMap: 'linear', fitSteps: 3, fitLr: 0.2 };

function pool(layer: tfl.layers.Layer, inputs: tf.Tensor | tf.Tensor[], kwargs: object = {}): tf.Tensor {
  return layer.apply(inputs, kwargs) as tf.Tensor;
}

forEachBackend('HopfieldPooling', () => {
  it('output shapes: flattened [B, quantity * out] (ml-jku) or [B, quantity, out]; association; symbolic', () => {
    const x = bags();
    const m = maskOf();
    assert.deepEqual(pool(new HopfieldPooling({ numHeads: 2, seed: 101 }), x).shape, [B, F]);
    assert.deepEqual(pool(new HopfieldPooling({ numHeads: 2, quantity: 3, seed: 102 }), [x, m]).shape, [B, 3 * F]);
    assert.deepEqual(pool(new HopfieldPooling({ quantity: 3, outputSize: 5, flatten: false, seed: 103 }), x).shape, [B, 3, 5]);
    const proj = tf.randomNormal([B, S, 6], 0, 1, 'float32', 301);
    const two = new HopfieldPooling({ numHeads: 4, quantity: 2, returnAssociation: true, concatBiasPattern: true, seed: 104 });
    const [o, a] = two.apply([x, proj, m]) as tf.Tensor[];
    assert.deepEqual(o.shape, [B, 2 * F]);
    assert.deepEqual(a.shape, [B, 4, 2, S + 1]);
    assert.deepEqual(
      two.computeOutputShape([
        [null, null, F],
        [null, null, 6],
        [null, null],
      ]),
      [
        [null, 2 * F],
        [null, 4, 2, null],
      ],
    );
    const inp = tfl.input({ shape: [null, F] });
    const mi = tfl.input({ shape: [null] });
    const y = new HopfieldPooling({ numHeads: 2, quantity: 2, ...UHOP, seed: 105 }).apply([inp, mi]) as tfl.SymbolicTensor;
    assert.deepEqual(y.shape, [null, 2 * F]);
    const model = tfl.model({ inputs: [inp, mi], outputs: y });
    assert.deepEqual((model.predict([x, m]) as tf.Tensor).shape, [B, 2 * F]);
    // Bags of another length through the same model.
    assert.deepEqual((model.predict([tf.ones([2, 3, F]), tf.ones([2, 3])]) as tf.Tensor).shape, [2, 2 * F]);
    tf.dispose([x, m, proj, o, a]);
  });

  it('equals a hand-written ml-jku HopfieldPooling (learned state, LayerNorms, softmax retrieval, out projection)', () => {
    const x = bags();
    const m = maskOf();
    const layer = new HopfieldPooling({ numHeads: 2, quantity: 2, flatten: false, seed: 106 });
    pool(layer, x).dispose();
    randomizeWeights(layer, 5);
    const y = pool(layer, [x, m]).arraySync() as number[][][];
    const r = (n: string) => toMat(weight(layer, n));
    const vec = (n: string) => weight(layer, n).arraySync() as number[];
    const ln = (mat: number[][], p: string) => layerNormRows(mat, 1e-5, vec(`${p}_gamma`), vec(`${p}_beta`));
    const state = (weight(layer, 'pooling_weights').arraySync() as number[][][])[0];
    const X = x.arraySync() as number[][][];
    const M = m.arraySync() as number[][];
    for (let b = 0; b < B; b++) {
      const Q = addRow(matmul(ln(state, 'state_norm'), r('query_kernel')), vec('query_bias'));
      const K = addRow(matmul(ln(X[b], 'stored_norm'), r('key_kernel')), vec('key_bias'));
      const V = addRow(matmul(ln(X[b], 'projection_norm'), r('value_kernel')), vec('value_bias'));
      const heads = multiHeadSoftmax(
        Q,
        K,
        V,
        2,
        1 / Math.sqrt(4),
        Q.map(() => M[b]),
      );
      assertClose(y[b].flat(), addRow(matmul(heads, r('output_kernel')), vec('output_bias')).flat(), 1e-5, `bag ${b}`);
    }
    tf.dispose([x, m]);
  });

  it('padding: padded instances change nothing (plain and U-Hop); mask as input, kwarg or Keras mask', () => {
    const x = bags();
    const m = maskOf();
    const x2 = tf.add(x, tf.mul(tf.reshape(tf.sub(1, m), [B, S, 1]), tf.randomNormal([B, S, F], 0, 4, 'float32', 42)));
    for (const opts of [{}, UHOP, { ...UHOP, featureMap: 'mlp' as const, separation: 'entmax15' as const, addZeroAssociation: true }]) {
      const layer = new HopfieldPooling({ numHeads: 2, quantity: 2, ...opts, seed: 107 });
      const a = pool(layer, [x, m]);
      assertClose(pool(layer, [x2, m]), a, 1e-5, `input ${JSON.stringify(opts)}`);
      assertClose(pool(layer, x2, { storedPatternPaddingMask: m }), a, 1e-5, 'kwarg');
      assert.ok(maxDiff(pool(layer, x2), a) > 1e-4, 'the mask must matter');
    }
    const zeroed = tf.mul(x, tf.expandDims(m, 2));
    const layer = new HopfieldPooling({ numHeads: 2, seed: 108 });
    const seq = tfl.sequential({ layers: [tfl.layers.masking({ maskValue: 0, inputShape: [S, F] }), layer] });
    assertClose(seq.predict(zeroed) as tf.Tensor, pool(layer, [zeroed, m]), 1e-5, 'Keras mask');
    tf.dispose([x, m, x2, zeroed]);
  });

  it('U-Hop: predict(bags)[i] equals predict(bags[i]); fit loss falls for every bag and head', () => {
    const x = bags();
    const m = maskOf();
    const inp = tfl.input({ shape: [S, F] });
    const mi = tfl.input({ shape: [S] });
    const layer = new HopfieldPooling({ numHeads: 2, ...UHOP, updateStepsMax: 1, seed: 109 });
    const model = tfl.model({ inputs: [inp, mi], outputs: layer.apply([inp, mi]) as tfl.SymbolicTensor });
    const all = model.predict([x, m]) as tf.Tensor;
    for (let i = 0; i < B; i++) {
      const one = model.predict([tf.slice(x, [i, 0, 0], [1, S, F]), tf.slice(m, [i, 0], [1, S])]) as tf.Tensor;
      assertClose(one, tf.slice(all, [i, 0], [1, F]), 1e-5, `bag ${i}`);
    }
    const trace = layer.fitLossTrace([x, m]).arraySync() as number[][][];
    assert.equal(trace.length, 4);
    for (let b = 0; b < B; b++) for (let h = 0; h < 2; h++) assert.ok(trace[3][b][h] < trace[0][b][h], `bag ${b} head ${h}`);
    tf.dispose([x, m, all]);
  });

  it("U-Hop forward pass: the association scores with Phi fitted on each bag's projected, unpadded instances (reference from fitFeatureMap), linear and mlp Phi, every similarity", () => {
    const x = bags();
    const m = maskOf();
    const X = x.arraySync() as number[][][];
    const M = m.arraySync() as number[][];
    for (const featureMap of ['linear', 'mlp'] as const) {
      for (const similarity of SIMILARITY_KINDS) {
        const what = `${featureMap} ${similarity}`;
        const make = (fitSteps: number) =>
          new HopfieldPooling({
            numHeads: 2,
            quantity: 2,
            featureMap,
            fitSteps,
            fitLr: featureMap === 'mlp' ? 0.1 : 1,
            similarity,
            returnAssociation: true,
            seed: 71,
          });
        // mlp at its default relative step (0.1). At relative step 1 the layer and this reference
        // differ by up to 0.6, and that is expected, not a defect of the layer (measured 2026-12-06,
        // cpu and wasm): only bag 2, the one with 2 real instances, differs (bags 0 and 1 agree to
        // 1e-6), and the reference itself moves by 0.2 to 0.4 when its keys change by a relative
        // 2e-7 (below float32 rounding), while every per-step loss of both fits agrees to 1e-5.
        // In 3 steps of size 1 that bag's fit reaches the loss floor (one head's loss 0): there
        // the 'normalized' rule still scales the rounding-noise gradient to a full relative step
        // (s = sqrt(ref / max(dir, tiny))), and a candidate whose loss equals the old one up to
        // rounding is accepted (lessEqual), so Phi wanders along equally good directions that
        // float32 rounding picks.
        // Two correct computations then end at different, equally fitted maps. (A strict
        // decrease test or a gradient-norm floor in src/ops/fit.ts would pin it; see the report.)
        const fitted = make(5);
        const plain = make(0);
        tf.dispose([pool(fitted, [x, m]), pool(plain, [x, m])]);
        randomizeWeights(fitted, 19);
        plain.setWeights(fitted.getWeights());
        const r = (n: string) => toMat(weight(fitted, n));
        const vec = (n: string) => weight(fitted, n).arraySync() as number[];
        const ln = (mat: number[][], pre: string) => layerNormRows(mat, 1e-5, vec(`${pre}_gamma`), vec(`${pre}_beta`));
        const state = (weight(fitted, 'pooling_weights').arraySync() as number[][][])[0];
        const qs = splitHeads64(addRow(matmul(ln(state, 'state_norm'), r('query_kernel')), vec('query_bias')), 2);
        const k = X.map((xb) => splitHeads64(addRow(matmul(ln(xb, 'stored_norm'), r('key_kernel')), vec('key_bias')), 2));
        const q = X.map(() => qs);
        const phi0 = fitted.weights.filter((w) => /phi0_/.test(w.originalName)).map((w) => w.read());
        const ref = uhopAssociation(q, k, phi0, fitted.uhop, 0.5, similarity, M);
        const ref0 = uhopAssociation(q, k, phi0, { ...fitted.uhop, fitSteps: 0 }, 0.5, similarity, M);
        const [o, a] = fitted.apply([x, m]) as tf.Tensor[];
        const [o0, a0] = plain.apply([x, m]) as tf.Tensor[];
        // Measured (cpu, wasm): within 7e-5 of the reference (mlp; 5e-6 linear); the fit moves the association by 0.14 to 0.50; a layer that skipped the fit is off by the latter.
        assert.ok(
          maxAbsDiff(a.arraySync(), ref) < 5e-4,
          `${what}: association vs the fitted reference, max |diff| ${maxAbsDiff(a.arraySync(), ref)}`,
        );
        assert.ok(maxAbsDiff(a0.arraySync(), ref0) < 5e-4, `${what}: fitSteps 0 vs the Phi0 reference`);
        assert.ok(maxAbsDiff(ref, ref0) > 1e-2, `${what}: the fit must change the association (max change ${maxAbsDiff(ref, ref0)})`);
        tf.dispose([o, a, o0, a0]);
      }
    }
    tf.dispose([x, m]);
  });

  it('MIL model: fit / evaluate / predict, gradients reach the state patterns and Phi0, save / load', async () => {
    const x = bags();
    const m = maskOf();
    const labels = tf.tensor2d([[1], [0], [1]]);
    const inp = tfl.input({ shape: [S, F] });
    const mi = tfl.input({ shape: [S] });
    const h = tfl.layers
      .dense({ units: 8, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }) })
      .apply(inp) as tfl.SymbolicTensor;
    const pooled = new HopfieldPooling({ numHeads: 2, ...UHOP, name: 'pool', seed: 110 }).apply([h, mi]) as tfl.SymbolicTensor;
    const logit = tfl.layers
      .dense({ units: 1, activation: 'sigmoid', kernelInitializer: tfl.initializers.glorotUniform({ seed: 202 }) })
      .apply(pooled) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: [inp, mi], outputs: logit });
    model.compile({ optimizer: tf.train.adam(0.02), loss: 'binaryCrossentropy' });
    const hist = await model.fit([x, m], labels, { epochs: 20, batchSize: B, verbose: 0 });
    const losses = hist.history.loss as number[];
    assert.ok(losses[losses.length - 1] < losses[0], `loss ${losses[0]} -> ${losses[losses.length - 1]}`);
    (model.evaluate([x, m], labels) as tf.Scalar).dispose();
    const poolLayer = model.getLayer('pool');
    const { grads } = tf.variableGrads(() => tf.mean(model.apply([x, m], { training: true }) as tf.Tensor) as tf.Scalar);
    for (const w of poolLayer.trainableWeights) {
      const g = grads[w.name];
      assert.ok(g && tf.norm(g).dataSync()[0] > 0, `no gradient for ${w.originalName}`);
    }
    tf.dispose(Object.values(grads));
    const before = model.predict([x, m]) as tf.Tensor;
    const loaded = await roundTrip(model);
    assertClose(loaded.predict([x, m]) as tf.Tensor, before, 1e-6);
    tf.dispose([x, m, labels, before]);
  });

  it('degenerate bags (all padded, one instance) give finite outputs and gradients, U-Hop on', () => {
    const x = tf.randomNormal([3, 4, F], 0, 1, 'float32', 44);
    const m = tf.tensor2d([
      [0, 0, 0, 0],
      [1, 0, 0, 0],
      [1, 1, 0, 0],
    ]);
    for (const opts of [UHOP, { ...UHOP, featureMap: 'mlp' as const, separation: 'sparsemax' as const, addZeroAssociation: true }]) {
      const layer = new HopfieldPooling({ numHeads: 2, ...opts, seed: 111 });
      const y = pool(layer, [x, m]);
      assert.ok(tf.all(tf.isFinite(y)).dataSync()[0], 'finite output');
      const { value, grads } = tf.variableGrads(() => tf.sum(pool(layer, [x, m], { training: true })) as tf.Scalar);
      for (const g of Object.values(grads)) assert.ok(tf.all(tf.isFinite(g)).dataSync()[0], 'finite gradient');
      tf.dispose([y, value, ...Object.values(grads)]);
    }
    tf.dispose([x, m]);
  });

  it('getConfig / fromConfig round trip', () => {
    const x = bags();
    const layer = new HopfieldPooling({
      quantity: 2,
      numHeads: 2,
      stateTrainable: false,
      flatten: false,
      featureMap: 'mlp',
      fitSteps: 1,
      seed: 3,
    });
    const y = pool(layer, x);
    const cfg = layer.getConfig();
    const copy = tfl.layers.Layer.fromConfig(HopfieldPooling, cfg) as HopfieldPooling;
    assert.deepEqual(copy.getConfig(), cfg);
    assertClose(pool(copy, x), y, 1e-6, 'same seed, same initial weights');
    assert.ok(layer.nonTrainableWeights.some((w) => w.originalName.endsWith('pooling_weights')));
    tf.dispose([x, y]);
  });

  it('no tensor leaks over 100 training steps and 100 predicts', async () => {
    const x = tf.randomNormal([2, 5, F], 0, 1, 'float32', 43);
    const m = tf.tensor2d([
      [1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1],
    ]);
    const y = tf.tensor2d([[1], [0]]);
    const inp = tfl.input({ shape: [5, F] });
    const mi = tfl.input({ shape: [5] });
    const pooled = new HopfieldPooling({ numHeads: 2, ...UHOP, dropout: 0.1, seed: 112 }).apply([inp, mi]) as tfl.SymbolicTensor;
    const model = tfl.model({
      inputs: [inp, mi],
      outputs: tfl.layers
        .dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 203 }) })
        .apply(pooled) as tfl.SymbolicTensor,
    });
    model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    await assertNoLeakAsync(() => model.fit([x, m], y, { epochs: 1, batchSize: 2, verbose: 0 }), 100, 'model.fit');
    await assertNoLeakAsync(() => tf.dispose(model.predict([x, m]) as tf.Tensor), 100, 'predict');
    tf.dispose([x, m, y]);
  });

  it('clear errors', () => {
    const x = bags();
    assert.throws(() => new HopfieldPooling({ quantity: 0 }), /HopfieldPooling: quantity must be an integer >= 1, got 0/);
    assert.throws(() => new HopfieldPooling({ flatten: 'yes' as never }), /flatten must be a boolean/);
    assert.throws(() => new HopfieldPooling({ quantities: 2 } as never), /HopfieldPooling: unknown option 'quantities'/);
    assert.throws(() => new HopfieldPooling().apply([x, x, x]), /got 3 inputs of ranks \[3,3,3\]/);
    assert.throws(
      () => pool(new HopfieldPooling({ seed: 117 }), [x, tf.ones([B, S + 1])]),
      /storedPatternPaddingMask must be \[batch=3, stored patterns=7\], got \[3,8\]/,
    );
    x.dispose();
  });
});
