/**
 * IDX (the MNIST / Fashion-MNIST container format): decoding and encoding bytes in memory.
 * Browser-safe; the file and folder readers (readIdx, loadIdxImageFolder, loadMnist) are in
 * `uhop/node` (src/node/data.ts).
 *
 * IDX layout: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
 * 0x0D float, 0x0E double), the number of dimensions n, then n big-endian uint32 sizes,
 * then the payload in big-endian row-major order.
 */

/** Element types of the IDX format. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** Typed array holding the payload of an IDX file (one type per IdxDtype). */
export type IdxTypedArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** The decoded content of an IDX file. */
export interface IdxArray {
  /** Sizes of the dimensions, outermost first (e.g. [60000, 28, 28]). */
  shape: number[];
  dtype: IdxDtype;
  /** Row-major payload, already converted from big-endian to native values. */
  data: IdxTypedArray;
}

export interface ReadIdxOptions {
  /**
   * Keep only the first `limit` entries along the first dimension. For raw files only that
   * prefix is read from disk (the file size is still checked against the header). Default: all.
   */
  limit?: number;
}

/** Options of {@link parseIdx}. */
export interface ParseIdxOptions extends ReadIdxOptions {
  /** Names the data in error messages. Default 'input'. */
  source?: string;
  /**
   * Decompresses gzipped bytes (detected by the magic bytes 0x1f 0x8b). Without it, gzipped
   * input is an error: nothing here depends on a zlib. `uhop/node`'s readIdx passes Node's.
   */
  gunzip?: (bytes: Uint8Array) => Uint8Array;
}

interface DtypeInfo {
  code: number;
  dtype: IdxDtype;
  bytes: number;
}

const DTYPES: DtypeInfo[] = [
  { code: 0x08, dtype: 'uint8', bytes: 1 },
  { code: 0x09, dtype: 'int8', bytes: 1 },
  { code: 0x0b, dtype: 'int16', bytes: 2 },
  { code: 0x0c, dtype: 'int32', bytes: 4 },
  { code: 0x0d, dtype: 'float32', bytes: 4 },
  { code: 0x0e, dtype: 'float64', bytes: 8 },
];
const BY_CODE = new Map(DTYPES.map((d) => [d.code, d]));
const BY_NAME = new Map(DTYPES.map((d) => [d.dtype, d]));

const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

interface IdxHeader {
  info: DtypeInfo;
  shape: number[];
  headerBytes: number;
}

function parseHeader(fn: string, source: string, bytes: Uint8Array, totalBytes: number): IdxHeader {
  if (totalBytes < 4) {
    throw new Error(`${fn}: ${source} is too short for an IDX header (${totalBytes} bytes, need at least 4)`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(
      `${fn}: ${source} has a bad magic number (first bytes ${hex(bytes[0])} ${hex(bytes[1])} ${hex(bytes[2])} ${hex(bytes[3])}); ` +
        'an IDX file starts with two zero bytes, a type code and the number of dimensions (or is gzipped: 0x1f 0x8b)',
    );
  }
  const info = BY_CODE.get(bytes[2]);
  if (!info) {
    throw new Error(
      `${fn}: ${source} has an unknown IDX type code ${hex(bytes[2])}; expected one of ` +
        DTYPES.map((d) => `${hex(d.code)} (${d.dtype})`).join(', '),
    );
  }
  const ndim = bytes[3];
  if (ndim === 0) throw new Error(`${fn}: ${source} declares 0 dimensions; expected at least 1`);
  const headerBytes = 4 + 4 * ndim;
  if (totalBytes < headerBytes) {
    throw new Error(
      `${fn}: ${source} is truncated inside its header: ${ndim} dimensions need ${headerBytes} header bytes, the file has ${totalBytes}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(4 + 4 * i, false));
  return { info, shape, headerBytes };
}

function checkPayloadLength(fn: string, source: string, h: IdxHeader, totalBytes: number): void {
  const count = h.shape.reduce((a, b) => a * b, 1);
  const expected = count * h.info.bytes;
  const actual = totalBytes - h.headerBytes;
  if (actual !== expected) {
    const what = actual < expected ? 'truncated' : 'over-long';
    throw new Error(
      `${fn}: ${source} is ${what}: shape [${h.shape.join(', ')}] of ${h.info.dtype} (${h.info.bytes} byte${h.info.bytes > 1 ? 's' : ''} each) ` +
        `needs a payload of ${expected} bytes after the ${h.headerBytes}-byte header, got ${actual} bytes`,
    );
  }
}

function checkLimit(fn: string, limit: number | undefined): void {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new Error(`${fn}: limit must be a non-negative integer, got ${String(limit)}`);
  }
}

/** Decodes a big-endian payload into a native typed array. */
function decodePayload(info: DtypeInfo, bytes: Uint8Array, offset: number, count: number): IdxTypedArray {
  const byteLength = count * info.bytes;
  if (info.dtype === 'uint8') return bytes.slice(offset, offset + byteLength);
  if (info.dtype === 'int8') {
    const copy = bytes.slice(offset, offset + byteLength);
    return new Int8Array(copy.buffer, 0, count);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, byteLength);
  switch (info.dtype) {
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, false);
      return out;
    }
    default: {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, false);
      return out;
    }
  }
}

function limitedShape(shape: number[], limit: number | undefined): number[] {
  const out = shape.slice();
  if (limit !== undefined) out[0] = Math.min(out[0], limit);
  return out;
}

/**
 * Decodes IDX bytes already in memory: raw, or gzipped when `options.gunzip` is given
 * (gzip is detected by the magic bytes, not a name).
 *
 * @param bytes the file content.
 * @param options `limit` keeps the first entries along the first dimension; `source` names the
 *   data in error messages; `gunzip` decompresses gzipped input.
 * @example
 * ```ts
 * import { encodeIdx, parseIdx } from 'uhop';
 * const bytes = encodeIdx({ shape: [2, 2], dtype: 'int16', data: Int16Array.from([1, -2, 3, 4]) });
 * const { shape, data } = parseIdx(bytes); // [2, 2], Int16Array [1, -2, 3, 4]
 * ```
 */
export function parseIdx(bytes: Uint8Array, options: ParseIdxOptions = {}): IdxArray {
  return parseIdxAs('parseIdx', bytes, options);
}

function parseIdxAs(fn: string, bytes: Uint8Array, options: ParseIdxOptions): IdxArray {
  checkLimit(fn, options.limit);
  const source = options.source ?? 'input';
  let raw = bytes;
  if (isGzip(raw)) {
    if (!options.gunzip) {
      throw new Error(
        `${fn}: ${source} is gzipped (starts with 0x1f 0x8b); pass options.gunzip, decompress it first ` +
          "(DecompressionStream('gzip') in a browser), or read the file with readIdx from 'uhop/node'",
      );
    }
    try {
      raw = options.gunzip(raw);
    } catch (e) {
      throw new Error(`${fn}: ${source} starts like gzip (0x1f 0x8b) but does not decompress: ${(e as Error).message}`);
    }
  }
  const h = parseHeader(fn, source, raw, raw.length);
  checkPayloadLength(fn, source, h, raw.length);
  const shape = limitedShape(h.shape, options.limit);
  const count = shape.reduce((a, b) => a * b, 1);
  return { shape, dtype: h.info.dtype, data: decodePayload(h.info, raw, h.headerBytes, count) };
}

/** Random-access bytes: what {@link decodeIdxFrom} reads from (a file, a Blob's buffer, ...). */
export interface IdxByteSource {
  /** Names it in error messages (a path). */
  name: string;
  /** Total length in bytes. */
  size: number;
  /** The bytes [offset, offset + length); may return fewer at the end. */
  read(offset: number, length: number): Uint8Array;
}

/**
 * Decodes IDX from random-access storage, reading only the header and the needed prefix of a
 * raw payload when `limit` is set (the total size is still checked against the header).
 * The storage-independent half of `uhop/node`'s readIdx.
 *
 * @example
 * ```ts
 * import { decodeIdxFrom, encodeIdx } from 'uhop';
 * const bytes = encodeIdx({ shape: [3], dtype: 'uint8', data: [7, 2, 1] });
 * decodeIdxFrom({ name: 'mem', size: bytes.length, read: (o, n) => bytes.subarray(o, o + n) }, { limit: 2 }).data; // [7, 2]
 * ```
 */
export function decodeIdxFrom(src: IdxByteSource, options: ParseIdxOptions & { fn?: string } = {}): IdxArray {
  const fn = options.fn ?? 'decodeIdxFrom';
  checkLimit(fn, options.limit);
  const head = src.read(0, Math.min(src.size, 4 + 4 * 255));
  if (isGzip(head) || options.limit === undefined) {
    return parseIdxAs(fn, src.read(0, src.size), { ...options, source: src.name });
  }
  const h = parseHeader(fn, src.name, head, src.size);
  checkPayloadLength(fn, src.name, h, src.size);
  const shape = limitedShape(h.shape, options.limit);
  const count = shape.reduce((a, b) => a * b, 1);
  const want = h.headerBytes + count * h.info.bytes;
  const buf = src.read(0, want);
  if (buf.length < want) throw new Error(`${fn}: ${src.name} ended after ${buf.length} bytes while reading ${want}`);
  return { shape, dtype: h.info.dtype, data: decodePayload(h.info, buf, h.headerBytes, count) };
}

/**
 * Encodes an array as IDX bytes (big-endian). `data` must hold exactly prod(shape) values of
 * a type matching `dtype`; plain number arrays are accepted and converted.
 *
 * @example
 * ```ts
 * import { encodeIdx } from 'uhop';
 * const bytes = encodeIdx({ shape: [3], dtype: 'uint8', data: Uint8Array.from([7, 2, 1]) });
 * ```
 */
export function encodeIdx(array: { shape: number[]; dtype: IdxDtype; data: ArrayLike<number> }): Uint8Array {
  const fn = 'encodeIdx';
  const info = BY_NAME.get(array.dtype);
  if (!info) throw new Error(`${fn}: dtype must be one of ${[...BY_NAME.keys()].join(', ')}, got ${String(array.dtype)}`);
  const { shape, data } = array;
  if (
    !Array.isArray(shape) ||
    shape.length < 1 ||
    shape.length > 255 ||
    shape.some((s) => !Number.isInteger(s) || s < 0 || s > 0xffffffff)
  ) {
    throw new Error(`${fn}: shape must be 1 to 255 non-negative 32-bit integers, got [${String(shape)}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new Error(`${fn}: data has ${data.length} values, shape [${shape.join(', ')}] needs ${count}`);
  }
  const headerBytes = 4 + 4 * shape.length;
  const out = new Uint8Array(headerBytes + count * info.bytes);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = shape.length;
  shape.forEach((s, i) => view.setUint32(4 + 4 * i, s, false));
  const o = headerBytes;
  for (let i = 0; i < count; i++) {
    const v = data[i];
    switch (info.dtype) {
      case 'uint8':
        view.setUint8(o + i, v);
        break;
      case 'int8':
        view.setInt8(o + i, v);
        break;
      case 'int16':
        view.setInt16(o + 2 * i, v, false);
        break;
      case 'int32':
        view.setInt32(o + 4 * i, v, false);
        break;
      case 'float32':
        view.setFloat32(o + 4 * i, v, false);
        break;
      default:
        view.setFloat64(o + 8 * i, v, false);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Image sets (MNIST, Fashion-MNIST, and anything else stored the same way); the folder
// readers are in uhop/node

export type ImageSplit = 'train' | 'test';

export interface LoadImageFolderOptions {
  /** 'train' (train-*) or 't10k'/'test' files. Default 'train'. */
  split?: ImageSplit;
  /** Keep the first `limit` images (and labels). Default: all. */
  limit?: number;
}

/** Images flattened row-major, scaled to [0, 1], with their integer labels. */
export interface ImageSet {
  /** [n * rows * cols] row-major: image i occupies [i*rows*cols, (i+1)*rows*cols). Values in [0, 1]. */
  images: Float32Array;
  /** [n] class labels. */
  labels: Int32Array;
  n: number;
  rows: number;
  cols: number;
}

/** The same with the raw uint8 pixels (0..255), used internally to avoid a float copy. */
export interface RawImageSet extends Omit<ImageSet, 'images'> {
  pixels: Uint8Array;
  /** The image and label files that were read. */
  files: { images: string; labels: string };
}

/** Converts uint8 pixels to float32 in [0, 1]. */
export function pixelsToUnit(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] / 255;
  return out;
}
