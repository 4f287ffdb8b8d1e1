/**
 * The Stage-I step rule with the layers' defaults ('normalized', fitLr 0.5, 5 steps, 'lse'):
 * it separates correlated memories whatever their scale, set size and dim, and no step raises
 * any set's loss, for every loss and feature map (docs/experiments/fit-step.md has the full
 * grid; this is a small, fast version of it).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { fitFeatureMap, fitFeatureMapOp } from '../../src/ops/fit.js';
import { disposeFeatureMap, linearFeatureMap, mlpFeatureMap } from '../../src/ops/featureMap.js';
import { seededRandom } from '../../src/data/random.js';
import type { SeparationLossKind } from '../../src/ops/types.js';
import { forEachBackend, assertNoLeak } from '../helpers.js';

/** [sets, S, d] memory sets with pairwise correlation rho, times `scale` (seeded). */
function correlatedSets(sets: number, S: number, d: number, rho: number, scale: number, seed: number): tf.Tensor3D {
  const rng = seededRandom(seed);
  const out = new Float32Array(sets * S * d);
  for (let s = 0; s < sets; s++) {
    const c = Array.from({ length: d }, () => rng.normal());
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < d; j++) out[(s * S + i) * d + j] = scale * (Math.sqrt(rho) * c[j] + Math.sqrt(1 - rho) * rng.normal());
    }
  }
  return tf.tensor3d(out, [sets, S, d]);
}

/** The trace as [step][set]; asserts that no step raised any set's loss. */
function assertMonotone(trace: tf.Tensor, what: string): number[][] {
  const t = trace.arraySync() as number[][];
  for (let k = 1; k < t.length; k++) {
    for (let s = 0; s < t[k].length; s++) {
      assert.ok(t[k][s] <= t[k - 1][s], `${what} set ${s} step ${k}: ${t.map((r) => r[s]).join(' -> ')}`);
    }
  }
  return t;
}

const LOSSES: SeparationLossKind[] = ['lse', 'uniform', 'worst-pair'];

forEachBackend('Stage-I step rule (normalized, the default)', () => {
  it('lowers the lse loss of every correlated set by >= 25% in 5 steps, at key scales 1e-2..1e2, S 4..1024, d 8..256', () => {
    // (S, d) cells of the grid, each at rho 0.5 (keys scaled 1e-2) and rho 0.9 (scaled 1e2): the
    // rule is exactly scale-invariant (the same drops at both scales, measured), so each cell
    // needs one scale. Measured minimum drop over these cells: 30.7% (S 32, d 8, rho 0.5); the
    // grid of docs/experiments/fit-step.md. Not in it: rho 0.5 with d = 8 and S >= 256, where no
    // linear map gets below a 22-24% drop (100 steps of any rule stop there too).
    const backend = tf.getBackend();
    const cells: Array<[number, number]> = [
      [4, 8],
      [4, 256],
      [32, 8],
      [32, 256],
      [256, 32],
      // the cpu backend's pure-JS softmax takes about 13 s per fit at S 1024: wasm covers it
      ...(backend === 'cpu' ? [] : ([[1024, 16]] as Array<[number, number]>)),
    ];
    for (const [S, d] of cells) {
      for (const [rho, scale] of [
        [0.5, 1e-2],
        [0.9, 1e2],
      ]) {
        {
          const keys = correlatedSets(2, S, d, rho, scale, 100 * S + d + (rho === 0.5 ? 1 : 2));
          const phi0 = linearFeatureMap(d, d);
          const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps: 5 });
          const what = `S ${S} d ${d} rho ${rho} scale ${scale}`;
          const tr = assertMonotone(lossTrace, what);
          for (let s = 0; s < 2; s++) {
            assert.ok(tr[0][s] > 0, `${what}: lse of a correlated set is > 0, got ${tr[0][s]}`);
            const drop = 1 - tr[5][s] / tr[0][s];
            assert.ok(drop >= 0.25, `${what} set ${s}: drop ${(100 * drop).toFixed(1)}% (${tr[0][s]} -> ${tr[5][s]})`);
          }
          tf.dispose([keys, lossTrace]);
          disposeFeatureMap(phi0);
          disposeFeatureMap(featureMap);
        }
      }
    }
  });

  it("where no linear map reaches 25% (rho 0.5, d 8, S 256), the 5 default steps reach the map's optimum", () => {
    // The one cell of the grid that the target misses: the linear map's optimum there is
    // a 22-24% drop on some sets (docs/experiments/fit-step.md: 500 steps of 'normalized', 'sgd'
    // or 'adam' agree), because Phi(K) = K W^T has rank <= 8 for 256 memories. What the default
    // can still promise is to get to that floor: 5 steps within 5% (relative) of 100 steps.
    // Measured on these sets (the bench's seeds): 5 steps 40.9 / 33.0 / 23.7 / 29.2%, 100 steps
    // 42.0 / 33.9 / 23.9 / 29.6%.
    const keys = correlatedSets(4, 256, 8, 0.5, 1, 1000 + 256 + 8);
    const phi0 = linearFeatureMap(8, 8);
    const five = fitFeatureMap(keys, phi0, { steps: 5 });
    const hundred = fitFeatureMap(keys, phi0, { steps: 100 });
    const t5 = assertMonotone(five.lossTrace, 'S 256 d 8, 5 steps');
    const t100 = assertMonotone(hundred.lossTrace, 'S 256 d 8, 100 steps');
    const drops5 = t5[0].map((l0, s) => 1 - t5[5][s] / l0);
    const drops100 = t100[0].map((l0, s) => 1 - t100[100][s] / l0);
    const fmt = (d: number[]) => d.map((x) => `${(100 * x).toFixed(1)}%`).join(', ');
    for (let s = 0; s < 4; s++) {
      assert.ok(drops5[s] >= 0.95 * drops100[s], `set ${s}: 5 steps ${fmt(drops5)} vs 100 steps ${fmt(drops100)}`);
    }
    // The floor is real on these sets: at least one set stays below the 25% target even after 100 steps.
    assert.ok(Math.min(...drops100) < 0.25, `100-step drops ${fmt(drops100)}`);
    tf.dispose([keys, five.lossTrace, hundred.lossTrace]);
    disposeFeatureMap(phi0);
    disposeFeatureMap(five.featureMap);
    disposeFeatureMap(hundred.featureMap);
  });

  it('the mlp map (its default relative step 0.1) lowers the lse loss of correlated sets by >= 25% in 5 steps too', () => {
    // Measured (wasm, 4 sets, d 32): 68-93% over S 4..256 at rho 0.5 and 0.9 (docs/experiments/fit-step.md);
    // here 61-66% at rho 0.5. Keys at scale 1 only: the mlp (relu(W1 x + b1)) is not
    // homogeneous, so unlike the linear map its fit depends on the keys' scale.
    for (const [rho, scale] of [
      [0.5, 1],
      [0.9, 1],
    ]) {
      const keys = correlatedSets(2, 32, 16, rho, scale, 12);
      const phi0 = mlpFeatureMap(16, 16, { seed: 4 });
      const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps: 5 });
      const tr = assertMonotone(lossTrace, `mlp rho ${rho}`);
      for (let s = 0; s < 2; s++) assert.ok(1 - tr[5][s] / tr[0][s] >= 0.25, `mlp rho ${rho} set ${s}: ${tr[0][s]} -> ${tr[5][s]}`);
      tf.dispose([keys, lossTrace]);
      disposeFeatureMap(phi0);
      disposeFeatureMap(featureMap);
    }
  });

  it("no step raises any set's loss: every loss, linear and mlp Phi, correlated or not, any scale, masked memories", () => {
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 0, 1, 1, 0, 1, 1],
      [0, 1, 1, 1, 1, 1, 1, 0],
    ]);
    let seed = 1;
    for (const rho of [0, 0.5, 0.95]) {
      for (const scale of [1e-2, 1, 1e2]) {
        const keys = correlatedSets(3, 8, 6, rho, scale, seed++);
        for (const loss of LOSSES) {
          for (const [name, phi0] of [
            ['linear', linearFeatureMap(6, 6)],
            ['linear D 9', linearFeatureMap(6, 9, { init: 'orthogonal', seed: 2 })],
            ['mlp', mlpFeatureMap(6, 6, { seed: 3 })],
          ] as const) {
            // the default relative step, and one far too large (backtracking must absorb it)
            for (const lr of [undefined, 5]) {
              const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps: 6, loss, lr, mask });
              assertMonotone(lossTrace, `${name} ${loss} rho ${rho} scale ${scale} lr ${String(lr)}`);
              lossTrace.dispose();
              disposeFeatureMap(featureMap);
            }
            disposeFeatureMap(phi0);
          }
        }
        keys.dispose();
      }
    }
    mask.dispose();
  });

  it('the in-layer op takes the same steps as fitFeatureMap, and leaks nothing', () => {
    const keys = correlatedSets(4, 6, 5, 0.8, 3, 9);
    const phi0 = linearFeatureMap(5, 5);
    const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps: 5 });
    const [W] = fitFeatureMapOp(keys, phi0.params, 'linear', { steps: 5 });
    const diff = tf.max(tf.abs(tf.sub(W, featureMap.params[0]))).dataSync()[0];
    assert.ok(diff <= 1e-6, `op vs fitFeatureMap: ${diff}`);
    assertNoLeak(() => fitFeatureMapOp(keys, phi0.params, 'linear', { steps: 3 }));
    const mlp = mlpFeatureMap(5, 4, { seed: 1 });
    assertNoLeak(() => {
      const r = fitFeatureMap(keys, mlp, { steps: 3 });
      return [...r.featureMap.params, r.lossTrace];
    });
    tf.dispose([keys, lossTrace, W]);
    disposeFeatureMap(phi0);
    disposeFeatureMap(mlp);
    disposeFeatureMap(featureMap);
  });
});
