import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, assertClose, randn } from '../helpers.js';
import { hopfieldRetrieval, resolveUHopArgs, type UHopRuntime } from '../../src/layers/hopfieldCore.js';
import { Hopfield } from '../../src/layers/index.js';
import { fitFeatureMap } from '../../src/ops/fit.js';
import { mlpFeatureMap, disposeFeatureMap } from '../../src/ops/featureMap.js';

/**
 * Central differences through tfjs itself (float32), for functions with no float64 reference
 * here (a retrieval through a fitted Phi). The backward passes under test are tfjs' autodiff of
 * standard ops (the custom ones have float64 checks in test/ops): so a float32 difference with a
 * tolerance a few times its noise suffices, and an all-zero analytic gradient always fails.
 */
function checkGradientF32(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, { h }: { h: number }): void {
  const n = tf.tidy(() => f(x).size);
  const w = tf.tensor(
    randn(n, 11),
    tf.tidy(() => f(x).shape),
  );
  const scalar = (z: tf.Tensor) => tf.sum(tf.mul(f(z), w));
  const analytic = tf.tidy(() => Array.from(tf.grad(scalar)(x).dataSync()));
  const xs = x.dataSync();
  let maxFd = 0;
  let maxAnalytic = 0;
  for (let i = 0; i < xs.length; i++) {
    const at = (delta: number) =>
      tf.tidy(() => {
        const v = Float32Array.from(xs);
        v[i] += delta;
        return scalar(tf.tensor(v, x.shape)).dataSync()[0];
      });
    const fd = (at(h) - at(-h)) / (2 * h);
    maxFd = Math.max(maxFd, Math.abs(fd));
    maxAnalytic = Math.max(maxAnalytic, Math.abs(analytic[i]));
    assert.ok(Math.abs(fd - analytic[i]) <= 5e-3 + 1e-2 * Math.abs(fd), `d/dx[${i}]: finite difference ${fd}, analytic ${analytic[i]}`);
  }
  assert.ok(maxFd > 1e-3 && maxAnalytic > 1e-3, `a vacuous check: max |finite difference| ${maxFd}, max |analytic| ${maxAnalytic}`);
  w.dispose();
}

/** U-Hop in the layers' core with a distance similarity on Phi's features. */

const [B, H, L, S, d, dv] = [2, 2, 3, 5, 4, 3];
type Mat = number[][];

function inputs(seed: number) {
  return {
    q: tf.randomNormal([B, H, L, d], 0, 1, 'float32', seed),
    k: tf.randomNormal([B, H, S, d], 0, 1, 'float32', seed + 1),
    v: tf.randomNormal([B, H, S, dv], 0, 1, 'float32', seed + 2),
  };
}

function linearRuntime(phi0: tf.Tensor, fitSteps: number): UHopRuntime {
  return { config: resolveUHopArgs({ featureMap: 'linear', fitSteps, fitLr: 0.2 }, 'test'), phi0: [phi0] };
}

/** softmax(-beta dist(W q, W k)) V for one (sample, head), in float64. */
function closedForm(Q: Mat, K: Mat, V: Mat, W: Mat, kind: 'euclidean' | 'manhattan', beta: number): Mat {
  const phi = (x: number[]) => W.map((row) => row.reduce((s, w, j) => s + w * x[j], 0));
  const [fq, fk] = [Q.map(phi), K.map(phi)];
  return fq.map((u) => {
    const scores = fk.map((f) => -beta * u.reduce((s, ui, j) => s + (kind === 'euclidean' ? (ui - f[j]) ** 2 : Math.abs(ui - f[j])), 0));
    const top = Math.max(...scores);
    const e = scores.map((x) => Math.exp(x - top));
    const z = e.reduce((a, b) => a + b, 0);
    return V[0].map((_, c) => e.reduce((s, ei, i) => s + (ei / z) * V[i][c], 0));
  });
}

forEachBackend('U-Hop layers core with a distance similarity', () => {
  for (const kind of ['euclidean', 'manhattan'] as const) {
    it(`${kind}: the output is softmax(-beta dist(W q, W k)) v with the W fitted per (sample, head) (float64 closed form)`, () => {
      const { q, k, v } = inputs(41);
      const phi0 = tf.tidy(() => tf.add(tf.broadcastTo(tf.eye(d), [H, d, d]), tf.randomNormal([H, d, d], 0, 0.1, 'float32', 44)));
      const beta = 0.5;
      const { output } = hopfieldRetrieval(q, k, v, { beta, similarity: kind, uhop: linearRuntime(phi0, 4) });
      // The layers' fit: the same options through the op (per (sample, head) memory sets).
      const { featureMap, lossTrace } = fitFeatureMap(k, { kind: 'linear', params: [phi0] }, { steps: 4, lr: 0.2, loss: 'lse' });
      const Wfit = featureMap.params[0].arraySync() as Mat[][];
      const [Q, K, V] = [q, k, v].map((t) => t.arraySync() as Mat[][]);
      const got = output.arraySync() as Mat[][];
      const W0 = phi0.arraySync() as Mat[];
      let moved = 0;
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          moved += Wfit[b][h].flat().reduce((s, w, i) => s + Math.abs(w - W0[h].flat()[i]), 0);
          assertClose(got[b][h].flat(), closedForm(Q[b][h], K[b][h], V[b][h], Wfit[b][h], kind, beta).flat(), 1e-4, `b${b} h${h}`);
        }
      }
      assert.ok(moved > 1e-2, `the fit must move W off Phi0 (sum |W - W0| = ${moved})`);
      tf.dispose([q, k, v, phi0, output, lossTrace, ...featureMap.params]);
    });

    it(`${kind}: gradients match finite differences (queries after a fit; queries, keys and Phi0 with fitSteps 0)`, () => {
      const { q, k, v } = inputs(kind === 'manhattan' ? 67 : 51);
      const phi0 = tf.tidy(() => tf.add(tf.broadcastTo(tf.eye(d), [H, d, d]), tf.randomNormal([H, d, d], 0, 0.1, 'float32', 54)));
      const fitted = linearRuntime(phi0, 4);
      // The L1 distance has a kink where a feature of Phi(q) equals that of Phi(k): a central
      // difference across it measures neither side. The data are checked to stay 4h away.
      const h = kind === 'manhattan' ? 3e-4 : 1e-2;
      if (kind === 'manhattan') {
        const { featureMap, lossTrace } = fitFeatureMap(k, { kind: 'linear', params: [phi0] }, { steps: 4, lr: 0.2, loss: 'lse' });
        for (const W of [featureMap.params[0], phi0]) {
          const gap = tf.tidy(() => {
            const fq = tf.matMul(q, tf.broadcastTo(W, [B, H, d, d]), false, true); // [B, H, L, D]
            const fk = tf.matMul(k, tf.broadcastTo(W, [B, H, d, d]), false, true); // [B, H, S, D]
            return tf.min(tf.abs(tf.sub(tf.expandDims(fq, 3), tf.expandDims(fk, 2)))).dataSync()[0];
          });
          assert.ok(gap > 4 * h * 1.5, `test data too close to an L1 kink (min |Phi(q) - Phi(k)| feature gap ${gap})`);
        }
        tf.dispose([lossTrace, ...featureMap.params]);
      }
      // The fit is detached (DESIGN: the gradient skips Stage I), so only the queries are
      // checked through a fit; with fitSteps 0, Phi = Phi0 and every input is differentiable.
      checkGradientF32((x) => hopfieldRetrieval(x, k, v, { beta: 0.5, similarity: kind, uhop: fitted }).output, q, { h });
      const plain = (p: tf.Tensor) => ({ config: linearRuntime(phi0, 0).config, phi0: [p] });
      checkGradientF32((x) => hopfieldRetrieval(x, k, v, { beta: 0.5, similarity: kind, uhop: plain(phi0) }).output, q, { h });
      if (kind === 'euclidean') {
        // (Moving a key or Phi0 moves every feature of the set: the L1 kinks are then too near for a central difference.)
        checkGradientF32((x) => hopfieldRetrieval(q, x, v, { beta: 0.5, similarity: kind, uhop: plain(phi0) }).output, k, { h });
        checkGradientF32((p) => hopfieldRetrieval(q, k, v, { beta: 0.5, similarity: kind, uhop: plain(p) }).output, phi0, { h });
      }
      tf.dispose([q, k, v, phi0]);
    });
  }

  it('an mlp Phi0 (D > d) with fitSteps 0 equals the plain network, for dot and euclidean scores', () => {
    const { q, k, v } = inputs(61);
    const D = 2 * d;
    const maps = Array.from({ length: H }, (_, h) => mlpFeatureMap(d, D, { seed: 70 + h }));
    const phi0 = [0, 1, 2].map((i) => tf.stack(maps.map((m) => m.params[i])));
    for (const similarity of ['dot', 'euclidean'] as const) {
      const config = resolveUHopArgs({ featureMap: 'mlp', featureDim: D, fitSteps: 0 }, 'test');
      const u = hopfieldRetrieval(q, k, v, { beta: 0.7, similarity, uhop: { config, phi0 } }).output;
      const plain = hopfieldRetrieval(q, k, v, { beta: 0.7, similarity }).output;
      assertClose(u, plain, 1e-4, similarity);
      tf.dispose([u, plain]);
    }
    maps.forEach(disposeFeatureMap);
    tf.dispose([q, k, v, ...phi0]);
  });

  it('the Hopfield layer runs U-Hop with euclidean and manhattan scores: fitSteps 0 is the plain layer, a fit changes the output', () => {
    const xs = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 81);
    for (const similarity of ['euclidean', 'manhattan'] as const) {
      const base = { numHeads: 2, similarity, beta: 0.3, seed: 151 } as const;
      const plainLayer = new Hopfield(base);
      const zero = new Hopfield({ ...base, featureMap: 'linear', fitSteps: 0 });
      const fit = new Hopfield({ ...base, featureMap: 'linear', fitSteps: 5, fitLr: 0.2 });
      const apply = (l: tfl.layers.Layer) => l.apply(xs) as tf.Tensor;
      const y0 = apply(plainLayer);
      // Same projections: copy the plain layer's weights into the U-Hop layers (Phi0 stays the identity).
      for (const l of [zero, fit]) {
        apply(l).dispose();
        const byName = new Map(plainLayer.weights.map((w) => [w.originalName.split('/').pop(), w.read()]));
        l.setWeights(l.weights.map((w) => byName.get(w.originalName.split('/').pop()) ?? w.read()));
      }
      const yz = apply(zero);
      const yf = apply(fit);
      assertClose(yz, y0, 1e-5, `${similarity}: fitSteps 0`);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(yf, y0))).dataSync()[0]);
      assert.ok(Number.isFinite(diff) && diff > 1e-4, `${similarity}: a fit must change the output (max |diff| ${diff})`);
      tf.dispose([y0, yz, yf]);
      [plainLayer, zero, fit].forEach((l) => l.dispose());
    }
    xs.dispose();
  });
});
