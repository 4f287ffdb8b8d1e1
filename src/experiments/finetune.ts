/**
 * U-Hop as a drop-in for attention in a model that is already trained.
 *
 * Protocol, per seed:
 *   1. pretrain a small transformer with standard MultiHeadAttention (`pretrainEpochs`);
 *   2. `saveModel` it to a folder and `loadModel` it twice (the round trip is checked: the
 *      loaded model must predict what the trained one predicts);
 *   3. branch A ("continue"): keep training the loaded MultiHeadAttention model for
 *      `finetuneEpochs` epochs;
 *      branch B ("U-Hop"): `replaceAttention(loaded, {featureMap: 'linear', ...})` (same
 *      projection weights, Phi0 = identity, so only the per-call Phi fit changes the
 *      attention), then train it for the same `finetuneEpochs` epochs;
 *      branch C ("U-Hop, fitSteps 0", the control arm): the same swap with fitSteps 0, so
 *      Phi0 (identity at the swap, then trained) is the only change; it separates what the
 *      per-call fit adds from what the extra trainable kernel adds;
 *   all branches with a fresh Adam of the same learning rate and the same batch order.
 * Reported: test accuracy after pretraining, right after the swap (no training), and after
 * the fine-tuning of each branch; seconds per epoch of each branch.
 *
 * Tasks: 'recall' (associative recall with `pairs` stored pairs, see ./recall.ts) or 'vision'
 * (a one-block ViT on MNIST / Fashion-MNIST).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel, loadModel } from '../node/io.js';
import { replaceAttention } from '../layers/replaceAttention.js';
import { loadIdxImageFolder, loadMnist } from '../node/data.js';
import { visionClassifier } from '../models/vision.js';
import { recallModel, recallTask } from './recall.js';
import { FASHION_MNIST_DIR } from './vision.js';
import {
  accuracy,
  checkIntOption,
  withUHopDefaults,
  parseVariant,
  seedList,
  trainWithCurve,
  variantLayerOptions,
  withSeed,
  type ClassificationData,
  type EpochRecord,
  type UHopExperimentOptions,
} from './transformerTraining.js';
import { meanStd } from './report.js';

export type FinetuneTask = 'recall' | 'vision';

/** Options of {@link runFinetuneExperiment}. */
export interface FinetuneExperimentOptions extends UHopExperimentOptions {
  /** Default 'recall'. */
  task?: FinetuneTask;
  /** The U-Hop variant swapped in (see parseVariant; must start with 'uhop'). Default 'uhop'. */
  variant?: string;
  /** Epochs of the MultiHeadAttention model before the swap. Default 3. */
  pretrainEpochs?: number;
  /** Epochs of each branch after the swap. Default 2. */
  finetuneEpochs?: number;
  /** Number of seeds or a list. Default 2. */
  seeds?: number | number[];
  /** Adam learning rate of the pretraining. Default 3e-3. */
  lr?: number;
  /** Adam learning rate of both branches after the swap. Default: lr. */
  finetuneLr?: number;
  /** Default 64. */
  batchSize?: number;
  /** Token width. Default 16 (recall) / 32 (vision). */
  dModel?: number;
  /** Default 1 (recall) / 2 (vision). */
  numHeads?: number;
  /** recall: stored pairs. Default 16. */
  pairs?: number;
  /** recall: distinct keys (64) and values (16). */
  numKeys?: number;
  numValues?: number;
  /** Training / test examples. Default 3000 / 1000 (recall), 2000 / 1000 (vision). */
  trainSize?: number;
  testSize?: number;
  /** vision: 'mnist', 'fashion-mnist' or an IDX folder. Default 'mnist'. */
  dataset?: string;
  /** Folder for the checkpoints (one subfolder per seed). Default: a temporary folder, removed afterwards. */
  checkpointDir?: string;
  onProgress?: (p: { done: number; total: number; status: string }) => void;
}

export interface FinetuneRun {
  seed: number;
  /** Test accuracy of the MultiHeadAttention model after pretraining. */
  pretrained: number;
  /** Largest |difference| between the predictions of the trained and the saved-and-loaded model. */
  roundTripMaxDiff: number;
  /** Test accuracy right after replaceAttention, before any fine-tuning. */
  swapped: number;
  pretrainCurve: EpochRecord[];
  continueCurve: EpochRecord[];
  uhopCurve: EpochRecord[];
  /** The control arm: the same swap with fitSteps 0 (Phi0 trained, no per-call fit). */
  nofitCurve: EpochRecord[];
}

export interface FinetuneResults {
  config: Record<string, unknown> & { task: FinetuneTask; seeds: number[]; variant: string };
  backend: string;
  runs: FinetuneRun[];
  summary: {
    pretrained: { mean: number; std: number };
    swapped: { mean: number; std: number };
    continued: { mean: number; std: number };
    uhop: { mean: number; std: number };
    /** The control arm (fitSteps 0). */
    nofit: { mean: number; std: number };
    continueSecondsPerEpoch: number;
    uhopSecondsPerEpoch: number;
    nofitSecondsPerEpoch: number;
  };
  wallSeconds: number;
}

interface TaskSetup {
  describe: string;
  data: ClassificationData;
  build(): tfl.LayersModel;
  dispose(): void;
}

function setupTask(o: FinetuneExperimentOptions, seed: number): TaskSetup {
  const isRecall = (o.task ?? 'recall') === 'recall';
  const dModel = o.dModel ?? (isRecall ? 16 : 32);
  const numHeads = o.numHeads ?? (isRecall ? 1 : 2);
  if (isRecall) {
    const pairs = o.pairs ?? 16;
    const numKeys = o.numKeys ?? 64;
    const numValues = o.numValues ?? 16;
    const train = recallTask({ pairs, numKeys, numValues, size: o.trainSize ?? 3000, seed: 1000 * seed + pairs });
    const test = recallTask({ pairs, numKeys, numValues, size: o.testSize ?? 1000, seed: 1000 * seed + pairs + 500 });
    const yTrain = tf.tensor1d(Float32Array.from(train.labels));
    return {
      describe: `associative recall, ${pairs} pairs (${numKeys} keys, ${numValues} values), ${train.labels.length} train / ${test.labels.length} test problems`,
      data: { xTrain: [train.keys, train.values], yTrain, xTest: [test.keys, test.values], testLabels: test.labels },
      build: () => recallModel({ pairs, numKeys, numValues, dModel, numHeads, attention: 'mha' }),
      dispose: () => tf.dispose([train.keys, train.values, test.keys, test.values, yTrain]),
    };
  }
  const dataset = o.dataset ?? 'mnist';
  const load = (split: 'train' | 'test', limit: number) =>
    dataset === 'mnist'
      ? loadMnist({ split, limit })
      : loadIdxImageFolder(dataset === 'fashion-mnist' ? FASHION_MNIST_DIR : dataset, { split, limit });
  const tr = load('train', o.trainSize ?? 2000);
  const te = load('test', o.testSize ?? 1000);
  const numClasses = Math.max(...tr.labels, ...te.labels) + 1;
  const xTrain = tf.tensor4d(tr.images, [tr.n, tr.rows, tr.cols, 1]);
  const yTrain = tf.tensor1d(Float32Array.from(tr.labels));
  const xTest = tf.tensor4d(te.images, [te.n, te.rows, te.cols, 1]);
  return {
    describe: `${dataset}, ${tr.n} train / ${te.n} test images, one-block ViT (7x7 patches, mean pooling)`,
    data: { xTrain, yTrain, xTest, testLabels: te.labels },
    build: () =>
      visionClassifier({
        imageSize: [tr.rows, tr.cols],
        patchSize: 7,
        dModel,
        numClasses,
        encoder: 'transformer',
        numLayers: 1,
        numHeads,
        pooling: 'mean',
        attention: 'mha',
      }),
    dispose: () => tf.dispose([xTrain, yTrain, xTest]),
  };
}

/** The first (at most) 64 test examples: what the save/load round trip is checked on. */
function probeOf(x: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
  const n = Math.min(64, (Array.isArray(x) ? x[0] : x).shape[0]);
  return Array.isArray(x) ? x.map((t) => tf.slice(t, 0, n)) : tf.slice(x, 0, n);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/**
 * Runs the fine-tuning comparison (see the file header).
 *
 * @example
 * ```ts
 * const res = await runFinetuneExperiment({ task: 'recall', pairs: 16, seeds: 2 });
 * console.log(res.summary.continued.mean, res.summary.uhop.mean);
 * ```
 */
export async function runFinetuneExperiment(options: FinetuneExperimentOptions = {}): Promise<FinetuneResults> {
  const fn = 'runFinetuneExperiment';
  const t0 = performance.now();
  const task = options.task ?? 'recall';
  if (task !== 'recall' && task !== 'vision') throw new Error(`${fn}: task must be 'recall' or 'vision', got '${String(task)}'`);
  const variant = parseVariant(options.variant ?? 'uhop');
  if (!variant.uhop || variant.noFit) {
    throw new Error(
      `${fn}: variant must be a fitted U-Hop variant ('uhop' or 'uhop-<separation>'; the fitSteps-0 control branch always runs), got '${variant.name}'`,
    );
  }
  const int = (v: number, name: string, min = 1) => checkIntOption(fn, v, name, min);
  const seeds = seedList(fn, options.seeds, 2);
  const pretrainEpochs = int(options.pretrainEpochs ?? 3, 'pretrainEpochs');
  const finetuneEpochs = int(options.finetuneEpochs ?? 2, 'finetuneEpochs');
  const batchSize = int(options.batchSize ?? 64, 'batchSize');
  const lr = options.lr ?? 3e-3;
  const finetuneLr = options.finetuneLr ?? lr;
  const uhop = withUHopDefaults(options);
  const swapOptions = variantLayerOptions(variant, uhop);
  // the control arm: the plain Phi0 layer (the fit's own variants mean nothing without a fit)
  const nofitOptions = variantLayerOptions({ ...variant, noFit: true }, uhop);
  const ownDir = options.checkpointDir == null;
  const root = options.checkpointDir ?? mkdtempSync(join(tmpdir(), 'uhop-finetune-'));
  const total = seeds.length * (pretrainEpochs + 3 * finetuneEpochs);
  let done = 0;
  const tick = (status: string) => options.onProgress?.({ done: ++done, total, status });
  const runs: FinetuneRun[] = [];
  let describe = '';
  try {
    for (const seed of seeds) {
      const setup = setupTask(options, seed);
      describe = setup.describe;
      try {
        // 1. Pretrain with standard MultiHeadAttention.
        const dir = join(root, `seed-${seed}`);
        const { pretrainCurve, reference } = await withSeed(seed, async () => {
          const base = setup.build();
          try {
            base.compile({ optimizer: tf.train.adam(lr), loss: 'sparseCategoricalCrossentropy' });
            const curve = await trainWithCurve(base, setup.data, {
              epochs: pretrainEpochs,
              batchSize,
              onEpoch: (r) => tick(`seed ${seed} pretrain epoch ${r.epoch}: ${(100 * r.testAcc).toFixed(1)}%`),
            });
            // 2. Save it.
            await saveModel(base, dir);
            const x = setup.data.xTest;
            const probe = probeOf(x);
            const ref = base.predict(probe) as tf.Tensor;
            tf.dispose(probe);
            return { pretrainCurve: curve, reference: ref };
          } finally {
            base.dispose();
          }
        });
        // 2. ... and load it back (twice: one copy per branch).
        const loadedA = await loadModel(dir);
        const loadedB = await loadModel(dir);
        const loadedC = await loadModel(dir);
        const x = setup.data.xTest;
        const probe = probeOf(x);
        const again = loadedA.predict(probe) as tf.Tensor;
        const roundTripMaxDiff = maxAbsDiff(again, reference);
        tf.dispose([probe, again, reference]);
        // 3B. Swap the attention for U-Hop.
        const swapped = replaceAttention(loadedB, swapOptions);
        loadedB.dispose();
        const swappedAcc = accuracy(swapped, setup.data.xTest, setup.data.testLabels);
        // 3C. The control arm: the same swap with fitSteps 0.
        const swappedNofit = replaceAttention(loadedC, nofitOptions);
        loadedC.dispose();
        const branch = async (model: tfl.LayersModel, name: string) =>
          withSeed(seed + 7919, async () => {
            model.compile({ optimizer: tf.train.adam(finetuneLr), loss: 'sparseCategoricalCrossentropy' });
            return trainWithCurve(model, setup.data, {
              epochs: finetuneEpochs,
              batchSize,
              onEpoch: (r) => tick(`seed ${seed} ${name} epoch ${r.epoch}: ${(100 * r.testAcc).toFixed(1)}%`),
            });
          });
        const continueCurve = await branch(loadedA, 'continue MHA');
        loadedA.dispose();
        const uhopCurve = await branch(swapped, variant.name);
        swapped.dispose();
        const nofitCurve = await branch(swappedNofit, `${variant.name}, fitSteps 0`);
        swappedNofit.dispose();
        runs.push({
          seed,
          pretrained: pretrainCurve[pretrainCurve.length - 1].testAcc,
          roundTripMaxDiff,
          swapped: swappedAcc,
          pretrainCurve,
          continueCurve,
          uhopCurve,
          nofitCurve,
        });
      } finally {
        setup.dispose();
      }
    }
  } finally {
    if (ownDir) rmSync(root, { recursive: true, force: true });
  }
  const last = (c: EpochRecord[]) => c[c.length - 1].testAcc;
  const secs = (cs: EpochRecord[][]) => {
    const all = cs.flat();
    return all.reduce((a, r) => a + r.seconds, 0) / Math.max(1, all.length);
  };
  return {
    config: {
      task,
      describe,
      variant: variant.name,
      seeds,
      pretrainEpochs,
      finetuneEpochs,
      batchSize,
      lr,
      finetuneLr,
      dModel: options.dModel ?? (task === 'recall' ? 16 : 32),
      numHeads: options.numHeads ?? (task === 'recall' ? 1 : 2),
      ...uhop,
      checkpointDir: ownDir ? null : root,
    },
    backend: tf.getBackend(),
    runs,
    summary: {
      pretrained: meanStd(runs.map((r) => r.pretrained)),
      swapped: meanStd(runs.map((r) => r.swapped)),
      continued: meanStd(runs.map((r) => last(r.continueCurve))),
      uhop: meanStd(runs.map((r) => last(r.uhopCurve))),
      nofit: meanStd(runs.map((r) => last(r.nofitCurve))),
      continueSecondsPerEpoch: secs(runs.map((r) => r.continueCurve)),
      uhopSecondsPerEpoch: secs(runs.map((r) => r.uhopCurve)),
      nofitSecondsPerEpoch: secs(runs.map((r) => r.nofitCurve)),
    },
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
