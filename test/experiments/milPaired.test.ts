import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { milPairedDifference, milPairedReport } from '../../src/experiments/milPaired.js';
import type { MilFoldResult } from '../../src/experiments/mil.js';

function fold(method: string, repeat: number, f: number, accuracy: number, auc = accuracy): MilFoldResult {
  return {
    method: method as MilFoldResult['method'],
    repeat,
    fold: f,
    accuracy,
    auc,
    bestEpoch: 0,
    epochsRun: 1,
    valLoss: 0,
    valAuc: 0,
    trainBags: 1,
    valBags: 1,
    testBags: 1,
    seconds: 0,
  };
}

describe('milPairedDifference', () => {
  it('differences over the shared folds only: mean, standard error, wins/ties/losses', () => {
    const rows = [
      fold('a', 0, 0, 0.9),
      fold('b', 0, 0, 0.8), // +0.1
      fold('a', 0, 1, 0.5),
      fold('b', 0, 1, 0.5), // 0 (tie)
      fold('a', 1, 0, 0.6),
      fold('b', 1, 0, 0.9), // -0.3
      fold('a', 1, 1, 1.0), // b lacks this fold: not paired
    ];
    const d = milPairedDifference(rows, 'a', 'b', 'accuracy');
    assert.equal(d.n, 3);
    assert.ok(Math.abs(d.mean - -0.2 / 3) < 1e-12);
    // diffs 0.1, 0, -0.3: sample variance ((0.1+0.2/3)^2 + (0.2/3)^2 + (-0.3+0.2/3)^2) / 2 = 0.04333..., s.e. sqrt(var / 3)
    assert.ok(Math.abs(d.standardError - Math.sqrt(0.13 / 3 / 3)) < 1e-12, String(d.standardError));
    assert.deepEqual([d.wins, d.ties, d.losses], [1, 1, 1]);
  });

  it('reports both metrics per pair in points, and rejects a fold given twice', () => {
    const rows = [fold('a', 0, 0, 1, 0.75), fold('b', 0, 0, 1, 0.5), fold('a', 0, 1, 1, 1), fold('b', 0, 1, 1, 0.5)];
    assert.deepEqual(milPairedReport(rows, ['a', 'b'], 'toy'), [
      'toy: a - b (2 folds) accuracy: +0.0 ± 0.0 (s.e.), wins/ties/losses 0/2/0',
      'toy: a - b (2 folds) auc: +37.5 ± 12.5 (s.e.), wins/ties/losses 2/0/0',
    ]);
    assert.throws(
      () => milPairedDifference([...rows, fold('a', 0, 0, 1)], 'a', 'b', 'auc'),
      /milPairedDifference: method 'a' has fold 0\/0 \(repeat\/fold\) twice/,
    );
  });
});
