import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, assertClose } from '../helpers.js';
import { Hopfield, type HopfieldArgs } from '../../src/layers/index.js';
import { addRow, layerNormRows, matmul, multiHeadSoftmax, toMat, type Mat } from './reference.js';
import { assertNoLeakAsync, maxDiff, randomizeWeights, roundTrip, weight } from './util.js';
import { maxAbsDiff, splitHeads64, uhopAssociation } from './uhopReference.js';
import { SIMILARITY_KINDS } from '../../src/ops/similarity.js';

const [B, S, F] = [3, 6, 8];
const x = () => tf.randomNormal([B, S, F], 0, 1, 'float32', 21);
const UHOP: HopfieldArgs = { featureMap: 'linear', fitSteps: 3, fitLr: 0.2 };

function out(layer: tfl.layers.Layer, inputs: tf.Tensor | tf.Tensor[], kwargs: object = {}): tf.Tensor {
  return layer.apply(inputs, kwargs) as tf.Tensor;
}

/** ml-jku's Hopfield (defaults: input LayerNorms, biases, one step, out projection) in float64, one sample. */
function referenceSample(layer: Hopfield, stored: Mat, state: Mat, proj: Mat, H: number, beta: number, mask?: number[][]): Mat {
  const r = (n: string) => toMat(weight(layer, n));
  const vec = (n: string) => weight(layer, n).arraySync() as number[];
  const ln = (m: Mat, p: string) => layerNormRows(m, 1e-5, vec(`${p}_gamma`), vec(`${p}_beta`));
  const Q = addRow(matmul(ln(state, 'state_norm'), r('query_kernel')), vec('query_bias'));
  const K = addRow(matmul(ln(stored, 'stored_norm'), r('key_kernel')), vec('key_bias'));
  const V = addRow(matmul(ln(proj, 'projection_norm'), r('value_kernel')), vec('value_bias'));
  return addRow(matmul(multiHeadSoftmax(Q, K, V, H, beta, mask), r('output_kernel')), vec('output_bias'));
}

forEachBackend('Hopfield', () => {
  it('output shapes: self-association, [stored, state, projection], trailing mask, association, symbolic', () => {
    const xs = x();
    assert.deepEqual(out(new Hopfield({ numHeads: 2, seed: 101 }), xs).shape, [B, S, F]);
    assert.deepEqual(out(new Hopfield({ numHeads: 2, seed: 102 }), [xs, tf.ones([B, S])]).shape, [B, S, F]);
    const stored = tf.randomNormal([B, S, 5], 0, 1, 'float32', 301);
    const state = tf.randomNormal([B, 4, 6], 0, 1, 'float32', 302);
    const proj = tf.randomNormal([B, S, 7], 0, 1, 'float32', 303);
    const h = new Hopfield({
      numHeads: 3,
      hiddenSize: 4,
      patternSize: 5,
      outputSize: 9,
      returnAssociation: true,
      addZeroAssociation: true,
      seed: 103,
    });
    const [o, a] = h.apply([stored, state, proj]) as tf.Tensor[];
    assert.deepEqual(o.shape, [B, 4, 9]);
    assert.deepEqual(a.shape, [B, 3, 4, S + 1]);
    assert.deepEqual(
      h.computeOutputShape([
        [null, S, 5],
        [null, 4, 6],
        [null, S, 7],
      ]),
      [
        [null, 4, 9],
        [null, 3, 4, S + 1],
      ],
    );
    const noOut = new Hopfield({ numHeads: 2, patternSize: 3, disableOutProjection: true, seed: 104 });
    assert.deepEqual(out(noOut, xs).shape, [B, S, 6]);
    // Symbolic tensors in a functional model, with the padding mask as an input.
    const inp = tfl.input({ shape: [S, F] });
    const m = tfl.input({ shape: [S] });
    const y = new Hopfield({ numHeads: 2, ...UHOP, seed: 105 }).apply([inp, m]) as tfl.SymbolicTensor;
    assert.deepEqual(y.shape, [null, S, F]);
    const model = tfl.model({ inputs: [inp, m], outputs: y });
    const p = model.predict([xs, tf.ones([B, S])]) as tf.Tensor;
    assert.deepEqual(p.shape, [B, S, F]);
    tf.dispose([xs, stored, state, proj, o, a, p]);
  });

  it('default options equal a hand-written ml-jku Hopfield (LayerNorms, projections, softmax(beta QK^T)V, out projection) to 1e-5', () => {
    const xs = x();
    const layer = new Hopfield({ numHeads: 2, seed: 106 });
    out(layer, xs).dispose();
    randomizeWeights(layer, 3);
    const y = out(layer, xs).arraySync() as number[][][];
    const X = xs.arraySync() as number[][][];
    for (let b = 0; b < B; b++)
      assertClose(y[b].flat(), referenceSample(layer, X[b], X[b], X[b], 2, 1 / Math.sqrt(4)).flat(), 1e-5, `sample ${b}`);
    // Three inputs of different widths, hiddenSize / patternSize / outputSize / beta given.
    const stored = tf.randomNormal([B, S, 5], 0, 1, 'float32', 4);
    const state = tf.randomNormal([B, 4, 6], 0, 1, 'float32', 5);
    const proj = tf.randomNormal([B, S, 7], 0, 1, 'float32', 6);
    const l3 = new Hopfield({ numHeads: 3, hiddenSize: 4, patternSize: 2, outputSize: 9, beta: 0.3, seed: 107 });
    out(l3, [stored, state, proj]).dispose();
    randomizeWeights(l3, 7);
    const y3 = out(l3, [stored, state, proj]).arraySync() as number[][][];
    const [St, Sa, Pr] = [stored, state, proj].map((t) => t.arraySync() as number[][][]);
    for (let b = 0; b < B; b++)
      assertClose(y3[b].flat(), referenceSample(l3, St[b], Sa[b], Pr[b], 3, 0.3).flat(), 1e-5, `3 inputs, sample ${b}`);
    tf.dispose([xs, stored, state, proj]);
  });

  it('padding mask (kwarg, trailing input or Keras mask): padded stored patterns change nothing', () => {
    const xs = x();
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
      [1, 0, 1, 0, 1, 1],
    ]);
    const noise = tf.mul(tf.reshape(tf.sub(1, mask), [B, S, 1]), tf.randomNormal([B, S, F], 0, 3, 'float32', 8));
    const x2 = tf.add(xs, noise);
    const stored = tf.randomNormal([B, S, F], 0, 1, 'float32', 9);
    const stored2 = tf.add(stored, noise);
    const state = tf.randomNormal([B, 2, F], 0, 1, 'float32', 10);
    for (const opts of [{}, UHOP, { ...UHOP, separation: 'sparsemax' as const, concatBiasPattern: true, addZeroAssociation: true }]) {
      const layer = new Hopfield({ numHeads: 2, ...opts, seed: 108 });
      const a = out(layer, [stored, state, stored], { storedPatternPaddingMask: mask });
      const b = out(layer, [stored2, state, stored2], { storedPatternPaddingMask: mask });
      assertClose(b, a, 1e-5, `kwarg ${JSON.stringify(opts)}`);
      const c = out(layer, [stored2, state, stored2, mask]);
      assertClose(c, a, 1e-5, 'trailing mask input');
      // Self-association: the real rows' outputs do not depend on the padded rows.
      const s1 = out(layer, [xs, mask]);
      const s2 = out(layer, [x2, mask]);
      assertClose(tf.mul(s2, tf.expandDims(mask, 2)), tf.mul(s1, tf.expandDims(mask, 2)), 1e-5, 'self-association');
      tf.dispose([a, b, c, s1, s2]);
    }
    // Keras masking: a Masking layer's mask reaches the layer and acts as the padding mask.
    const zeroed = tf.mul(xs, tf.expandDims(mask, 2));
    const hop = new Hopfield({ numHeads: 2, seed: 109 });
    const seq = tfl.sequential({ layers: [tfl.layers.masking({ maskValue: 0, inputShape: [S, F] }), hop] });
    const viaKeras = seq.predict(zeroed) as tf.Tensor;
    const explicit = out(hop, [zeroed, mask]);
    assertClose(viaKeras, explicit, 1e-5, 'Keras mask');
    assert.ok(maxDiff(explicit, out(hop, zeroed)) > 1e-4, 'the mask must matter');
    tf.dispose([xs, mask, noise, x2, stored, stored2, state, zeroed, viaKeras, explicit]);
  });

  it('associationMask: a causal mask makes position i independent of later positions', () => {
    const xs = x();
    const causal = tf.linalg.bandPart(tf.ones([S, S]), -1, 0);
    const later = tf.concat([tf.zeros([B, S - 2, F]), tf.randomNormal([B, 2, F], 0, 3, 'float32', 11)], 1);
    const layer = new Hopfield({ numHeads: 2, seed: 110 });
    const a = out(layer, xs, { associationMask: causal });
    const b = out(layer, tf.add(xs, later), { associationMask: causal });
    assertClose(tf.slice(b, [0, 0, 0], [B, S - 2, F]), tf.slice(a, [0, 0, 0], [B, S - 2, F]), 1e-5);
    assert.ok(maxDiff(a, out(layer, xs)) > 1e-4, 'the mask must matter');
    // Per-sample [B, L, S] masks too.
    const perSample = tf.tile(tf.expandDims(causal, 0), [B, 1, 1]);
    assertClose(out(layer, xs, { associationMask: perSample }), a, 1e-6);
    tf.dispose([xs, causal, later, a, b, perSample]);
  });

  it('U-Hop: predict(x)[i] equals predict(x[i]) (no cross-sample leakage), for linear and mlp Phi and several steps', () => {
    const xs = x();
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
      [1, 0, 1, 0, 1, 1],
    ]);
    for (const opts of [UHOP, { ...UHOP, featureMap: 'mlp' as const, updateStepsMax: 2, updateStepsEps: 1e-3, featureDim: 6 }]) {
      const inp = tfl.input({ shape: [S, F] });
      const m = tfl.input({ shape: [S] });
      const model = tfl.model({
        inputs: [inp, m],
        outputs: new Hopfield({ numHeads: 2, seed: 11, ...opts }).apply([inp, m]) as tfl.SymbolicTensor,
      });
      const all = model.predict([xs, mask]) as tf.Tensor;
      for (let i = 0; i < B; i++) {
        const one = model.predict([tf.slice(xs, [i, 0, 0], [1, S, F]), tf.slice(mask, [i, 0], [1, S])]) as tf.Tensor;
        // On wasm a batch of sets and a single set take different product kernels (one depthwise
        // convolution vs a 2-D XNNPACK matMul), so float32 rounding differs by ~1e-5 after the
        // mlp fit; leakage between samples would show as differences of order 1.
        assertClose(one, tf.slice(all, [i, 0, 0], [1, S, F]), 5e-5, `${opts.featureMap} sample ${i}`);
      }
    }
    tf.dispose([xs, mask]);
  });

  it('U-Hop with fitSteps 0 and the isometric Phi0 equals the plain layer (linear D = d, linear D > d, mlp)', () => {
    const xs = x();
    const plain = new Hopfield({ numHeads: 2, updateStepsMax: 1, seed: 111 });
    const ref = out(plain, xs);
    for (const opts of [
      { featureMap: 'linear' },
      { featureMap: 'linear', featureDim: 9 },
      { featureMap: 'mlp', featureDim: 5 },
    ] as HopfieldArgs[]) {
      const u = new Hopfield({ numHeads: 2, updateStepsMax: 1, fitSteps: 0, ...opts, seed: 112 });
      out(u, xs).dispose();
      const w = u.getWeights();
      u.setWeights([...plain.getWeights(), ...w.slice(plain.getWeights().length)]);
      assertClose(out(u, xs), ref, 1e-5, JSON.stringify(opts));
    }
    // ... and with fit steps it differs (the test above can fail).
    const fitted = new Hopfield({ numHeads: 2, updateStepsMax: 1, ...UHOP, seed: 113 });
    out(fitted, xs).dispose();
    fitted.setWeights([...plain.getWeights(), ...fitted.getWeights().slice(plain.getWeights().length)]);
    assert.ok(maxDiff(out(fitted, xs), ref) > 1e-4);
    tf.dispose([xs, ref]);
  });

  it('U-Hop: on a real batch no fit step raises the separation loss of any sample and head, and the fit lowers it', () => {
    // The default step rule ('normalized') is monotone per (sample, head) by construction; the
    // layer is seeded, so this is one fixed computation per backend.
    const xs = x();
    const cases: HopfieldArgs[] = [
      { featureMap: 'linear' },
      { featureMap: 'linear', separationLoss: 'uniform' },
      { featureMap: 'linear', separationLoss: 'worst-pair' },
      { featureMap: 'mlp' },
      { featureMap: 'linear', fitLr: 2 }, // a step far too large: backtracking must absorb it
    ];
    for (const opts of cases) {
      const layer = new Hopfield({ numHeads: 2, seed: 5, ...opts });
      const trace = layer.fitLossTrace(xs);
      const steps = (opts.fitSteps ?? 5) + 1;
      assert.deepEqual(trace.shape, [steps, B, 2]);
      const t = trace.arraySync() as number[][][];
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < 2; h++) {
          const what = `${JSON.stringify(opts)} b${b} h${h}: ${t.map((r) => r[b][h]).join(' -> ')}`;
          for (let k = 1; k < steps; k++) assert.ok(t[k][b][h] <= t[k - 1][b][h], what);
          assert.ok(t[steps - 1][b][h] < t[0][b][h], what);
        }
      }
      trace.dispose();
    }
    assert.throws(() => new Hopfield().fitLossTrace(xs), /fitLossTrace needs a feature map/);
    xs.dispose();
  });

  it('gradients reach every trainable weight (projections, norms, bias memory, alpha, Phi0)', () => {
    const xs = x();
    const layer = new Hopfield({
      numHeads: 2,
      ...UHOP,
      separation: 'entmax',
      alpha: 1.4,
      concatBiasPattern: true,
      normalizeHopfieldSpace: true,
      normalizeHopfieldSpaceAffine: true,
      seed: 116,
    });
    out(layer, xs).dispose();
    randomizeWeights(layer, 13, 0.3);
    const target = tf.randomNormal([B, S, F], 0, 1, 'float32', 14);
    const { grads } = tf.variableGrads(() => tf.losses.meanSquaredError(target, out(layer, xs, { training: true })) as tf.Scalar);
    const names = layer.trainableWeights.map((w) => w.originalName.split('/').pop()!);
    for (const name of [
      'query_kernel',
      'key_kernel',
      'value_kernel',
      'output_kernel',
      'query_bias',
      'key_bias',
      'stored_norm_gamma',
      'state_norm_gamma',
      'projection_norm_beta',
      'hopfield_norm_gamma',
      'bias_key',
      'bias_value',
      'alpha',
      'phi0_kernel',
    ]) {
      assert.ok(names.includes(name), `missing weight ${name}`);
    }
    for (const w of layer.trainableWeights) {
      const g = grads[w.name];
      assert.ok(g, `no gradient for ${w.originalName}`);
      const n = tf.norm(g).dataSync()[0];
      assert.ok(n > 0 && Number.isFinite(n), `${w.originalName}: |grad| = ${n}`);
    }
    // phiTrainable false: Phi0 is a non-trainable weight.
    const frozen = new Hopfield({ ...UHOP, phiTrainable: false, seed: 117 });
    out(frozen, xs).dispose();
    assert.ok(frozen.nonTrainableWeights.some((w) => w.originalName.endsWith('phi0_kernel')));
    assert.ok(!frozen.trainableWeights.some((w) => w.originalName.endsWith('phi0_kernel')));
    tf.dispose([xs, target, ...Object.values(grads)]);
  });

  it('model.fit / evaluate / predict in Sequential and functional models; the loss goes down', async () => {
    const xs = x();
    const target = tf.tidy(() => tf.tanh(tf.mul(xs, 0.5)));
    const seq = tfl.sequential({ layers: [new Hopfield({ inputShape: [S, F], numHeads: 2, ...UHOP, seed: 1 })] });
    seq.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const h = await seq.fit(xs, target, { epochs: 15, batchSize: B, verbose: 0 });
    const losses = h.history.loss as number[];
    assert.ok(losses[losses.length - 1] < losses[0], `loss ${losses[0]} -> ${losses[losses.length - 1]}`);
    const ev = seq.evaluate(xs, target) as tf.Scalar;
    assert.ok(Number.isFinite(ev.dataSync()[0]));
    const inp = tfl.input({ shape: [S, F] });
    const m = tfl.input({ shape: [S] });
    const hid = new Hopfield({ numHeads: 2, ...UHOP, separation: 'sparsemax', seed: 118 }).apply([inp, m]) as tfl.SymbolicTensor;
    const pooled = tfl.layers.globalAveragePooling1d().apply(hid) as tfl.SymbolicTensor;
    const fn = tfl.model({
      inputs: [inp, m],
      outputs: tfl.layers
        .dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }) })
        .apply(pooled) as tfl.SymbolicTensor,
    });
    fn.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    const y = tf.randomNormal([B, 1], 0, 1, 'float32', 15);
    const mask = tf.ones([B, S]);
    const h2 = await fn.fit([xs, mask], y, { epochs: 3, batchSize: 2, verbose: 0 });
    assert.ok((h2.history.loss as number[]).every(Number.isFinite));
    assert.deepEqual((fn.predict([xs, mask]) as tf.Tensor).shape, [B, 1]);
    tf.dispose([xs, target, ev, y, mask]);
  });

  it("U-Hop forward pass: self-association scores with Phi fitted on each sample's projected, unpadded keys (reference from fitFeatureMap), linear and mlp Phi, every similarity", () => {
    const xs = x();
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
      [1, 0, 1, 0, 1, 1],
    ]);
    const M = mask.arraySync() as number[][];
    // The layer zeroes padded patterns (stored and, in self-association, state) before any product.
    const X = (xs.arraySync() as number[][][]).map((xb, b) => xb.map((row, i) => row.map((v) => (M[b][i] ? v : 0))));
    for (const featureMap of ['linear', 'mlp'] as const) {
      for (const similarity of SIMILARITY_KINDS) {
        const what = `${featureMap} ${similarity}`;
        const make = (fitSteps: number) =>
          new Hopfield({ numHeads: 2, featureMap, fitSteps, fitLr: 1, similarity, returnAssociation: true, seed: 81 });
        const fitted = make(5);
        const plain = make(0);
        tf.dispose([out(fitted, [xs, mask]), out(plain, [xs, mask])]);
        randomizeWeights(fitted, 23);
        plain.setWeights(fitted.getWeights());
        const r = (n: string) => toMat(weight(fitted, n));
        const vec = (n: string) => weight(fitted, n).arraySync() as number[];
        const ln = (m: Mat, pre: string) => layerNormRows(m, 1e-5, vec(`${pre}_gamma`), vec(`${pre}_beta`));
        const q = X.map((xb) => splitHeads64(addRow(matmul(ln(xb, 'state_norm'), r('query_kernel')), vec('query_bias')), 2));
        const k = X.map((xb) => splitHeads64(addRow(matmul(ln(xb, 'stored_norm'), r('key_kernel')), vec('key_bias')), 2));
        const phi0 = fitted.weights.filter((w) => /phi0_/.test(w.originalName)).map((w) => w.read());
        const ref = uhopAssociation(q, k, phi0, fitted.uhop, 0.5, similarity, M);
        const ref0 = uhopAssociation(q, k, phi0, { ...fitted.uhop, fitSteps: 0 }, 0.5, similarity, M);
        const [o, a] = fitted.apply([xs, mask]) as tf.Tensor[];
        const [o0, a0] = plain.apply([xs, mask]) as tf.Tensor[];
        // Measured (cpu, wasm): within 1.1e-4 of the reference (mlp euclidean; 1e-5 linear); the fit
        // moves the association by 0.098 to 0.75, so a layer that skipped the fit is far off.
        assert.ok(
          maxAbsDiff(a.arraySync(), ref) < 1e-3,
          `${what}: association vs the fitted reference, max |diff| ${maxAbsDiff(a.arraySync(), ref)}`,
        );
        assert.ok(maxAbsDiff(a0.arraySync(), ref0) < 1e-3, `${what}: fitSteps 0 vs the Phi0 reference`);
        assert.ok(maxAbsDiff(ref, ref0) > 1e-2, `${what}: the fit must change the association (max change ${maxAbsDiff(ref, ref0)})`);
        tf.dispose([o, a, o0, a0]);
      }
    }
    tf.dispose([xs, mask]);
  });

  it('getConfig / fromConfig round trip rebuilds the same layer', () => {
    const xs = x();
    const args: HopfieldArgs = {
      numHeads: 2,
      hiddenSize: 3,
      patternSize: 5,
      outputSize: 7,
      beta: [0.5, 0.25],
      updateStepsMax: 2,
      updateStepsEps: 1e-3,
      normalizeStatePattern: false,
      dropout: 0.1,
      concatBiasPattern: true,
      separation: 'topk',
      topK: 2,
      similarity: 'cosine',
      kernelInitializer: 'heNormal',
      kernelRegularizer: 'l2',
      featureMap: 'linear',
      featureDim: 4,
      fitSteps: 2,
      separationLoss: 'uniform',
      name: 'hop',
      seed: 140,
    };
    const layer = new Hopfield(args);
    const y = out(layer, xs);
    const cfg = layer.getConfig();
    const copy = tfl.layers.Layer.fromConfig(Hopfield, cfg) as Hopfield;
    assert.deepEqual(copy.getConfig(), cfg);
    out(copy, xs).dispose();
    copy.setWeights(layer.getWeights());
    assertClose(out(copy, xs), y, 1e-6);
    tf.dispose([xs, y]);
  });

  it("a config saved before the 'normalized' step rule (fitOptimizer 'sgd', fitLr 0.1) loads as the plain step it was", () => {
    const xs = x();
    const plain = new Hopfield({ numHeads: 2, seed: 3, featureMap: 'linear', fitSteps: 5, fitLr: 0.1, fitOptimizer: 'sgd' });
    const y = out(plain, xs);
    const cfg = plain.getConfig();
    assert.deepEqual([cfg.fitOptimizer, cfg.fitLr], ['sgd', 0.1]);
    const copy = tfl.layers.Layer.fromConfig(Hopfield, cfg) as Hopfield;
    out(copy, xs).dispose();
    copy.setWeights(plain.getWeights());
    assertClose(out(copy, xs), y, 1e-6);
    // the new default is a different fit on the same weights
    const dflt = new Hopfield({ numHeads: 2, seed: 3, featureMap: 'linear' });
    out(dflt, xs).dispose();
    dflt.setWeights(plain.getWeights());
    assert.deepEqual([dflt.getConfig().fitOptimizer, dflt.getConfig().fitLr], ['normalized', 0.5]);
    assert.ok(maxDiff(out(dflt, xs), y) > 1e-4);
    tf.dispose([xs, y]);
  });

  it('model save / load (withSaveHandler, fromMemory) gives identical predictions', async () => {
    const xs = x();
    const inp = tfl.input({ shape: [S, F] });
    const m = tfl.input({ shape: [S] });
    const y = new Hopfield({ numHeads: 2, ...UHOP, separation: 'entmax', concatBiasPattern: true, seed: 119 }).apply([
      inp,
      m,
    ]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: [inp, m], outputs: y });
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
      [1, 0, 1, 0, 1, 1],
    ]);
    const before = model.predict([xs, mask]) as tf.Tensor;
    const loaded = await roundTrip(model);
    assertClose(loaded.predict([xs, mask]) as tf.Tensor, before, 1e-6);
    tf.dispose([xs, mask, before]);
  });

  it('no tensor leaks over 100 training steps (model.fit and optimizer.minimize) and 100 predicts', async () => {
    const xs = tf.randomNormal([2, 4, F], 0, 1, 'float32', 31);
    const target = tf.randomNormal([2, 4, F], 0, 1, 'float32', 32);
    const layer = new Hopfield({ inputShape: [4, F], numHeads: 2, ...UHOP, dropout: 0.1, separation: 'entmax', seed: 120 });
    const model = tfl.sequential({ layers: [layer] });
    model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    await assertNoLeakAsync(() => model.fit(xs, target, { epochs: 1, batchSize: 2, verbose: 0 }), 100, 'model.fit');
    const opt = tf.train.adam(0.01);
    await assertNoLeakAsync(
      () => opt.minimize(() => tf.losses.meanSquaredError(target, out(layer, xs, { training: true })) as tf.Scalar, false),
      100,
      'optimizer.minimize',
    );
    await assertNoLeakAsync(() => tf.dispose(model.predict(xs) as tf.Tensor), 100, 'predict');
    tf.dispose([xs, target]);
    opt.dispose();
  });

  it('clear errors: bad shapes, incompatible dims, unknown options, bad beta / steps / fitSteps', () => {
    const xs = x();
    assert.throws(
      () => new Hopfield({ numHeads: 3 }).apply(xs),
      /Hopfield 'hopfield.*': the state pattern dim 8 is not divisible by numHeads 3; set hiddenSize/,
    );
    assert.throws(() => new Hopfield().apply(tf.zeros([B, F])), /must be \[batch, n, features\]/);
    assert.throws(() => new Hopfield().apply([xs, xs]), /got 2 inputs of ranks \[3,3\]/);
    assert.throws(
      () => new Hopfield().apply([xs, tf.zeros([B, S + 1, F]), tf.zeros([B, S + 1, F])]),
      /stored patterns \[3,6,8\] and pattern projections \[3,7,8\] must hold the same number/,
    );
    const built = new Hopfield({ seed: 125 });
    out(built, xs).dispose();
    assert.throws(() => built.apply(tf.zeros([B, S, F + 1])), /must have 8 features \(as at build time\), got shape \[3,6,9\]/);
    assert.throws(
      () => out(new Hopfield(), xs, { storedPatternPaddingMask: tf.ones([B, S + 1]) }),
      /storedPatternPaddingMask must be \[batch=3, stored patterns=6\], got \[3,7\]/,
    );
    assert.throws(
      () => out(new Hopfield(), xs, { associationMask: tf.ones([S, S + 1]) }),
      /associationMask must be \[state patterns=6, stored patterns=6\]/,
    );
    assert.throws(() => new Hopfield({ numHead: 2 } as never), /Hopfield: unknown option 'numHead' \(did you mean 'numHeads'\?\)/);
    assert.throws(
      () => new Hopfield({ beta: 0 }),
      /Hopfield: beta must be a finite number > 0 or an array of them \(one per head\), got 0/,
    );
    assert.throws(() => new Hopfield({ numHeads: 2, beta: [1] }), /an array of 2 of them/);
    assert.throws(
      () => new Hopfield({ updateStepsMax: -1 }),
      /updateStepsMax must be an integer in \[0, 999\] \(extra update steps.*, got -1/,
    );
    assert.throws(() => new Hopfield({ updateStepsMax: Infinity }), /ml-jku's None, iterate until convergence, is not offered/);
    assert.throws(
      () => new Hopfield({ featureMap: 'linear', fitSteps: 1.5 }),
      /Hopfield: fitSteps must be an integer in \[0, 1000\].*, got 1.5/,
    );
    assert.throws(() => new Hopfield({ fitLr: 0 }), /fitLr must be a finite number > 0/);
    assert.throws(() => new Hopfield({ separation: 'softermax' as never }), /separation must be one of/);
    assert.throws(() => new Hopfield({ similarity: 'l2' as never }), /similarity must be one of/);
    assert.throws(() => new Hopfield({ alpha: 2.5, separation: 'entmax' }), /alpha must be a number in \[1, 2\]/);
    assert.throws(() => new Hopfield({ topK: 2 }), /topK applies to separation 'topk' only/);
    assert.throws(
      () => new Hopfield({ normalizeStoredPattern: false, normalizeStoredPatternAffine: true }),
      /affine normalization without normalization/,
    );
    assert.throws(() => new Hopfield({ inputBias: false } as never), /Hopfield: 'inputBias' was renamed 'useBias' in 0.2.0/);
    assert.throws(() => new Hopfield({ kernelInitializer: 'glorotUniformm' }), /kernelInitializer: unknown initializer 'glorotUniformm'/);
    assert.throws(
      () => new Hopfield({ disableOutProjection: true, outputSize: 3 }).apply(xs),
      /numHeads \* patternSize = 8; got outputSize 3/,
    );
    assert.throws(() => new Hopfield({ featureMap: 'linear', featureDim: 4 }).apply(xs), /featureDim \(4\) < key dimension per head \(8\)/);
    xs.dispose();
  });
});

forEachBackend('Hopfield renamed options', () => {
  it("'scaling' is an error that names 'beta'; a saved config with scaling loads as beta", () => {
    const x = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 3);
    assert.throws(() => new Hopfield({ scaling: 0.7 } as never), /Hopfield: 'scaling' was renamed 'beta' in 0.2.0; got scaling: 0.7/);
    const a = new Hopfield({ numHeads: 2, beta: 0.7, seed: 1 });
    const ya = a.apply(x) as tf.Tensor;
    const cfg = a.getConfig();
    assert.equal(cfg.beta, 0.7);
    assert.ok(!('scaling' in cfg));
    // A config written by 0.1 (scaling) loads as beta, with the same output.
    const { beta: _beta, ...rest } = cfg;
    const b = tf.serialization.SerializationMap.getMap().classNameMap['Hopfield'][1](Hopfield, { ...rest, scaling: 0.7 }) as Hopfield;
    b.apply(x);
    b.setWeights(a.getWeights());
    const yb = b.apply(x) as tf.Tensor;
    assert.ok(maxDiff(ya, yb) < 1e-6);
    assert.equal(b.getConfig().beta, 0.7);
    tf.dispose([x, ya, yb]);
  });
});
