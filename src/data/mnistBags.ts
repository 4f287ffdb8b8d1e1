/**
 * MNIST-bags (Ilse, Tomczak and Welling, "Attention-based Deep Multiple Instance Learning",
 * ICML 2018): bags of MNIST digits, positive iff the target digit is among them.
 */
import type { ImageSet, RawImageSet } from './idx.js';
import type { Bag, MilDataset } from './mil.js';
import { seededRandom, seedOption } from './random.js';

export interface MnistBagsOptions {
  /** Number of bags to draw (required). */
  numBags: number;
  /** The digit whose presence makes a bag positive. Default 9. */
  targetDigit?: number;
  /** Mean bag size. Default 10. */
  meanBagSize?: number;
  /**
   * Spread of the bag size. Default 2. Following Ilse et al.'s code, which passes its
   * `var_bag_length` as numpy's `scale`, this is the STANDARD DEVIATION of the Gaussian the
   * size is drawn from (despite the name).
   */
  varBagSize?: number;
  /** Seed of the generator. Default 0. */
  seed?: number;
  /** Draw the digits from the first `poolSize` images of `source` only. Default: all. */
  poolSize?: number;
  /**
   * The images to draw from (required): MNIST from `loadMnist` or `loadIdxImageFolderRaw` of
   * 'uhop/node', or any image set (e.g. Fashion-MNIST, whose class `targetDigit` then plays
   * the digit's role).
   */
  source: ImageSet | RawImageSet;
}

/** MNIST-bags: bags with instance labels (the digits) kept for analysis. */
export interface MnistBagsDataset extends MilDataset {
  rows: number;
  cols: number;
}

/**
 * Draws MNIST-bags as in Ilse et al. (2018): each bag's size is a Gaussian draw
 * N(meanBagSize, varBagSize^2) rounded to the nearest integer and at least 1; its instances are
 * digits drawn uniformly (with replacement) from the pool; the bag label is 1 iff
 * `targetDigit` is among them. Instances are flattened 28 x 28 images in [0, 1];
 * `instanceLabels` holds the digits. Bag ids are 0..numBags-1.
 *
 * @example
 * ```ts
 * import { mnistBags, padBags } from 'uhop';
 * import { loadMnist } from 'uhop/node';
 * const source = loadMnist({ split: 'train' });
 * const ds = mnistBags({ numBags: 200, targetDigit: 9, meanBagSize: 10, varBagSize: 2, seed: 1, source });
 * const { x, mask, y } = padBags(ds.bags); // x [200, Smax, 784]
 * ```
 */
export function mnistBags(options: MnistBagsOptions): MnistBagsDataset {
  const fn = 'mnistBags';
  const { numBags, targetDigit = 9, meanBagSize = 10, varBagSize = 2, poolSize } = options ?? ({} as MnistBagsOptions);
  if (!Number.isInteger(numBags) || numBags < 1) throw new Error(`${fn}: numBags must be a positive integer, got ${String(numBags)}`);
  if (!Number.isInteger(targetDigit)) throw new Error(`${fn}: targetDigit must be an integer, got ${String(targetDigit)}`);
  if (!(meanBagSize >= 1) || !Number.isFinite(meanBagSize))
    throw new Error(`${fn}: meanBagSize must be a finite number >= 1, got ${String(meanBagSize)}`);
  if (!(varBagSize >= 0) || !Number.isFinite(varBagSize))
    throw new Error(`${fn}: varBagSize must be a finite number >= 0, got ${String(varBagSize)}`);
  if (poolSize !== undefined && (!Number.isInteger(poolSize) || poolSize < 1)) {
    throw new Error(`${fn}: poolSize must be a positive integer, got ${String(poolSize)}`);
  }
  const rng = seededRandom(seedOption(fn, options.seed));
  const src = options.source;
  if (src == null || typeof src !== 'object' || !Number.isInteger(src.n) || !Number.isInteger(src.rows) || !Number.isInteger(src.cols)) {
    throw new Error(
      `${fn}: source must be an image set {images or pixels, labels, n, rows, cols} (e.g. loadMnist({ split: 'train' }) from 'uhop/node'), got ${src === null ? 'null' : typeof src}`,
    );
  }
  const pool = Math.min(src.n, poolSize ?? src.n);
  if (pool < 1) throw new Error(`${fn}: the image source holds no images`);
  const D = src.rows * src.cols;
  const pixels = 'pixels' in src ? src.pixels : null;
  const images = 'images' in src ? src.images : null;
  const bags: Bag[] = [];
  for (let b = 0; b < numBags; b++) {
    const size = Math.max(1, Math.round(meanBagSize + varBagSize * rng.normal()));
    const instances = new Float32Array(size * D);
    const instanceLabels = new Int32Array(size);
    let label = 0;
    for (let i = 0; i < size; i++) {
      const k = rng.int(pool);
      if (pixels) for (let p = 0; p < D; p++) instances[i * D + p] = pixels[k * D + p] / 255;
      else instances.set(images!.subarray(k * D, (k + 1) * D), i * D);
      instanceLabels[i] = src.labels[k];
      if (src.labels[k] === targetDigit) label = 1;
    }
    bags.push({ id: b, label, size, instances, instanceLabels });
  }
  return { name: 'mnist-bags', bags, numFeatures: D, rows: src.rows, cols: src.cols };
}
