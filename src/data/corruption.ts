/**
 * Query corruption for associative-retrieval experiments: masking, half-image masking,
 * additive Gaussian noise, and combinations.
 *
 * Inputs are tensors [..., d] (usually [n, d], one query per row, values in [0, 1]); each
 * function returns a new float32 tensor of the same shape and leaves its input alone. The
 * random choices come from {@link seededRandom} in JavaScript, so a seed gives the same
 * corruption on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom, seedOption } from './random.js';

/** How {@link maskQueries} removes entries. */
export type MaskMode = 'zero' | 'reference-inverted-dropout';

export interface MaskQueriesOptions {
  /** Fraction of the d entries of each query to remove: [0, 1] for 'zero', [0, 1) for dropout. */
  fraction: number;
  /** Seed of the generator. Default 0. */
  seed?: number;
  /**
   * 'zero' (default): zero exactly round(fraction * d) entries of each query, chosen uniformly
   * without replacement, and keep the others unchanged. This is "a query with that fraction
   * of its pixels masked" as the U-Hop paper describes it.
   *
   * 'reference-inverted-dropout': what the authors' released scripts do instead (inverted
   * dropout, as torch.nn.functional.dropout): every entry is dropped independently with
   * probability `fraction` and the survivors are multiplied by 1 / (1 - fraction), so with
   * fraction 0.5 the surviving pixels are doubled (see DESIGN.md section 2). Offered only to
   * reproduce the published curves.
   */
  mode?: MaskMode;
}

export type HalfMaskSide = 'bottom' | 'top' | 'right' | 'left' | 'random';

export interface HalfMaskOptions {
  /**
   * Which half of each image to zero. 'bottom' (default; the last floor(rows/2) rows),
   * 'top', 'right' (the last floor(cols/2) columns), 'left', or 'random' (a random set of
   * floor(rows*cols/2) pixel positions per query, all channels of a pixel together).
   */
  side?: HalfMaskSide;
  /** Image height. Default: sqrt(d / channels) when that is an integer. */
  rows?: number;
  /** Image width. Default: `rows` (square images). */
  cols?: number;
  /** Channels per pixel, channels-last (HWC) layout. Default 1. */
  channels?: number;
  /** Seed of the generator (used by side 'random' only). Default 0. */
  seed?: number;
}

export interface NoisyQueriesOptions {
  /** Standard deviation of the additive Gaussian noise, >= 0. */
  std: number;
  /** Seed of the generator. Default 0. */
  seed?: number;
  /** Clip the result to [0, 1]. Default true. */
  clip?: boolean;
}

/** One corruption step of {@link corruptQueries}. */
export type CorruptionSpec =
  | ({ kind: 'mask' } & MaskQueriesOptions)
  | ({ kind: 'halfMask' } & HalfMaskOptions)
  | ({ kind: 'noise' } & NoisyQueriesOptions)
  | { kind: 'none' };

function checkInput(fn: string, x: tf.Tensor): { n: number; d: number } {
  if (!(x instanceof tf.Tensor)) throw new Error(`${fn}: x must be a tf.Tensor [n, d], got ${typeof x}`);
  if (x.rank < 1) throw new Error(`${fn}: x must have rank >= 1 ([n, d] queries), got a scalar`);
  const d = x.shape[x.rank - 1];
  return { n: d === 0 ? 0 : x.size / d, d };
}

function applyMask(x: tf.Tensor, mask: Float32Array, maskShape: number[]): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.cast(x, 'float32'), tf.tensor(mask, maskShape, 'float32')));
}

/**
 * Masks a fraction of the entries of each query; see {@link MaskQueriesOptions.mode}.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { maskQueries } from 'uhop';
 * const x = tf.ones([2, 10]);
 * const q = maskQueries(x, { fraction: 0.3, seed: 1 }); // exactly 3 zeros per row
 * ```
 */
export function maskQueries(x: tf.Tensor, options: MaskQueriesOptions): tf.Tensor {
  const fn = 'maskQueries';
  const { n, d } = checkInput(fn, x);
  const { fraction, mode = 'zero' } = options ?? ({} as MaskQueriesOptions);
  const rng = seededRandom(seedOption(fn, options?.seed));
  const mask = new Float32Array(n * d);
  if (mode === 'zero') {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
      throw new Error(`${fn}: fraction must be in [0, 1] for mode 'zero', got ${String(fraction)}`);
    }
    const k = Math.round(fraction * d);
    const order = new Int32Array(d);
    mask.fill(1);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < d; j++) order[j] = j;
      // Partial Fisher-Yates: the first k positions become a uniform k-subset.
      for (let j = 0; j < k; j++) {
        const t = j + Math.floor(rng.uniform() * (d - j));
        const tmp = order[j];
        order[j] = order[t];
        order[t] = tmp;
        mask[r * d + order[j]] = 0;
      }
    }
  } else if (mode === 'reference-inverted-dropout') {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) {
      throw new Error(`${fn}: fraction must be in [0, 1) for mode 'reference-inverted-dropout', got ${String(fraction)}`);
    }
    const scale = 1 / (1 - fraction);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() < fraction ? 0 : scale;
  } else {
    throw new Error(`${fn}: mode must be 'zero' or 'reference-inverted-dropout', got ${String(mode)}`);
  }
  return applyMask(x, mask, x.shape);
}

/**
 * Zeros half of each image (the U-Hop paper's "half the pixels masked" queries).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { halfMaskQueries } from 'uhop';
 * const images = tf.ones([4, 28 * 28]);
 * const q = halfMaskQueries(images, { side: 'bottom' }); // rows 14..27 zeroed
 * ```
 */
export function halfMaskQueries(x: tf.Tensor, options: HalfMaskOptions = {}): tf.Tensor {
  const fn = 'halfMaskQueries';
  const { n, d } = checkInput(fn, x);
  const { side = 'bottom', channels = 1 } = options;
  if (!Number.isInteger(channels) || channels < 1) throw new Error(`${fn}: channels must be a positive integer, got ${String(channels)}`);
  let rows = options.rows;
  if (rows === undefined) {
    const s = Math.round(Math.sqrt(d / channels));
    if (s * s * channels !== d) {
      throw new Error(`${fn}: rows and cols are needed: d = ${d} is not channels * (a square), channels = ${channels}`);
    }
    rows = s;
  }
  const cols = options.cols ?? rows;
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(cols) || cols < 1) {
    throw new Error(`${fn}: rows and cols must be positive integers, got rows ${String(rows)}, cols ${String(cols)}`);
  }
  if (rows * cols * channels !== d) {
    throw new Error(`${fn}: rows * cols * channels = ${rows} * ${cols} * ${channels} = ${rows * cols * channels} must equal d = ${d}`);
  }
  const pixel = (r: number, c: number) => (r * cols + c) * channels;
  if (side === 'random') {
    const rng = seededRandom(seedOption(fn, options.seed));
    const P = rows * cols;
    const k = Math.floor(P / 2);
    const mask = new Float32Array(n * d).fill(1);
    const order = new Int32Array(P);
    for (let q = 0; q < n; q++) {
      for (let j = 0; j < P; j++) order[j] = j;
      for (let j = 0; j < k; j++) {
        const t = j + Math.floor(rng.uniform() * (P - j));
        const tmp = order[j];
        order[j] = order[t];
        order[t] = tmp;
        const base = q * d + order[j] * channels;
        for (let ch = 0; ch < channels; ch++) mask[base + ch] = 0;
      }
    }
    return applyMask(x, mask, x.shape);
  }
  const mask = new Float32Array(d).fill(1);
  const hr = Math.floor(rows / 2);
  const hc = Math.floor(cols / 2);
  let zero: (r: number, c: number) => boolean;
  switch (side) {
    case 'bottom':
      zero = (r) => r >= rows! - hr;
      break;
    case 'top':
      zero = (r) => r < hr;
      break;
    case 'right':
      zero = (_r, c) => c >= cols - hc;
      break;
    case 'left':
      zero = (_r, c) => c < hc;
      break;
    default:
      throw new Error(`${fn}: side must be 'bottom', 'top', 'right', 'left' or 'random', got ${String(side)}`);
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (zero(r, c)) for (let ch = 0; ch < channels; ch++) mask[pixel(r, c) + ch] = 0;
    }
  }
  const maskShape = x.shape.map((_, i) => (i === x.rank - 1 ? d : 1));
  return applyMask(x, mask, maskShape);
}

/**
 * Adds Gaussian noise N(0, std^2) to every entry, then clips to [0, 1] (unless `clip: false`).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { noisyQueries } from 'uhop';
 * const q = noisyQueries(tf.fill([3, 16], 0.5), { std: 0.1, seed: 2 });
 * ```
 */
export function noisyQueries(x: tf.Tensor, options: NoisyQueriesOptions): tf.Tensor {
  const fn = 'noisyQueries';
  checkInput(fn, x);
  const { std, clip = true } = options ?? ({} as NoisyQueriesOptions);
  if (typeof std !== 'number' || !(std >= 0) || !Number.isFinite(std)) {
    throw new Error(`${fn}: std must be a finite number >= 0, got ${String(std)}`);
  }
  const rng = seededRandom(seedOption(fn, options.seed));
  const noise = new Float32Array(x.size);
  for (let i = 0; i < noise.length; i++) noise[i] = std * rng.normal();
  return tf.tidy(() => {
    const y = tf.add(tf.cast(x, 'float32'), tf.tensor(noise, x.shape, 'float32'));
    return clip ? tf.clipByValue(y, 0, 1) : y;
  });
}

/**
 * Applies one corruption or a sequence of them, in order. A step without a seed gets its
 * position in the sequence as seed, so two noise steps do not draw the same numbers.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { corruptQueries } from 'uhop';
 * const x = tf.ones([8, 784]);
 * const q = corruptQueries(x, [
 *   { kind: 'halfMask', side: 'bottom' },
 *   { kind: 'noise', std: 0.1, seed: 7 },
 * ]);
 * ```
 */
export function corruptQueries(x: tf.Tensor, spec: CorruptionSpec | CorruptionSpec[]): tf.Tensor {
  const fn = 'corruptQueries';
  checkInput(fn, x);
  const steps = Array.isArray(spec) ? spec : [spec];
  let current: tf.Tensor = tf.tidy(() => tf.clone(tf.cast(x, 'float32')));
  try {
    steps.forEach((step, i) => {
      let next: tf.Tensor;
      switch (step?.kind) {
        case 'none':
          next = tf.clone(current);
          break;
        case 'mask':
          next = maskQueries(current, { ...step, seed: step.seed ?? i });
          break;
        case 'halfMask':
          next = halfMaskQueries(current, { ...step, seed: step.seed ?? i });
          break;
        case 'noise':
          next = noisyQueries(current, { ...step, seed: step.seed ?? i });
          break;
        default:
          throw new Error(
            `${fn}: step ${i} kind must be 'mask', 'halfMask', 'noise' or 'none', got ${String((step as { kind?: unknown })?.kind)}`,
          );
      }
      current.dispose();
      current = next;
    });
  } catch (e) {
    current.dispose();
    throw e;
  }
  return current;
}
