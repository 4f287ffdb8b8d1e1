/**
 * The U-Hop options of the fit-strength study (src/layers/hopfieldCore.ts): fitStrength gamma
 * (Phi = Phi0 + gamma (Phi_fit - Phi0)), its trainable per-head weight, fitKeepNorm (the fitted
 * W at ||Phi0||) and fitGradient 'unrolled' (the exact gradient through the fit).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Hopfield } from '../../src/layers/index.js';
import { resolveUHopArgs, uhopFit, uhopConfigToJSON, type UHopArgs } from '../../src/layers/hopfieldCore.js';
import { assertClose, assertNoLeak, forEachBackend } from '../helpers.js';

const [B, S, d] = [2, 10, 8];

function inputs() {
  const base = tf.randomNormal([1, 1, d], 0, 1, 'float32', 7);
  const mem = tf.tidy(() => tf.add(tf.randomNormal([B, S, d], 0, 1, 'float32', 1), base));
  const q = tf.randomNormal([B, 3, d], 0, 1, 'float32', 2);
  base.dispose();
  return { mem, q };
}

const common = { numHeads: 2, hiddenSize: 4, featureMap: 'linear' as const, seed: 3 };

/** Output and the gradient of sum(output * c) to every trainable weight, in weight order. */
function outAndGrads(layer: Hopfield, mem: tf.Tensor, q: tf.Tensor) {
  tf.dispose(layer.apply([mem, q, mem]) as tf.Tensor);
  const out = layer.apply([mem, q, mem]) as tf.Tensor;
  const c = tf.randomNormal(out.shape, 0, 1, 'float32', 11);
  const vars = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply([mem, q, mem]) as tf.Tensor, c)) as tf.Scalar, vars);
  c.dispose();
  return { out, grads: vars.map((v) => grads[v.name]) };
}

forEachBackend('U-Hop fit options', () => {
  it('fitStrength 0 is the fitSteps-0 layer: same output, same gradients', () => {
    const { mem, q } = inputs();
    const plain = new Hopfield({ ...common, fitSteps: 0 });
    const zero = new Hopfield({ ...common, fitStrength: 0 });
    const a = outAndGrads(plain, mem, q);
    const b = outAndGrads(zero, mem, q);
    assertClose(b.out, a.out, 1e-5, 'output');
    assert.equal(a.grads.length, b.grads.length);
    a.grads.forEach((g, i) => assertClose(b.grads[i], g, 1e-4, `gradient ${i}`));
    // and the fit does change the layer at strength 1 (so the equality is not vacuous)
    const one = new Hopfield({ ...common });
    const c = outAndGrads(one, mem, q);
    assert.ok(tf.max(tf.abs(tf.sub(c.out, a.out))).dataSync()[0] > 1e-3);
    tf.dispose([a.out, b.out, c.out, ...a.grads, ...b.grads, ...c.grads, mem, q]);
    [plain, zero, one].forEach((l) => l.dispose());
  });

  it('fitStrengthTrainable: a per-head weight fit_strength, at fitStrength, that gets a gradient; at 1 the layer is the fitted one', () => {
    const { mem, q } = inputs();
    const ref = new Hopfield({ ...common });
    const learn = new Hopfield({ ...common, fitStrengthTrainable: true });
    const learn0 = new Hopfield({ ...common, fitStrengthTrainable: true, fitStrength: 0 });
    const a = outAndGrads(ref, mem, q);
    const b = outAndGrads(learn, mem, q);
    const c = outAndGrads(learn0, mem, q);
    const gammaIndex = learn.trainableWeights.findIndex((w) => w.name.includes('fit_strength'));
    assert.ok(gammaIndex >= 0, 'fit_strength is a trainable weight');
    assert.deepEqual(learn.trainableWeights[gammaIndex].shape, [2]);
    assert.deepEqual(Array.from(learn.trainableWeights[gammaIndex].read().dataSync()), [1, 1]);
    assertClose(b.out, a.out, 1e-5, 'gamma 1 = the fitted layer');
    for (const g of [b.grads[gammaIndex], c.grads[gammaIndex]]) assert.ok(tf.max(tf.abs(g)).dataSync()[0] > 1e-6, 'gamma gets a gradient');
    assert.equal(ref.trainableWeights.length + 1, learn.trainableWeights.length);
    tf.dispose([a.out, b.out, c.out, ...a.grads, ...b.grads, ...c.grads, mem, q]);
    [ref, learn, learn0].forEach((l) => l.dispose());
  });

  it("fitGradient 'unrolled' gives the same output as straight-through, a different gradient to Phi0", () => {
    const { mem, q } = inputs();
    const st = new Hopfield({ ...common });
    const un = new Hopfield({ ...common, fitGradient: 'unrolled' });
    const a = outAndGrads(st, mem, q);
    const b = outAndGrads(un, mem, q);
    assertClose(b.out, a.out, 1e-4, 'output');
    const phi = st.trainableWeights.findIndex((w) => w.name.includes('phi0_kernel'));
    const diff = tf.max(tf.abs(tf.sub(a.grads[phi], b.grads[phi]))).dataSync()[0];
    assert.ok(diff > 1e-4, `Phi0 gradients differ (max ${diff})`);
    tf.dispose([a.out, b.out, ...a.grads, ...b.grads, mem, q]);
    [st, un].forEach((l) => l.dispose());
  });

  it('fitKeepNorm: every fitted W has the Frobenius norm of Phi0', () => {
    const keys = tf.add(tf.randomNormal([B, 2, S, 4], 0, 1, 'float32', 1), 1);
    const W0 = tf.randomNormal([2, 4, 4], 0, 0.5, 'float32', 2);
    const norms = (W: tf.Tensor) => tf.sqrt(tf.sum(tf.square(W), [-2, -1]));
    const free = uhopFit(keys, undefined, { config: resolveUHopArgs({ featureMap: 'linear' }, 't'), phi0: [W0] });
    const kept = uhopFit(keys, undefined, { config: resolveUHopArgs({ featureMap: 'linear', fitKeepNorm: true }, 't'), phi0: [W0] });
    const n0 = norms(W0);
    assertClose(norms(kept.params[0]), tf.tile(tf.expandDims(n0, 0), [B, 1]), 1e-5, 'kept norms');
    // without it the fit grows ||W|| (its gradient is orthogonal to W)
    assert.ok(tf.min(tf.sub(norms(free.params[0]), n0)).dataSync()[0] > 0);
    tf.dispose([keys, W0, n0, ...free.params, ...kept.params]);
    assertNoLeak(() =>
      tf.tidy(
        () =>
          uhopFit(tf.ones([1, 1, 3, 2]), undefined, {
            config: resolveUHopArgs({ featureMap: 'linear', fitKeepNorm: true, fitStrength: 0.5 }, 't'),
            phi0: [tf.expandDims(tf.eye(2), 0)],
          }).params,
      ),
    );
  });

  it('config: the new options are written only when not the default, and read back', () => {
    const args: UHopArgs = {
      featureMap: 'linear',
      fitGradient: 'unrolled',
      fitKeepNorm: true,
      fitStrength: 0.25,
      fitStrengthTrainable: true,
    };
    const json = uhopConfigToJSON(resolveUHopArgs(args, 't'));
    assert.deepEqual([json.fitGradient, json.fitKeepNorm, json.fitStrength, json.fitStrengthTrainable], ['unrolled', true, 0.25, true]);
    const plain = uhopConfigToJSON(resolveUHopArgs({ featureMap: 'linear' }, 't'));
    for (const k of ['fitGradient', 'fitKeepNorm', 'fitStrength', 'fitStrengthTrainable']) assert.equal(k in plain, false, k);
    const layer = new Hopfield({ ...common, ...args });
    const again = Hopfield.fromConfig(Hopfield, layer.getConfig()) as Hopfield;
    assert.deepEqual(again.getConfig(), layer.getConfig());
  });

  it('errors name the layer and the option', () => {
    assert.throws(
      () => new Hopfield({ ...common, fitGradient: 'exact' as never }),
      /fitGradient must be one of 'straight-through', 'unrolled'/,
    );
    assert.throws(() => new Hopfield({ ...common, fitStrength: NaN }), /fitStrength must be a finite number/);
    assert.throws(
      () => new Hopfield({ ...common, featureMap: 'mlp', fitGradient: 'unrolled' }),
      /'unrolled' applies to the 'linear' feature map only/,
    );
    assert.throws(
      () => new Hopfield({ ...common, featureMap: 'mlp', fitKeepNorm: true }),
      /fitKeepNorm applies to the 'linear' feature map only/,
    );
    assert.throws(
      () => new Hopfield({ ...common, fitGradient: 'unrolled', fitOptimizer: 'adam' }),
      /takes fitOptimizer 'normalized' or 'sgd'/,
    );
    assert.throws(() => new Hopfield({ ...common, fitKeepNorm: 1 as never }), /fitKeepNorm must be a boolean/);
  });
});
