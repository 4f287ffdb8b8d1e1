import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AlternatingFitCallback, findUHopLayers } from '../../src/models/alternatingFit.js';
import { transformerEncoderBlock } from '../../src/models/transformer.js';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { forEachBackend, assertClose, seeded } from '../helpers.js';
import type { UHopRuntime } from '../../src/layers/hopfieldCore.js';
import type { FeatureMap, FeatureMapKind } from '../../src/ops/types.js';
import { applyFeatureMap } from '../../src/ops/featureMap.js';
import { separationLossAndGrad } from '../../src/ops/separationLoss.js';

type FitSets = { keys: tf.Tensor; mask?: tf.Tensor };

/** UHopAttention that records the keys and fit mask its own Stage-I fit receives. */
class RecordingUHop extends UHopAttention {
  static override className = 'RecordingUHopAltTest';
  seen: FitSets[] = [];
  protected override fitPhi(keys: tf.Tensor, mask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    this.seen.push({ keys: tf.keep(tf.clone(keys)), ...(mask ? { mask: tf.keep(tf.clone(mask)) } : {}) });
    return super.fitPhi(keys, mask, uhop);
  }
}

/** Hopfield that records the keys and fit mask its own Stage-I fit receives. */
class RecordingHopfield extends Hopfield {
  static override className = 'RecordingHopfieldAltTest';
  seen: FitSets[] = [];
  protected override fitPhi(keys: tf.Tensor, mask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    this.seen.push({ keys: tf.keep(tf.clone(keys)), ...(mask ? { mask: tf.keep(tf.clone(mask)) } : {}) });
    return super.fitPhi(keys, mask, uhop);
  }
}

/** The mean Stage-I loss at Phi0 over the memory sets a layer's fit received (written out, not the callback's code). */
function lossAtPhi0(sets: FitSets, layer: UHopAttention | Hopfield): number {
  return tf.tidy(() => {
    const phi0 = layer.weights.filter((w) => isPhi0((w as unknown as { originalName: string }).originalName)).map((w) => w.read());
    const [Bk, H, S, dk] = sets.keys.shape as number[];
    const B = Math.max(Bk, sets.mask ? (sets.mask.shape[0] as number) : 1);
    const keys = tf.broadcastTo(sets.keys, [B, H, S, dk]);
    const mask = sets.mask ? tf.broadcastTo(sets.mask, [B, H, S]) : undefined;
    const features = applyFeatureMap({ kind: layer.uhop.featureMap as FeatureMapKind, params: phi0 }, keys);
    const { loss } = separationLossAndGrad(features, layer.uhop.separationLoss, mask ? { mask } : {});
    return tf.mean(loss).dataSync()[0];
  });
}

/** A model with all three kinds of U-Hop layer (UHopAttention, Hopfield, HopfieldPooling) and a plain MHA. */
function buildModel(): tfl.LayersModel {
  const model = seeded(buildUncompiled, 1);
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'sparseCategoricalCrossentropy' });
  return model;
}

function buildUncompiled(): tfl.LayersModel {
  const x = tfl.input({ shape: [6, 8] });
  let h = transformerEncoderBlock(x, { attention: 'mha', numHeads: 2, mlpDim: 8, name: 'plain' });
  h = transformerEncoderBlock(h, { attention: 'uhop-attention', numHeads: 2, mlpDim: 8, featureMap: 'linear', fitSteps: 2, name: 'ua' });
  h = transformerEncoderBlock(h, {
    attention: 'hopfield',
    numHeads: 2,
    mlpDim: 8,
    featureMap: 'linear',
    fitSteps: 2,
    separationLoss: 'uniform',
    name: 'hf',
  });
  const p = new HopfieldPooling({ numHeads: 2, featureMap: 'mlp', featureDim: 4, concatBiasPattern: true, name: 'pool', seed: 101 }).apply(
    h,
  ) as tfl.SymbolicTensor;
  const y = tfl.layers
    .dense({ units: 3, activation: 'softmax', name: 'out', kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }) })
    .apply(p) as tfl.SymbolicTensor;
  return tfl.model({ inputs: x, outputs: y });
}

/** Weights with their scoped names (LayerVariable.name gains a _N suffix when a name repeats across models). */
const snapshot = (m: tfl.LayersModel) =>
  m.weights.map((w) => ({ name: (w as unknown as { originalName: string }).originalName, value: Float32Array.from(w.read().dataSync()) }));
const isPhi0 = (name: string) => /\/phi0_(kernel|w1|b1|w2)$/.test(name);
const maxDiff = (a: Float32Array, b: tf.Tensor) => {
  const bv = b.dataSync();
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - bv[i]));
  return m;
};

forEachBackend('AlternatingFitCallback', () => {
  it('finds the U-Hop layers and their Phi0 weights (plain attention skipped)', () => {
    const model = buildModel();
    const found = findUHopLayers(model);
    assert.deepEqual(
      found.map((f) => f.layer.name),
      ['ua_attention', 'hf_attention', 'pool'],
    );
    assert.deepEqual(
      found.map((f) => f.phi0.length),
      [1, 1, 3],
    );
    model.dispose();
  });

  it('a Phi epoch changes only Phi0, and lowers the separation loss over the training set', async () => {
    const model = buildModel();
    const x = tf.randomNormal([24, 6, 8], 0, 1, 'float32', 1);
    const cb = new AlternatingFitCallback({ x, batchSize: 8, lr: 0.05 });
    cb.setModel(model);
    const before = snapshot(model);
    const log = await cb.phiEpoch();
    assert.equal(log.steps, 3);
    assert.ok(log.lossAfter < log.lossBefore - 1e-3, `separation loss ${log.lossBefore} -> ${log.lossAfter}`);
    assert.equal(await cb.separationLoss(), log.lossAfter);
    let phiChanged = 0;
    model.weights.forEach((w, i) => {
      const d = maxDiff(before[i].value, w.read());
      if (isPhi0(before[i].name)) phiChanged += d > 1e-4 ? 1 : 0;
      else assert.equal(d, 0, `${before[i].name} changed in a Phi epoch`);
    });
    assert.equal(phiChanged, 5, 'every Phi0 weight moved (1 + 1 + 3)');
    cb.dispose();
    x.dispose();
    model.dispose();
  });

  it("its loss is the layers' own Stage-I loss at Phi0 (Hopfield.fitLossTrace step 0), padding and bias memory included", async () => {
    const x = tfl.input({ shape: [5, 6] });
    const mask = tfl.input({ shape: [5] });
    const hop = new Hopfield({
      numHeads: 2,
      featureMap: 'linear',
      featureDim: 4,
      phi0Initializer: 'glorotUniform',
      normalizeHopfieldSpace: true,
      normalizeHopfieldSpaceAffine: true,
      concatBiasPattern: true,
      addZeroAssociation: true,
      separationLoss: 'uniform',
      seed: 102,
    });
    const y = hop.apply([x, mask]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: [x, mask], outputs: y });
    const xs = tf.randomNormal([4, 5, 6], 0, 1, 'float32', 2);
    const ms = tf.tensor2d([
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
      [1, 0, 1, 1, 0],
      [1, 1, 0, 0, 0],
    ]);
    const cb = new AlternatingFitCallback({ x: [xs, ms], batchSize: 4 });
    cb.setModel(model);
    const trace = hop.fitLossTrace([xs, ms]);
    const expected = tf.mean(tf.slice(trace, [0, 0, 0], [1, -1, -1])).dataSync()[0];
    assertClose([await cb.separationLoss()], [expected], 1e-5, 'separation loss at Phi0');
    tf.dispose([xs, ms, trace]);
    cb.dispose();
    model.dispose();
  });

  it("its keys and fit mask are the layer's own (UHopAttention with an additive attention mask, which the callback once inverted)", async () => {
    const x = tfl.input({ shape: [6, 5] });
    const v = tfl.input({ shape: [6, 5] });
    const am = tfl.input({ shape: [6, 6] });
    const layer = new RecordingUHop({ numHeads: 2, keyDim: 3, featureMap: 'linear', fitSteps: 1, maskType: 'additive', seed: 51 });
    const model = tfl.model({ inputs: [x, v, am], outputs: layer.apply(x, { value: v, attentionMask: am }) as tfl.SymbolicTensor });
    const xs = tf.randomNormal([4, 6, 5], 0, 1, 'float32', 12);
    const vs = tf.randomNormal([4, 6, 5], 0, 1, 'float32', 14);
    // PyTorch's form: 0 = allowed, -Infinity = blocked; sample b blocks memories >= 6 - b - 1 for every query.
    const ams = tf.tensor3d(
      Array.from({ length: 4 * 6 * 6 }, (_, i) => (i % 6 >= 6 - Math.floor(i / 36) - 1 ? -Infinity : 0)),
      [4, 6, 6],
    );
    const cb = new AlternatingFitCallback({ x: [xs, vs, ams], batchSize: 4 });
    cb.setModel(model);
    tf.dispose(model.predict([xs, vs, ams]) as tf.Tensor);
    assert.equal(layer.seen.length, 1);
    assert.deepEqual(Array.from(layer.seen[0].mask!.dataSync()).slice(0, 6), [1, 1, 1, 1, 1, 0]);
    const expected = lossAtPhi0(layer.seen[0], layer);
    assert.ok(Number.isFinite(expected));
    assertClose([await cb.separationLoss()], [expected], 1e-5, 'separation loss at Phi0');
    tf.dispose([xs, vs, ams, ...layer.seen.flatMap((s) => [s.keys, s.mask ?? []])]);
    cb.dispose();
    model.dispose();
  });

  it("its keys and fit mask are the layer's own (Hopfield with NaN in padded stored patterns, which the callback once read)", async () => {
    const x = tfl.input({ shape: [5, 6] });
    const mask = tfl.input({ shape: [5] });
    const hop = new RecordingHopfield({ numHeads: 2, featureMap: 'linear', featureDim: 4, fitSteps: 1, concatBiasPattern: true, seed: 52 });
    const model = tfl.model({ inputs: [x, mask], outputs: hop.apply([x, mask]) as tfl.SymbolicTensor });
    const ms = tf.tensor2d([
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
      [1, 0, 1, 1, 0],
      [1, 1, 0, 0, 0],
    ]);
    const x0 = tf.randomNormal([4, 5, 6], 0, 1, 'float32', 13);
    const xs = tf.where(tf.cast(tf.expandDims(ms, 2), 'bool'), x0, tf.fill([4, 5, 6], NaN));
    const cb = new AlternatingFitCallback({ x: [xs, ms], batchSize: 4 });
    cb.setModel(model);
    tf.dispose(model.predict([xs, ms]) as tf.Tensor);
    assert.equal(hop.seen.length, 1);
    const expected = lossAtPhi0(hop.seen[0], hop);
    assert.ok(Number.isFinite(expected));
    assertClose([await cb.separationLoss()], [expected], 1e-5, 'separation loss at Phi0');
    const log = await cb.phiEpoch();
    assert.ok(Number.isFinite(log.lossAfter) && Number.isFinite(log.lossDuring), 'a Phi epoch on NaN padding stays finite');
    tf.dispose([xs, x0, ms, ...hop.seen.flatMap((s) => [s.keys, s.mask ?? []])]);
    cb.dispose();
    model.dispose();
  });

  it('in model.fit: Phi epochs precede the first task epochs, Phi0 is frozen during them and unfrozen after', async () => {
    const model = buildModel();
    const x = tf.randomNormal([16, 6, 8], 0, 1, 'float32', 3);
    const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3));
    const phiAfterPhiEpoch: Float32Array[][] = [];
    const cb = new AlternatingFitCallback({
      x,
      alternations: 2,
      batchSize: 8,
      lr: 0.02,
      evaluate: false,
      onPhiEpochEnd: () => {
        phiAfterPhiEpoch.push(
          snapshot(model)
            .filter((w) => isPhi0(w.name))
            .map((w) => w.value),
        );
      },
    });
    const phiAtEpochEnd: Float32Array[][] = [];
    const spy = new (class extends tfl.Callback {
      override async onEpochEnd() {
        phiAtEpochEnd.push(
          snapshot(model)
            .filter((w) => isPhi0(w.name))
            .map((w) => w.value),
        );
      }
    })();
    const others = () => snapshot(model).filter((w) => !isPhi0(w.name));
    const start = others();
    await model.fit(x, y, { epochs: 3, batchSize: 8, verbose: 0, callbacks: [cb, spy] });
    assert.deepEqual(
      cb.history.map((h) => h.epoch),
      [0, 1],
      'one Phi epoch before each of the first two task epochs',
    );
    for (const e of [0, 1]) {
      phiAtEpochEnd[e].forEach((v, j) => assert.deepEqual(v, phiAfterPhiEpoch[e][j], `Phi0 ${j} moved in task epoch ${e}`));
    }
    // After the alternations Phi0 trains with the task loss again (phiTrainable defaults to true).
    const moved = phiAtEpochEnd[2].some((v, j) => v.some((a, i) => Math.abs(a - phiAfterPhiEpoch[1][j][i]) > 1e-7));
    assert.ok(moved, 'Phi0 trains with the task in epoch 2');
    for (const info of findUHopLayers(model)) for (const v of info.phi0) assert.equal(v.trainable, true, `${v.name} unfrozen`);
    const end = others();
    assert.ok(
      end.some((w, i) => w.value.some((a, j) => a !== start[i].value[j])),
      'task epochs train the rest',
    );
    cb.dispose();
    tf.dispose([x, y]);
    model.dispose();
  });

  it('no tensors leak over Phi epochs and evaluations', async () => {
    const model = buildModel();
    const x = tf.randomNormal([10, 6, 8], 0, 1, 'float32', 4);
    const cb = new AlternatingFitCallback({ x, batchSize: 4 });
    cb.setModel(model);
    await cb.phiEpoch(); // creates the optimizer's slots
    const before = tf.memory().numTensors;
    await cb.phiEpoch();
    await cb.separationLoss();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    cb.dispose();
    x.dispose();
    model.dispose();
  });

  it('explains bad options and models without U-Hop layers', () => {
    assert.throws(
      () => new AlternatingFitCallback({ x: [] as never }),
      /AlternatingFitCallback: x must be a tensor or a non-empty array of tensors/,
    );
    const x = tf.zeros([2, 3]);
    assert.throws(() => new AlternatingFitCallback({ x, lr: 0 }), /lr must be a finite number > 0, got 0/);
    const inp = tfl.input({ shape: [3, 4] });
    const plain = tfl.model({
      inputs: inp,
      outputs: new UHopAttention({ numHeads: 1, keyDim: 4, seed: 103 }).apply(inp) as tfl.SymbolicTensor,
    });
    const cb = new AlternatingFitCallback({ x });
    cb.setModel(plain);
    assert.throws(() => cb.uhopLayers, /has no U-Hop layer/);
    x.dispose();
    plain.dispose();
  });
});
