import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/node/backend.js';
import { toyBags } from './toyBags.js';
import { MIL_CONFIGS, runMilBenchmark, type MilBenchmarkResult, type MilConfig, type MilFoldResult } from '../../src/experiments/mil.js';
import { mergeMilRuns, readMilRunPart, type MilRunPart } from '../../src/experiments/milMerge.js';
import { command } from '../../src/experiments/milCommand.js';

before(async () => {
  await initBackend('wasm');
});

const F = 3;

const FAST: MilConfig = { ...MIL_CONFIGS.default, hidden: [4], epochs: 4, patience: 4, batchSize: 4, learningRate: 1e-2, dropout: 0 };

function row(method: MilFoldResult['method'], repeat: number, fold: number, accuracy: number): MilFoldResult {
  return {
    method,
    repeat,
    fold,
    accuracy,
    auc: accuracy,
    bestEpoch: 0,
    epochsRun: 1,
    valLoss: 0,
    valAuc: 0.5,
    trainBags: 8,
    valBags: 2,
    testBags: 2,
    seconds: 1,
  };
}

function part(source: string, seed: number, results: MilFoldResult[], extra: Partial<MilRunPart> = {}): MilRunPart {
  return { source, seed, results, dataset: 'toy', folds: 2, ...extra };
}

describe('mergeMilRuns', () => {
  it('runs split by seed and by method merge into exactly the single run over all seeds', async () => {
    const dataset = toyBags(16, 1, { features: F, maxSize: 5, shift: 4 });
    const opts = { dataset, folds: 2, config: FAST };
    const whole = await runMilBenchmark({ ...opts, methods: ['mean', 'max'], repeats: 2, seed: 3 });
    const pieces: MilBenchmarkResult[] = [
      await runMilBenchmark({ ...opts, methods: ['mean', 'max'], repeats: 1, seed: 3 }),
      await runMilBenchmark({ ...opts, methods: ['mean'], repeats: 1, seed: 4 }),
      await runMilBenchmark({ ...opts, methods: ['max'], repeats: 1, seed: 4 }),
    ];
    const { result, dropped } = mergeMilRuns(pieces.map((p, i) => ({ ...p, source: `part${i}.json` })));
    assert.deepEqual(dropped, []);
    assert.equal(result.repeats, 2);
    assert.equal(result.seed, 3);
    assert.equal(result.results.length, whole.results.length);
    for (const [i, s] of whole.summary.entries()) {
      const m = result.summary[i];
      assert.equal(m.method, s.method);
      assert.equal(m.folds, 4);
      for (const key of ['accuracy', 'accuracyStd', 'auc', 'aucStd'] as const) {
        assert.ok(Math.abs(m[key] - s[key]) < 1e-9, `${s.method} ${key}: merged ${m[key]} vs one run ${s[key]}`);
      }
    }
  });

  it('leaves out incomplete (method, seed) groups and lets a later rerun supersede', () => {
    const a = part('a.folds.jsonl', 0, [row('mean', 0, 0, 1), row('mean', 0, 1, 1), row('mean', 1, 0, 0)]);
    const b = part('b.json', 0, [row('mean', 0, 0, 0.5), row('mean', 0, 1, 0.5)]);
    const { result, dropped } = mergeMilRuns([a, b]);
    assert.deepEqual(dropped.sort(), ['mean seed 0 in a.folds.jsonl: superseded by b.json', 'mean seed 1 in a.folds.jsonl: 1 of 2 folds']);
    assert.equal(result.summary[0].accuracy, 0.5);
    assert.equal(result.repeats, 1);
  });

  it('joins runs of disjoint outer folds of one seed (--only-folds), but not overlapping or short ones', () => {
    const folds = { folds: 4 };
    const a = part('a.json', 0, [row('mean', 0, 0, 1), row('mean', 0, 1, 1)], folds);
    const b = part('b.json', 0, [row('mean', 0, 2, 0), row('mean', 0, 3, 0)], folds);
    const joined = mergeMilRuns([a, b]);
    assert.deepEqual(joined.dropped, []);
    assert.equal(joined.result.summary[0].folds, 4);
    assert.equal(joined.result.summary[0].accuracy, 0.5);
    assert.deepEqual(
      joined.result.results.map((r) => r.fold),
      [0, 1, 2, 3],
    );
    // Overlapping folds (fold 1 twice) and a union that misses a fold are left out, as before.
    const c = part('c.json', 0, [row('mean', 0, 1, 0), row('mean', 0, 2, 0), row('mean', 0, 3, 0)], folds);
    assert.throws(() => mergeMilRuns([a, c]), /no \(method, seed\) group has all 4 folds/);
    assert.throws(() => mergeMilRuns([a, part('d.json', 0, [row('mean', 0, 2, 0)], folds)]), /no \(method, seed\) group has all 4 folds/);
  });

  it('numbers repeats by absolute seed, so seed s repeat r meets seed s+r', () => {
    const a = part('a.json', 0, [row('max', 1, 0, 1), row('max', 1, 1, 1)]);
    const b = part('b.json', 1, [row('max', 0, 0, 0), row('max', 0, 1, 0)]);
    const { result, dropped } = mergeMilRuns([a, b]);
    assert.equal(result.repeats, 1);
    assert.equal(dropped.length, 1);
    assert.equal(result.summary[0].accuracy, 0);
  });

  it('rejects parts of different data sets, fold counts or configurations', () => {
    const ok = part('a.json', 0, [row('mean', 0, 0, 1), row('mean', 0, 1, 1)]);
    assert.throws(() => mergeMilRuns([]), /mergeMilRuns: parts must not be empty/);
    assert.throws(
      () => mergeMilRuns([ok, { ...ok, source: 'b.json', dataset: 'other' }]),
      /disagree on 'dataset': a.json=toy, b.json=other/,
    );
    assert.throws(() => mergeMilRuns([ok, { ...ok, source: 'b.json', folds: 5 }]), /disagree on 'folds'/);
    assert.throws(
      () =>
        mergeMilRuns([
          { ...ok, config: FAST },
          { ...ok, source: 'b.json', config: { ...FAST, epochs: 9 } },
        ]),
      /different configurations \(a.json, b.json\)/,
    );
    // Per-method settings: must agree for a method both parts ran, may differ otherwise.
    const withPatch = (lr: number): MilConfig => ({ ...FAST, methods: { mean: { learningRate: lr }, max: { learningRate: 0.5 } } });
    const maxPart = part('m.json', 0, [row('max', 0, 0, 1), row('max', 0, 1, 1)], {
      config: { ...FAST, methods: { mean: { learningRate: 0.1 }, max: { learningRate: 0.5 } } },
    });
    const seed1 = part('s1.json', 1, [row('mean', 0, 0, 1), row('mean', 0, 1, 1)]);
    assert.throws(
      () =>
        mergeMilRuns([
          { ...ok, config: withPatch(0.2) },
          { ...seed1, config: withPatch(0.3) },
        ]),
      /mean was run with different settings in a.json, s1.json/,
    );
    // A rerun with new settings supersedes the old run of that method.
    const rerun = mergeMilRuns([
      { ...ok, config: withPatch(0.2) },
      { ...ok, source: 'b.json', config: withPatch(0.3) },
    ]);
    assert.deepEqual(rerun.result.config.methods, { mean: { learningRate: 0.3 } });
    const merged = mergeMilRuns([{ ...ok, config: withPatch(0.2) }, maxPart]).result.config;
    assert.deepEqual(merged.methods, { mean: { learningRate: 0.2 }, max: { learningRate: 0.5 } });
    assert.throws(() => mergeMilRuns([part('a.json', 0, [row('mean', 0, 0, 1)])]), /no \(method, seed\) group has all 2 folds/);
  });
});

describe('uhop mil --merge', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'uhop-milmerge-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads JSON and folds files, prints the table, writes the merged JSON and SVG', async () => {
    const header = { dataset: 'toy', numBags: 4, numFeatures: 3, config: FAST, folds: 2, repeats: 1, summary: [], seconds: 2 };
    writeFileSync(
      join(dir, 'toy-s0.json'),
      JSON.stringify({ ...header, seed: 0, results: [row('mean', 0, 0, 1), row('mean', 0, 1, 0.5)] }),
    );
    // An unfinished run: a folds file with its finished run's header beside it.
    writeFileSync(join(dir, 'toy-s1.json'), JSON.stringify({ ...header, seed: 1, results: [] }));
    writeFileSync(
      join(dir, 'toy-s1.folds.jsonl'),
      [row('mean', 0, 0, 0), row('mean', 0, 1, 0)].map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
    assert.equal(readMilRunPart(join(dir, 'toy-s1.folds.jsonl')).seed, 1);

    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
    const files = [join(dir, 'toy-s0.json'), join(dir, 'toy-s1.folds.jsonl')].join(',');
    const code = await command.run(command.parse(['--merge', files, '--name', 'toy-all', '--out', dir]), io);
    assert.equal(code, 0, err.join(''));
    assert.match(out.join(''), /toy: 4 bags, 3 features; 2-fold CV x 2 repeat\(s\), seed 0/);
    assert.match(out.join(''), /^mean\s+37\.5 ± 53\.0/m);
    const json = JSON.parse(readFileSync(join(dir, 'toy-all.json'), 'utf8'));
    assert.equal(json.results.length, 4);
    assert.deepEqual(json.mergedFrom, files.split(','));
    assert.ok(readFileSync(join(dir, 'toy-all.svg'), 'utf8').startsWith('<svg'));

    await assert.rejects(command.run(command.parse(['--merge', files]), io), /--merge needs --name/);
    await assert.rejects(
      command.run(command.parse(['--merge', join(dir, 'nope.json'), '--name', 'x']), io),
      /--merge: readMilRunPart: .*nope.json: file not found/,
    );
    writeFileSync(join(dir, 'bad.json'), '{"a": 1}');
    await assert.rejects(command.run(command.parse(['--merge', join(dir, 'bad.json'), '--name', 'x']), io), /is not a 'uhop mil' result/);
  });
});
