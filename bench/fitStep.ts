/**
 * The measurements that chose the Stage-I step rule (docs/experiments/fit-step.md): for each
 * step rule x separation loss x key scale x set size S (x d, x memory correlation rho), the
 * fit's effect with the layers' number of steps (5) on seeded synthetic memory sets:
 *
 * - drop mean / min: the relative fall of each set's separation loss, 1 - L_5 / L_0 (mean and
 *   minimum over the sets; a loss is made positive first by the shift below);
 * - L drop min ('lse' only, whose loss is > 0 on these sets): the smallest 1 - L_5 / L_0;
 * - rises: how many (set, step) pairs raised the loss (the monotone rule must show 0);
 * - dXi max: the largest change of an association weight between Phi0 and the fitted Phi,
 *   xi = softmax(beta <Phi(k_i), Phi(k_j)>) over the memories j, queries = the memories,
 *   beta = 1/sqrt(d) (the layers' default scaling).
 *
 * Memory sets: k_i = scale (sqrt(rho) c + sqrt(1 - rho) z_i), c and z_i standard normal per
 * set (pairwise correlation rho), drawn from the package's seeded generator.
 *
 *     npx tsx bench/fitStep.ts --backend wasm                 # the table in the docs
 *     npx tsx bench/fitStep.ts --rules normalized:0.3,normalized:0.5 --d 8,32,256 --S 4,1024
 *
 * The drop is relative to the room the loss has: (L_0 - L_5) / (L_0 - L_min), with L_min a
 * lower bound of the loss (see `lowerBoundShift`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { fitFeatureMap, type FitOptimizer } from '../src/ops/fit.js';
import { applyFeatureMap, disposeFeatureMap, linearFeatureMap, mlpFeatureMap } from '../src/ops/featureMap.js';
import { seededRandom } from '../src/data/random.js';
import type { SeparationLossKind } from '../src/ops/types.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    rules: { type: 'string', default: 'sgd:0.1,adam:0.01,adam:0.1,normalized:0.1,normalized:0.3,normalized:0.5,normalized:1' },
    losses: { type: 'string', default: 'lse,uniform,worst-pair' },
    scales: { type: 'string', default: '0.01,1,100' },
    S: { type: 'string', default: '4,32,256,1024' },
    d: { type: 'string', default: '32' },
    rho: { type: 'string', default: '0.5,0.9' },
    sets: { type: 'string', default: '4' },
    steps: { type: 'string', default: '5' },
    map: { type: 'string', default: 'linear' },
    seed: { type: 'string', default: '1' },
    pivot: { type: 'boolean', default: false },
  },
});
const report = await initBackend(values.backend);
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const nums = (s: string) => list(s).map(Number);

/** [sets, S, d] memory sets with pairwise correlation rho, times `scale`. */
export function correlatedSets(sets: number, S: number, d: number, rho: number, scale: number, seed: number): tf.Tensor3D {
  const rng = seededRandom(seed);
  const out = new Float32Array(sets * S * d);
  const a = Math.sqrt(rho);
  const b = Math.sqrt(1 - rho);
  for (let s = 0; s < sets; s++) {
    const c = Array.from({ length: d }, () => rng.normal());
    for (let i = 0; i < S; i++) for (let j = 0; j < d; j++) out[(s * S + i) * d + j] = scale * (a * c[j] + b * rng.normal());
  }
  return tf.tensor3d(out, [sets, S, d]);
}

function association(phi: ReturnType<typeof linearFeatureMap>, keys: tf.Tensor, d: number): tf.Tensor {
  return tf.tidy(() => {
    const F = applyFeatureMap(phi, keys);
    return tf.softmax(tf.mul(tf.matMul(F, F, false, true), 1 / Math.sqrt(d)));
  });
}

/**
 * -L_min, a lower bound of the loss of S unit vectors (t 2, tau 0.1, the defaults). The mean of
 * <u_i, u_j> over pairs i != j is >= -1/(S-1) (|sum u_i|^2 >= 0), so by Jensen 'uniform' and
 * 'worst-pair' are >= -2t S/(S-1) and 'lse' is >= -1/(tau S (S-1)) (all three reached by a
 * regular simplex). The drop is (L_0 - L_5) / (L_0 - L_min).
 */
function lowerBoundShift(loss: SeparationLossKind, S: number): number {
  return loss === 'lse' ? 10 / (S * (S - 1)) : (4 * S) / (S - 1);
}

const steps = Number(values.steps);
const sets = Number(values.sets);
interface Cell {
  rule: string;
  loss: string;
  rho: number;
  scale: number;
  S: number;
  d: number;
  mean: number;
  min: number;
  rawMin: number;
  rises: number;
  dXi: number;
}
const cells: Cell[] = [];
console.log(describeBackend(report));
console.log(`steps ${steps}, ${sets} sets per cell, map ${values.map}, seed ${values.seed}`);
if (!values.pivot) {
  console.log('| rule | loss | rho | scale | S | d | drop mean | drop min | L drop min | rises | dXi max |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
}
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
for (const rho of nums(values.rho)) {
  for (const loss of list(values.losses) as SeparationLossKind[]) {
    for (const rule of list(values.rules)) {
      const [optimizer, lrStr] = rule.split(':') as [FitOptimizer, string];
      const lr = Number(lrStr);
      for (const scale of nums(values.scales)) {
        for (const S of nums(values.S)) {
          for (const d of nums(values.d)) {
            const keys = correlatedSets(sets, S, d, rho, scale, Number(values.seed) * 1000 + S + d);
            const phi0 = values.map === 'mlp' ? mlpFeatureMap(d, d, { seed: 1 }) : linearFeatureMap(d, d);
            const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps, lr, loss, optimizer });
            const tr = (await lossTrace.array()) as number[][];
            const shift = lowerBoundShift(loss, S);
            const drops = tr[0].map((l0, s) => 1 - (tr[steps][s] + shift) / (l0 + shift));
            const rawDrops = tr[0].map((l0, s) => 1 - tr[steps][s] / l0);
            let rises = 0;
            for (let k = 1; k <= steps; k++) for (let s = 0; s < sets; s++) if (tr[k][s] > tr[k - 1][s]) rises++;
            const x0 = association(phi0, keys, d);
            const x1 = association(featureMap, keys, d);
            const dXi = tf.tidy(() => tf.max(tf.abs(tf.sub(x1, x0))));
            const c: Cell = {
              rule: `${optimizer} ${lr}`,
              loss,
              rho,
              scale,
              S,
              d,
              mean: drops.reduce((x, y) => x + y, 0) / drops.length,
              min: Math.min(...drops),
              rawMin: Math.min(...rawDrops),
              rises,
              dXi: (await dXi.data())[0],
            };
            cells.push(c);
            if (!values.pivot) {
              console.log(
                `| ${c.rule} | ${loss} | ${rho} | ${scale} | ${S} | ${d} | ${(100 * c.mean).toFixed(1)}% | ${(100 * c.min).toFixed(1)}% | ${loss === 'lse' ? `${(100 * c.rawMin).toFixed(1)}%` : '-'} | ${rises} | ${c.dXi.toFixed(3)} |`,
              );
            }
            tf.dispose([keys, lossTrace, x0, x1, dXi]);
            disposeFeatureMap(phi0);
            disposeFeatureMap(featureMap);
          }
        }
      }
    }
  }
}
if (values.pivot) {
  // one row per rule x loss x rho x scale x d, one column per S: "drop mean / min, rises, max dXi"
  const Ss = nums(values.S);
  console.log(`| rule | loss | rho | scale | d | ${Ss.map((S) => `S ${S}`).join(' | ')} |`);
  console.log(`|---|---|---|---|---|${Ss.map(() => '---').join('|')}|`);
  const keyOf = (c: Cell) => `${c.rule}|${c.loss}|${c.rho}|${c.scale}|${c.d}`;
  for (const key of [...new Set(cells.map(keyOf))]) {
    const row = cells.filter((c) => keyOf(c) === key);
    const cols = Ss.map((S) => {
      const c = row.find((x) => x.S === S)!;
      return `${pct(c.mean)} / ${pct(c.min)}${c.rises ? ` (${c.rises} rises)` : ''}, ${c.dXi.toFixed(2)}`;
    });
    console.log(`| ${key.split('|').join(' | ')} | ${cols.join(' | ')} |`);
  }
}
