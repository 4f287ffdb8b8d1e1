import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { UHopMemory, uhopRetrieve } from '../../src/ops/uhop.js';
import { retrieve } from '../../src/ops/retrieve.js';
import { mlpFeatureMap, applyFeatureMap, disposeFeatureMap } from '../../src/ops/featureMap.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';

/** Distance U-Hop: the UHN similarity (negative distance) computed between Phi(q) and Phi(k). */

type Mat = number[][];

/** Phi(x) = W x for every row of X, in float64. */
function project(X: Mat, W: Mat): Mat {
  return X.map((x) => W.map((row) => row.reduce((s, w, j) => s + w * x[j], 0)));
}

/** Closed form of one retrieval step in float64: association softmax(beta * sim(Wq, Wk)) and states association @ K. */
function closedForm(Q: Mat, K: Mat, W: Mat, kind: 'euclidean' | 'manhattan', beta: number): { association: Mat; states: Mat } {
  const [fq, fk] = [project(Q, W), project(K, W)];
  const association = fq.map((u) => {
    const scores = fk.map((v) => {
      const dist = u.reduce((s, ui, j) => s + (kind === 'euclidean' ? (ui - v[j]) ** 2 : Math.abs(ui - v[j])), 0);
      return -beta * dist;
    });
    const top = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - top));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / z);
  });
  const states = association.map((a) => K[0].map((_, j) => a.reduce((s, ai, i) => s + ai * K[i][j], 0)));
  return { association, states };
}

forEachBackend('U-Hop with a distance similarity', () => {
  for (const kind of ['euclidean', 'manhattan'] as const) {
    it(`${kind}: Stage II scores -dist(W q, W k) with the fitted W (closed form in float64)`, () => {
      const memories = tf.randomUniform([7, 6], 0, 1, 'float32', 21);
      const queries = tf.randomUniform([4, 6], 0, 1, 'float32', 22);
      const beta = 0.8;
      const memory = new UHopMemory({ similarity: kind, beta, fitSteps: 6, separationLoss: 'uniform', seed: 23 });
      memory.store(memories);
      const trace = memory.lossTrace.dataSync();
      assert.ok(trace[trace.length - 1] < trace[0], `the fit must lower the loss: ${trace[0]} -> ${trace[trace.length - 1]}`);
      const W = memory.featureMap.params[0].arraySync() as Mat;
      // The fit moved W away from the identity, so the check is not the plain network's.
      const moved = W.reduce((s, row, i) => s + row.reduce((t, w, j) => t + Math.abs(w - (i === j ? 1 : 0)), 0), 0);
      assert.ok(moved > 1e-2, `fitted W must differ from Phi0 (sum |W - I| = ${moved})`);
      const { states, association } = memory.retrieve(queries, { returnAssociation: true });
      const want = closedForm(queries.arraySync() as Mat, memories.arraySync() as Mat, W, kind, beta);
      assertClose(association!, want.association.flat(), 1e-4, 'association');
      assertClose(states, want.states.flat(), 1e-4, 'states');
      memory.dispose();
      tf.dispose([memories, queries, states, association!]);
    });

    it(`${kind}: fitSteps 0 from the identity is the UHN network with that similarity`, () => {
      const memories = tf.randomUniform([9, 5], 0, 1, 'float32', 23);
      const queries = tf.randomUniform([3, 5], 0, 1, 'float32', 24);
      const u = uhopRetrieve(queries, memories, { similarity: kind, beta: 2, fitSteps: 0 });
      const plain = retrieve(queries, memories, { similarity: kind, beta: 2 });
      assertClose(u.states, plain.states, 1e-5);
      tf.dispose([memories, queries, u.states, u.lossTrace, plain.states]);
    });

    it(`${kind}: batched memory sets get their own Phi, and nothing leaks`, () => {
      const sets = tf.randomUniform([2, 6, 5], 0, 1, 'float32', 25);
      const q = tf.randomUniform([2, 3, 5], 0, 1, 'float32', 26);
      const opts = { similarity: kind, fitSteps: 5, separationLoss: 'uniform' as const };
      const both = uhopRetrieve(q, sets, opts);
      for (let b = 0; b < 2; b++) {
        const one = tf.tidy(() => {
          const r = uhopRetrieve(
            tf.squeeze(tf.slice(q, [b, 0, 0], [1, 3, 5]), [0]),
            tf.squeeze(tf.slice(sets, [b, 0, 0], [1, 6, 5]), [0]),
            opts,
          );
          r.lossTrace.dispose();
          return r.states;
        });
        const part = tf.squeeze(tf.slice(both.states, [b, 0, 0], [1, 3, 5]), [0]);
        assertClose(part, one, 1e-4, `set ${b}`);
        tf.dispose([one, part]);
      }
      assertNoLeak(() => {
        const r = uhopRetrieve(q, sets, opts);
        return [r.states, r.lossTrace];
      });
      tf.dispose([sets, q, both.states, both.lossTrace]);
    });
  }
});

forEachBackend('U-Hop+ with an mlp Phi (D > d)', () => {
  it('the fit lowers its loss and moves Phi off its isometric start', () => {
    const memories = tf.randomUniform([12, 8], 0, 1, 'float32', 31);
    const memory = new UHopMemory({ featureMap: 'mlp', featureDim: 16, seed: 5, fitSteps: 20, separationLoss: 'uniform' });
    memory.store(memories);
    const trace = memory.lossTrace.dataSync();
    assert.equal(trace.length, 21);
    assert.ok(trace[20] < trace[0] - 1e-3, `loss ${trace[0]} -> ${trace[20]} must go down`);
    const phi0 = mlpFeatureMap(8, 16, { seed: 5 });
    const delta = tf.tidy(() => tf.sum(tf.abs(tf.sub(memory.featureMap.params[0], phi0.params[0]))).dataSync()[0]);
    assert.ok(delta > 1e-2, `W1 moved by ${delta}`);
    disposeFeatureMap(phi0);
    memory.dispose();
    memories.dispose();
  });

  it('fitSteps 0 equals retrieval with the same Phi0, and (an isometric Phi0) the plain network', () => {
    const memories = tf.randomUniform([10, 8], 0, 1, 'float32', 32);
    const queries = tf.randomUniform([4, 8], 0, 1, 'float32', 33);
    for (const similarity of ['dot', 'euclidean'] as const) {
      const u = uhopRetrieve(queries, memories, { featureMap: 'mlp', featureDim: 16, seed: 5, fitSteps: 0, similarity, beta: 1.5 });
      const phi0 = mlpFeatureMap(8, 16, { seed: 5 });
      const withPhi0 = retrieve(queries, memories, { featureMap: phi0, similarity, beta: 1.5 });
      const plain = retrieve(queries, memories, { similarity, beta: 1.5 });
      // The isometry keeps inner products and distances: Phi0 changes no score.
      const f = applyFeatureMap(phi0, memories);
      const gram = tf.tidy(() => tf.sub(tf.matMul(f, f, false, true), tf.matMul(memories, memories, false, true)));
      assertClose(gram, new Float32Array(100), 1e-4, `${similarity}: Phi0 is an isometry`);
      assertClose(u.states, withPhi0.states, 1e-5, `${similarity}: same Phi0`);
      assertClose(u.states, plain.states, 1e-4, `${similarity}: plain network`);
      disposeFeatureMap(phi0);
      tf.dispose([u.states, u.lossTrace, withPhi0.states, plain.states, f, gram]);
    }
    tf.dispose([memories, queries]);
  });
});
