/**
 * Multiple-instance learning (MIL) data: the CSV parser for the classic benchmarks (MUSK1,
 * MUSK2, Elephant, ...), bag padding with masks, stratified k-fold splits and per-fold
 * standardization. Browser-safe: readMilCsv and loadMilDataset (files) are in uhop/node.
 *
 * CSV format (one row per instance, rows of a bag contiguous):
 *   bag_id,bag_label,f0,f1,...,f{d-1}
 *   1,1,0.180723,-0.8816,...
 * bag_id an integer, bag_label 0 or 1 (repeated on every row of the bag), features decimal.
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededRandom, seedOption } from './random.js';
// The one unknown-option checker (no imports of its own, so no cycle with src/ops).
import { bool, defineSchema, int, parseOptions } from '../ops/schema.js';

/** One bag of instances. */
export interface Bag {
  /** The bag's id (from the file, or its index for generated bags). */
  id: number;
  /** Bag label: 1 = positive, 0 = negative. */
  label: number;
  /** Number of instances (>= 1). */
  size: number;
  /** [size * numFeatures] row-major: instance i occupies [i*F, (i+1)*F). */
  instances: Float32Array;
  /** Per-instance labels, when known (MNIST-bags keeps the digits); the CSV benchmarks have none. */
  instanceLabels?: Int32Array;
}

/** A MIL data set: bags with a common number of features. */
export interface MilDataset {
  /** Short name, e.g. the file name without extension ('musk1'). */
  name: string;
  bags: Bag[];
  numFeatures: number;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses MIL CSV text (see the module comment for the format). Errors give the line number
 * (1-based, the header is line 1) and what was wrong.
 *
 * @param text the CSV content.
 * @param options `name` of the data set (default 'mil'); `source` names it in errors.
 * @example
 * ```ts
 * import { parseMilCsv } from 'uhop';
 * const ds = parseMilCsv('bag_id,bag_label,f0,f1\n1,1,0.5,2\n1,1,1,0\n2,0,3,4\n', { name: 'toy' });
 * ds.bags.length; // 2
 * ```
 */
export function parseMilCsv(text: string, options: { name?: string; source?: string } = {}): MilDataset {
  const fn = 'readMilCsv';
  const source = options.source ?? 'input';
  const name = options.name ?? 'mil';
  if (typeof text !== 'string' || text.trim() === '') {
    throw new Error(`${fn}: ${source} is empty; expected a header line "bag_id,bag_label,f0,f1,..." and one row per instance`);
  }
  const lines = text.split('\n');
  const headerLine = lines[0].replace(/\r$/, '').replace(/^\uFEFF/, '');
  const header = headerLine.split(',').map((s) => s.trim());
  if (header.length < 3 || header[0] !== 'bag_id' || header[1] !== 'bag_label' || header.slice(2).some((h) => h === '')) {
    throw new Error(
      `${fn}: ${source} line 1: bad header "${headerLine.length > 80 ? headerLine.slice(0, 80) + '...' : headerLine}"; ` +
        'expected "bag_id,bag_label,f0,f1,..." (bag_id, bag_label, then at least one named feature column)',
    );
  }
  const F = header.length - 2;
  const fields = header.length;

  // Count the data rows first so that all features go into one preallocated buffer.
  let rowCount = 0;
  for (let i = 1; i < lines.length; i++) if (lines[i].trim() !== '') rowCount++;
  if (rowCount === 0) throw new Error(`${fn}: ${source} has a header but no data rows`);

  const features = new Float32Array(rowCount * F);
  const bagIds: number[] = [];
  const bagLabels: number[] = [];
  const bagStart: number[] = [];
  const bagFirstLine: number[] = [];
  const bagLastLine: number[] = [];
  const seen = new Map<number, number>(); // bag id -> index in the arrays above
  let row = 0;
  let current = -1;
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i];
    if (line.length > 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (line.trim() === '') continue;
    const lineNo = i + 1;
    const parts = line.split(',');
    if (parts.length !== fields) {
      throw new Error(
        `${fn}: ${source} line ${lineNo}: ${parts.length} fields, expected ${fields} (bag_id, bag_label and ${F} features, as in the header)`,
      );
    }
    const idText = parts[0].trim();
    const id = Number(idText);
    if (idText === '' || !NUMBER.test(idText) || !Number.isInteger(id)) {
      throw new Error(`${fn}: ${source} line ${lineNo}: bag_id must be an integer, got "${parts[0]}"`);
    }
    const labelText = parts[1].trim();
    const label = NUMBER.test(labelText) ? Number(labelText) : NaN;
    if (label !== 0 && label !== 1) {
      throw new Error(`${fn}: ${source} line ${lineNo}: bag_label must be 0 or 1, got "${parts[1]}"`);
    }
    if (current < 0 || bagIds[current] !== id) {
      const previous = seen.get(id);
      if (previous !== undefined) {
        throw new Error(
          `${fn}: ${source} line ${lineNo}: bag ${id} appears again after other bags (its rows were on lines ` +
            `${bagFirstLine[previous]}-${bagLastLine[previous]}); the rows of a bag must be contiguous`,
        );
      }
      current = bagIds.length;
      seen.set(id, current);
      bagIds.push(id);
      bagLabels.push(label);
      bagStart.push(row);
      bagFirstLine.push(lineNo);
      bagLastLine.push(lineNo);
    } else {
      if (bagLabels[current] !== label) {
        throw new Error(
          `${fn}: ${source} line ${lineNo}: bag ${id} has bag_label ${label} here but ${bagLabels[current]} on line ${bagFirstLine[current]}; ` +
            'every row of a bag must carry the same label',
        );
      }
      bagLastLine[current] = lineNo;
    }
    const base = row * F;
    for (let j = 0; j < F; j++) {
      const s = parts[j + 2];
      const v = +s;
      // `+s` accepts '', ' ', '0x1f' and 'Infinity'; the pattern keeps plain decimals only.
      if (s === '' || v !== v || !NUMBER.test(s)) {
        throw new Error(`${fn}: ${source} line ${lineNo}, column ${j + 3} (${header[j + 2]}): malformed number "${s}"`);
      }
      features[base + j] = v;
    }
    row++;
  }
  const bags: Bag[] = bagIds.map((id, b) => {
    const start = bagStart[b];
    const end = b + 1 < bagIds.length ? bagStart[b + 1] : rowCount;
    return { id, label: bagLabels[b], size: end - start, instances: features.slice(start * F, end * F) };
  });
  return { name, bags, numFeatures: F };
}

function featuresOf(fn: string, bags: Bag[], what = 'bags'): number {
  if (!Array.isArray(bags)) throw new Error(`${fn}: ${what} must be an array of bags, got ${typeof bags}`);
  let F = -1;
  bags.forEach((bag, b) => {
    if (!bag || !(bag.instances instanceof Float32Array) || !Number.isInteger(bag.size) || bag.size < 1) {
      throw new Error(`${fn}: ${what}[${b}] must have a Float32Array of instances and a size >= 1`);
    }
    if (bag.instances.length % bag.size !== 0) {
      throw new Error(`${fn}: ${what}[${b}] has ${bag.instances.length} values, not a multiple of its size ${bag.size}`);
    }
    const f = bag.instances.length / bag.size;
    if (F < 0) F = f;
    else if (f !== F) throw new Error(`${fn}: ${what}[${b}] has ${f} features per instance, ${what}[0] has ${F}`);
  });
  return F;
}

export interface PadBagsOptions {
  /** Padded bag length. Default: the largest bag. */
  maxSize?: number;
  /**
   * What to do with a bag larger than maxSize: false (default) throws; true keeps its first
   * maxSize instances (this may drop the instances that make a bag positive).
   */
  truncate?: boolean;
}

/** The declaration of {@link PadBagsOptions} (src/ops/schema.ts). */
export const PAD_BAGS_SCHEMA = defineSchema<PadBagsOptions>()({
  maxSize: { check: int(1), defaultText: 'the largest bag', doc: 'Padded bag length.' },
  truncate: { check: bool, default: false, doc: 'Keep the first maxSize instances of a larger bag instead of throwing.' },
});

/** Padded bags as tensors; the caller owns (and disposes) them. */
export interface PaddedBags {
  /** [B, Smax, F] instances, zero rows for padding. */
  x: tf.Tensor3D;
  /** [B, Smax] 1 = a real instance, 0 = padding. */
  mask: tf.Tensor2D;
  /** [B, 1] bag labels (float32 0/1). */
  y: tf.Tensor2D;
}

/**
 * Pads bags to a common length and returns the instances, a mask and the labels as tensors.
 *
 * @example
 * ```ts
 * import { padBags } from 'uhop';
 * import { readMilCsv } from 'uhop/node';
 * const { bags } = readMilCsv('../shared/data/mil/elephant.csv');
 * const { x, mask, y } = padBags(bags); // x [200, 13, 230], mask [200, 13], y [200, 1]
 * ```
 */
export function padBags(bags: Bag[], options: PadBagsOptions = {}): PaddedBags {
  const fn = 'padBags';
  const { maxSize, truncate } = parseOptions(PAD_BAGS_SCHEMA, options, fn);
  const F = featuresOf(fn, bags);
  if (bags.length === 0) throw new Error(`${fn}: bags is empty`);
  const largest = bags.reduce((m, b) => Math.max(m, b.size), 0);
  const S = maxSize ?? largest;
  if (largest > S && !truncate) {
    const which = bags.findIndex((b) => b.size > S);
    throw new Error(
      `${fn}: bags[${which}] has ${bags[which].size} instances, more than maxSize = ${S}; raise maxSize or pass truncate: true`,
    );
  }
  const B = bags.length;
  const x = new Float32Array(B * S * F);
  const mask = new Float32Array(B * S);
  const y = new Float32Array(B);
  bags.forEach((bag, b) => {
    const n = Math.min(bag.size, S);
    x.set(bag.instances.subarray(0, n * F), b * S * F);
    mask.fill(1, b * S, b * S + n);
    y[b] = bag.label;
  });
  return { x: tf.tensor3d(x, [B, S, F]), mask: tf.tensor2d(mask, [B, S]), y: tf.tensor2d(y, [B, 1]) };
}

/** One fold of {@link stratifiedKFold}: indices into the labels array, ascending. */
export interface Fold {
  train: number[];
  test: number[];
}

/**
 * Stratified k-fold split: the test sets are disjoint and cover every index once, and in each
 * fold the count of every class differs from its count in any other fold by at most one
 * (as do the fold sizes). Deterministic for a seed.
 *
 * @param labels one integer class label per item (e.g. bag labels).
 * @param k number of folds, 2 <= k <= labels.length.
 * @param seed shuffling seed. Default 0.
 * @example
 * ```ts
 * import { stratifiedKFold } from 'uhop';
 * import { readMilCsv } from 'uhop/node';
 * const { bags } = readMilCsv('../shared/data/mil/musk1.csv');
 * const folds = stratifiedKFold(bags.map((b) => b.label), 10, 0);
 * const trainBags = folds[0].train.map((i) => bags[i]);
 * ```
 */
export function stratifiedKFold(labels: ArrayLike<number>, k: number, seed = 0): Fold[] {
  const fn = 'stratifiedKFold';
  const n = labels?.length ?? 0;
  if (!Number.isInteger(k) || k < 2) throw new Error(`${fn}: k must be an integer >= 2, got ${String(k)}`);
  if (k > n) throw new Error(`${fn}: k = ${k} folds need at least ${k} items, got ${n}`);
  const rng = seededRandom(seedOption(fn, seed));
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    if (!Number.isInteger(c)) throw new Error(`${fn}: labels[${i}] must be an integer class label, got ${c}`);
    const list = byClass.get(c);
    if (list) list.push(i);
    else byClass.set(c, [i]);
  }
  const foldOf = new Int32Array(n);
  let next = 0;
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = rng.shuffle(byClass.get(c)!);
    for (const i of members) {
      foldOf[i] = next;
      next = (next + 1) % k;
    }
  }
  const folds: Fold[] = Array.from({ length: k }, () => ({ train: [], test: [] }));
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < k; f++) (f === foldOf[i] ? folds[f].test : folds[f].train).push(i);
  }
  return folds;
}

/** Output of {@link standardize}. */
export interface Standardized {
  /** The training bags, standardized (new arrays; the inputs are untouched). */
  train: Bag[];
  /** The other bags (validation / test), standardized with the training statistics. */
  other: Bag[];
  /** [F] per-feature mean over all training instances. */
  mean: Float32Array;
  /** [F] per-feature std over all training instances (ddof as requested); 0 where constant. */
  std: Float32Array;
}

/**
 * Z-scores every feature with the mean and standard deviation of the training bags' instances
 * only, and applies the same transform to the other bags (no test statistics leak into
 * training). Features that are constant on the training instances are only centered.
 *
 * @param trainBags bags whose instances define the statistics.
 * @param otherBags bags transformed with those statistics. Default [].
 * @param options `ddof` of the std: 0 (default, population) or 1 (sample).
 * @example
 * ```ts
 * import { stratifiedKFold, standardize } from 'uhop';
 * import { readMilCsv } from 'uhop/node';
 * const { bags } = readMilCsv('../shared/data/mil/elephant.csv');
 * const [fold] = stratifiedKFold(bags.map((b) => b.label), 10, 0);
 * const { train, other: test } = standardize(fold.train.map((i) => bags[i]), fold.test.map((i) => bags[i]));
 * ```
 */
export function standardize(trainBags: Bag[], otherBags: Bag[] = [], { ddof = 0 }: { ddof?: 0 | 1 } = {}): Standardized {
  const fn = 'standardize';
  if (!Array.isArray(trainBags) || trainBags.length === 0) throw new Error(`${fn}: trainBags must be a non-empty array of bags`);
  if (ddof !== 0 && ddof !== 1) throw new Error(`${fn}: ddof must be 0 or 1, got ${String(ddof)}`);
  const F = featuresOf(fn, trainBags, 'trainBags');
  if (otherBags.length > 0) {
    const G = featuresOf(fn, otherBags, 'otherBags');
    if (G !== F) throw new Error(`${fn}: otherBags have ${G} features per instance, trainBags have ${F}`);
  }
  const sum = new Float64Array(F);
  let count = 0;
  for (const bag of trainBags) {
    const x = bag.instances;
    for (let i = 0; i < bag.size; i++) for (let j = 0; j < F; j++) sum[j] += x[i * F + j];
    count += bag.size;
  }
  if (count - ddof <= 0) throw new Error(`${fn}: ${count} training instance(s) are too few for ddof = ${ddof}`);
  const mean = new Float64Array(F);
  for (let j = 0; j < F; j++) mean[j] = sum[j] / count;
  const sq = new Float64Array(F);
  for (const bag of trainBags) {
    const x = bag.instances;
    for (let i = 0; i < bag.size; i++) {
      for (let j = 0; j < F; j++) {
        const c = x[i * F + j] - mean[j];
        sq[j] += c * c;
      }
    }
  }
  const std = new Float64Array(F);
  const scale = new Float64Array(F);
  const constant = new Uint8Array(F);
  for (let j = 0; j < F; j++) {
    std[j] = Math.sqrt(sq[j] / (count - ddof));
    // A feature constant on the training set (std at float rounding level) is only centered.
    constant[j] = std[j] > 1e-12 * Math.max(1, Math.abs(mean[j])) ? 0 : 1;
    scale[j] = constant[j] ? 1 : 1 / std[j];
  }
  const apply = (bag: Bag): Bag => {
    const out = new Float32Array(bag.instances.length);
    const x = bag.instances;
    for (let i = 0; i < bag.size; i++) for (let j = 0; j < F; j++) out[i * F + j] = (x[i * F + j] - mean[j]) * scale[j];
    const copy: Bag = { id: bag.id, label: bag.label, size: bag.size, instances: out };
    if (bag.instanceLabels) copy.instanceLabels = bag.instanceLabels.slice();
    return copy;
  };
  return {
    train: trainBags.map(apply),
    other: otherBags.map(apply),
    mean: Float32Array.from(mean),
    std: Float32Array.from(std, (s, j) => (constant[j] ? 0 : s)),
  };
}
