import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { retrievalGoalCheck, goalCheckMarkdown, GOAL_BASELINES } from '../../src/experiments/retrievalGoal.js';
import type { RetrievalRow } from '../../src/experiments/retrieval.js';

const stats = (mean: number) => ({ mean, std: 0, perSeed: [mean] });

/** One row of a results file; only sweep, method, M, noise and the mean error matter here. */
function row(method: string, M: number, noise: number | null, error: number): RetrievalRow {
  return {
    sweep: noise === null ? 'capacity' : 'noise',
    method: method as RetrievalRow['method'],
    M,
    noise,
    beta: 1,
    error: stats(error),
    exact: stats(1),
    metastable: stats(1),
    seconds: 0,
  };
}

/** Every baseline at `base` except uhn-euclidean at `best`, in one cell. */
function baselines(M: number, noise: number | null, base: number, best: number): RetrievalRow[] {
  return GOAL_BASELINES.map((b) => row(b, M, noise, b === 'uhn-euclidean' ? best : base));
}

describe('retrievalGoalCheck', () => {
  it('counts a cell as won at or below the best baseline after rounding to 2 decimals, and finds the worst cell', () => {
    const rows = [
      ...baselines(10, null, 5, 1),
      row('uhop', 10, null, 1.004), // rounds to 1.00: a tie with the best baseline, won
      ...baselines(10, 0.5, 5, 0),
      row('uhop', 10, 0.5, 0.02), // above 0.00: lost
      ...baselines(20, 0.5, 5, 2),
      row('uhop', 20, 0.5, 1), // below: won
      ...baselines(30, 0.5, 5, 2),
      row('uhop+', 30, 0.5, 0.5), // another variant's cell
      row('dense', 40, 0.5, 9), // an incomplete cell (one baseline only): skipped
      row('uhop', 40, 0.5, 100),
    ];
    const check = retrievalGoalCheck(rows);
    assert.deepEqual(
      check.map((r) => r.method),
      ['uhop', 'uhop+'],
    );
    const uhop = check[0];
    assert.deepEqual([uhop.maskedWon, uhop.maskedCells, uhop.noiseWon, uhop.noiseCells], [1, 1, 1, 2]);
    // (0.02 + 0.01) / (0 + 0.01) = 3 is the largest ratio; the incomplete M=40 cell is not a cell.
    assert.deepEqual(uhop.worst, { cell: 'M=10 noise 0.5', error: 0.02, best: 0, bestMethod: 'uhn-euclidean' });
    assert.deepEqual([check[1].noiseWon, check[1].noiseCells, check[1].maskedCells], [1, 1, 0]);
    const md = goalCheckMarkdown(check);
    assert.match(md, /^\| variant \| masked cells won \| noise cells won \| worst cell/);
    assert.match(md, /\| uhop \| 1\/1 \| 1\/2 \| M=10 noise 0.5: 0.02 \/ uhn-euclidean 0.00 \|/);
  });

  it('checks only the variants asked for, and rejects a method twice in one cell (two runs of the same method pooled)', () => {
    const rows = [...baselines(10, null, 5, 1), row('uhop', 10, null, 2), row('uhop-sparse', 10, null, 0.5)];
    assert.deepEqual(
      retrievalGoalCheck(rows, ['uhop-sparse']).map((r) => [r.method, r.maskedWon]),
      [['uhop-sparse', 1]],
    );
    assert.throws(
      () => retrievalGoalCheck([...rows, row('uhop', 10, null, 2)]),
      /retrievalGoalCheck: method 'uhop' appears twice in cell masked M=10/,
    );
  });
});
