import * as tf from '@tensorflow/tfjs-core';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';
import { batchMatMul, dense3d, hopfieldRetrieval, resolveUHopArgs, type UHopRuntime } from '../../src/layers/hopfieldCore.js';
import { fitFeatureMap } from '../../src/ops/fit.js';
import type { SeparationKind, SimilarityKind } from '../../src/ops/types.js';
import { matmul, softmaxRows, toMat, transpose } from './reference.js';
import { sim64 } from './uhopReference.js';
import { refSeparation } from '../ops/separationReference.js';

const [B, H, L, S, d, dv] = [2, 3, 4, 6, 5, 7];

function inputs(seed = 1) {
  return {
    q: tf.randomNormal([B, H, L, d], 0, 1, 'float32', seed),
    k: tf.randomNormal([B, H, S, d], 0, 1, 'float32', seed + 1),
    v: tf.randomNormal([B, H, S, dv], 0, 1, 'float32', seed + 2),
  };
}

function uhop(phi0: tf.Tensor, fitSteps = 5, extra: object = {}): UHopRuntime {
  return { config: resolveUHopArgs({ featureMap: 'linear', fitSteps, ...extra }, 'test'), phi0: [phi0] };
}

forEachBackend('hopfieldRetrieval', () => {
  it('default options equal closed-form softmax attention softmax(beta q k^T) v, per sample and head', () => {
    const { q, k, v } = inputs();
    const beta = 0.7;
    const { output } = hopfieldRetrieval(q, k, v, { beta });
    const out = output.arraySync() as number[][][][];
    const [Q, K, V] = [q, k, v].map((t) => t.arraySync() as number[][][][]);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const scores = matmul(Q[b][h], transpose(K[b][h])).map((r) => r.map((x) => beta * x));
        assertClose(out[b][h].flat(), matmul(softmaxRows(scores), V[b][h]).flat(), 1e-5, `b${b} h${h}`);
      }
    }
    tf.dispose([q, k, v, output]);
  });

  it('per-head beta scales each head separately', () => {
    const { q, k, v } = inputs(3);
    const betas = [0.2, 1, 3];
    const { output } = hopfieldRetrieval(q, k, v, { beta: betas });
    for (let h = 0; h < H; h++) {
      const sl = (t: tf.Tensor) => tf.slice(t, [0, h, 0, 0], [B, 1, -1, -1]);
      const { output: ref } = hopfieldRetrieval(sl(q), sl(k), sl(v), { beta: betas[h] });
      assertClose(sl(output), ref, 1e-5, `head ${h}`);
    }
    tf.dispose([q, k, v, output]);
  });

  const separations: SeparationKind[] = ['softmax', 'sparsemax', 'entmax15', 'entmax', 'softmax1', 'topk', 'max'];
  const similarities: SimilarityKind[] = ['dot', 'euclidean', 'manhattan', 'cosine'];
  for (const separation of separations) {
    for (const similarity of similarities) {
      it(`${separation} x ${similarity}: association and output equal the float64 reference sep(beta sim(q, k)) over the unmasked memories`, () => {
        const { q, k, v } = inputs(5);
        const beta = 0.8;
        const options = { alpha: separation === 'entmax' ? 1.3 : undefined, topK: separation === 'topk' ? 2 : undefined };
        const memoryMask = tf.tensor2d([
          [1, 1, 0, 1, 1, 0],
          [1, 0, 1, 1, 1, 1],
        ]);
        const associationMask = tf.tensor2d([
          [1, 1, 1, 1, 1, 1],
          [0, 1, 1, 1, 1, 1],
          [1, 1, 1, 0, 1, 1],
          [1, 1, 1, 1, 1, 1],
        ]);
        const { output, association } = hopfieldRetrieval(q, k, v, {
          beta,
          separation,
          similarity,
          alpha: options.alpha,
          topK: options.topK,
          memoryMask,
          associationMask,
          returnAssociation: true,
        });
        assert.deepEqual(output.shape, [B, H, L, dv]);
        const a = association!.arraySync() as number[][][][];
        const out = output.arraySync() as number[][][][];
        const [Q, K, V] = [q, k, v].map((t) => t.arraySync() as number[][][][]);
        const mm = memoryMask.arraySync() as number[][];
        const am = associationMask.arraySync() as number[][];
        for (let b = 0; b < B; b++) {
          for (let h = 0; h < H; h++) {
            const ref = Q[b][h].map((x, l) => {
              const keep = K[b][h].map((_, s) => mm[b][s] !== 0 && am[l][s] !== 0);
              const scores = K[b][h].map((y) => beta * sim64(x, y, similarity)).filter((_, s) => keep[s]);
              const p = refSeparation(scores, separation, options);
              let j = 0;
              return keep.map((kept) => (kept ? p[j++] : 0));
            });
            for (let l = 0; l < L; l++) {
              for (let s = 0; s < S; s++)
                if (ref[l][s] === 0 && (mm[b][s] === 0 || am[l][s] === 0)) assert.equal(a[b][h][l][s], 0, `masked b${b} h${h} l${l} s${s}`);
            }
            assertClose(a[b][h].flat(), ref.flat(), 2e-5, `association b${b} h${h}`);
            assertClose(out[b][h].flat(), matmul(ref, V[b][h]).flat(), 1e-4, `output b${b} h${h}`);
            // A few runs keep the plain distribution check (implied by the values above).
            if (separation === 'softmax') for (const row of a[b][h]) assert.ok(Math.abs(row.reduce((x, y) => x + y, 0) - 1) < 1e-5);
          }
        }
        tf.dispose([q, k, v, output, association!, memoryMask, associationMask]);
      });
    }
  }

  it('distances enter as negative scores: the nearest memory gets the largest weight', () => {
    const k = tf.tensor4d([
      [
        [
          [0, 0],
          [5, 5],
          [1, 0],
        ],
      ],
    ]);
    const q = tf.tensor4d([[[[0.9, 0.1]]]]);
    for (const similarity of ['euclidean', 'manhattan'] as const) {
      const { association } = hopfieldRetrieval(q, k, k, { beta: 1, similarity, returnAssociation: true });
      const row = (association!.arraySync() as number[][][][])[0][0][0];
      assert.equal(row.indexOf(Math.max(...row)), 2, `${similarity}: ${row}`);
      association!.dispose();
    }
    tf.dispose([q, k]);
  });

  it('steps iterate in key space: 2 steps equal sep(beta (xi k) k^T) v; eps freezes converged rows', () => {
    const { q, k, v } = inputs(7);
    const beta = 0.5;
    const { output } = hopfieldRetrieval(q, k, v, { beta, steps: 2 });
    const [Q, K, V] = [q, k, v].map((t) => t.arraySync() as number[][][][]);
    const out = output.arraySync() as number[][][][];
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const sm = (x: number[][]) => softmaxRows(matmul(x, transpose(K[b][h])).map((r) => r.map((z) => beta * z)));
        const x1 = matmul(sm(Q[b][h]), K[b][h]);
        assertClose(out[b][h].flat(), matmul(sm(x1), V[b][h]).flat(), 1e-5, `b${b} h${h}`);
      }
    }
    // A huge eps freezes every row after its first update (as ml-jku: a step, then the test).
    const frozen = hopfieldRetrieval(q, k, v, { beta, steps: 6, stepsEps: 1e9 }).output;
    assertClose(frozen, output, 1e-6, 'eps = 1e9, 6 steps vs 2 steps');
    // eps 0 runs every step: 6 steps differ from 2.
    const all = hopfieldRetrieval(q, k, v, { beta, steps: 6 }).output;
    assert.ok(tf.max(tf.abs(tf.sub(all, output))).dataSync()[0] > 1e-4);
    tf.dispose([q, k, v, output, frozen, all]);
  });

  it('U-Hop with fitSteps 0 and the identity Phi0 equals plain retrieval', () => {
    const { q, k, v } = inputs(9);
    const phi0 = tf.broadcastTo(tf.eye(d), [H, d, d]);
    const plain = hopfieldRetrieval(q, k, v, { beta: 0.4 }).output;
    const u = hopfieldRetrieval(q, k, v, { beta: 0.4, uhop: uhop(phi0, 0) }).output;
    assertClose(u, plain, 1e-5);
    tf.dispose([q, k, v, phi0, plain, u]);
  });

  it('U-Hop scores with the Phi fitted per (sample, head); the gradient skips the fit (zero to keys, straight through to Phi0)', () => {
    const { q, k, v } = inputs(11);
    const phi0 = tf.tidy(() => tf.add(tf.broadcastTo(tf.eye(d), [H, d, d]), tf.randomNormal([H, d, d], 0, 0.1, 'float32', 4)));
    const beta = 0.6;
    const rt = uhop(phi0, 4, { fitLr: 0.2 });
    const w = tf.randomNormal([B, H, L, dv], 0, 1, 'float32', 12);
    const f = (kk: tf.Tensor, p0: tf.Tensor) =>
      tf.sum(tf.mul(w, hopfieldRetrieval(q, kk, v, { beta, uhop: { config: rt.config, phi0: [p0] } }).output));
    const [gk, gp] = tf.grads(f)([k, phi0]);
    const value = f(k, phi0);

    // Reference: the detached fit computed outside the tape, then Phi = Wfit + (W0 - stop(W0)).
    const { featureMap, lossTrace } = fitFeatureMap(k, { kind: 'linear', params: [phi0] }, { steps: 4, lr: 0.2, loss: 'lse' });
    const Wfit = featureMap.params[0];
    const phi0Const = tf.clone(phi0); // a different tensor: constant under tf.grads
    const fRef = (kk: tf.Tensor, p0: tf.Tensor) => {
      const W = tf.add(tf.sub(Wfit, phi0Const), p0); // value Wfit, gradient straight to p0
      const phi = (x: tf.Tensor) => tf.matMul(x, W, false, true);
      const xi = tf.softmax(tf.mul(tf.matMul(phi(q), phi(kk), false, true), beta));
      return tf.sum(tf.mul(w, tf.matMul(xi, v)));
    };
    const [rk, rp] = tf.grads(fRef)([k, phi0]);
    assertClose(value, fRef(k, phi0), 1e-5, 'value');
    assertClose(gk, rk, 1e-4, 'd/dkeys');
    assertClose(gp, rp, 1e-4, 'd/dPhi0');
    tf.dispose([q, k, v, phi0, phi0Const, w, gk, gp, value, Wfit, lossTrace, rk, rp]);
  });

  it('U-Hop dot scores through W^T W (L = 1, also with a shared memory and fitSteps 0) and through the projections (S < dk) equal <W q, W k>', () => {
    // [L, S, memory batch, fitSteps]: the Gram-matrix path is taken when it costs fewer
    // multiply-adds (d^3 + L d^2 + L S d < S d^2 + L d^2 + L S d here), else the projections
    for (const [Lq, Sm, Bk, steps] of [
      [1, 6, B, 3],
      [1, 6, 1, 3],
      [1, 6, B, 0],
      [4, 2, B, 3],
    ]) {
      const q = tf.randomNormal([B, H, Lq, d], 0, 1, 'float32', 31);
      const k = tf.randomNormal([Bk, H, Sm, d], 0, 1, 'float32', 32);
      const v = tf.randomNormal([Bk, H, Sm, dv], 0, 1, 'float32', 33);
      const phi0 = tf.tidy(() => tf.add(tf.broadcastTo(tf.eye(d), [H, d, d]), tf.randomNormal([H, d, d], 0, 0.2, 'float32', 34)));
      const w = tf.randomNormal([B, H, Lq, dv], 0, 1, 'float32', 35);
      const rt = uhop(phi0, steps, { fitLr: 0.2 });
      const f = (qq: tf.Tensor, kk: tf.Tensor, p0: tf.Tensor) =>
        tf.sum(tf.mul(w, hopfieldRetrieval(qq, kk, v, { beta: 0.8, uhop: { config: rt.config, phi0: [p0] } }).output));
      const W =
        steps === 0
          ? phi0.clone()
          : tf.tidy(() => {
              const { featureMap, lossTrace } = fitFeatureMap(k, { kind: 'linear', params: [phi0] }, { steps, lr: 0.2, loss: 'lse' });
              lossTrace.dispose();
              return featureMap.params[0];
            });
      const phi0Const = tf.clone(phi0);
      const fRef = (qq: tf.Tensor, kk: tf.Tensor, p0: tf.Tensor) => {
        const Wg = tf.add(tf.sub(W, phi0Const), p0); // value W, gradient straight to p0
        const Wb = tf.broadcastTo(Wg, [B, H, d, d]); // (tf.matMul's gradient does not reduce broadcast batch dims)
        const phi = (x: tf.Tensor) => tf.matMul(x, Wb, false, true);
        const kB = tf.broadcastTo(kk, [B, H, Sm, d]);
        const xi = tf.softmax(tf.mul(tf.matMul(phi(qq), phi(kB), false, true), 0.8));
        return tf.sum(tf.mul(w, tf.matMul(xi, tf.broadcastTo(v, [B, H, Sm, dv]))));
      };
      const what = `L=${Lq} S=${Sm} memory batch ${Bk} fitSteps ${steps}`;
      const got = tf.grads(f)([q, k, phi0]);
      const want = tf.grads(fRef)([q, k, phi0]);
      assertClose(f(q, k, phi0), fRef(q, k, phi0), 1e-5, `${what}: value`);
      ['d/dq', 'd/dkeys', 'd/dPhi0'].forEach((name, i) => assertClose(got[i], want[i], 1e-4, `${what}: ${name}`));
      tf.dispose([q, k, v, phi0, phi0Const, w, W, ...got, ...want]);
    }
  });

  it('padded memories are left out of the retrieval and of the U-Hop fit', () => {
    const { q, k, v } = inputs(13);
    const phi0 = tf.broadcastTo(tf.eye(d), [H, d, d]);
    const memoryMask = tf.tensor2d([
      [1, 1, 1, 0, 1, 0],
      [1, 1, 1, 1, 1, 0],
    ]);
    const pad = tf.reshape(tf.sub(1, memoryMask), [B, 1, S, 1]);
    const k2 = tf.add(k, tf.mul(pad, tf.randomNormal(k.shape, 0, 5, 'float32', 99)));
    const v2 = tf.add(v, tf.mul(pad, tf.randomNormal(v.shape, 0, 5, 'float32', 98)));
    const a = hopfieldRetrieval(q, k, v, { beta: 1, memoryMask, uhop: uhop(phi0, 5) }).output;
    const b = hopfieldRetrieval(q, k2, v2, { beta: 1, memoryMask, uhop: uhop(phi0, 5) }).output;
    assertClose(b, a, 1e-5);
    tf.dispose([q, k, v, phi0, memoryMask, pad, k2, v2, a, b]);
  });

  it('dropout acts only in training', () => {
    const { q, k, v } = inputs(15);
    const a = hopfieldRetrieval(q, k, v, { beta: 1, dropout: 0.5 }).output;
    const b = hopfieldRetrieval(q, k, v, { beta: 1 }).output;
    const c = hopfieldRetrieval(q, k, v, { beta: 1, dropout: 0.5, training: true }).output;
    assertClose(a, b, 0);
    assert.ok(tf.max(tf.abs(tf.sub(c, b))).dataSync()[0] > 1e-3);
    tf.dispose([q, k, v, a, b, c]);
  });

  it('leaks no tensors (plain, several steps, U-Hop with masks)', () => {
    const { q, k, v } = inputs(17);
    const phi0 = tf.broadcastTo(tf.eye(d), [H, d, d]);
    const mask = tf.ones([B, S]);
    assertNoLeak(() => hopfieldRetrieval(q, k, v, { beta: 1, steps: 3, stepsEps: 1e-3, returnAssociation: true }));
    assertNoLeak(() =>
      hopfieldRetrieval(q, k, v, { beta: [1, 2, 3], memoryMask: mask, uhop: uhop(phi0, 3), dropout: 0.1, training: true }),
    );
    assertNoLeak(() =>
      tf.grads((kk: tf.Tensor, p: tf.Tensor) => tf.sum(hopfieldRetrieval(q, kk, v, { beta: 1, uhop: uhop(p, 2) }).output))([k, phi0]),
    );
    tf.dispose([q, k, v, phi0, mask]);
  });

  it('batchMatMul and dense3d (depthwise / transpose-free paths on wasm) equal tf.matMul, values and gradients', () => {
    const a = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 31);
    const bT = tf.randomNormal([2, 3, 6, 4], 0, 1, 'float32', 32);
    const bN = tf.randomNormal([2, 3, 4, 6], 0, 1, 'float32', 33);
    const w = tf.randomNormal([2, 3, 5, 6], 0, 1, 'float32', 34);
    for (const [b, transposeB] of [
      [bT, true],
      [bN, false],
    ] as const) {
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, batchMatMul(x, y, transposeB)));
      const r = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, tf.matMul(x, y, false, transposeB)));
      assertClose(batchMatMul(a, b, transposeB), tf.matMul(a, b, false, transposeB), 1e-5, `value transposeB=${transposeB}`);
      const [ga, gb] = tf.grads(f)([a, b]);
      const [ra, rb] = tf.grads(r)([a, b]);
      assertClose(ga, ra, 1e-4, 'dA');
      assertClose(gb, rb, 1e-4, 'dB');
    }
    const x = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 35);
    const kernel = tf.randomNormal([4, 3], 0, 1, 'float32', 36);
    const bias = tf.randomNormal([3], 0, 1, 'float32', 37);
    const wy = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 38);
    const f = (xx: tf.Tensor, kk: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(wy, dense3d(xx, kk, bb)));
    const r = (xx: tf.Tensor, kk: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(wy, tf.add(tf.reshape(tf.matMul(tf.reshape(xx, [10, 4]), kk), [2, 5, 3]), bb)));
    assertClose(f(x, kernel, bias), r(x, kernel, bias), 1e-5, 'dense value');
    const g = tf.grads(f)([x, kernel, bias]);
    const rg = tf.grads(r)([x, kernel, bias]);
    g.forEach((gi, i) => assertClose(gi, rg[i], 1e-4, `dense grad ${i}`));
    assertNoLeak(() => tf.grads(f)([x, kernel, bias]));
    assertNoLeak(() => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(batchMatMul(p, q)))([a, bT]));
  });

  it("the Stage-I step rule: 'normalized' with fitLr 0.5 (linear) / 0.1 (mlp) by default; 'sgd' and 'adam' keep fitLr 0.1 and their meaning", () => {
    const dflt = resolveUHopArgs({ featureMap: 'linear' }, 'X');
    assert.equal(dflt.fitOptimizer, 'normalized');
    assert.equal(dflt.fitLr, 0.5);
    assert.equal(resolveUHopArgs({ featureMap: 'mlp' }, 'X').fitLr, 0.1);
    // what getConfig wrote before the 'normalized' rule existed: loads as the plain step it was
    const old = resolveUHopArgs({ featureMap: 'linear', fitSteps: 5, fitLr: 0.1, fitOptimizer: 'sgd' }, 'X');
    assert.deepEqual([old.fitOptimizer, old.fitLr], ['sgd', 0.1]);
    assert.deepEqual(
      [
        resolveUHopArgs({ featureMap: 'linear', fitOptimizer: 'sgd' }, 'X').fitLr,
        resolveUHopArgs({ featureMap: 'linear', fitOptimizer: 'adam' }, 'X').fitLr,
      ],
      [0.1, 0.1],
    );
    assert.equal(resolveUHopArgs({ featureMap: 'linear', fitLr: 0.2 }, 'X').fitOptimizer, 'normalized');
    assert.throws(
      () => resolveUHopArgs({ featureMap: 'linear', fitOptimizer: 'rmsprop' as never }, 'X'),
      /X: fitOptimizer must be one of 'normalized', 'sgd', 'adam', got 'rmsprop'/,
    );
  });

  it('clear errors for bad shapes and options', () => {
    const { q, k, v } = inputs(19);
    assert.throws(() => hopfieldRetrieval(tf.zeros([2, 3]), k, v, { beta: 1 }), /hopfieldRetrieval: q, k, v must be \[B, H, L\|S, dim\]/);
    assert.throws(() => hopfieldRetrieval(q, tf.zeros([B, H, S, d + 1]), v, { beta: 1 }), /shapes do not fit/);
    assert.throws(() => hopfieldRetrieval(q, k, v, { beta: -1 }), /beta \(scaling\) must be a finite number > 0, got -1/);
    assert.throws(() => hopfieldRetrieval(q, k, v, { beta: [1, 2] }), /one number per head|per head must be 3/);
    assert.throws(() => hopfieldRetrieval(q, k, v, { beta: 1, steps: 0 }), /steps must be an integer >= 1, got 0/);
    assert.throws(() => hopfieldRetrieval(q, k, v, { beta: 1, memoryMask: tf.ones([B, S + 1]) }), /memoryMask must be \[B, S\]/);
    assert.throws(
      () => resolveUHopArgs({ featureMap: 'linear', fitSteps: -1 }, 'X'),
      /X: fitSteps must be an integer in \[0, 1000\].*, got -1/,
    );
    assert.throws(
      () => resolveUHopArgs({ featureMap: 'quadratic' as never }, 'X'),
      /X: featureMap must be one of 'none', 'linear', 'mlp', got 'quadratic'/,
    );
    assert.throws(() => resolveUHopArgs({ separationLoss: 'l2' as never }, 'X'), /separationLoss must be one of/);
    tf.dispose([q, k, v]);
  });
});
