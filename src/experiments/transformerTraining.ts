/**
 * What the transformer experiments (`uhop vision`, `uhop recall`, `uhop finetune`) share:
 * attention variants by name, seeded runs, accuracy, and a training loop that records a
 * learning curve.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SEPARATION_KINDS } from '../ops/separation.js';
import type { SeparationKind } from '../ops/types.js';
import type { UHopArgs } from '../layers/hopfieldCore.js';
import { meanStd } from './report.js';
import { seededRandom } from '../data/random.js';
import { defaultFitLr, type FitOptimizer } from '../ops/fit.js';

// ---------------------------------------------------------------------------------------
// Attention variants

/** An attention variant of the experiments: a separation, with or without U-Hop's feature map. */
export interface AttentionVariant {
  /** The name it was parsed from, e.g. 'uhop-sparsemax'. */
  name: string;
  separation: SeparationKind;
  /** True = U-Hop (featureMap 'linear', Phi0 trained; fitted per memory set in every call unless `noFit`). */
  uhop: boolean;
  /**
   * True = the control arm 'uhop-nofit...': the same U-Hop layer with fitSteps 0, so Phi0 is
   * trained by the task loss but never fitted on a call's keys. It separates what the per-call
   * fit adds from what the extra trainable kernel Phi0 adds.
   */
  noFit: boolean;
}

/**
 * Parses an attention variant name: a separation ('softmax', 'sparsemax', 'entmax15', ...)
 * optionally prefixed by 'uhop-' (U-Hop) or 'uhop-nofit-' (the same layer with fitSteps 0);
 * 'uhop' alone is 'uhop-softmax', 'uhop-nofit' alone is 'uhop-nofit-softmax'.
 *
 * @example
 * ```ts
 * parseVariant('uhop-sparsemax');   // { name: 'uhop-sparsemax', separation: 'sparsemax', uhop: true, noFit: false }
 * parseVariant('uhop-nofit');       // { name: 'uhop-nofit', separation: 'softmax', uhop: true, noFit: true }
 * ```
 */
export function parseVariant(name: string): AttentionVariant {
  const n = name.trim();
  const noFit = n === 'uhop-nofit' || n.startsWith('uhop-nofit-');
  const uhop = noFit || n === 'uhop' || n.startsWith('uhop-');
  const sep = n === 'uhop' || n === 'uhop-nofit' ? 'softmax' : noFit ? n.slice('uhop-nofit-'.length) : uhop ? n.slice(5) : n;
  if (!SEPARATION_KINDS.includes(sep as SeparationKind)) {
    throw new Error(
      `attention variant '${name}': expected a separation (${SEPARATION_KINDS.join(', ')}) optionally prefixed by 'uhop-' or 'uhop-nofit-' (or 'uhop' / 'uhop-nofit' alone for softmax)`,
    );
  }
  return { name: n, separation: sep as SeparationKind, uhop, noFit };
}

/** The U-Hop options of the experiments (passed through to the layers). */
export interface UHopExperimentOptions {
  /** Stage-I steps per call. Default 5 (the layers' default). */
  fitSteps?: number;
  /** Stage-I step size. Default: the step rule's (0.5 relative for 'normalized', 0.1 for 'sgd' / 'adam'). */
  fitLr?: number;
  /** Stage-I step rule: 'normalized' (default, the layers'), 'sgd' (the plain step used before) or 'adam'. */
  fitOptimizer?: FitOptimizer;
  /** Stage-I loss. Default 'lse'. */
  separationLoss?: UHopArgs['separationLoss'];
  /** Feature dimension D (U-Hop+ when > key dim). Default: the key dim. */
  featureDim?: number;
  /** How the task gradient reaches Phi0 through the fit (the layers' `fitGradient`). Default 'straight-through'. */
  fitGradient?: UHopArgs['fitGradient'];
  /** Rescale the fitted W to ||Phi0|| (the layers' `fitKeepNorm`). Default false. */
  fitKeepNorm?: boolean;
  /** Fit strength gamma (the layers' `fitStrength`). Default 1. */
  fitStrength?: number;
  /** Learn gamma per head (the layers' `fitStrengthTrainable`). Default false. */
  fitStrengthTrainable?: boolean;
}

/** The U-Hop options of an experiment with their defaults filled in (featureDim only when given). */
export function withUHopDefaults(options: UHopExperimentOptions): UHopExperimentOptions {
  return {
    fitSteps: options.fitSteps ?? 5,
    fitOptimizer: options.fitOptimizer ?? 'normalized',
    fitLr: options.fitLr ?? defaultFitLr(options.fitOptimizer ?? 'normalized'),
    separationLoss: options.separationLoss ?? 'lse',
    ...(options.featureDim !== undefined ? { featureDim: options.featureDim } : {}),
    ...(options.fitGradient !== undefined ? { fitGradient: options.fitGradient } : {}),
    ...(options.fitKeepNorm !== undefined ? { fitKeepNorm: options.fitKeepNorm } : {}),
    ...(options.fitStrength !== undefined ? { fitStrength: options.fitStrength } : {}),
    ...(options.fitStrengthTrainable !== undefined ? { fitStrengthTrainable: options.fitStrengthTrainable } : {}),
  };
}

/** The layer options of a variant: the separation and, for U-Hop, the feature map and its fit (fitSteps 0 for 'uhop-nofit'). */
export function variantLayerOptions(v: AttentionVariant, u: UHopExperimentOptions = {}): { separation: SeparationKind } & UHopArgs {
  const out: { separation: SeparationKind } & UHopArgs = { separation: v.separation };
  if (v.uhop) {
    out.featureMap = 'linear';
    if (v.noFit) out.fitSteps = 0;
    else if (u.fitSteps !== undefined) out.fitSteps = u.fitSteps;
    if (u.fitLr !== undefined) out.fitLr = u.fitLr;
    if (u.fitOptimizer !== undefined) out.fitOptimizer = u.fitOptimizer;
    if (u.separationLoss !== undefined) out.separationLoss = u.separationLoss;
    if (u.featureDim !== undefined) out.featureDim = u.featureDim;
    // the fit's variants mean nothing without a fit: the control arm stays the plain Phi0 layer
    if (!v.noFit) {
      if (u.fitGradient !== undefined) out.fitGradient = u.fitGradient;
      if (u.fitKeepNorm !== undefined) out.fitKeepNorm = u.fitKeepNorm;
      if (u.fitStrength !== undefined) out.fitStrength = u.fitStrength;
      if (u.fitStrengthTrainable !== undefined) out.fitStrengthTrainable = u.fitStrengthTrainable;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Seeding

/** Checks an integer option of the experiment `fn` (an error names both); returns it. */
export function checkIntOption(fn: string, v: number, name: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`${fn}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** The seeds of an experiment: the list given, or 0..n-1 for a count `n` (default `count`). */
export function seedList(fn: string, seeds: number | number[] | undefined, count: number): number[] {
  return Array.isArray(seeds) ? seeds : Array.from({ length: checkIntOption(fn, seeds ?? count, 'seeds') }, (_, i) => i);
}

let seededDepth = 0;

/**
 * Runs `fn` with `Math.random` replaced by a seeded generator, so that everything tfjs draws
 * without an explicit seed (weight initializers, `model.fit`'s shuffling, dropout masks) is
 * reproducible, and two variants built and trained under the same seed start from the same
 * weights (those they share). Not reentrant across concurrent runs: the experiments run one
 * model at a time.
 *
 * @example
 * ```ts
 * const acc = await withSeed(3, async () => { const m = build(); await m.fit(x, y); return evaluate(m); });
 * ```
 */
export async function withSeed<T>(seed: number, fn: () => Promise<T>): Promise<T> {
  if (seededDepth > 0) throw new Error('withSeed: already inside a seeded run; seeded runs cannot overlap');
  const original = Math.random;
  Math.random = seededRandom((seed * 0x9e3779b1 + 12345) >>> 0).uniform;
  seededDepth++;
  try {
    return await fn();
  } finally {
    seededDepth--;
    Math.random = original;
  }
}

// ---------------------------------------------------------------------------------------
// Evaluation and training

/** Fraction of rows of `x` (or of every input in `x`) whose argmax prediction equals `labels`. */
export function accuracy(model: tfl.LayersModel, x: tf.Tensor | tf.Tensor[], labels: ArrayLike<number>, batchSize = 256): number {
  const xs = Array.isArray(x) ? x : [x];
  const n = xs[0].shape[0];
  if (labels.length !== n) throw new Error(`accuracy: ${n} inputs but ${labels.length} labels`);
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const pred = tf.tidy(() => {
      const batch = xs.map((t) => tf.slice(t, start, size));
      const out = model.predict(batch.length === 1 ? batch[0] : batch) as tf.Tensor;
      return tf.argMax(out, -1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let i = 0; i < size; i++) if (p[i] === labels[start + i]) correct++;
  }
  return correct / n;
}

/** One epoch of a learning curve. */
export interface EpochRecord {
  /** 1-based epoch. */
  epoch: number;
  /** Mean training loss of the epoch (as model.fit reports it). */
  trainLoss: number;
  /** Test accuracy after the epoch. */
  testAcc: number;
  /** Wall time of the epoch's training (s), without the evaluation. */
  seconds: number;
}

/** Data of a classification run: inputs and labels (labels as float class ids for sparse CE). */
export interface ClassificationData {
  xTrain: tf.Tensor | tf.Tensor[];
  yTrain: tf.Tensor;
  xTest: tf.Tensor | tf.Tensor[];
  testLabels: Int32Array;
}

/** Options of {@link trainWithCurve}. */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Extra callbacks (e.g. AlternatingFitCallback). */
  callbacks?: tfl.Callback[];
  /** Called after every epoch (for progress). */
  onEpoch?: (record: EpochRecord) => void;
}

/**
 * Trains a compiled model with `model.fit` for `epochs` epochs, measuring the test accuracy
 * after each; returns the learning curve.
 */
export async function trainWithCurve(model: tfl.LayersModel, data: ClassificationData, options: TrainOptions): Promise<EpochRecord[]> {
  const curve: EpochRecord[] = [];
  let t0 = performance.now();
  const tracker = new (class extends tfl.Callback {
    override async onEpochBegin(): Promise<void> {
      t0 = performance.now();
    }
    override async onEpochEnd(epoch: number, logs?: tfl.Logs): Promise<void> {
      const seconds = (performance.now() - t0) / 1000;
      // tfjs hands callbacks the epoch's mean loss as a scalar tensor (UnresolvedLogs).
      const raw = logs?.loss as unknown;
      const trainLoss = typeof raw === 'number' ? raw : raw instanceof tf.Tensor ? (await raw.data())[0] : NaN;
      const record: EpochRecord = { epoch: epoch + 1, trainLoss, testAcc: accuracy(model, data.xTest, data.testLabels), seconds };
      curve.push(record);
      options.onEpoch?.(record);
    }
  })();
  await model.fit(data.xTrain, data.yTrain, {
    epochs: options.epochs,
    batchSize: options.batchSize,
    shuffle: true,
    verbose: 0,
    callbacks: [...(options.callbacks ?? []), tracker],
  });
  return curve;
}

/** Mean ± std of the final test accuracies of runs, and of the per-epoch curves. */
export function summarizeCurves(curves: EpochRecord[][]): {
  final: { mean: number; std: number };
  perEpoch: { epoch: number; mean: number; std: number }[];
  secondsPerEpoch: number;
} {
  const final = meanStd(curves.map((c) => c[c.length - 1]?.testAcc ?? NaN));
  const epochs = Math.max(0, ...curves.map((c) => c.length));
  const perEpoch = Array.from({ length: epochs }, (_, e) => ({
    epoch: e + 1,
    ...meanStd(curves.filter((c) => c[e]).map((c) => c[e].testAcc)),
  }));
  const all = curves.flat();
  const secondsPerEpoch = all.length ? all.reduce((a, r) => a + r.seconds, 0) / all.length : NaN;
  return { final, perEpoch, secondsPerEpoch };
}

/** `12.3 ± 0.4` with the accuracy in percent. */
export function pct(m: { mean: number; std: number }, digits = 1): string {
  return `${(100 * m.mean).toFixed(digits)} ± ${(100 * m.std).toFixed(digits)}`;
}
