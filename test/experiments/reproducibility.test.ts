/**
 * A fixed seed gives the same numbers: every experiment command, run twice on a tiny setting
 * with the same seed, reports identical results (weights, batch order, dropout and bag-dropout
 * masks all seeded); a different seed changes them, so the equality is not vacuous.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/node/backend.js';
import { toyBags } from './toyBags.js';
import { MIL_CONFIGS, runMilBenchmark, type MilConfig } from '../../src/experiments/mil.js';
import { recallModel, runRecallExperiment } from '../../src/experiments/recall.js';
import { runVisionExperiment } from '../../src/experiments/vision.js';
import { runFinetuneExperiment } from '../../src/experiments/finetune.js';
import { runRetrievalExperiment } from '../../src/experiments/retrieval.js';
import { SeededDropout } from '../../src/layers/seededDropout.js';
import { milClassifier } from '../../src/models/mil.js';
import { visionClassifier } from '../../src/models/vision.js';
import { sequenceClassifier } from '../../src/models/sequence.js';
import { trainMilModel, predictBags } from '../../src/models/milTraining.js';

/** The results without wall-clock fields (the only part allowed to differ between runs). */
function numbersOf(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(numbersOf);
  if (x instanceof Float32Array) return Array.from(x);
  if (x && typeof x === 'object') {
    return Object.fromEntries(
      Object.entries(x)
        .filter(([k]) => !/seconds|Seconds|^ms$/.test(k))
        .map(([k, v]) => [k, numbersOf(v)]),
    );
  }
  return x;
}

describe('reproducibility: a fixed seed gives identical numbers', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('uhop mil (dropout, bag dropout, U-Hop and its fitSteps-0 arm)', async () => {
    const config: MilConfig = {
      ...MIL_CONFIGS.default,
      hidden: [8],
      epochs: 4,
      patience: 4,
      batchSize: 4,
      dropout: 0.3,
      bagDropout: 0.3,
      hopfield: { numHeads: 2, hiddenSize: 4, fitSteps: 2, dropout: 0.2 },
    };
    const run = (seed: number) =>
      runMilBenchmark({ dataset: toyBags(24, 1), methods: ['uhop', 'uhop-nofit', 'attention'], folds: 2, repeats: 1, seed, config });
    const a = await run(3);
    const b = await run(3);
    assert.deepEqual(numbersOf(b.results), numbersOf(a.results));
    const c = await run(4);
    assert.notDeepEqual(numbersOf(c.results), numbersOf(a.results));
  });

  it('milClassifier + trainMilModel with a seed: the same predictions after training, dropout on', async () => {
    const ds = toyBags(16, 2);
    const train = async (seed: number) => {
      const model = milClassifier({ numFeatures: 4, hidden: [8], pooling: 'mean', dropout: 0.5, bagDropout: 0.3, seed });
      try {
        await trainMilModel(model, ds.bags, { epochs: 3, batchSize: 4, seed });
        return Array.from(predictBags(model, ds.bags));
      } finally {
        model.dispose();
      }
    };
    const a = await train(7);
    assert.deepEqual(await train(7), a);
    assert.notDeepEqual(await train(8), a);
  });

  it('uhop recall (softmax, uhop-nofit, uhop)', async () => {
    const run = () =>
      runRecallExperiment({
        pairs: [3],
        variants: ['softmax', 'uhop-nofit', 'uhop'],
        numKeys: 6,
        numValues: 3,
        trainSize: 48,
        testSize: 32,
        seeds: [2],
        epochs: 2,
        dModel: 8,
        fitSteps: 2,
      });
    const a = await run();
    assert.deepEqual(numbersOf((await run()).runs), numbersOf(a.runs));
    assert.deepEqual(
      a.summary.map((s) => s.variant),
      ['softmax', 'uhop-nofit', 'uhop'],
    );
  });

  it('uhop vision (the transformer encoder, U-Hop and its fitSteps-0 arm)', async () => {
    const run = (seeds: number[]) =>
      runVisionExperiment({
        trainSize: 32,
        testSize: 16,
        variants: ['uhop-nofit', 'uhop'],
        seeds,
        epochs: 1,
        dModel: 8,
        fitSteps: 1,
        encoder: 'transformer',
        pooling: 'cls',
      });
    const a = await run([1]);
    assert.deepEqual(numbersOf((await run([1])).runs), numbersOf(a.runs));
    assert.notDeepEqual(
      (await run([2])).runs.map((r) => r.curve[0].trainLoss),
      a.runs.map((r) => r.curve[0].trainLoss),
    );
  });

  it('uhop finetune (all three branches)', async () => {
    const run = () =>
      runFinetuneExperiment({
        task: 'recall',
        pairs: 3,
        numKeys: 8,
        numValues: 4,
        trainSize: 48,
        testSize: 32,
        pretrainEpochs: 1,
        finetuneEpochs: 1,
        seeds: [1],
        fitSteps: 2,
        dModel: 8,
      });
    const a = await run();
    assert.deepEqual(numbersOf((await run()).runs), numbersOf(a.runs));
    assert.equal(a.runs[0].nofitCurve.length, 1);
  });

  it('uhop retrieval (memory sets, queries and the fit)', async () => {
    const run = () =>
      runRetrievalExperiment({
        dataset: 'correlated',
        dim: 16,
        sizes: [8],
        seeds: [5],
        noiseLevels: [0.3],
        noiseSize: 8,
        methods: ['dense', 'uhop'],
        fit: { steps: 5, lr: 0.1, loss: 'uniform' },
      });
    const a = await run();
    const b = await run();
    assert.deepEqual(numbersOf(b.capacity), numbersOf(a.capacity));
    assert.deepEqual(numbersOf(b.noise), numbersOf(a.noise));
  });
});

describe('SeededDropout', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('repeats its mask stream for a seed, differs between calls, and passes through at inference', () => {
    const masks = (seed: number) => {
      const layer = new SeededDropout({ rate: 0.5, seed });
      return tf.tidy(() => {
        const x = tf.ones([64]);
        return [0, 1].map((_) => Array.from((layer.apply(x, { training: true }) as tf.Tensor).dataSync()));
      });
    };
    const [a0, a1] = masks(3);
    const [b0, b1] = masks(3);
    assert.deepEqual([b0, b1], [a0, a1]);
    assert.notDeepEqual(a0, a1, 'consecutive training calls draw different masks');
    assert.ok(
      a0.every((v) => v === 0 || v === 2),
      'inverted dropout scales the kept entries by 1 / (1 - rate)',
    );
    const layer = new SeededDropout({ rate: 0.5, seed: 3 });
    tf.tidy(() => assert.deepEqual(Array.from((layer.apply(tf.ones([4])) as tf.Tensor).dataSync()), [1, 1, 1, 1]));
    assert.throws(() => new SeededDropout({ rate: 1 }), /SeededDropout: rate must be .*, got 1/);
    assert.throws(() => new SeededDropout({ rate: 0.1, sed: 3 } as never), /SeededDropout: unknown option 'sed' \(did you mean 'seed'\?\)/);
    const cfg = new SeededDropout({ rate: 0.2, seed: 4, name: 'd' }).getConfig();
    assert.equal(cfg.rate, 0.2);
    assert.equal(cfg.seed, 4);
  });
});

describe('model builders with a seed', () => {
  before(async () => {
    await initBackend('wasm');
  });

  // The attention is 'hopfield' here: Hopfield layers seed their initializers from `seed`;
  // MultiHeadAttention / UHopAttention accept a seed but do not use it yet (issue 12), and the
  // experiments cover them with a seeded Math.random (withSeed).
  const weightsAndLoss = async (seed: number) => {
    const model = visionClassifier({
      imageSize: 8,
      patchSize: 4,
      dModel: 8,
      numClasses: 3,
      encoder: 'transformer',
      numLayers: 2,
      attention: 'hopfield',
      featureMap: 'linear',
      fitSteps: 1,
      dropout: 0.3,
      classifierDropout: 0.3,
      pooling: 'hopfield',
      seed,
    });
    try {
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
      const x = tf.tidy(() => tf.div(tf.reshape(tf.range(0, 4 * 64), [4, 8, 8, 1]), 256));
      const y = tf.tensor1d([0, 1, 2, 1]);
      const h = await model.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false, verbose: 0 });
      tf.dispose([x, y]);
      return { weights, loss: h.history.loss as number[] };
    } finally {
      model.dispose();
    }
  };

  it('visionClassifier / transformer blocks: the same seed gives the same initial weights and the same training losses (dropout on)', async () => {
    const a = await weightsAndLoss(11);
    const b = await weightsAndLoss(11);
    assert.deepEqual(b.weights, a.weights);
    assert.deepEqual(b.loss, a.loss);
    const c = await weightsAndLoss(12);
    assert.notDeepEqual(c.weights, a.weights);
  });

  it('sequenceClassifier and recallModel: the same seed gives the same initial weights', () => {
    const build = (seed: number) => {
      const models = [
        sequenceClassifier({
          vocabSize: 10,
          maxLen: 5,
          dModel: 8,
          numClasses: 2,
          numLayers: 1,
          attention: 'hopfield',
          pooling: 'cls',
          seed,
        }),
        recallModel({ pairs: 3, numKeys: 6, numValues: 3, dModel: 8, attention: 'hopfield', seed }),
      ];
      const w = models.map((m) => m.getWeights().map((t) => Array.from(t.dataSync())));
      models.forEach((m) => m.dispose());
      return w;
    };
    assert.deepEqual(build(5), build(5));
    assert.throws(
      () => sequenceClassifier({ vocabSize: 10, maxLen: 5, dModel: 8, numClasses: 2, seed: 1.5 }),
      /sequenceClassifier: seed must be an integer, got 1.5/,
    );
  });
});
