/**
 * Seeded synthetic memory sets for associative-retrieval experiments.
 *
 * Every function returns a tf.Tensor2D of shape [M, d] (float32), one stored pattern per row;
 * the caller owns (and disposes) it. The numbers come from {@link seededRandom} in JavaScript,
 * so a seed gives the same patterns on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom, seedOption, type SeededRandom } from './random.js';

function checkSize(fn: string, M: number, d: number): void {
  if (!Number.isInteger(M) || M < 1) throw new Error(`${fn}: M (number of patterns) must be a positive integer, got ${String(M)}`);
  if (!Number.isInteger(d) || d < 1) throw new Error(`${fn}: d (pattern dimension) must be a positive integer, got ${String(d)}`);
}

function checkProbability(fn: string, p: number): void {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`${fn}: p must be a probability in [0, 1], got ${String(p)}`);
}

export interface BinaryPatternOptions {
  /** Seed of the generator. Default 0. */
  seed?: number;
  /** Probability that an entry is 1. Default 0.5. */
  p?: number;
}

export interface GaussianPatternOptions {
  /** Seed of the generator. Default 0. */
  seed?: number;
  /** Mean of every entry. Default 0. */
  mean?: number;
  /** Standard deviation of every entry. Default 1. */
  std?: number;
}

export interface CorrelatedPatternOptions {
  /** Seed of the generator. Default 0. */
  seed?: number;
  /**
   * Expected Pearson correlation (over the d entries) between any two patterns, in [0, 1).
   * Default 0.5.
   */
  correlation?: number;
  /**
   * 'gaussian' (default): x_i = sqrt(c) z_0 + sqrt(1 - c) z_i with z ~ N(0, I), so entries are
   * N(0, 1). 'binary': each entry copies the shared pattern's entry with probability sqrt(c),
   * otherwise it is a fresh Bernoulli(p) draw; entries are in {0, 1}.
   */
  kind?: 'gaussian' | 'binary';
  /** Probability of a 1 for kind 'binary'. Default 0.5. */
  p?: number;
}

/**
 * M random patterns in {0, 1}^d, each entry 1 with probability `p`.
 *
 * @returns tf.Tensor2D [M, d] float32.
 * @example
 * ```ts
 * import { randomBinaryPatterns } from 'uhop';
 * const memories = randomBinaryPatterns(100, 64, { seed: 1, p: 0.5 }); // [100, 64]
 * memories.dispose();
 * ```
 */
export function randomBinaryPatterns(M: number, d: number, { seed, p = 0.5 }: BinaryPatternOptions = {}): tf.Tensor2D {
  const fn = 'randomBinaryPatterns';
  checkSize(fn, M, d);
  checkProbability(fn, p);
  const rng = seededRandom(seedOption(fn, seed));
  const out = new Float32Array(M * d);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform() < p ? 1 : 0;
  return tf.tensor2d(out, [M, d]);
}

/**
 * M random patterns with independent N(mean, std^2) entries.
 *
 * @returns tf.Tensor2D [M, d] float32.
 * @example
 * ```ts
 * import { randomGaussianPatterns } from 'uhop';
 * const memories = randomGaussianPatterns(50, 32, { seed: 3 }); // [50, 32], entries N(0, 1)
 * memories.dispose();
 * ```
 */
export function randomGaussianPatterns(M: number, d: number, { seed, mean = 0, std = 1 }: GaussianPatternOptions = {}): tf.Tensor2D {
  const fn = 'randomGaussianPatterns';
  checkSize(fn, M, d);
  if (!Number.isFinite(mean)) throw new Error(`${fn}: mean must be a finite number, got ${String(mean)}`);
  if (!(std >= 0) || !Number.isFinite(std)) throw new Error(`${fn}: std must be a finite number >= 0, got ${String(std)}`);
  const rng = seededRandom(seedOption(fn, seed));
  const out = new Float32Array(M * d);
  for (let i = 0; i < out.length; i++) out[i] = mean + std * rng.normal();
  return tf.tensor2d(out, [M, d]);
}

function fillCorrelated(rng: SeededRandom, M: number, d: number, c: number, kind: 'gaussian' | 'binary', p: number): Float32Array {
  const out = new Float32Array(M * d);
  if (kind === 'gaussian') {
    const common = new Float64Array(d);
    for (let j = 0; j < d; j++) common[j] = rng.normal();
    const a = Math.sqrt(c);
    const b = Math.sqrt(1 - c);
    for (let i = 0; i < M; i++) for (let j = 0; j < d; j++) out[i * d + j] = a * common[j] + b * rng.normal();
  } else {
    const common = new Uint8Array(d);
    for (let j = 0; j < d; j++) common[j] = rng.uniform() < p ? 1 : 0;
    const q = Math.sqrt(c);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < d; j++) {
        // Draw both numbers every time so that the stream does not depend on the outcome.
        const copy = rng.uniform() < q;
        const fresh = rng.uniform() < p ? 1 : 0;
        out[i * d + j] = copy ? common[j] : fresh;
      }
    }
  }
  return out;
}

/**
 * M patterns that share a common component, so that any two of them have expected Pearson
 * correlation `correlation` across their entries. Correlated memories are the hard case for
 * dense modern Hopfield retrieval (metastable states), which U-Hop's feature map addresses.
 *
 * @returns tf.Tensor2D [M, d] float32.
 * @example
 * ```ts
 * import { correlatedPatterns } from 'uhop';
 * const memories = correlatedPatterns(20, 128, { seed: 0, correlation: 0.8 }); // [20, 128]
 * const binary = correlatedPatterns(20, 128, { seed: 0, correlation: 0.8, kind: 'binary' });
 * memories.dispose(); binary.dispose();
 * ```
 */
export function correlatedPatterns(M: number, d: number, options: CorrelatedPatternOptions = {}): tf.Tensor2D {
  const fn = 'correlatedPatterns';
  const { seed, correlation = 0.5, kind = 'gaussian', p = 0.5 } = options;
  checkSize(fn, M, d);
  if (typeof correlation !== 'number' || !(correlation >= 0 && correlation < 1)) {
    throw new Error(`${fn}: correlation must be in [0, 1), got ${String(correlation)}`);
  }
  if (kind !== 'gaussian' && kind !== 'binary') throw new Error(`${fn}: kind must be 'gaussian' or 'binary', got ${String(kind)}`);
  checkProbability(fn, p);
  const rng = seededRandom(seedOption(fn, seed));
  return tf.tensor2d(fillCorrelated(rng, M, d, correlation, kind, p), [M, d]);
}
