import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoLeak, forEachBackend, missingData } from '../helpers.js';
import { initBackend } from '../../src/node/backend.js';
import { readMilCsv, loadMilDataset } from '../../src/node/data.js';
import { parseMilCsv, padBags, stratifiedKFold, standardize, type Bag } from '../../src/data/index.js';

const MIL_DIR = process.env.UHOP_MIL_DIR ?? join(import.meta.dirname, '../../../shared/data/mil');
const noMil = missingData(join(MIL_DIR, 'musk1.csv'), 'MIL data (set UHOP_MIL_DIR)');

before(async () => {
  await initBackend('cpu');
});

interface Expected {
  bags: number;
  pos: number;
  instances: number;
  posInstances: number;
  features: number;
  minSize: number;
  maxSize: number;
}
// Counts from shared/data/mil/README.md.
const EXPECTED: Record<string, Expected> = {
  musk1: { bags: 92, pos: 47, instances: 476, posInstances: 207, features: 166, minSize: 2, maxSize: 40 },
  musk1_raw: { bags: 92, pos: 47, instances: 476, posInstances: 207, features: 166, minSize: 2, maxSize: 40 },
  elephant: { bags: 200, pos: 100, instances: 1391, posInstances: 762, features: 230, minSize: 2, maxSize: 13 },
  musk2: { bags: 102, pos: 39, instances: 6598, posInstances: 1017, features: 166, minSize: 1, maxSize: 1044 },
};

describe('readMilCsv on the staged benchmarks', { skip: noMil }, () => {
  for (const [name, e] of Object.entries(EXPECTED)) {
    it(`${name}: bag, label, instance and feature counts match the README`, () => {
      const ds = readMilCsv(join(MIL_DIR, `${name}.csv`));
      assert.equal(ds.name, name);
      assert.equal(ds.numFeatures, e.features);
      assert.equal(ds.bags.length, e.bags);
      assert.equal(ds.bags.filter((b) => b.label === 1).length, e.pos);
      assert.equal(ds.bags.filter((b) => b.label === 0).length, e.bags - e.pos);
      assert.equal(
        ds.bags.reduce((s, b) => s + b.size, 0),
        e.instances,
      );
      assert.equal(
        ds.bags.filter((b) => b.label === 1).reduce((s, b) => s + b.size, 0),
        e.posInstances,
      );
      assert.equal(Math.min(...ds.bags.map((b) => b.size)), e.minSize);
      assert.equal(Math.max(...ds.bags.map((b) => b.size)), e.maxSize);
      assert.deepEqual(
        ds.bags.map((b) => b.id),
        Array.from({ length: e.bags }, (_, i) => i + 1),
      );
      for (const b of ds.bags) assert.equal(b.instances.length, b.size * e.features);
    });
  }

  it('musk1: first row values, and every feature z-scored over all instances (mean 0, sample std 1)', () => {
    const ds = readMilCsv(join(MIL_DIR, 'musk1.csv'));
    const first = ds.bags[0];
    assert.equal(first.label, 1);
    assert.deepEqual(Array.from(first.instances.subarray(0, 3)), [0.180723, -0.8816, -0.430175].map(Math.fround));
    const F = ds.numFeatures;
    const sum = new Float64Array(F);
    const sq = new Float64Array(F);
    let n = 0;
    for (const b of ds.bags) {
      for (let i = 0; i < b.size; i++) for (let j = 0; j < F; j++) sum[j] += b.instances[i * F + j];
      n += b.size;
    }
    for (const b of ds.bags) {
      for (let i = 0; i < b.size; i++) for (let j = 0; j < F; j++) sq[j] += (b.instances[i * F + j] - sum[j] / n) ** 2;
    }
    for (let j = 0; j < F; j++) {
      assert.ok(Math.abs(sum[j] / n) < 1e-4, `feature ${j} mean ${sum[j] / n}`);
      assert.ok(Math.abs(Math.sqrt(sq[j] / (n - 1)) - 1) < 1e-4, `feature ${j} std`);
    }
  });

  it('loadMilDataset finds <dir>/<name>.csv and says what to do without a folder', () => {
    assert.equal(loadMilDataset('elephant', { dir: MIL_DIR }).bags.length, 200);
    const saved = process.env.UHOP_MIL_DIR;
    delete process.env.UHOP_MIL_DIR;
    try {
      assert.throws(() => loadMilDataset('musk1'), /loadMilDataset: no folder for "musk1": pass \{ dir \} or set UHOP_MIL_DIR/);
    } finally {
      if (saved !== undefined) process.env.UHOP_MIL_DIR = saved;
    }
  });

  it('padBags on elephant: shapes, mask row sums = bag sizes, labels', () => {
    const ds = readMilCsv(join(MIL_DIR, 'elephant.csv'));
    const { x, mask, y } = padBags(ds.bags);
    assert.deepEqual(x.shape, [200, 13, 230]);
    assert.deepEqual(mask.shape, [200, 13]);
    assert.deepEqual(y.shape, [200, 1]);
    const sizes = tf.tidy(() => tf.sum(mask, 1).dataSync());
    assert.deepEqual(
      Array.from(sizes),
      ds.bags.map((b) => b.size),
    );
    assert.deepEqual(
      Array.from(y.dataSync()),
      ds.bags.map((b) => b.label),
    );
    tf.dispose([x, mask, y]);
  });
});

describe('readMilCsv errors name the problem and the line', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'uhop-mil-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const H = 'bag_id,bag_label,f0,f1\n';

  it('missing file', () => {
    assert.throws(() => readMilCsv(join(dir, 'nope.csv')), /readMilCsv: file not found: .*nope.csv/);
  });
  it('empty file', () => {
    assert.throws(() => readMilCsv(file('empty.csv', '')), /empty.csv is empty; expected a header line "bag_id,bag_label,f0,f1,..."/);
    assert.throws(() => readMilCsv(file('blank.csv', '\n \n')), /blank.csv is empty/);
  });
  it('bad header', () => {
    assert.throws(
      () => readMilCsv(file('hdr.csv', 'id,label,f0\n1,1,0\n')),
      /hdr.csv line 1: bad header "id,label,f0"; expected "bag_id,bag_label,f0,f1,..."/,
    );
    assert.throws(() => readMilCsv(file('hdr2.csv', 'bag_id,bag_label\n1,1\n')), /line 1: bad header "bag_id,bag_label"/);
  });
  it('header but no rows', () => {
    assert.throws(() => readMilCsv(file('norows.csv', H)), /norows.csv has a header but no data rows/);
  });
  it('malformed number', () => {
    assert.throws(
      () => readMilCsv(file('num.csv', `${H}1,1,0.5,2\n1,1,abc,2\n`)),
      /num.csv line 3, column 3 \(f0\): malformed number "abc"/,
    );
    assert.throws(() => readMilCsv(file('num2.csv', `${H}1,1,0.5,\n`)), /line 2, column 4 \(f1\): malformed number ""/);
    assert.throws(() => readMilCsv(file('num3.csv', `${H}1,1,0x10,1\n`)), /line 2, column 3 \(f0\): malformed number "0x10"/);
    assert.throws(() => readMilCsv(file('num4.csv', `${H}1,1,1.2.3,1\n`)), /line 2, column 3 \(f0\): malformed number "1.2.3"/);
  });
  it('ragged feature count', () => {
    assert.throws(
      () => readMilCsv(file('ragged.csv', `${H}1,1,0,1\n1,1,0\n`)),
      /ragged.csv line 3: 3 fields, expected 4 \(bag_id, bag_label and 2 features, as in the header\)/,
    );
    assert.throws(() => readMilCsv(file('ragged2.csv', `${H}1,1,0,1,5\n`)), /line 2: 5 fields, expected 4/);
  });
  it('mixed labels within a bag', () => {
    assert.throws(
      () => readMilCsv(file('mixed.csv', `${H}1,0,0,1\n1,0,1,1\n1,1,2,2\n`)),
      /mixed.csv line 4: bag 1 has bag_label 1 here but 0 on line 2; every row of a bag must carry the same label/,
    );
  });
  it('non-contiguous bag rows', () => {
    assert.throws(
      () => readMilCsv(file('split.csv', `${H}1,0,0,1\n1,0,1,1\n2,1,2,2\n1,0,3,3\n`)),
      /split.csv line 5: bag 1 appears again after other bags \(its rows were on lines 2-3\); the rows of a bag must be contiguous/,
    );
  });
  it('label not 0/1', () => {
    assert.throws(() => readMilCsv(file('lab.csv', `${H}1,2,0,1\n`)), /lab.csv line 2: bag_label must be 0 or 1, got "2"/);
    assert.throws(() => readMilCsv(file('lab2.csv', `${H}1,1,0,1\n2,-1,0,1\n`)), /line 3: bag_label must be 0 or 1, got "-1"/);
  });
  it('bag_id not an integer', () => {
    assert.throws(() => readMilCsv(file('id.csv', `${H}a,1,0,1\n`)), /id.csv line 2: bag_id must be an integer, got "a"/);
    assert.throws(() => readMilCsv(file('id2.csv', `${H}1.5,1,0,1\n`)), /line 2: bag_id must be an integer, got "1.5"/);
  });
  it('accepts CRLF, a trailing newline, exponents and signs', () => {
    const ds = parseMilCsv('bag_id,bag_label,f0,f1\r\n7,1,-1.5e-3,+2\r\n7,1,.5,0\r\n3,0,1E2,-0\r\n\r\n', { name: 'toy' });
    assert.equal(ds.name, 'toy');
    assert.deepEqual(
      ds.bags.map((b) => [b.id, b.label, b.size]),
      [
        [7, 1, 2],
        [3, 0, 1],
      ],
    );
    assert.deepEqual(Array.from(ds.bags[0].instances), [-1.5e-3, 2, 0.5, 0].map(Math.fround));
    assert.deepEqual(Array.from(ds.bags[1].instances), [100, -0]);
  });
});

function bag(id: number, label: number, rows: number[][], instanceLabels?: number[]): Bag {
  const b: Bag = { id, label, size: rows.length, instances: Float32Array.from(rows.flat()) };
  if (instanceLabels) b.instanceLabels = Int32Array.from(instanceLabels);
  return b;
}

forEachBackend('padBags', () => {
  const bags = [
    bag(1, 0, [[1, 2]]),
    bag(2, 1, [
      [3, 4],
      [5, 6],
      [7, 8],
    ]),
    bag(3, 1, [
      [9, 10],
      [11, 12],
    ]),
  ];

  it('pads with zero rows and a 0/1 mask', () => {
    const { x, mask, y } = padBags(bags);
    assert.deepEqual(x.shape, [3, 3, 2]);
    assert.deepEqual(Array.from(x.dataSync()), [1, 2, 0, 0, 0, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0]);
    assert.deepEqual(Array.from(mask.dataSync()), [1, 0, 0, 1, 1, 1, 1, 1, 0]);
    assert.deepEqual(y.shape, [3, 1]);
    assert.deepEqual(Array.from(y.dataSync()), [0, 1, 1]);
    tf.dispose([x, mask, y]);
  });

  it('maxSize: larger pads further; smaller throws unless truncate', () => {
    const wide = padBags(bags, { maxSize: 5 });
    assert.deepEqual(wide.x.shape, [3, 5, 2]);
    assert.deepEqual(Array.from(wide.mask.dataSync()).slice(0, 5), [1, 0, 0, 0, 0]);
    assert.throws(
      () => padBags(bags, { maxSize: 2 }),
      /padBags: bags\[1\] has 3 instances, more than maxSize = 2; raise maxSize or pass truncate: true/,
    );
    const cut = padBags(bags, { maxSize: 2, truncate: true });
    assert.deepEqual(Array.from(cut.x.dataSync()), [1, 2, 0, 0, 3, 4, 5, 6, 9, 10, 11, 12]);
    tf.dispose([wide, cut] as unknown as tf.TensorContainer);
  });

  it('checks its input', () => {
    assert.throws(() => padBags([]), /padBags: bags is empty/);
    assert.throws(() => padBags([bags[0], bag(4, 0, [[1, 2, 3]])]), /padBags: bags\[1\] has 3 features per instance, bags\[0\] has 2/);
    assert.throws(
      () => padBags([{ id: 1, label: 0, size: 2, instances: new Float32Array(3) }]),
      /bags\[0\] has 3 values, not a multiple of its size 2/,
    );
  });

  it('no tensor leaks beyond the three returned', () => {
    assertNoLeak(() => padBags(bags));
  });
});

describe('stratifiedKFold', () => {
  const check = (labels: number[], k: number, seed: number) => {
    const folds = stratifiedKFold(labels, k, seed);
    assert.equal(folds.length, k);
    const seen = new Array(labels.length).fill(0);
    for (const f of folds) {
      for (const i of f.test) seen[i]++;
      // train is exactly the complement of test
      const test = new Set(f.test);
      assert.deepEqual(
        f.train,
        labels.map((_, i) => i).filter((i) => !test.has(i)),
      );
      assert.deepEqual(
        f.test,
        [...f.test].sort((a, b) => a - b),
      );
    }
    assert.ok(
      seen.every((c) => c === 1),
      'test sets are disjoint and cover every index',
    );
    const sizes = folds.map((f) => f.test.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fold sizes ${sizes}`);
    for (const c of new Set(labels)) {
      const counts = folds.map((f) => f.test.filter((i) => labels[i] === c).length);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `class ${c} counts ${counts}`);
    }
    return folds;
  };

  it('stratified within one, disjoint, covering (two classes, musk1-like 47/45)', () => {
    const labels = [...new Array(47).fill(1), ...new Array(45).fill(0)];
    check(labels, 10, 0);
    check(labels, 5, 3);
    check(labels, 92, 1); // leave-one-out
  });

  it('three classes in random order, and a class smaller than k', () => {
    const labels = Array.from({ length: 101 }, (_, i) => (i * 7919) % 3);
    check(labels, 7, 2);
    check([0, 0, 0, 0, 0, 0, 1, 1], 4, 0);
  });

  it('deterministic by seed; another seed gives other folds', () => {
    const labels = Array.from({ length: 60 }, (_, i) => i % 2);
    assert.deepEqual(stratifiedKFold(labels, 5, 11), stratifiedKFold(labels, 5, 11));
    assert.notDeepEqual(stratifiedKFold(labels, 5, 11), stratifiedKFold(labels, 5, 12));
  });

  it('clear errors', () => {
    assert.throws(() => stratifiedKFold([0, 1, 0], 1), /stratifiedKFold: k must be an integer >= 2, got 1/);
    assert.throws(() => stratifiedKFold([0, 1, 0], 4), /k = 4 folds need at least 4 items, got 3/);
    assert.throws(() => stratifiedKFold([0, 0.5, 1], 2), /labels\[1\] must be an integer class label, got 0.5/);
  });
});

describe('standardize', () => {
  const train = [
    bag(
      1,
      1,
      [
        [1, 10, 5],
        [3, 10, 5],
      ],
      [0, 1],
    ),
    bag(2, 0, [[5, 40, 5]]),
  ];
  const test = [bag(3, 1, [[1000, -1000, 7]])];

  it('uses the training instances only, centers constant features, leaves inputs untouched', () => {
    const before = Array.from(train[0].instances);
    const s = standardize(train, test);
    // feature 0: values 1, 3, 5 -> mean 3, population std sqrt(8/3); feature 1: 10, 10, 40 -> mean 20, std sqrt(200)
    assert.deepEqual(Array.from(s.mean), [3, 20, 5]);
    assert.deepEqual(Array.from(s.std), [Math.sqrt(8 / 3), Math.sqrt(200), 0].map(Math.fround));
    const z = (v: number, j: number) => (j === 2 ? v - 5 : (v - [3, 20][j]) / [Math.sqrt(8 / 3), Math.sqrt(200)][j]);
    const expectTrain = [
      [1, 10, 5],
      [3, 10, 5],
      [5, 40, 5],
    ].map((r) => r.map(z));
    const got = [...s.train[0].instances, ...s.train[1].instances];
    expectTrain.flat().forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-6, `train value ${i}`));
    [1000, -1000, 7].map(z).forEach((v, i) => assert.ok(Math.abs(s.other[0].instances[i] - v) < 1e-3, `test value ${i}`));
    assert.deepEqual(Array.from(train[0].instances), before, 'input bags are not modified');
    assert.deepEqual(
      s.train.map((b) => [b.id, b.label, b.size]),
      [
        [1, 1, 2],
        [2, 0, 1],
      ],
    );
    assert.deepEqual(Array.from(s.train[0].instanceLabels!), [0, 1]);
  });

  it('test statistics do not change the training transform', () => {
    const a = standardize(train, test);
    const b = standardize(train, [bag(9, 0, [[-5e6, 3e6, 1e9]])]);
    assert.deepEqual(Array.from(a.mean), Array.from(b.mean));
    assert.deepEqual(Array.from(a.train[0].instances), Array.from(b.train[0].instances));
  });

  it('ddof 1 and errors', () => {
    assert.deepEqual(Array.from(standardize(train, [], { ddof: 1 }).std), [2, Math.sqrt(300), 0].map(Math.fround));
    assert.throws(() => standardize([]), /standardize: trainBags must be a non-empty array of bags/);
    assert.throws(() => standardize(train, [bag(4, 0, [[1, 2]])]), /standardize: otherBags have 2 features per instance, trainBags have 3/);
  });
});
