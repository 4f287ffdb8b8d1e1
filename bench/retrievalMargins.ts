/**
 * Why distance U-Hop loses to the raw distances under Gaussian query noise
 * (docs/experiments/beyond-paper.md, section 1): for MNIST memory sets of M patterns it fits
 * U-Hop's Phi as the retrieval experiment does (identity Phi0, 100 SGD steps, lr 0.1, uniformity
 * loss) and compares, for the identity Phi, the fitted W and W restricted to the memories' span,
 * the share of queries whose Euclidean / dot score picks a wrong memory, the margin ratio
 * max_i -2<W d_i, W e> / ||W d_i||^2 (d_i = k_own - k_i, e = q - k_own; above 1 = wrong) and
 * the median norms of W d_i and W e.
 *
 * Run: `npx tsx bench/retrievalMargins.ts [M] [backend]` (default 100, wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../src/node/backend.js';
import { loadIdxImageFolderRaw, mnistDirectory } from '../src/node/data.js';
import { seededRandom } from '../src/data/random.js';
import { noisyQueries, maskQueries } from '../src/data/corruption.js';
import { fitFeatureMap } from '../src/ops/fit.js';
import { linearFeatureMap, disposeFeatureMap } from '../src/ops/featureMap.js';

const M = Number(process.argv[2] ?? 100);
await initBackend((process.argv[3] ?? 'wasm') as BackendName);
const raw = loadIdxImageFolderRaw(mnistDirectory(), { split: 'train' });
const d = raw.rows * raw.cols;

/** The retrieval experiment's draw of one memory set (same stream per seed and M). */
function draw(seed: number): tf.Tensor2D {
  const out = new Float32Array(M * d);
  const order = Int32Array.from({ length: raw.n }, (_, i) => i);
  const rng = seededRandom(seed * 1_000_003 + M);
  for (let i = 0; i < M; i++) {
    const j = i + Math.floor(rng.uniform() * (raw.n - i));
    [order[i], order[j]] = [order[j], order[i]];
    for (let k = 0; k < d; k++) out[i * d + k] = raw.pixels[order[i] * d + k] / 255;
  }
  return tf.tensor2d(out, [M, d]);
}

/** Inverse of a symmetric positive definite matrix by Gauss-Jordan in float64. */
function invert(A: number[][]): number[][] {
  const n = A.length;
  const T = A.map((r, i) => [...r, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(T[r][c]) > Math.abs(T[p][c])) p = r;
    [T[c], T[p]] = [T[p], T[c]];
    const v = T[c][c];
    for (let j = 0; j < 2 * n; j++) T[c][j] /= v;
    for (let r = 0; r < n; r++) {
      const f = T[r][c];
      if (r !== c && f !== 0) for (let j = 0; j < 2 * n; j++) T[r][j] -= f * T[c][j];
    }
  }
  return T.map((r) => r.slice(n));
}

const median = (x: ArrayLike<number>) => Array.from(x).sort((a, b) => a - b)[x.length >> 1];
const diagonal = (x: tf.Tensor) => tf.sum(tf.mul(x, tf.eye(M)), 1);

console.log('seed | queries | Phi | wrong euclidean | wrong dot | median worst margin ratio | median ||W d|| | median ||W e||');
for (const seed of [0, 1, 2]) {
  const K = draw(seed);
  const phi0 = linearFeatureMap(d, d);
  const { featureMap, lossTrace } = fitFeatureMap(K, phi0, { steps: 100, lr: 0.1, loss: 'uniform', optimizer: 'sgd' });
  const W = featureMap.params[0];
  const queries: [string, tf.Tensor][] = [
    ['noise 0.8', noisyQueries(K, { std: 0.8, seed: 99 + seed, clip: true })],
    ['masked', maskQueries(K, { fraction: 0.5, seed: 77 + seed })],
  ];
  for (const [label, Q] of queries) {
    const rows = tf.tidy(() => {
      // P = K^T (K K^T)^-1 K projects onto the span of the memories.
      const G = tf.matMul(K, K, false, true).arraySync() as number[][];
      const P = tf.matMul(tf.matMul(K, tf.tensor2d(invert(G.map((r, i) => r.map((x, j) => x + (i === j ? 1e-6 * G[i][i] : 0))))), true), K);
      const out: string[] = [];
      for (const [name, Wm] of [
        ['identity', tf.eye(d)],
        ['fitted', W],
        ['fitted, span', tf.matMul(W, P)],
      ] as const) {
        const F = tf.matMul(K, Wm, false, true);
        const E = tf.sub(tf.matMul(Q, Wm, false, true), F); // W e per query
        const FF = tf.matMul(F, F, false, true);
        const n = diagonal(FF);
        const sep = tf.sub(tf.add(tf.expandDims(n, 1), tf.expandDims(n, 0)), tf.mul(2, FF)); // ||W d||^2
        const FE = tf.matMul(E, F, false, true);
        const cross = tf.mul(2, tf.sub(tf.expandDims(diagonal(FE), 1), FE)); // 2 <W d, W e>
        const self = tf.mul(tf.eye(M), 1e30); // excludes the own memory from min / max
        const wrongEuc = tf.mean(tf.cast(tf.less(tf.min(tf.add(tf.add(sep, cross), self), 1), 0), 'float32')).dataSync()[0];
        const dots = tf.matMul(tf.add(E, F), F, false, true);
        const dotMargin = tf.sub(tf.expandDims(diagonal(dots), 1), dots);
        const wrongDot = tf.mean(tf.cast(tf.less(tf.min(tf.add(dotMargin, self), 1), 0), 'float32')).dataSync()[0];
        const worst = tf.max(tf.sub(tf.div(tf.neg(cross), tf.add(sep, 1e-9)), self), 1);
        const sepNorm = tf.sqrt(tf.relu(tf.add(sep, self)));
        const sepMedian = median(sepNorm.dataSync().filter((x) => x < 1e10));
        const eNorm = tf.norm(E, 'euclidean', 1);
        out.push(
          `${seed} | ${label} | ${name} | ${(100 * wrongEuc).toFixed(0)}% | ${(100 * wrongDot).toFixed(0)}% | ` +
            `${median(worst.dataSync()).toFixed(2)} | ${sepMedian.toFixed(2)} | ${median(eNorm.dataSync()).toFixed(2)}`,
        );
      }
      return out;
    });
    rows.forEach((r) => console.log(r));
    Q.dispose();
  }
  tf.dispose([K, W, lossTrace]);
  disposeFeatureMap(phi0);
}
