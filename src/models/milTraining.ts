/**
 * Training and prediction for bag classifiers built by `milClassifier` (inputs
 * `[bags x [B,S,F], mask [B,S]]`, one sigmoid output).
 *
 * Bags have very different sizes (MUSK2: 1 to 1044 instances), so instead of padding the whole
 * data set to the largest bag, {@link trainMilModel} and {@link predictBags} pad each minibatch
 * to its own largest bag. Model selection (early stopping with best-weights restore) uses a
 * validation set the caller passes, which must not contain any test bag.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Bag } from '../data/mil.js';
import { seededRandom } from '../data/random.js';
import { bool, custom, defineSchema, int, number, oneOf, parseOptions } from '../ops/schema.js';
import { MODEL_SEED } from '../ops/vocabulary.js';

/** Learning rate of epoch `epoch` (0-based), given the initial rate. */
export type LearningRateSchedule = (epoch: number, initial: number) => number;

/** A per-epoch schedule lr(epoch) = initial * decay^epoch (Ramsauer et al. use decay 0.98). */
export function exponentialDecay(decay: number): LearningRateSchedule {
  if (typeof decay !== 'number' || !(decay > 0 && decay <= 1)) {
    throw new Error(`exponentialDecay: decay must be a number in (0, 1], got ${String(decay)}`);
  }
  return (epoch, initial) => initial * decay ** epoch;
}

/**
 * Sets an optimizer's learning rate in place. tfjs optimizers read `learningRate` on every
 * step, except SGD/Momentum, which cache it in a scalar refreshed by `setLearningRate`.
 */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  if (typeof lr !== 'number' || !(lr > 0) || !Number.isFinite(lr)) {
    throw new Error(`setLearningRate: lr must be a finite number > 0, got ${String(lr)}`);
  }
  const o = optimizer as unknown as { learningRate?: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else if (typeof o.learningRate === 'number') o.learningRate = lr;
  else throw new Error(`setLearningRate: optimizer ${optimizer.getClassName()} has no learningRate property`);
}

/** Reads an optimizer's current learning rate. */
export function getLearningRate(optimizer: tf.Optimizer): number {
  const lr = (optimizer as unknown as { learningRate?: number }).learningRate;
  if (typeof lr !== 'number') throw new Error(`getLearningRate: optimizer ${optimizer.getClassName()} has no learningRate property`);
  return lr;
}

/**
 * A `model.fit` callback that sets the optimizer's learning rate at the start of every epoch.
 *
 * @example
 * ```ts
 * await model.fit(xs, ys, { epochs: 50, callbacks: [new LearningRateScheduler(exponentialDecay(0.98))] });
 * ```
 */
export class LearningRateScheduler extends tfl.Callback {
  private initial?: number;
  constructor(private readonly schedule: LearningRateSchedule) {
    super();
    if (typeof schedule !== 'function') throw new Error('LearningRateScheduler: schedule must be a function (epoch, initialLr) => lr');
  }
  override async onTrainBegin(): Promise<void> {
    this.initial = getLearningRate(this.model.optimizer);
  }
  override async onEpochBegin(epoch: number): Promise<void> {
    setLearningRate(this.model.optimizer, this.schedule(epoch, this.initial!));
  }
}

/** A minibatch padded to its own largest bag; the caller disposes the tensors. */
export interface BagBatch {
  x: tf.Tensor3D;
  mask: tf.Tensor2D;
  y: tf.Tensor2D;
}

/**
 * Pads the given bags to the largest among them: x [B, S, F] (zero rows for padding),
 * mask [B, S], y [B, 1].
 */
export function bagBatch(bags: Bag[], numFeatures: number): BagBatch {
  if (bags.length === 0) throw new Error('bagBatch: bags is empty');
  const S = bags.reduce((m, b) => Math.max(m, b.size), 0);
  const F = numFeatures;
  const B = bags.length;
  const x = new Float32Array(B * S * F);
  const mask = new Float32Array(B * S);
  const y = new Float32Array(B);
  bags.forEach((bag, b) => {
    if (bag.instances.length !== bag.size * F) {
      throw new Error(`bagBatch: bag ${bag.id} has ${bag.instances.length} values, expected size ${bag.size} x ${F} features`);
    }
    x.set(bag.instances, b * S * F);
    mask.fill(1, b * S, b * S + bag.size);
    y[b] = bag.label;
  });
  return { x: tf.tensor3d(x, [B, S, F]), mask: tf.tensor2d(mask, [B, S]), y: tf.tensor2d(y, [B, 1]) };
}

/**
 * Splits bags into minibatches. With `sortBySize`, bags of similar size share a batch (less
 * padding); the batch order is still shuffled.
 */
function makeBatches(
  order: number[],
  bags: Bag[],
  batchSize: number,
  sortBySize: boolean,
  rng?: ReturnType<typeof seededRandom>,
): number[][] {
  const idx = sortBySize ? [...order].sort((a, b) => bags[a].size - bags[b].size) : order;
  const batches: number[][] = [];
  for (let i = 0; i < idx.length; i += batchSize) batches.push(idx.slice(i, i + batchSize));
  if (sortBySize && rng) rng.shuffle(batches);
  return batches;
}

/** Options of {@link predictBags} and {@link predictBagsAsync}. */
export interface PredictBagsOptions {
  /** Bags per forward pass. Default 32. */
  batchSize?: number;
}

/** The declaration of {@link PredictBagsOptions} (src/ops/schema.ts). */
export const PREDICT_BAGS_SCHEMA = defineSchema<PredictBagsOptions>()({
  batchSize: { check: int(1), default: 32, doc: 'Bags per forward pass.' },
});

/** Bag-level probabilities P(y = 1) of a bag classifier, one per bag, in input order. */
export function predictBags(model: tfl.LayersModel, bags: Bag[], options: PredictBagsOptions = {}): Float32Array {
  const out = new Float32Array(bags.length);
  for (const { ids, p } of bagPredictionBatches(model, bags, options, 'predictBags')) {
    const v = p.dataSync();
    p.dispose();
    ids.forEach((j, k) => (out[j] = v[k]));
  }
  return out;
}

/**
 * {@link predictBags} without blocking the thread: every batch is read back with `await data()`
 * instead of `dataSync()`, so a GPU backend (webgpu) can keep working and a browser page stays
 * responsive. {@link trainMilModel} scores its validation bags with it after every epoch.
 *
 * @example
 * ```ts
 * const p = await predictBagsAsync(model, testBags); // Float32Array, one probability per bag
 * ```
 */
export async function predictBagsAsync(model: tfl.LayersModel, bags: Bag[], options: PredictBagsOptions = {}): Promise<Float32Array> {
  const out = new Float32Array(bags.length);
  for (const { ids, p } of bagPredictionBatches(model, bags, options, 'predictBagsAsync')) {
    try {
      const v = await p.data();
      ids.forEach((j, k) => (out[j] = v[k]));
    } finally {
      p.dispose();
    }
  }
  return out;
}

/**
 * The prediction batches of {@link predictBags} and {@link predictBagsAsync}: bags sorted by size
 * (so a batch pads little), `batchSize` at a time; each yields the bags' indices and the
 * predicted probabilities [n, 1], which the caller reads back and disposes. A generator, so the
 * next batch is predicted only after the caller has read the previous one.
 */
function* bagPredictionBatches(
  model: tfl.LayersModel,
  bags: Bag[],
  options: PredictBagsOptions,
  where: string,
): Generator<{ ids: number[]; p: tf.Tensor }> {
  const { batchSize } = parseOptions(PREDICT_BAGS_SCHEMA, options, where);
  const F = bagFeatures(model, where);
  const order = bags.map((_, i) => i).sort((a, b) => bags[a].size - bags[b].size);
  for (let i = 0; i < order.length; i += batchSize) {
    const ids = order.slice(i, i + batchSize);
    const p = tf.tidy(() => {
      const { x, mask } = bagBatch(
        ids.map((j) => bags[j]),
        F,
      );
      return model.predict([x, mask]) as tf.Tensor;
    });
    yield { ids, p };
  }
}

function bagFeatures(model: tfl.LayersModel, where: string): number {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 2 || !shape || shape.length !== 3 || shape[2] == null) {
    throw new Error(
      `${where}: model must take [bags [B,S,F], mask [B,S]] with F known (as milClassifier builds), got inputs ${model.inputs.map((i) => `[${i.shape}]`).join(', ')}`,
    );
  }
  return shape[2];
}

/** What {@link trainMilModel} records per epoch. */
export interface MilEpochLog {
  epoch: number;
  /** Mean training loss (binary cross-entropy + weight decay) over the epoch's batches. */
  loss: number;
  learningRate: number;
  /** Validation binary cross-entropy, accuracy and ROC AUC, when validation bags are given. */
  valLoss?: number;
  valAccuracy?: number;
  valAuc?: number;
}

/** Options of {@link trainMilModel}. */
export interface TrainMilOptions {
  /** Number of epochs (upper bound with early stopping). Default 50. */
  epochs?: number;
  /** Bags per minibatch. Default 1 (as Ilse et al.). */
  batchSize?: number;
  /** Initial learning rate of Adam / AdamW. Default 5e-4. */
  learningRate?: number;
  /**
   * 'adam' (default): tfjs Adam; a weight decay then belongs in the model (milClassifier's
   * `weightDecay`, an L2 term as PyTorch's Adam `weight_decay`). 'adamw': Adam with decoupled
   * weight decay (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW`, which Ramsauer et al.
   * 2020 train their MIL models with): every step also shrinks every trainable weight by
   * lr * weightDecay * w, independent of the gradient's scale.
   */
  optimizer?: 'adam' | 'adamw';
  /**
   * Decoupled weight decay of 'adamw' (PyTorch's AdamW `weight_decay`). As PyTorch's default
   * parameter group it applies to every trainable weight (biases and LayerNorm gains too).
   * Default 0.01 (PyTorch's default) with 'adamw'; an error with 'adam'.
   */
  weightDecay?: number;
  /** Multiplicative learning-rate decay per epoch, lr = lr0 * decay^epoch. Default 1 (none). */
  lrDecay?: number;
  /** Bags for model selection; never pass test bags here. */
  validation?: Bag[];
  /** What picks the best epoch on the validation bags: 'loss' (default), 'auc' or 'accuracy'. */
  monitor?: 'loss' | 'auc' | 'accuracy';
  /** Stop after this many epochs without improvement of the monitored value. Default: never. */
  patience?: number;
  /** Restore the weights of the best validation epoch at the end. Default true (with validation). */
  restoreBest?: boolean;
  /** Seed of the bag order. Default 0. */
  seed?: number;
  /** Put bags of similar size in the same minibatch (less padding). Default true when batchSize > 1. */
  sortBySize?: boolean;
  /** Called after every epoch (progress bars, logging). */
  onEpochEnd?: (log: MilEpochLog) => void;
}

/** Result of {@link trainMilModel}. */
export interface TrainMilResult {
  history: MilEpochLog[];
  /** 0-based epoch whose weights the model holds at the end (the last one without validation). */
  bestEpoch: number;
}

/** Optimizers created by trainMilModel (freed when the same model is trained again). */
const OUR_OPTIMIZERS = new WeakSet<tf.Optimizer>();

function bce(p: Float32Array, bags: Bag[]): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const q = Math.min(Math.max(p[i], 1e-7), 1 - 1e-7);
    s -= bags[i].label === 1 ? Math.log(q) : Math.log(1 - q);
  }
  return s / p.length;
}

/**
 * ROC AUC of scores against 0/1 labels (Mann-Whitney U with average ranks, so tied scores
 * count one half). NaN when only one class is present.
 *
 * @example
 * ```ts
 * rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]); // 0.75
 * rocAuc([0.5, 0.5], [0, 1]);                  // 0.5 (a tie counts one half)
 * ```
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new Error(`rocAuc: scores and labels must have the same length, got ${n} and ${labels.length}`);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`rocAuc: labels must be 0 or 1, got labels[${i}] = ${labels[i]}`);
    if (Number.isNaN(scores[i])) throw new Error(`rocAuc: scores[${i}] is NaN`);
    pos += labels[i];
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[order[k]] === 1) rankSum += avgRank;
    i = j + 1;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Fraction of bags whose thresholded probability (>= threshold, default 0.5) matches the label. */
export function bagAccuracy(probabilities: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  if (probabilities.length !== labels.length) {
    throw new Error(`bagAccuracy: probabilities and labels must have the same length, got ${probabilities.length} and ${labels.length}`);
  }
  if (probabilities.length === 0) throw new Error('bagAccuracy: no predictions');
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if ((probabilities[i] >= threshold ? 1 : 0) === labels[i]) ok++;
  return ok / labels.length;
}

/** The declaration of {@link TrainMilOptions} (src/ops/schema.ts). */
export const TRAIN_MIL_SCHEMA = defineSchema<TrainMilOptions>()({
  epochs: { check: int(1), default: 50, doc: 'Number of epochs (upper bound with early stopping).' },
  batchSize: { check: int(1), default: 1, doc: 'Bags per minibatch (1 as Ilse et al.).' },
  learningRate: { check: number({ gt: 0 }), default: 5e-4, doc: 'Initial learning rate of Adam / AdamW.' },
  optimizer: {
    check: oneOf(['adam', 'adamw'] as const),
    default: 'adam',
    doc: "'adam' (an L2 weight decay belongs in the model: milClassifier's weightDecay) or 'adamw' (decoupled weight decay, PyTorch's AdamW).",
  },
  weightDecay: {
    check: number({ ge: 0 }),
    defaultText: '0.01',
    appliesIf: { option: 'optimizer', is: ['adamw'] },
    doc: "Decoupled weight decay of 'adamw' on every trainable weight (with 'adam' use milClassifier's weightDecay).",
  },
  lrDecay: { check: number({ gt: 0, le: 1 }), default: 1, doc: 'Multiplicative learning-rate decay per epoch, lr = lr0 * decay^epoch.' },
  validation: {
    check: custom<Bag[]>('a non-empty array of bags (pass undefined for no validation)', (v) => Array.isArray(v) && v.length > 0),
    doc: 'Bags for model selection; never pass test bags here.',
  },
  monitor: {
    check: oneOf(['loss', 'auc', 'accuracy'] as const),
    default: 'loss',
    doc: 'What picks the best epoch on the validation bags.',
  },
  patience: { check: int(1), defaultText: 'never', doc: 'Stop after this many epochs without improvement of the monitored value.' },
  restoreBest: { check: bool, default: true, doc: 'Restore the weights of the best validation epoch at the end (with validation).' },
  seed: { ...MODEL_SEED, default: 0, doc: 'Seed of the bag order.' },
  sortBySize: {
    check: bool,
    defaultText: 'true when batchSize > 1',
    doc: 'Put bags of similar size in the same minibatch (less padding).',
  },
  onEpochEnd: {
    check: custom<(log: MilEpochLog) => void>('a function (log) => void', (v) => typeof v === 'function'),
    doc: 'Called after every epoch (progress bars, logging).',
  },
});

/**
 * Trains a bag classifier with Adam (or AdamW, `optimizer: 'adamw'`) on binary cross-entropy, one minibatch at a time (each
 * padded to its own largest bag), with a per-epoch learning-rate schedule and, when validation
 * bags are given, model selection on them (best-weights restore, optional early stopping).
 * The model is (re)compiled here.
 *
 * @example
 * ```ts
 * const model = milClassifier({ numFeatures: 166, pooling: 'attention' });
 * const { history, bestEpoch } = await trainMilModel(model, trainBags, {
 *   epochs: 50, learningRate: 5e-4, lrDecay: 0.98, validation: valBags, patience: 10,
 * });
 * const p = predictBags(model, testBags);
 * ```
 */
export async function trainMilModel(model: tfl.LayersModel, bags: Bag[], options: TrainMilOptions = {}): Promise<TrainMilResult> {
  const fn = 'trainMilModel';
  const {
    epochs,
    batchSize,
    learningRate,
    optimizer: optimizerName,
    weightDecay,
    lrDecay,
    validation,
    monitor,
    patience,
    restoreBest,
    seed,
    onEpochEnd,
    ...rest
  } = parseOptions(TRAIN_MIL_SCHEMA, options, fn);
  const sortBySize = rest.sortBySize ?? batchSize > 1;
  const decoupledDecay = optimizerName === 'adamw' ? (weightDecay ?? 0.01) : 0;
  if (!Array.isArray(bags) || bags.length === 0) throw new Error(`${fn}: bags must be a non-empty array of bags`);
  const F = bagFeatures(model, fn);
  const schedule = exponentialDecay(lrDecay);
  // A named optimizer is owned by the model, so model.dispose() frees its slot variables; the
  // one a previous call made is freed here (a user's own optimizer is left alone).
  if (OUR_OPTIMIZERS.has(model.optimizer)) model.optimizer.dispose();
  model.compile({ optimizer: 'adam', loss: 'binaryCrossentropy' });
  OUR_OPTIMIZERS.add(model.optimizer);
  const optimizer = model.optimizer;
  const rng = seededRandom(seed);
  const history: MilEpochLog[] = [];
  let best = Infinity;
  let bestEpoch = epochs - 1;
  let bestWeights: tf.Tensor[] | null = null;
  let sinceBest = 0;
  const valLabels = validation?.map((b) => b.label);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const lr = schedule(epoch, learningRate);
      setLearningRate(optimizer, lr);
      const order = rng.shuffle(bags.map((_, i) => i));
      let lossSum = 0;
      let seen = 0;
      for (const ids of makeBatches(order, bags, batchSize, sortBySize, rng)) {
        const { x, mask, y } = bagBatch(
          ids.map((i) => bags[i]),
          F,
        );
        // AdamW as PyTorch steps it: p <- p * (1 - lr * wd) - lr * adam(grad at p). The
        // gradient is taken at the undecayed p, so the decay term is computed from p before the
        // Adam step and subtracted after it.
        const decay = decoupledDecay > 0 ? decayTerms(model, lr * decoupledDecay) : null;
        try {
          const loss = (await model.trainOnBatch([x, mask], y)) as number;
          if (decay) {
            for (const [v, d] of decay) {
              const next = tf.sub(v.read(), d);
              v.write(next);
              next.dispose(); // the variable keeps the data
            }
          }
          lossSum += loss * ids.length;
          seen += ids.length;
        } finally {
          tf.dispose([x, mask, y]);
          if (decay) tf.dispose(decay.map(([, d]) => d));
        }
      }
      const log: MilEpochLog = { epoch, loss: lossSum / seen, learningRate: lr };
      if (validation) {
        const p = await predictBagsAsync(model, validation);
        log.valLoss = bce(p, validation);
        log.valAccuracy = bagAccuracy(p, valLabels!);
        log.valAuc = rocAuc(p, valLabels!);
        const value = monitor === 'loss' ? log.valLoss : monitor === 'auc' ? -log.valAuc : -log.valAccuracy;
        // Ties keep the earlier epoch, except for a tied AUC/accuracy with a lower loss.
        const tieBreak = value === best && monitor !== 'loss' && bestLoss(history, bestEpoch) > log.valLoss;
        if (value < best || tieBreak || (Number.isNaN(best) && !Number.isNaN(value))) {
          best = value;
          bestEpoch = epoch;
          sinceBest = 0;
          if (restoreBest) {
            tf.dispose(bestWeights ?? []);
            bestWeights = model.getWeights().map((w) => tf.clone(w));
          }
        } else {
          sinceBest++;
        }
      } else {
        bestEpoch = epoch;
      }
      history.push(log);
      onEpochEnd?.(log);
      if (validation && patience !== undefined && sinceBest >= patience) break;
    }
    if (bestWeights) model.setWeights(bestWeights);
  } finally {
    tf.dispose(bestWeights ?? []);
  }
  return { history, bestEpoch };
}

function bestLoss(history: MilEpochLog[], epoch: number): number {
  return history.find((h) => h.epoch === epoch)?.valLoss ?? Infinity;
}

/** (weight, lr * wd * weight) for every trainable weight of the model. */
function decayTerms(model: tfl.LayersModel, factor: number): [tfl.LayerVariable, tf.Tensor][] {
  return model.trainableWeights.map((v) => [v, tf.tidy(() => tf.mul(v.read(), factor))]);
}
