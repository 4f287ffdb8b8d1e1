import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { assertClose, forEachBackend } from '../helpers.js';
import {
  AttentionMilPooling,
  BagDropout,
  GatedAttentionMilPooling,
  MaskedMaxPooling,
  MaskedMeanPooling,
  maskedSoftmax,
} from '../../src/layers/milPooling.js';
import { milClassifier, type MilClassifierOptions } from '../../src/models/mil.js';
import { InstanceDense } from '../../src/layers/instanceDense.js';
import {
  LearningRateScheduler,
  bagAccuracy,
  exponentialDecay,
  predictBags,
  predictBagsAsync,
  rocAuc,
  setLearningRate,
  trainMilModel,
} from '../../src/models/milTraining.js';
import { seededRandom } from '../../src/data/random.js';
import type { Bag } from '../../src/data/mil.js';

/** Every model variant the tests cover: each pooling, and the Hopfield separations / U-Hop. */
const VARIANTS: Record<string, Omit<MilClassifierOptions, 'numFeatures'>> = {
  mean: { pooling: 'mean' },
  max: { pooling: 'max' },
  attention: { pooling: 'attention', attentionUnits: 8 },
  'gated-attention': { pooling: 'gated-attention', attentionUnits: 8 },
  'hopfield-softmax': { pooling: 'hopfield', hopfield: { numHeads: 2, hiddenSize: 4, quantity: 2 } },
  'hopfield-sparsemax': { pooling: 'hopfield', hopfield: { numHeads: 2, hiddenSize: 4, separation: 'sparsemax' } },
  'hopfield-entmax15': { pooling: 'hopfield', hopfield: { numHeads: 1, hiddenSize: 4, separation: 'entmax15' } },
  uhop: { pooling: 'hopfield', hopfield: { numHeads: 2, hiddenSize: 4, featureMap: 'linear', fitSteps: 3 } },
};

const F = 5;

/** Random bags with given sizes, padded to S; padded rows hold `padValue` (or noise). */
function paddedBatch(sizes: number[], S: number, seed: number, padValue?: number): { x: tf.Tensor3D; mask: tf.Tensor2D } {
  const rng = seededRandom(seed);
  const B = sizes.length;
  const x = new Float32Array(B * S * F);
  const mask = new Float32Array(B * S);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const real = s < sizes[b];
      mask[b * S + s] = real ? 1 : 0;
      for (let f = 0; f < F; f++) {
        const z = rng.normal(); // drawn for padding too, so real rows do not depend on padValue
        x[(b * S + s) * F + f] = real ? z : (padValue ?? 1000 * z);
      }
    }
  }
  return { x: tf.tensor3d(x, [B, S, F]), mask: tf.tensor2d(mask, [B, S]) };
}

/** The same real instances with two different paddings. */
function twoPaddings(sizes: number[], S: number): [{ x: tf.Tensor3D; mask: tf.Tensor2D }, { x: tf.Tensor3D; mask: tf.Tensor2D }] {
  const a = paddedBatch(sizes, S, 3, 0);
  const b = paddedBatch(sizes, S, 3); // same real rows (same seed, same draw order), wild padding
  return [a, b];
}

forEachBackend('MIL poolings', () => {
  it('mean and max pool the real instances only (closed form)', () => {
    const x = tf.tensor3d([
      [
        [1, 2],
        [3, -4],
        [100, 100],
      ],
      [
        [-1, 5],
        [7, 7],
        [9, -9],
      ],
    ]);
    const mask = tf.tensor2d([
      [1, 1, 0],
      [1, 0, 0],
    ]);
    const mean = new MaskedMeanPooling().apply([x, mask]) as tf.Tensor;
    const max = new MaskedMaxPooling().apply([x, mask]) as tf.Tensor;
    assertClose(mean, [2, -1, -1, 5], 1e-6, 'mean');
    assertClose(max, [3, 2, -1, 5], 1e-6, 'max');
    tf.dispose([x, mask, mean, max]);
  });

  it('a bag without real instances pools to zeros (no NaN)', () => {
    const x = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 301);
    const mask = tf.tensor2d([
      [0, 0, 0],
      [1, 0, 1],
    ]);
    for (const layer of [
      new MaskedMeanPooling(),
      new MaskedMaxPooling(),
      new AttentionMilPooling({ units: 3, seed: 3 }),
      new GatedAttentionMilPooling({ units: 3, seed: 3 }),
    ]) {
      const z = layer.apply([x, mask]) as tf.Tensor;
      const v = z.dataSync();
      assert.ok(v.every(Number.isFinite), `${layer.getClassName()} gave a non-finite value`);
      assertClose(Array.from(v.slice(0, 4)), [0, 0, 0, 0], 0, layer.getClassName());
      z.dispose();
      layer.dispose();
    }
    tf.dispose([x, mask]);
  });

  it('attention weights sum to one over real instances and are exactly zero on padding', () => {
    for (const layer of [new AttentionMilPooling({ units: 6, seed: 1 }), new GatedAttentionMilPooling({ units: 6, seed: 1 })]) {
      const { x, mask } = paddedBatch([1, 3, 4], 4, 5);
      const a = layer.attentionWeights([x, mask]);
      const av = a.arraySync() as number[][];
      const mv = mask.arraySync();
      av.forEach((row, b) => {
        assertClose([row.reduce((s, v) => s + v, 0)], [1], 1e-5, `sum of bag ${b}`);
        row.forEach((v, s) => {
          if (mv[b][s] === 0) assert.equal(v, 0, `padding weight bag ${b} instance ${s}`);
          else assert.ok(v > 0, 'real instances get positive weight');
        });
      });
      // z = sum_k a_k h_k
      const z = layer.apply([x, mask]) as tf.Tensor;
      const expected = tf.tidy(() => tf.sum(tf.mul(tf.expandDims(a, -1), tf.mul(x, tf.expandDims(mask, -1))), 1));
      assertClose(z, expected, 1e-5, 'attention pooling');
      tf.dispose([x, mask, a, z, expected]);
      layer.dispose();
    }
  });

  it('InstanceDense computes relu(x W + b) per instance, with the same gradients as plain ops', () => {
    const layer = new InstanceDense({ units: 3, seed: 4 });
    const x = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 1);
    const y = layer.apply(x) as tf.Tensor;
    const [W, b] = layer.getWeights();
    const expected = tf.tidy(() => tf.relu(tf.add(tf.matMul(tf.reshape(x, [8, 5]), W), b)));
    assertClose(y, tf.reshape(expected, [2, 4, 3]), 1e-5, 'forward');
    const w = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 2);
    const gLayer = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, w)))(x);
    const gPlain = tf.grad((xx: tf.Tensor) =>
      tf.sum(tf.mul(tf.reshape(tf.relu(tf.add(tf.matMul(tf.reshape(xx, [8, 5]), W), b)), [2, 4, 3]), w)),
    )(x);
    assertClose(gLayer, gPlain, 1e-5, 'input gradient');
    assert.deepEqual(layer.computeOutputShape([null, null, 5]), [null, null, 3]);
    assert.throws(() => new InstanceDense({ units: 0 }), /InstanceDense: units must be an integer >= 1, got 0/);
    tf.dispose([x, y, expected, w, gLayer, gPlain]);
    layer.dispose();
  });

  it('maskedSoftmax matches softmax over the unmasked entries', () => {
    const s = tf.tensor2d([
      [1, 2, 3, 40],
      [0.5, -1, 2, 2],
    ]);
    const m = tf.tensor2d([
      [1, 1, 1, 0],
      [1, 0, 1, 1],
    ]);
    const p = maskedSoftmax(s, m);
    const e = [1, 2, 3].map(Math.exp);
    const z = e.reduce((a, b) => a + b);
    const e2 = [0.5, 2, 2].map(Math.exp);
    const z2 = e2.reduce((a, b) => a + b);
    assertClose(p, [e[0] / z, e[1] / z, e[2] / z, 0, e2[0] / z2, 0, e2[1] / z2, e2[2] / z2], 1e-6);
    tf.dispose([s, m, p]);
  });

  it('gradients never reach padded instances', () => {
    for (const layer of [
      new MaskedMeanPooling(),
      new MaskedMaxPooling(),
      new AttentionMilPooling({ units: 4, seed: 2 }),
      new GatedAttentionMilPooling({ units: 4, seed: 2 }),
    ]) {
      const { x, mask } = paddedBatch([2, 4], 4, 9);
      const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(layer.apply([xx, mask]) as tf.Tensor)))(x);
      const gv = g.arraySync() as number[][][];
      const mv = mask.arraySync();
      gv.forEach((bag, b) =>
        bag.forEach((row, s) => {
          if (mv[b][s] === 0)
            assert.ok(
              row.every((v) => v === 0),
              `${layer.getClassName()}: gradient on padding bag ${b} row ${s}`,
            );
        }),
      );
      assert.ok(
        gv[0][0].some((v) => v !== 0),
        `${layer.getClassName()}: some gradient on real instances`,
      );
      tf.dispose([x, mask, g]);
      layer.dispose();
    }
  });

  it('rejects wrong inputs with a message naming the layer', () => {
    const x = tf.zeros([2, 3, 4]);
    const badMask = tf.zeros([2, 4]);
    assert.throws(() => new MaskedMeanPooling().apply([x, badMask]), /MaskedMeanPooling: mask must have shape \[2,3\]/);
    assert.throws(() => new AttentionMilPooling({ units: 0 }), /AttentionMilPooling: units must be an integer >= 1, got 0/);
    assert.throws(() => new BagDropout({ rate: 1 }), /BagDropout: rate must be a number in \[0, 1\), got 1/);
    assert.throws(() => (new MaskedMaxPooling() as tfl.layers.Layer).apply(x), /MaskedMaxPooling: inputs must be \[instances/);
    tf.dispose([x, badMask]);
  });
});

describe('BagDropout', () => {
  it('never empties a bag, drops about `rate` of the instances, and is off at inference', () => {
    const layer = new BagDropout({ rate: 0.7, seed: 11 });
    const B = 200;
    const S = 6;
    const rng = seededRandom(4);
    const sizes = Array.from({ length: B }, () => 1 + rng.int(S));
    const m = new Float32Array(B * S);
    sizes.forEach((n, b) => m.fill(1, b * S, b * S + n));
    const mask = tf.tensor2d(m, [B, S]);
    let kept = 0;
    let expected = 0;
    for (let trial = 0; trial < 20; trial++) {
      const out = layer.call(mask, { training: true }) as tf.Tensor;
      const v = out.dataSync();
      for (let b = 0; b < B; b++) {
        let left = 0;
        for (let s = 0; s < S; s++) {
          assert.ok(v[b * S + s] <= m[b * S + s], 'only real instances may be kept');
          left += v[b * S + s];
        }
        assert.ok(left >= 1, `bag ${b} (size ${sizes[b]}) emptied in trial ${trial}`);
        kept += left;
        expected += sizes[b] * 0.3 + 0.7 ** sizes[b];
      }
      out.dispose();
    }
    // A bag of n keeps n (1 - rate) + rate^n instances on average (one is rescued when all drop).
    assert.ok(Math.abs(kept / expected - 1) < 0.05, `kept ${kept}, expected ${expected}`);
    const inference = layer.call(mask, {}) as tf.Tensor;
    assertClose(inference, mask, 0, 'inference');
    const explicitFalse = layer.call(mask, { training: false }) as tf.Tensor;
    assertClose(explicitFalse, mask, 0, 'training: false');
    tf.dispose([mask, inference, explicitFalse]);
  });

  it('is active in a training call of the model and inactive in model.predict', () => {
    const model = milClassifier({ numFeatures: F, hidden: [4], pooling: 'mean', bagDropout: 0.5, seed: 1 });
    const { x, mask } = paddedBatch([6, 6, 6], 6, 1);
    const p1 = model.predict([x, mask]) as tf.Tensor;
    const p2 = model.predict([x, mask]) as tf.Tensor;
    assertClose(p1, p2, 0, 'predict is deterministic');
    const t1 = model.apply([x, mask], { training: true }) as tf.Tensor;
    const t2 = model.apply([x, mask], { training: true }) as tf.Tensor;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(t1, t2))).dataSync()[0]);
    assert.ok(diff > 0, 'two training calls drop different instances');
    tf.dispose([x, mask, p1, p2, t1, t2]);
    model.dispose();
  });
});

forEachBackend('milClassifier', () => {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    it(`${name}: output [B,1] in (0,1), padding has no influence (1e-6)`, () => {
      const model = milClassifier({ numFeatures: F, hidden: [8], dropout: 0.2, bagDropout: 0.3, weightDecay: 1e-3, seed: 3, ...variant });
      const sizes = [1, 3, 5, 2];
      const [a, b] = twoPaddings(sizes, 7);
      const pa = model.predict([a.x, a.mask]) as tf.Tensor;
      const pb = model.predict([b.x, b.mask]) as tf.Tensor;
      assert.deepEqual(pa.shape, [4, 1]);
      assert.ok(pa.dataSync().every((v) => v > 0 && v < 1));
      assertClose(pb, pa, 1e-6, `${name} padding invariance`);
      // The same bags without padding at all (one at a time) give the same probabilities.
      const solo = sizes.map((n, i) =>
        tf.tidy(() => {
          const xi = tf.slice(a.x, [i, 0, 0], [1, n, F]);
          const mi = tf.ones([1, n]);
          return (model.predict([xi, mi]) as tf.Tensor).dataSync()[0];
        }),
      );
      assertClose(pa, solo, 1e-5, `${name} unpadded`);
      tf.dispose([a.x, a.mask, b.x, b.mask, pa, pb]);
      model.dispose();
    });
  }
});

describe('milClassifier save/load', () => {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    it(`${name}: round trip through tf.io gives identical predictions`, async () => {
      const model = milClassifier({
        numFeatures: F,
        hidden: [8, 6],
        dropout: 0.1,
        bagDropout: 0.2,
        weightDecay: 1e-3,
        seed: 5,
        ...variant,
      });
      let artifacts: tf.io.ModelArtifacts | undefined;
      await model.save(
        tf.io.withSaveHandler(async (a) => {
          artifacts = a;
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
      const { x, mask } = paddedBatch([2, 6, 4], 6, 8);
      const p = model.predict([x, mask]) as tf.Tensor;
      const q = loaded.predict([x, mask]) as tf.Tensor;
      assertClose(q, p, 1e-6, `${name} loaded`);
      assert.equal(loaded.countParams(), model.countParams());
      tf.dispose([x, mask, p, q]);
      model.dispose();
      loaded.dispose();
    });
  }

  it('rejects unknown options and bad values with clear messages', () => {
    assert.throws(
      () => milClassifier({ numFeatures: 3, pooling: 'sum' as never }),
      /milClassifier: pooling must be one of 'hopfield', 'attention', 'gated-attention', 'mean', 'max', got 'sum'/,
    );
    assert.throws(() => milClassifier({ numFeatures: 3, hiden: [3] } as never), /milClassifier: unknown option 'hiden'/);
    assert.throws(() => milClassifier({ numFeatures: 0 }), /numFeatures must be an integer >= 1, got 0/);
    assert.throws(
      () => milClassifier({ numFeatures: 3, pooling: 'mean', hopfield: {} }),
      /milClassifier: hopfield applies to pooling 'hopfield' only, got pooling 'mean'/,
    );
    assert.throws(() => milClassifier({ numFeatures: 3, bagDropout: 1 }), /bagDropout must be a number in \[0, 1\), got 1/);
  });

  it('weight decay adds (lambda/2)||W||^2 over the kernels to the loss', () => {
    const model = milClassifier({ numFeatures: F, hidden: [4], pooling: 'mean', weightDecay: 0.1, seed: 2 });
    const kernels = model.layers.filter((l) => ['Dense', 'UhopInstanceDense'].includes(l.getClassName())).map((l) => l.getWeights()[0]);
    assert.equal(kernels.length, 2);
    const expected = kernels.reduce((s, k) => s + 0.05 * tf.sum(tf.square(k)).dataSync()[0], 0);
    const losses = model.calculateLosses();
    const reg = losses.reduce((s, l) => s + l.dataSync()[0], 0);
    tf.dispose(losses);
    assertClose([reg], [expected], 1e-5, 'regularization');
    model.dispose();
  });
});

/** Positive iff the bag holds an instance from the shifted Gaussian N(3, 1) (others N(0, 1)). */
function syntheticBags(n: number, seed: number): Bag[] {
  const rng = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => {
    const size = 3 + rng.int(8);
    const label = i % 2;
    const instances = new Float32Array(size * F);
    for (let k = 0; k < instances.length; k++) instances[k] = rng.normal();
    if (label === 1) {
      const j = rng.int(size);
      for (let f = 0; f < F; f++) instances[j * F + f] += 3;
    }
    return { id: i, label, size, instances };
  });
}

describe('MIL training', () => {
  it('learns a synthetic MIL task (positive iff a bag has a shifted instance) to > 0.9 accuracy', async () => {
    const train = syntheticBags(120, 1);
    const val = syntheticBags(30, 2);
    const test = syntheticBags(200, 3);
    for (const [name, variant] of [
      ['attention', VARIANTS.attention],
      ['uhop', VARIANTS.uhop],
    ] as const) {
      const model = milClassifier({ numFeatures: F, hidden: [16], seed: 1, ...variant });
      const { history, bestEpoch } = await trainMilModel(model, train, {
        epochs: 10,
        batchSize: 8,
        learningRate: 1e-2,
        validation: val,
        seed: 1,
      });
      const p = predictBags(model, test);
      const labels = test.map((b) => b.label);
      const acc = bagAccuracy(p, labels);
      assert.ok(acc > 0.9, `${name}: test accuracy ${acc}`);
      assert.ok(rocAuc(p, labels) > 0.95, `${name}: test AUC ${rocAuc(p, labels)}`);
      assert.ok(bestEpoch >= 0 && bestEpoch < history.length);
      model.dispose();
    }
  });

  it('restores the best validation epoch, stops early, and applies the lr schedule', async () => {
    const train = syntheticBags(40, 4);
    const val = syntheticBags(10, 5);
    const model = milClassifier({ numFeatures: F, hidden: [8], pooling: 'mean', seed: 2 });
    const seen: number[] = [];
    const { history, bestEpoch } = await trainMilModel(model, train, {
      epochs: 40,
      batchSize: 4,
      learningRate: 0.05,
      lrDecay: 0.5,
      validation: val,
      patience: 3,
      onEpochEnd: (log) => seen.push(log.learningRate),
    });
    seen.forEach((lr, e) => assertClose([lr], [0.05 * 0.5 ** e], 1e-9, 'lr'));
    const best = Math.min(...history.map((h) => h.valLoss!));
    assert.equal(history[bestEpoch].valLoss, best);
    assert.ok(history.length <= bestEpoch + 1 + 3, 'stopped within patience');
    // The model holds the best epoch's weights.
    const p = predictBags(model, val);
    let bce = 0;
    val.forEach((b, i) => (bce -= Math.log(b.label ? Math.max(p[i], 1e-7) : Math.max(1 - p[i], 1e-7))));
    assertClose([bce / val.length], [best], 1e-4, 'restored validation loss');
    model.dispose();
  });

  it('LearningRateScheduler sets the optimizer learning rate per epoch in model.fit', async () => {
    const model = milClassifier({ numFeatures: F, hidden: [], pooling: 'max', seed: 1 });
    const opt = tf.train.adam(0.01);
    model.compile({ optimizer: opt, loss: 'binaryCrossentropy' });
    const lrs: number[] = [];
    const probe = new (class extends tfl.Callback {
      override async onEpochEnd() {
        lrs.push((opt as unknown as { learningRate: number }).learningRate);
      }
    })();
    const { x, mask } = paddedBatch([2, 3], 3, 1);
    const y = tf.tensor2d([[0], [1]]);
    await model.fit([x, mask], y, { epochs: 3, verbose: 0, callbacks: [new LearningRateScheduler(exponentialDecay(0.5)), probe] });
    assertClose(lrs, [0.01, 0.005, 0.0025], 1e-9);
    const sgd = tf.train.sgd(0.1);
    setLearningRate(sgd, 0.01);
    assert.equal((sgd as unknown as { learningRate: number }).learningRate, 0.01);
    tf.dispose([x, mask, y]);
    opt.dispose();
    sgd.dispose();
    model.dispose();
  });

  it('leaks no tensors over a training run (after warm-up), also with model.fit', async () => {
    const train = syntheticBags(16, 6);
    const val = syntheticBags(6, 7);
    for (const variant of [VARIANTS['gated-attention'], VARIANTS.uhop]) {
      const model = milClassifier({ numFeatures: F, hidden: [4], bagDropout: 0.2, dropout: 0.1, seed: 3, ...variant });
      await trainMilModel(model, train, { epochs: 1, batchSize: 4, validation: val });
      const before = tf.memory().numTensors;
      await trainMilModel(model, train, { epochs: 3, batchSize: 4, validation: val, lrDecay: 0.9 });
      assert.equal(tf.memory().numTensors, before, 'trainMilModel leaked');
      const { x, mask } = paddedBatch([2, 3, 4, 1], 4, 2);
      const y = tf.tensor2d([[0], [1], [1], [0]]);
      await model.fit([x, mask], y, { epochs: 1, verbose: 0 });
      const before2 = tf.memory().numTensors;
      await model.fit([x, mask], y, { epochs: 3, batchSize: 2, verbose: 0 });
      assert.equal(tf.memory().numTensors, before2, 'model.fit leaked');
      tf.dispose([x, mask, y]);
      model.dispose();
    }
  });
});

describe('trainMilModel: AdamW (decoupled weight decay)', () => {
  const weightsAfterOneStep = async (options: Parameters<typeof trainMilModel>[2]) => {
    // Gated attention has kernels and biases; four bags at batch size 4 = one optimizer step.
    const model = milClassifier({ numFeatures: F, hidden: [6], pooling: 'gated-attention', attentionUnits: 3, seed: 11 });
    try {
      const before = model.getWeights().map((w) => w.dataSync().slice());
      await trainMilModel(model, syntheticBags(4, 12), { epochs: 1, batchSize: 4, learningRate: 0.01, ...options });
      return { before, after: model.getWeights().map((w) => w.dataSync().slice()) };
    } finally {
      model.dispose();
    }
  };

  it('one step is the Adam step minus lr * weightDecay * w for every weight (PyTorch AdamW)', async () => {
    const before = tf.memory().numTensors;
    const adam = await weightsAfterOneStep({});
    const adamw = await weightsAfterOneStep({ optimizer: 'adamw', weightDecay: 0.5 });
    assert.equal(tf.memory().numTensors, before);
    adam.before.forEach((w0, i) => {
      assert.deepEqual(adamw.before[i], w0); // the same seeded start
      // p1 = p0 - lr * adam(grad(p0)) - lr * wd * p0: the gradient is taken at the undecayed p0.
      const expected = adam.after[i].map((p, k) => p - 0.01 * 0.5 * w0[k]);
      assertClose(Array.from(adamw.after[i]), Array.from(expected), 1e-6);
    });
    // A zero decay is plain Adam.
    const none = await weightsAfterOneStep({ optimizer: 'adamw', weightDecay: 0 });
    none.after.forEach((w, i) => assert.deepEqual(w, adam.after[i]));
  });

  it('rejects a decay without adamw, unknown optimizers and bad decays', async () => {
    const model = milClassifier({ numFeatures: F, hidden: [], pooling: 'mean', seed: 1 });
    const bags = syntheticBags(4, 1);
    try {
      await assert.rejects(
        trainMilModel(model, bags, { weightDecay: 0.1 }),
        /trainMilModel: weightDecay applies to optimizer 'adamw' only, got optimizer 'adam'/,
      );
      await assert.rejects(
        trainMilModel(model, bags, { optimizer: 'sgd' as never }),
        /trainMilModel: optimizer must be one of 'adam', 'adamw', got 'sgd'/,
      );
      await assert.rejects(
        trainMilModel(model, bags, { optimizer: 'adamw', weightDecay: -1 }),
        /trainMilModel: weightDecay must be a finite number >= 0, got -1/,
      );
    } finally {
      model.dispose();
    }
  });
});

describe('predictBagsAsync', () => {
  it('equals predictBags without leaking, and rejects unknown options', async () => {
    const model = milClassifier({ numFeatures: F, hidden: [4], pooling: 'attention', attentionUnits: 3, seed: 5 });
    const bags = syntheticBags(9, 3);
    try {
      const before = tf.memory().numTensors;
      const p = await predictBagsAsync(model, bags, { batchSize: 4 });
      assert.equal(tf.memory().numTensors, before);
      // Other batch sizes pad the bags differently: libtensorflow (oneDNN) may then round
      // differently in the last bits, so the values are compared to float32 noise.
      const q = predictBags(model, bags);
      assert.equal(p.length, q.length);
      p.forEach((v, i) => assert.ok(Math.abs(v - q[i]) <= 1e-6, `bag ${i}: ${v} vs ${q[i]}`));
      assert.deepEqual(
        await predictBagsAsync(model, bags, { batchSize: 4 }),
        predictBags(model, bags, { batchSize: 4 }),
        'same batches, same values',
      );
      await assert.rejects(predictBagsAsync(model, bags, { batch: 2 } as never), /predictBagsAsync: unknown option 'batch'/);
      await assert.rejects(predictBagsAsync(model, bags, { batchSize: 0 }), /predictBagsAsync: batchSize must be an integer >= 1, got 0/);
    } finally {
      model.dispose();
    }
  });
});

describe('rocAuc', () => {
  it('matches hand-computed values, with ties counting one half', () => {
    // Pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both -> 3/4.
    assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    assert.equal(rocAuc([0.5, 0.5], [0, 1]), 0.5);
    assert.equal(rocAuc([0.9, 0.1], [0, 1]), 0);
    assert.equal(rocAuc([1, 2, 3], [0, 1, 1]), 1);
    // pos {0.5, 0.7, 0.2} vs neg {0.5, 0.2, 0.1}: 0.5 wins 0.5+1+1, 0.7 wins 3, 0.2 wins 0+0.5+1 -> 7/9.
    assertClose([rocAuc([0.5, 0.7, 0.2, 0.5, 0.2, 0.1], [1, 1, 1, 0, 0, 0])], [7 / 9], 1e-12);
    // All scores tied -> 0.5.
    assert.equal(rocAuc([3, 3, 3, 3, 3], [1, 0, 1, 0, 0]), 0.5);
    // Brute force on random scores with many ties.
    const rng = seededRandom(1);
    const s = Array.from({ length: 60 }, () => rng.int(6));
    const y = Array.from({ length: 60 }, () => rng.int(2));
    let won = 0;
    let pairs = 0;
    for (let i = 0; i < 60; i++)
      for (let j = 0; j < 60; j++) {
        if (y[i] === 1 && y[j] === 0) {
          pairs++;
          won += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
        }
      }
    assertClose([rocAuc(s, y)], [won / pairs], 1e-12);
  });

  it('is NaN with one class and rejects bad input', () => {
    assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [1, 1])));
    assert.throws(() => rocAuc([0.1], [0, 1]), /rocAuc: scores and labels must have the same length/);
    assert.throws(() => rocAuc([0.1, 0.2], [0, 2]), /rocAuc: labels must be 0 or 1, got labels\[1\] = 2/);
  });

  it('bagAccuracy thresholds at 0.5', () => {
    assert.equal(bagAccuracy([0.5, 0.49, 0.9, 0.1], [1, 0, 0, 0]), 0.75);
  });
});
