import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/node/backend.js';
import { missingData } from '../helpers.js';
import { seededRandom } from '../../src/data/random.js';
import type { Bag, MilDataset } from '../../src/data/mil.js';
import { stratifiedKFold } from '../../src/data/mil.js';
import {
  MIL_CONFIGS,
  MIL_METHOD_NAMES,
  buildMethodModel,
  innerSplit,
  methodConfig,
  milConfigFor,
  runMilBenchmark,
  runMilFold,
  summarizeMil,
  tuneMil,
  type MilConfig,
  type MilFoldResult,
} from '../../src/experiments/mil.js';
import { barChartSpec, milChartSvg } from '../../src/experiments/milReport.js';
import { command, resolveMilDatasetPath } from '../../src/experiments/milCommand.js';
import { UsageError } from '../../src/experiments/command.js';

before(async () => {
  await initBackend('wasm');
});

const F = 4;

/** Positive iff the bag holds an instance shifted by +2.5 in every feature. */
function synthetic(n: number, seed: number, name = 'toy'): MilDataset {
  const rng = seededRandom(seed);
  const bags: Bag[] = Array.from({ length: n }, (_, i) => {
    const size = 2 + rng.int(5);
    const label = i % 2;
    const instances = new Float32Array(size * F);
    for (let k = 0; k < instances.length; k++) instances[k] = rng.normal() * 3 + 10; // off-centre: standardization matters
    if (label) {
      const j = rng.int(size);
      for (let f = 0; f < F; f++) instances[j * F + f] += 7.5;
    }
    return { id: i + 1, label, size, instances };
  });
  return { name, bags, numFeatures: F };
}

/** Writes a data set in the MIL CSV format (one row per instance) and returns the path. */
function writeBagsCsv(ds: MilDataset, path: string): string {
  const lines = ['bag_id,bag_label,' + Array.from({ length: ds.numFeatures }, (_, j) => `f${j}`).join(',')];
  for (const b of ds.bags) {
    for (let i = 0; i < b.size; i++) {
      lines.push(
        [b.id, b.label, ...Array.from(b.instances.subarray(i * ds.numFeatures, (i + 1) * ds.numFeatures), (v) => v.toFixed(4))].join(','),
      );
    }
  }
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

const FAST: MilConfig = {
  ...MIL_CONFIGS.default,
  hidden: [8],
  epochs: 20,
  patience: 20,
  batchSize: 4,
  learningRate: 1e-2,
  dropout: 0,
  hopfield: { numHeads: 2, hiddenSize: 4, fitSteps: 2 },
};

describe('innerSplit', () => {
  it('is stratified, disjoint and covers the training bags', () => {
    const ds = synthetic(50, 1);
    const { train, val } = innerSplit(ds.bags, 0.2, 3);
    assert.equal(train.length + val.length, 50);
    assert.equal(val.length, 10);
    const ids = new Set(train.map((b) => b.id));
    assert.ok(val.every((b) => !ids.has(b.id)));
    assert.equal(val.filter((b) => b.label === 1).length, 5);
    assert.throws(() => innerSplit(ds.bags, 1, 0), /innerSplit: valFraction must be in \(0, 1\), got 1/);
  });
});

describe('runMilBenchmark', () => {
  it('runs every fold of every repeat, scores well on an easy task, and summarizes', async () => {
    const dataset = synthetic(60, 2);
    const res = await runMilBenchmark({ dataset, methods: ['max', 'uhop'], folds: 3, repeats: 2, seed: 5, config: FAST });
    assert.equal(res.results.length, 2 * 3 * 2);
    assert.equal(res.summary.length, 2);
    for (const row of res.summary) {
      assert.equal(row.folds, 6);
      assert.equal(row.repeats, 2);
      assert.ok(Number.isFinite(row.auc) && Number.isFinite(row.accuracyStd), row.method);
    }
    // Max pooling learns this task reliably (the models' tests cover U-Hop's learning).
    assert.ok(res.summary[0].accuracy > 0.85, `max accuracy ${res.summary[0].accuracy}`);
    assert.ok(res.summary[0].auc > 0.9, `max auc ${res.summary[0].auc}`);
    for (const r of res.results) {
      assert.equal(r.testBags, 20);
      assert.equal(r.trainBags + r.valBags, 40);
      assert.ok(r.bestEpoch < r.epochsRun);
    }
  });

  it('rejects unknown methods and bad protocol values', async () => {
    const dataset = synthetic(20, 3);
    await assert.rejects(runMilBenchmark({ dataset, methods: ['nope' as never] }), /unknown method 'nope'/);
    await assert.rejects(runMilBenchmark({ dataset, folds: 1 }), /folds must be an integer >= 2, got 1/);
    await assert.rejects(runMilBenchmark({ dataset, folds: 3, onlyFolds: [3] }), /onlyFolds entries must be integers in \[0, 2\]/);
  });
});

describe('test folds stay out of training and model selection', () => {
  it('runMilFold: the test bags do not change training, selection or the inner scores', async () => {
    const ds = synthetic(40, 6);
    const other = synthetic(10, 7);
    const config: MilConfig = { ...FAST, epochs: 5, dropout: 0, bagDropout: 0.2 }; // deterministic for a seed
    const train = ds.bags.slice(0, 30);
    const a = await runMilFold('attention', { train, test: ds.bags.slice(30) }, F, config, 3);
    const b = await runMilFold('attention', { train, test: other.bags }, F, config, 3);
    assert.equal(a.bestEpoch, b.bestEpoch);
    assert.equal(a.valLoss, b.valLoss);
    assert.equal(a.valAuc, b.valAuc);
  });

  it('refit retrains on all training folds for the selected number of epochs', async () => {
    const ds = synthetic(40, 10);
    const config: MilConfig = { ...FAST, epochs: 4, refit: true };
    const r = await runMilFold('max', { train: ds.bags.slice(0, 30), test: ds.bags.slice(30) }, F, config, 1);
    assert.equal(r.trainBags, 30);
    assert.equal(r.valBags, 6);
    assert.ok(r.bestEpoch < 4 && Number.isFinite(r.auc));
  });

  it('tuneMil: poisoned (NaN) test-fold bags never reach a model', async () => {
    const ds = synthetic(30, 8);
    const folds = stratifiedKFold(
      ds.bags.map((b) => b.label),
      3,
      1000,
    );
    const poisoned: MilDataset = {
      ...ds,
      bags: ds.bags.map((b, i) => (folds[0].test.includes(i) ? { ...b, instances: new Float32Array(b.instances.length).fill(NaN) } : b)),
    };
    const family = {
      name: 'f',
      representatives: ['mean' as const],
      members: ['mean' as const, 'max' as const],
      candidates: [
        { name: 'a', overrides: { learningRate: 1e-2 } },
        { name: 'b', overrides: { learningRate: 1e-3 } },
      ],
    };
    const res = await tuneMil({
      dataset: poisoned,
      base: { ...FAST, epochs: 3 },
      families: [family],
      folds: 3,
      onlyFolds: [0],
      seed: 1000,
    });
    assert.equal(res.rows.length, 2);
    for (const r of res.rows) assert.ok(Number.isFinite(r.valLoss), `${r.candidate}: val loss ${r.valLoss}`);
    const winner = res.rankings.f[0];
    assert.ok(winner.valLoss <= res.rankings.f[1].valLoss);
    assert.deepEqual(res.best.methods?.max, winner.overrides);
    assert.equal(methodConfig(res.best, 'mean').learningRate, winner.overrides.learningRate);
  });
});

describe('tuneMil stages', () => {
  it('an extending family starts from the earlier winner; untuned methods keep their patches', async () => {
    const ds = synthetic(24, 9);
    const first = {
      name: 'a',
      representatives: ['mean' as const],
      members: ['mean' as const],
      candidates: [
        { name: 'lr1', overrides: { learningRate: 1e-2 } },
        { name: 'lr2', overrides: { learningRate: 2e-3 } },
      ],
    };
    const second = {
      name: 'b',
      extends: 'a',
      representatives: ['mean' as const],
      members: ['mean' as const],
      candidates: [{ name: 'd0', overrides: { dropout: 0 } }],
    };
    const base: MilConfig = { ...FAST, epochs: 2, methods: { max: { learningRate: 0.5 } } };
    const res = await tuneMil({ dataset: ds, base, families: [first, second], folds: 3, onlyFolds: [1] });
    const lr = res.rankings.a[0].overrides.learningRate;
    assert.deepEqual(res.best.methods?.mean, { learningRate: lr, dropout: 0 });
    assert.deepEqual(res.best.methods?.max, { learningRate: 0.5 });
  });
});

describe('summarizeMil', () => {
  it('means over all folds, std over the per-repeat means', () => {
    const row = (repeat: number, accuracy: number, auc: number): MilFoldResult => ({
      method: 'mean',
      repeat,
      fold: 0,
      accuracy,
      auc,
      bestEpoch: 0,
      epochsRun: 1,
      valLoss: 0,
      valAuc: 1,
      trainBags: 1,
      valBags: 1,
      testBags: 1,
      seconds: 1,
    });
    const [s] = summarizeMil('x', [row(0, 1, 1), row(0, 0.5, 0.8), row(1, 0.5, 0.6), row(1, 0.5, 0.6)]);
    assert.equal(s.accuracy, 0.625);
    assert.equal(s.auc, 0.75);
    // per-repeat accuracy means 0.75 and 0.5 -> sample std 0.1768
    assert.ok(Math.abs(s.accuracyStd - Math.SQRT2 * 0.125) < 1e-12);
    assert.ok(Math.abs(s.aucStd - Math.SQRT2 * 0.15) < 1e-12);
  });
});

describe('milConfigFor', () => {
  it('picks the data set config and applies overrides (hopfield merged)', () => {
    const c = milConfigFor('MUSK2', { epochs: 3, hopfield: { numHeads: 7 } });
    assert.equal(c.epochs, 3);
    assert.equal(c.hopfield.numHeads, 7);
    assert.equal(c.hopfield.hiddenSize, MIL_CONFIGS.musk2.hopfield.hiddenSize);
    assert.deepEqual(milConfigFor('some_file').hidden, MIL_CONFIGS.default.hidden);
    // Per-method patches apply, and an explicit override wins over them.
    const c0 = milConfigFor('musk1');
    assert.equal(methodConfig(c0, 'uhop').learningRate, MIL_CONFIGS.musk1.methods?.uhop?.learningRate ?? MIL_CONFIGS.musk1.learningRate);
    const c1 = milConfigFor('musk1', { learningRate: 0.0123 });
    for (const m of MIL_METHOD_NAMES) assert.equal(methodConfig(c1, m).learningRate, 0.0123, m);
  });
});

describe('uhop mil command', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'uhop-mil-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs on any MIL CSV given by path and writes JSON and SVG', async () => {
    const csv = writeBagsCsv(synthetic(24, 4), join(dir, 'toybags.csv'));
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
    const parsed = command.parse([
      '--dataset',
      csv,
      '--folds',
      '2',
      '--repeats',
      '1',
      '--methods',
      'mean,max',
      '--epochs',
      '3',
      '--hidden',
      '4',
      '--out',
      dir,
      '--quiet',
    ]);
    const code = await command.run(parsed, io);
    assert.equal(code, 0, err.join(''));
    const text = out.join('');
    assert.match(text, /toybags: 24 bags, 4 features; 2-fold CV x 1 repeat/);
    assert.match(text, /^mean\s+\d+\.\d ± \d+\.\d\s+\d+\.\d ± \d+\.\d/m);
    const json = JSON.parse(readFileSync(join(dir, 'toybags.json'), 'utf8'));
    assert.equal(json.results.length, 4);
    assert.equal(json.config.epochs, 3);
    assert.ok(readFileSync(join(dir, 'toybags.svg'), 'utf8').startsWith('<svg'));
    const foldLines = readFileSync(join(dir, 'toybags.folds.jsonl'), 'utf8').trim().split('\n');
    assert.equal(foldLines.length, 4);
    assert.deepEqual(JSON.parse(foldLines[0]), json.results[0]);
  });

  it('--tune-candidates runs only the named candidates and rejects unknown names', async () => {
    const csv = writeBagsCsv(synthetic(16, 6), join(dir, 'tunebags.csv'));
    const out: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: () => undefined } };
    const base = [
      '--dataset',
      csv,
      '--tune',
      '--tune-families',
      'uhop',
      '--folds',
      '2',
      '--only-folds',
      '0',
      '--epochs',
      '2',
      '--hidden',
      '4',
      '--heads',
      '1',
      '--hidden-size',
      '4',
      '--out',
      dir,
      '--quiet',
    ];
    const parsed = command.parse([...base, '--tune-candidates', 'fitLr=10; fitSteps=1']);
    assert.deepEqual(parsed.tuneCandidates, ['fitLr=10', 'fitSteps=1']);
    assert.equal(await command.run(parsed, io), 0);
    const json = JSON.parse(readFileSync(join(dir, 'tunebags-tune.json'), 'utf8'));
    assert.deepEqual(json.rows.map((r: { candidate: string }) => r.candidate).sort(), ['fitLr=10', 'fitSteps=1']);
    assert.throws(
      () => command.parse([...base, '--tune-candidates', 'fitLr=3']),
      /--tune-candidates: unknown candidate 'fitLr=3'; the searched families have .*'fitLr=10'/,
    );
    assert.throws(
      () => command.parse([...base.filter((a) => a !== 'uhop' && a !== '--tune-families'), '--tune-candidates', 'fitLr=10']),
      /--tune-candidates keeps no candidate of hopfield, attention, hopfield-arch/,
    );
  });

  it('parses flags into config overrides and rejects bad ones', () => {
    const p = command.parse([
      '--dataset',
      'elephant',
      '--heads',
      '8',
      '--fit-steps',
      '0',
      '--no-standardize',
      '--methods',
      'uhop,attention',
    ]);
    assert.equal(p.overrides.hopfield?.numHeads, 8);
    assert.equal(p.overrides.hopfield?.fitSteps, 0);
    assert.equal(p.overrides.standardize, false);
    assert.deepEqual(p.methods, ['uhop', 'attention']);
    assert.throws(() => command.parse(['--methods', 'uhop,foo']), /--methods: unknown method 'foo'/);
    assert.throws(() => command.parse(['--dropout', '1']), /--dropout must be in \[0, 1\)/);
    assert.throws(() => command.parse(['--folds', '5', '--only-folds', '5']), UsageError);
    assert.throws(() => resolveMilDatasetPath('tiger', dir), /--dataset must be one of musk1, musk2, elephant or the path/);
    assert.throws(() => resolveMilDatasetPath('musk1', dir), /musk1.csv not found/);
    assert.throws(() => resolveMilDatasetPath(join(dir, 'missing.csv')), /file not found/);
  });

  it(
    'finds the shared benchmark files when they are present',
    { skip: missingData('../shared/data/mil/musk1.csv', 'MIL data beside the repository') },
    () => {
      assert.equal(resolveMilDatasetPath('musk1', '../shared/data/mil'), join('../shared/data/mil', 'musk1.csv'));
    },
  );
});

describe('MIL bar chart', () => {
  it('builds a faceted bar chart with error bars and renders SVG', async () => {
    const spec = barChartSpec({ data: [{ m: 'a', v: 0.5, s: 0.1, k: 'x' }], x: 'm', y: 'v', error: 's', column: 'k', title: 't' });
    assert.ok('facet' in spec);
    assert.throws(() => barChartSpec({ data: [{ m: 'a' }], x: 'm', y: 'v', title: 't' }), /barChartSvg: y must name a field/);
    const svg = await milChartSvg({
      dataset: 'toy',
      numBags: 2,
      numFeatures: 1,
      config: MIL_CONFIGS.default,
      folds: 2,
      repeats: 1,
      seed: 0,
      results: [],
      seconds: 0,
      summary: [
        {
          dataset: 'toy',
          method: 'mean',
          accuracy: 0.8,
          accuracyStd: 0.01,
          auc: 0.9,
          aucStd: 0.02,
          accuracyFoldStd: 0,
          aucFoldStd: 0,
          folds: 2,
          repeats: 1,
          valAuc: 1,
          seconds: 1,
        },
      ],
    });
    assert.match(svg, /^<svg/);
  });
});

describe('buildMethodModel', () => {
  it('builds every method into a model with a [B, 1] probability output', () => {
    const x = tf.randomNormal([2, 3, F], 0, 1, 'float32', 301);
    const mask = tf.tensor2d([
      [1, 1, 0],
      [1, 1, 1],
    ]);
    for (const method of MIL_METHOD_NAMES) {
      const model = buildMethodModel(method, F, FAST, 1);
      const p = model.predict([x, mask]) as tf.Tensor;
      assert.deepEqual(p.shape, [2, 1], method);
      assert.ok(
        p.dataSync().every((v) => v > 0 && v < 1),
        method,
      );
      p.dispose();
      model.dispose();
    }
    tf.dispose([x, mask]);
  });
});
