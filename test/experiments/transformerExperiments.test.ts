import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { recallTask, runRecallExperiment } from '../../src/experiments/recall.js';
import { runFinetuneExperiment } from '../../src/experiments/finetune.js';
import { runVisionExperiment } from '../../src/experiments/vision.js';
import { parseVariant, withSeed } from '../../src/experiments/transformerTraining.js';
import { command as visionCommand } from '../../src/experiments/visionCommand.js';
import { command as recallCommand } from '../../src/experiments/recallCommand.js';
import { command as finetuneCommand } from '../../src/experiments/finetuneCommand.js';
import { UsageError } from '../../src/experiments/command.js';
import { forEachBackend } from '../helpers.js';

it('parseVariant reads a separation with an optional uhop- prefix and names the choices on a typo', () => {
  assert.deepEqual(parseVariant('uhop'), { name: 'uhop', separation: 'softmax', uhop: true, noFit: false });
  assert.deepEqual(parseVariant('uhop-nofit'), { name: 'uhop-nofit', separation: 'softmax', uhop: true, noFit: true });
  assert.deepEqual(parseVariant('uhop-nofit-sparsemax'), {
    name: 'uhop-nofit-sparsemax',
    separation: 'sparsemax',
    uhop: true,
    noFit: true,
  });
  assert.deepEqual(parseVariant('uhop-sparsemax'), { name: 'uhop-sparsemax', separation: 'sparsemax', uhop: true, noFit: false });
  assert.deepEqual(parseVariant('entmax15'), { name: 'entmax15', separation: 'entmax15', uhop: false, noFit: false });
  assert.throws(() => parseVariant('uhop-sparse'), /variant 'uhop-sparse'.*softmax, sparsemax/);
});

forEachBackend('transformer experiment helpers', () => {
  it('withSeed makes Math.random (hence tfjs initializers) reproducible and restores it', async () => {
    const original = Math.random;
    const draw = () => withSeed(5, async () => tf.tidy(() => Array.from(tf.randomNormal([4]).dataSync()))); // unseeded on purpose
    const a = await draw();
    const b = await draw();
    assert.deepEqual(a, b);
    assert.equal(Math.random, original);
    await assert.rejects(
      withSeed(1, () => withSeed(2, async () => 0)),
      /seeded runs cannot overlap/,
    );
  });

  it('recallTask: distinct stored keys, the query is one of them, the label is its value', () => {
    const { keys, values, labels } = recallTask({ pairs: 5, numKeys: 9, numValues: 4, size: 200, seed: 3 });
    const K = keys.arraySync();
    const V = values.arraySync();
    for (let s = 0; s < 200; s++) {
      const stored = K[s].slice(0, 5);
      assert.equal(new Set(stored).size, 5, 'distinct keys');
      const q = stored.indexOf(K[s][5]);
      assert.ok(q >= 0, 'query is a stored key');
      assert.equal(labels[s], V[s][q]);
      assert.equal(V[s][5], 4, 'the query holds the empty value');
      assert.ok(V[s].slice(0, 5).every((v) => v >= 0 && v < 4));
    }
    assert.throws(() => recallTask({ pairs: 10, numKeys: 9, numValues: 4, size: 1, seed: 0 }), /numKeys \(9\) must be >= pairs \(10\)/);
    tf.dispose([keys, values]);
  });
});

it('the commands parse their flags and reject bad ones with a usage error', () => {
  const v = visionCommand.parse([
    '--dataset',
    'fashion-mnist',
    '--attention',
    'softmax,uhop-sparsemax',
    '--seeds',
    '2',
    '--alternate',
    '1',
  ]);
  assert.deepEqual(v.options.variants, ['softmax', 'uhop-sparsemax']);
  assert.equal(v.options.alternations, 1);
  assert.equal(v.name, 'fashion-mnist');
  assert.throws(
    () => visionCommand.parse(['--attention', 'uhop-bogus']),
    (e: Error) => e instanceof UsageError && /--attention/.test(e.message),
  );
  assert.deepEqual(recallCommand.parse(['--pairs', '4,16']).options.pairs, [4, 16]);
  assert.throws(() => recallCommand.parse(['--pairs', '128']), /--keys >= 128/);
  assert.throws(() => finetuneCommand.parse(['--attention', 'softmax']), /must name a U-Hop variant/);
  assert.equal(finetuneCommand.parse(['--task', 'vision']).options.task, 'vision');
});

forEachBackend('transformer experiments (tiny runs)', () => {
  it('finetune: the saved model reloads exactly, and a swap with fitSteps 0 is a true drop-in (same accuracy)', async () => {
    const res = await runFinetuneExperiment({
      task: 'recall',
      pairs: 3,
      numKeys: 8,
      numValues: 4,
      trainSize: 64,
      testSize: 64,
      pretrainEpochs: 1,
      finetuneEpochs: 1,
      seeds: 1,
      fitSteps: 0,
      dModel: 8,
    });
    const [run] = res.runs;
    assert.equal(run.roundTripMaxDiff, 0);
    assert.equal(run.swapped, run.pretrained, 'isometric Phi0 without a fit computes the original attention');
    assert.equal(run.continueCurve.length, 1);
    assert.equal(run.uhopCurve.length, 1);
  });

  it('recall and vision runs report one curve per (variant, setting, seed) and a summary per variant', async () => {
    const r = await runRecallExperiment({
      pairs: [2, 3],
      variants: ['softmax', 'uhop'],
      numKeys: 6,
      numValues: 3,
      trainSize: 32,
      testSize: 32,
      seeds: 1,
      epochs: 1,
      dModel: 8,
      fitSteps: 1,
    });
    assert.equal(r.runs.length, 4);
    assert.deepEqual(
      r.summary.map((s) => `${s.variant}/${s.pairs}`),
      ['softmax/2', 'softmax/3', 'uhop/2', 'uhop/3'],
    );
    assert.ok(r.runs.every((x) => x.testAcc >= 0 && x.testAcc <= 1 && Number.isFinite(x.curve[0].trainLoss)));
    const v = await runVisionExperiment({
      trainSize: 32,
      testSize: 16,
      variants: ['softmax', 'uhop'],
      seeds: 1,
      epochs: 1,
      dModel: 8,
      fitSteps: 1,
    });
    assert.deepEqual(
      v.summary.map((s) => s.variant),
      ['softmax', 'uhop'],
    );
    assert.ok(v.summary[1].parameters > v.summary[0].parameters, 'U-Hop adds Phi0');
  });
});
