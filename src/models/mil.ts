/**
 * Multiple-instance learning (MIL) bag classifiers as ordinary `tf.LayersModel`s.
 *
 *     instances [B,S,F] --InstanceDense(h1)-ReLU-Dropout--...--> H [B,S,D]
 *     mask [B,S] --BagDropout (training only)--> mask'
 *     pool([H, mask']) -> z [B, D']  --Dropout--> Dense(1, sigmoid) -> P(bag positive) [B,1]
 *
 * Poolings: 'hopfield' (HopfieldPooling: learned state patterns retrieve from the bag's
 * instances, optionally with U-Hop's fitted feature map), 'attention' and 'gated-attention'
 * (Ilse et al. 2018), 'mean' and 'max'. Padded instances never influence the output.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import {
  AttentionMilPooling,
  BagDropout,
  GatedAttentionMilPooling,
  MaskedMaxPooling,
  MaskedMeanPooling,
  MaskPadding,
} from '../layers/milPooling.js';
import { HopfieldPooling, type HopfieldPoolingArgs } from '../layers/hopfieldPooling.js';
import { InstanceDense } from '../layers/instanceDense.js';
import { defineSchema, int, number, oneOf, parseOptions } from '../ops/schema.js';
import { DROPOUT_RATE, INT_LIST, MODEL_SEED, NAME, OPTIONS_OBJECT } from '../ops/vocabulary.js';
import { SeededDropout } from '../layers/seededDropout.js';

/** Bag poolings {@link milClassifier} can build. */
export type MilPoolingKind = 'hopfield' | 'attention' | 'gated-attention' | 'mean' | 'max';
export const MIL_POOLINGS: readonly MilPoolingKind[] = ['hopfield', 'attention', 'gated-attention', 'mean', 'max'];

/**
 * Options of the Hopfield pooling of {@link milClassifier}: every `HopfieldPooling` option
 * (heads, sizes, beta, separation, similarity, normalizations, association dropout, U-Hop's
 * featureMap / fitSteps / ...), checked by HopfieldPooling's own schema. The classifier sets
 * `name`, `flatten`, `seed` and the kernel regularizer itself.
 */
export type MilHopfieldOptions = Omit<
  HopfieldPoolingArgs,
  | 'name'
  | 'flatten'
  | 'seed'
  | 'returnAssociation'
  | 'inputShape'
  | 'batchInputShape'
  | 'batchSize'
  | 'dtype'
  | 'trainable'
  | 'weights'
  | 'inputDType'
>;

/** Options of {@link milClassifier}. */
export interface MilClassifierOptions {
  /** Features per instance F. */
  numFeatures: number;
  /** Widths of the instance encoder's Dense+ReLU layers. Default [256, 128]; [] = no encoder. */
  hidden?: number[];
  /** The bag pooling. Default 'hopfield'. */
  pooling?: MilPoolingKind;
  /** Hopfield pooling options (pooling 'hopfield' only). */
  hopfield?: MilHopfieldOptions;
  /** Width L of the attention network ('attention' / 'gated-attention'). Default 64. */
  attentionUnits?: number;
  /** Dropout rate after every encoder layer and after the pooling. Default 0. */
  dropout?: number;
  /** Probability of dropping each instance of a bag during training (never a whole bag). Default 0. */
  bagDropout?: number;
  /**
   * Weight decay lambda on every kernel: the loss gains (lambda / 2) * ||W||^2, i.e. the
   * gradient gains lambda * W, as PyTorch's `weight_decay` with plain Adam. Default 0.
   */
  weightDecay?: number;
  /**
   * Seed of the weight initializers, of the dropout masks and of the bag-dropout stream, so
   * that a model built and trained twice with the same seed (and `trainMilModel`'s seed) gives
   * the same numbers. The dropout layers are {@link SeededDropout}s: a seeded tfjs Dropout
   * would draw the same mask at every step. Default: unseeded.
   */
  seed?: number;
  /** Model name. Default 'mil_<pooling>'. */
  name?: string;
}

/** The declaration of {@link MilClassifierOptions} (src/ops/schema.ts). */
export const MIL_CLASSIFIER_SCHEMA = defineSchema<MilClassifierOptions>()({
  numFeatures: { check: int(1), required: true, doc: 'Features per instance F.' },
  hidden: { check: INT_LIST, default: [256, 128], doc: "Widths of the instance encoder's Dense+ReLU layers; [] = no encoder." },
  pooling: { check: oneOf(MIL_POOLINGS), default: 'hopfield', doc: 'The bag pooling.' },
  hopfield: {
    check: OPTIONS_OBJECT,
    appliesIf: { option: 'pooling', is: ['hopfield'] },
    doc: "HopfieldPooling's options (checked by HopfieldPooling's schema).",
  },
  attentionUnits: { check: int(1), default: 64, doc: "Width L of the attention network ('attention' / 'gated-attention')." },
  dropout: { ...DROPOUT_RATE, doc: 'Dropout rate after every encoder layer and after the pooling.' },
  bagDropout: { ...DROPOUT_RATE, doc: 'Probability of dropping each instance of a bag during training (never a whole bag).' },
  weightDecay: { check: number({ ge: 0 }), default: 0, doc: 'L2 weight decay lambda on every kernel (the loss gains lambda/2 ||W||^2).' },
  seed: MODEL_SEED,
  name: { check: NAME, defaultText: "'mil_<pooling>'", doc: 'Model name.' },
});

/**
 * Builds a MIL bag classifier: inputs `[bags [B,S,F], mask [B,S]]` (mask 1 = real instance,
 * 0 = padding), output P(bag is positive) `[B, 1]` (sigmoid). An ordinary functional
 * `tf.LayersModel`: compile/fit/predict/save as usual (or train with `trainMilModel`).
 *
 * @example
 * ```ts
 * import { milClassifier, trainMilModel, predictBags } from 'uhop';
 * import { readMilCsv } from 'uhop/node';
 * const { bags, numFeatures } = readMilCsv('../shared/data/mil/musk1.csv');
 * const model = milClassifier({
 *   numFeatures, hidden: [128], pooling: 'hopfield',
 *   hopfield: { separation: 'sparsemax', numHeads: 4, hiddenSize: 32, featureMap: 'linear', fitSteps: 5 },
 *   dropout: 0.1, bagDropout: 0.1, weightDecay: 1e-4,
 * });
 * await trainMilModel(model, bags.slice(0, 80), { epochs: 30, lrDecay: 0.98 });
 * const p = predictBags(model, bags.slice(80)); // Float32Array of probabilities
 * ```
 */
export function milClassifier(options: MilClassifierOptions): tfl.LayersModel {
  const where = 'milClassifier';
  if (options == null || typeof options !== 'object') throw new Error(`${where}: options must be an object with at least numFeatures`);
  const { numFeatures, hidden, pooling, attentionUnits, dropout, bagDropout, weightDecay, seed } = parseOptions(
    MIL_CLASSIFIER_SCHEMA,
    options,
    where,
  );

  let seedCounter = 0;
  const nextSeed = () => (seed === undefined ? undefined : seed + 1000 * ++seedCounter);
  // The dropout streams get seeds of their own (offset 500), so the initializers' seeds stay
  // those of models built before the dropout was seeded.
  const dropoutSeed = (k: number) => (seed === undefined ? undefined : seed + 1000 * k + 500);
  const l2 = weightDecay / 2;
  const kernelRegularizer = l2 > 0 ? tfl.regularizers.l2({ l2 }) : undefined;

  const x = tfl.input({ shape: [null, numFeatures], name: 'bags' });
  const mask = tfl.input({ shape: [null], name: 'mask' });
  // Padded instances become zeros before the encoder: padding cannot reach a product or a gradient.
  let h = new MaskPadding({ name: 'mask_padding' }).apply([x, mask]) as tfl.SymbolicTensor;
  hidden.forEach((units, i) => {
    h = new InstanceDense({ units, activation: 'relu', l2, seed: nextSeed(), name: `instance_dense_${i}` }).apply(h) as tfl.SymbolicTensor;
    if (dropout > 0)
      h = new SeededDropout({ rate: dropout, seed: dropoutSeed(i), name: `instance_dropout_${i}` }).apply(h) as tfl.SymbolicTensor;
  });
  let m: tfl.SymbolicTensor = mask;
  if (bagDropout > 0) m = new BagDropout({ rate: bagDropout, seed: nextSeed(), name: 'bag_dropout' }).apply(m) as tfl.SymbolicTensor;

  let z: tfl.SymbolicTensor;
  switch (pooling) {
    case 'mean':
      z = new MaskedMeanPooling({ name: 'mean_pooling' }).apply([h, m]) as tfl.SymbolicTensor;
      break;
    case 'max':
      z = new MaskedMaxPooling({ name: 'max_pooling' }).apply([h, m]) as tfl.SymbolicTensor;
      break;
    case 'attention':
      z = new AttentionMilPooling({ units: attentionUnits, l2, seed: nextSeed(), name: 'attention_pooling' }).apply([
        h,
        m,
      ]) as tfl.SymbolicTensor;
      break;
    case 'gated-attention':
      z = new GatedAttentionMilPooling({ units: attentionUnits, l2, seed: nextSeed(), name: 'gated_attention_pooling' }).apply([
        h,
        m,
      ]) as tfl.SymbolicTensor;
      break;
    case 'hopfield':
      z = hopfieldPooling(h, m, options.hopfield ?? {}, l2, nextSeed());
      break;
  }
  if (dropout > 0)
    z = new SeededDropout({ rate: dropout, seed: dropoutSeed(hidden.length), name: 'bag_embedding_dropout' }).apply(
      z,
    ) as tfl.SymbolicTensor;
  const y = tfl.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      kernelRegularizer,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: nextSeed() }),
      name: 'bag_output',
    })
    .apply(z) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [x, mask], outputs: y, name: options.name ?? `mil_${pooling.replace('-', '_')}` });
}

function hopfieldPooling(
  h: tfl.SymbolicTensor,
  m: tfl.SymbolicTensor,
  opts: MilHopfieldOptions,
  l2: number,
  seed: number | undefined,
): tfl.SymbolicTensor {
  const layer = new HopfieldPooling({
    ...opts,
    ...(l2 > 0 ? { kernelRegularizer: tfl.regularizers.l2({ l2 }) } : {}),
    ...(seed !== undefined ? { seed } : {}),
    flatten: true,
    name: 'hopfield_pooling',
  });
  return layer.apply([h, m]) as tfl.SymbolicTensor;
}
