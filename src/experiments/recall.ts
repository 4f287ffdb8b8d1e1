/**
 * Associative recall: a set of key-value pairs followed by a query key; the model must output
 * the value stored with that key. The experiment compares softmax attention with U-Hop as the
 * number of stored pairs grows (more memories to separate in one attention step).
 *
 * Encoding (the memory view of attention): each stored pair is ONE token, the sum of a key
 * embedding and a value embedding; the query is a token holding the query key and an empty
 * value; no position embeddings (the pairs are a set). One encoder block with the compared
 * attention reads the query token; a Dense layer classifies it into the V values. To answer,
 * the query must attend to the token whose key matches its own among `pairs` stored tokens:
 * a retrieval from a memory of `pairs` patterns, which is where separation matters.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { TokenEmbedding, SelectToken } from '../layers/tokenLayers.js';
import { encoderStack, type EncoderAttentionOptions } from '../models/transformer.js';
import { seededRandom } from '../data/random.js';
import {
  accuracy,
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

/** A batch of recall problems. */
export interface RecallData {
  /** [N, pairs + 1] int32: the stored keys, then the query key. */
  keys: tf.Tensor2D;
  /** [N, pairs + 1] int32: the stored values, then the empty value (id = numValues). */
  values: tf.Tensor2D;
  /** [N] the value stored with the query key. */
  labels: Int32Array;
}

/** Options of {@link recallTask}. */
export interface RecallTaskOptions {
  /** Stored pairs per problem. */
  pairs: number;
  /** Distinct keys (>= pairs; keys of one problem are distinct). */
  numKeys: number;
  /** Distinct values (drawn with replacement). */
  numValues: number;
  /** Number of problems. */
  size: number;
  seed: number;
}

/**
 * Draws `size` recall problems: `pairs` distinct keys with random values, and a query equal
 * to one of the stored keys.
 *
 * @example
 * ```ts
 * const { keys, values, labels } = recallTask({ pairs: 8, numKeys: 64, numValues: 16, size: 1000, seed: 0 });
 * ```
 */
export function recallTask(o: RecallTaskOptions): RecallData {
  const fn = 'recallTask';
  for (const k of ['pairs', 'numKeys', 'numValues', 'size'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`${fn}: ${k} must be an integer >= 1, got ${String(o[k])}`);
  }
  if (o.numKeys < o.pairs)
    throw new Error(`${fn}: numKeys (${o.numKeys}) must be >= pairs (${o.pairs}): the keys of one problem are distinct`);
  const rng = seededRandom(o.seed);
  const L = o.pairs + 1;
  const keys = new Int32Array(o.size * L);
  const values = new Int32Array(o.size * L);
  const labels = new Int32Array(o.size);
  const pool = Array.from({ length: o.numKeys }, (_, i) => i);
  for (let s = 0; s < o.size; s++) {
    // Partial Fisher-Yates: the first `pairs` entries become a random subset.
    for (let i = 0; i < o.pairs; i++) {
      const j = i + rng.int(o.numKeys - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
      keys[s * L + i] = pool[i];
      values[s * L + i] = rng.int(o.numValues);
    }
    const q = rng.int(o.pairs);
    keys[s * L + o.pairs] = keys[s * L + q];
    values[s * L + o.pairs] = o.numValues; // the empty value
    labels[s] = values[s * L + q];
  }
  return { keys: tf.tensor2d(keys, [o.size, L], 'int32'), values: tf.tensor2d(values, [o.size, L], 'int32'), labels };
}

/** Options of {@link recallModel}. */
export interface RecallModelOptions extends EncoderAttentionOptions {
  pairs: number;
  numKeys: number;
  numValues: number;
  /** Token width. Default 32. */
  dModel?: number;
  /** Encoder blocks. Default 1. */
  numLayers?: number;
  /** MLP width. Default 2 * dModel. */
  mlpDim?: number;
}

/**
 * The recall model: [keys, values] ids [B, pairs+1] each -> probabilities over the values.
 *
 * @example
 * ```ts
 * const model = recallModel({ pairs: 16, numKeys: 64, numValues: 16, attention: 'uhop-attention', featureMap: 'linear' });
 * ```
 */
export function recallModel(o: RecallModelOptions): tfl.LayersModel {
  const { pairs, numKeys, numValues, dModel = 32, numLayers = 1, mlpDim, seed, ...attention } = o;
  const L = pairs + 1;
  // With a seed: the embeddings from seed + 1 and + 2, the blocks from seed + 1000, the head from seed + 100000.
  const table = (k: number) =>
    seed === undefined ? {} : { embeddingsInitializer: { className: 'RandomNormal', config: { mean: 0, stddev: 0.02, seed: seed + k } } };
  const keyIds = tfl.input({ shape: [L], dtype: 'int32', name: 'keys' });
  const valueIds = tfl.input({ shape: [L], dtype: 'int32', name: 'values' });
  const k = new TokenEmbedding({ inputDim: numKeys, outputDim: dModel, name: 'key_embedding', ...table(1) }).apply(
    keyIds,
  ) as tfl.SymbolicTensor;
  const v = new TokenEmbedding({ inputDim: numValues + 1, outputDim: dModel, name: 'value_embedding', ...table(2) }).apply(
    valueIds,
  ) as tfl.SymbolicTensor;
  let h = tfl.layers.add({ name: 'pair_tokens' }).apply([k, v]) as tfl.SymbolicTensor;
  h = encoderStack(h, {
    numLayers,
    ...(mlpDim ? { mlpDim } : {}),
    attention: 'uhop-attention',
    ...attention,
    ...(seed === undefined ? {} : { seed: seed + 1000 }),
  });
  const q = new SelectToken({ index: -1, name: 'query_token' }).apply(h) as tfl.SymbolicTensor;
  const head = seed === undefined ? {} : { kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 100000 }) };
  const out = tfl.layers.dense({ units: numValues, activation: 'softmax', name: 'classifier', ...head }).apply(q) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [keyIds, valueIds], outputs: out, name: 'recall' });
}

export const DEFAULT_RECALL_PAIRS = [4, 8, 16, 32];
export const DEFAULT_RECALL_VARIANTS = ['softmax', 'uhop-nofit', 'uhop'];

/** Options of {@link runRecallExperiment}. */
export interface RecallExperimentOptions extends UHopExperimentOptions {
  /** Numbers of stored pairs. Default 4, 8, 16, 32. */
  pairs?: number[];
  /** Attention variants (see parseVariant). Default softmax, uhop-nofit (the control arm: U-Hop with fitSteps 0), uhop. */
  variants?: string[];
  /** Distinct keys. Default 64. */
  numKeys?: number;
  /** Distinct values (= classes; chance = 1/numValues). Default 16. */
  numValues?: number;
  /** Training problems. Default 3000. */
  trainSize?: number;
  /** Test problems (fresh draws). Default 1000. */
  testSize?: number;
  /**
   * Also test every trained model on problems with these numbers of stored pairs (the same
   * weights: the model has no position embeddings, so it reads any number of pair tokens).
   * Memory sets of a size never seen in training are where a per-call fit could adapt and a
   * trained Phi0 cannot. Default none.
   */
  testPairs?: number[];
  /** Number of seeds or an explicit list. Default 2. */
  seeds?: number | number[];
  /** Default 6. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Adam learning rate. Default 3e-3. */
  lr?: number;
  /** Token width. Default 16 (small, so that the stored keys cannot all be orthogonal). */
  dModel?: number;
  /** Default 1. */
  numHeads?: number;
  /** Default 1. */
  numLayers?: number;
  onProgress?: (p: { done: number; total: number; status: string }) => void;
}

export interface RecallRun {
  variant: string;
  pairs: number;
  seed: number;
  curve: EpochRecord[];
  testAcc: number;
  seconds: number;
  /** Accuracy on problems with other numbers of pairs (`testPairs`), same weights. */
  transfer?: { pairs: number; testAcc: number }[];
}

export interface RecallSummaryRow {
  variant: string;
  pairs: number;
  testAcc: { mean: number; std: number };
  perEpoch: { epoch: number; mean: number; std: number }[];
  secondsPerEpoch: number;
  /** Mean ± std over seeds of the accuracy at each of `testPairs`. */
  transfer?: { pairs: number; testAcc: { mean: number; std: number } }[];
}

export interface RecallResults {
  config: {
    pairs: number[];
    variants: string[];
    numKeys: number;
    numValues: number;
    trainSize: number;
    testSize: number;
    seeds: number[];
    testPairs: number[];
    epochs: number;
    batchSize: number;
    lr: number;
    dModel: number;
    numHeads: number;
    numLayers: number;
    fitSteps: number;
    fitLr: number;
    fitOptimizer: string;
    separationLoss: string;
    featureDim: number | null;
    /** The fit-strength study's options (see UHopExperimentOptions). */
    fitGradient: string;
    fitKeepNorm: boolean;
    fitStrength: number;
    fitStrengthTrainable: boolean;
  };
  backend: string;
  runs: RecallRun[];
  summary: RecallSummaryRow[];
  wallSeconds: number;
}

/**
 * Trains every variant at every number of pairs for every seed (same seed = same data, same
 * initial shared weights, same batch order) and reports the test accuracy.
 *
 * @example
 * ```ts
 * const res = await runRecallExperiment({ pairs: [8, 32], seeds: 1, epochs: 4 });
 * ```
 */
export async function runRecallExperiment(options: RecallExperimentOptions = {}): Promise<RecallResults> {
  const fn = 'runRecallExperiment';
  const t0 = performance.now();
  const int = (v: number, name: string, min = 1) => checkIntOption(fn, v, name, min);
  const pairsList = (options.pairs ?? DEFAULT_RECALL_PAIRS).map((p) => int(p, 'pairs'));
  const variants = (options.variants ?? DEFAULT_RECALL_VARIANTS).map(parseVariant);
  const numKeys = int(options.numKeys ?? 64, 'numKeys');
  const numValues = int(options.numValues ?? 16, 'numValues', 2);
  const trainSize = int(options.trainSize ?? 3000, 'trainSize');
  const testSize = int(options.testSize ?? 1000, 'testSize');
  const seeds = seedList(fn, options.seeds, 2);
  const epochs = int(options.epochs ?? 6, 'epochs');
  const batchSize = int(options.batchSize ?? 64, 'batchSize');
  const lr = options.lr ?? 3e-3;
  const dModel = int(options.dModel ?? 16, 'dModel');
  const numHeads = int(options.numHeads ?? 1, 'numHeads');
  const numLayers = int(options.numLayers ?? 1, 'numLayers');
  const uhop = withUHopDefaults(options);
  const testPairs = (options.testPairs ?? []).map((p) => int(p, 'testPairs'));
  for (const p of [...pairsList, ...testPairs])
    if (p > numKeys) throw new Error(`${fn}: ${p} pairs need at least ${p} distinct keys, got numKeys ${numKeys}`);

  const runs: RecallRun[] = [];
  const total = pairsList.length * seeds.length * variants.length * epochs;
  let done = 0;
  for (const pairs of pairsList) {
    for (const seed of seeds) {
      const train = recallTask({ pairs, numKeys, numValues, size: trainSize, seed: 1000 * seed + pairs });
      const test = recallTask({ pairs, numKeys, numValues, size: testSize, seed: 1000 * seed + pairs + 500 });
      const yTrain = tf.tensor1d(Float32Array.from(train.labels));
      try {
        for (const v of variants) {
          const r0 = performance.now();
          const transfer: { pairs: number; testAcc: number }[] = [];
          const curve = await withSeed(seed, async () => {
            const model = recallModel({ pairs, numKeys, numValues, dModel, numHeads, numLayers, ...variantLayerOptions(v, uhop) });
            try {
              model.compile({ optimizer: tf.train.adam(lr), loss: 'sparseCategoricalCrossentropy' });
              return await trainWithCurve(
                model,
                { xTrain: [train.keys, train.values], yTrain, xTest: [test.keys, test.values], testLabels: test.labels },
                {
                  epochs,
                  batchSize,
                  onEpoch: (r) => {
                    done++;
                    options.onProgress?.({
                      done,
                      total,
                      status: `${pairs} pairs, ${v.name}, seed ${seed}, epoch ${r.epoch}: ${(100 * r.testAcc).toFixed(1)}%`,
                    });
                  },
                },
              );
            } finally {
              if (testPairs.length) {
                for (const tp of testPairs) transfer.push({ pairs: tp, testAcc: transferAccuracy(model, v, tp, seed) });
              }
              model.dispose();
            }
          });
          runs.push({
            variant: v.name,
            pairs,
            seed,
            curve,
            testAcc: curve[curve.length - 1].testAcc,
            seconds: (performance.now() - r0) / 1000,
            ...(testPairs.length ? { transfer } : {}),
          });
        }
      } finally {
        tf.dispose([train.keys, train.values, test.keys, test.values, yTrain]);
      }
    }
  }
  const summary: RecallSummaryRow[] = [];
  for (const v of variants) {
    for (const pairs of pairsList) {
      const mine = runs.filter((r) => r.variant === v.name && r.pairs === pairs);
      const s = summarizeCurves(mine.map((r) => r.curve));
      const row: RecallSummaryRow = { variant: v.name, pairs, testAcc: s.final, perEpoch: s.perEpoch, secondsPerEpoch: s.secondsPerEpoch };
      if (testPairs.length) {
        row.transfer = testPairs.map((tp) => {
          const accs = mine.map((r) => r.transfer!.find((t) => t.pairs === tp)!.testAcc);
          const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
          const std = Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, accs.length - 1));
          return { pairs: tp, testAcc: { mean, std: accs.length > 1 ? std : 0 } };
        });
      }
      summary.push(row);
    }
  }
  /** The trained weights in a model built for `tp` pairs (same layer options), tested on fresh problems of that size. */
  function transferAccuracy(model: tfl.LayersModel, v: ReturnType<typeof parseVariant>, tp: number, seed: number): number {
    const data = recallTask({ pairs: tp, numKeys, numValues, size: testSize, seed: 1000 * seed + tp + 700 });
    // the weights do not depend on the number of pair tokens (no position embeddings)
    const other = recallModel({ pairs: tp, numKeys, numValues, dModel, numHeads, numLayers, ...variantLayerOptions(v, uhop) });
    try {
      other.setWeights(model.getWeights());
      return accuracy(other, [data.keys, data.values], data.labels);
    } finally {
      other.dispose();
      tf.dispose([data.keys, data.values]);
    }
  }
  return {
    config: {
      pairs: pairsList,
      variants: variants.map((v) => v.name),
      numKeys,
      numValues,
      trainSize,
      testSize,
      seeds,
      testPairs,
      epochs,
      batchSize,
      lr,
      dModel,
      numHeads,
      numLayers,
      fitSteps: uhop.fitSteps!,
      fitLr: uhop.fitLr!,
      fitOptimizer: uhop.fitOptimizer!,
      separationLoss: uhop.separationLoss!,
      featureDim: options.featureDim ?? null,
      fitGradient: uhop.fitGradient ?? 'straight-through',
      fitKeepNorm: uhop.fitKeepNorm ?? false,
      fitStrength: uhop.fitStrength ?? 1,
      fitStrengthTrainable: uhop.fitStrengthTrainable ?? false,
    },
    backend: tf.getBackend(),
    runs,
    summary,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
