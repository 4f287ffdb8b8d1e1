import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mnistBags } from '../../src/data/index.js';
import { loadIdxImageFolderRaw, loadMnist, mnistDirectory } from '../../src/node/data.js';

describe('mnistBags', () => {
  const source = loadMnist({ split: 'test', limit: 1000 });

  it('label is 1 iff the target digit is in the bag; instances are the source images', () => {
    const ds = mnistBags({ numBags: 300, targetDigit: 9, seed: 1, source });
    assert.equal(ds.name, 'mnist-bags');
    assert.equal(ds.numFeatures, 784);
    assert.equal(ds.rows, 28);
    assert.equal(ds.cols, 28);
    assert.equal(ds.bags.length, 300);
    const byContent = new Map<string, number>();
    for (let k = 0; k < source.n; k++) byContent.set(source.images.subarray(k * 784, (k + 1) * 784).join(','), source.labels[k]);
    for (const b of ds.bags) {
      assert.equal(b.label, b.instanceLabels!.includes(9) ? 1 : 0, `bag ${b.id}`);
      assert.equal(b.instances.length, b.size * 784);
      assert.equal(b.instanceLabels!.length, b.size);
    }
    for (const b of ds.bags.slice(0, 20)) {
      for (let i = 0; i < b.size; i++) {
        const label = byContent.get(b.instances.subarray(i * 784, (i + 1) * 784).join(','));
        assert.equal(label, b.instanceLabels![i], `bag ${b.id} instance ${i} is a source image with its label`);
      }
    }
    assert.deepEqual(
      ds.bags.map((b) => b.id),
      Array.from({ length: 300 }, (_, i) => i),
    );
  });

  it('bag sizes: mean and std of round(N(10, 2^2)), at least 1; positive rate matches the digit frequency', () => {
    const ds = mnistBags({ numBags: 1500, targetDigit: 3, meanBagSize: 10, varBagSize: 2, seed: 2, source });
    const sizes = ds.bags.map((b) => b.size);
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    const std = Math.sqrt(sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / sizes.length);
    assert.ok(Math.abs(mean - 10) < 0.2, `mean bag size ${mean}`);
    assert.ok(Math.abs(std - Math.sqrt(4 + 1 / 12)) < 0.15, `bag size std ${std}`);
    assert.ok(sizes.every((s) => Number.isInteger(s) && s >= 1));
    const q = source.labels.filter((l) => l === 3).length / source.n;
    const expected = sizes.reduce((a, s) => a + 1 - (1 - q) ** s, 0) / sizes.length;
    const got = ds.bags.filter((b) => b.label === 1).length / ds.bags.length;
    assert.ok(Math.abs(got - expected) < 0.05, `positive rate ${got} vs ${expected}`);
  });

  it('small mean: sizes clipped at 1', () => {
    const sizes = mnistBags({ numBags: 200, meanBagSize: 1, varBagSize: 2, seed: 3, source }).bags.map((b) => b.size);
    assert.ok(sizes.every((s) => s >= 1));
    assert.ok(sizes.filter((s) => s === 1).length > 80, 'about 60% of N(1, 4) rounds to <= 1');
  });

  it('deterministic by seed; raw uint8 pixels and [0, 1] floats give the same bags', () => {
    const a = mnistBags({ numBags: 5, seed: 4, source });
    const b = mnistBags({ numBags: 5, seed: 4, source });
    const c = mnistBags({ numBags: 5, seed: 5, source });
    assert.deepEqual(
      a.bags.map((x) => Array.from(x.instanceLabels!)),
      b.bags.map((x) => Array.from(x.instanceLabels!)),
    );
    assert.notDeepEqual(
      a.bags.map((x) => Array.from(x.instanceLabels!)),
      c.bags.map((x) => Array.from(x.instanceLabels!)),
    );
    const raw = loadIdxImageFolderRaw(mnistDirectory(), { split: 'test', limit: 1000 });
    const own = mnistBags({ numBags: 5, seed: 4, source: raw, poolSize: 1000 });
    assert.deepEqual(
      own.bags.map((x) => Array.from(x.instanceLabels!)),
      a.bags.map((x) => Array.from(x.instanceLabels!)),
    );
    assert.deepEqual(Array.from(own.bags[0].instances), Array.from(a.bags[0].instances));
  });

  it('clear errors', () => {
    assert.throws(() => mnistBags({ numBags: 0, source }), /mnistBags: numBags must be a positive integer, got 0/);
    assert.throws(() => mnistBags({ numBags: 2, meanBagSize: 0, source }), /meanBagSize must be a finite number >= 1, got 0/);
    assert.throws(() => mnistBags({ numBags: 2, varBagSize: -1, source }), /varBagSize must be a finite number >= 0, got -1/);
    assert.throws(() => mnistBags({ numBags: 2, poolSize: 0, source }), /poolSize must be a positive integer, got 0/);
    assert.throws(
      () => mnistBags({ numBags: 2 } as Parameters<typeof mnistBags>[0]),
      /mnistBags: source must be an image set .*loadMnist.*'uhop\/node'.*got undefined/,
    );
  });
});
