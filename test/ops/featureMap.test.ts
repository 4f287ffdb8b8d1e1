import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients tf.grad needs
import {
  applyFeatureMap,
  disposeFeatureMap,
  featureMapBackward,
  featureMapInfo,
  linearFeatureMap,
  mlpFeatureMap,
  rowNormalize,
} from '../../src/ops/featureMap.js';
import type { FeatureMap } from '../../src/ops/types.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';

/** Phi written out with plain tf ops (broadcastTo + batched matMul): the reference. */
function referencePhi(kind: FeatureMap['kind'], params: tf.Tensor[], x: tf.Tensor): tf.Tensor {
  const lead = x.shape.slice(0, -2);
  const full = (p: tf.Tensor, inner: number[]) => tf.broadcastTo(p, [...lead, ...inner]);
  const lin = (a: tf.Tensor, w: tf.Tensor) => tf.matMul(a, full(w, w.shape.slice(-2)), false, true);
  if (kind === 'linear') return lin(x, params[0]);
  const [W1, b1, W2] = params;
  const H = W1.shape[W1.rank - 2];
  return lin(tf.relu(tf.add(lin(x, W1), tf.expandDims(full(b1, [H]), -2))), W2);
}

/** tf.grad of sum(dF * Phi(x)) w.r.t. the params and x, Phi written out with plain ops. */
function referenceGrads(phi: FeatureMap, x: tf.Tensor, dF: tf.Tensor): tf.Tensor[] {
  const f = (...args: tf.Tensor[]) => tf.sum(tf.mul(dF, referencePhi(phi.kind, args.slice(1), args[0])));
  return tf.grads(f)([x, ...phi.params]);
}

/** Float64 matrix product of row-major arrays. */
function gramT(w: Float32Array | Int32Array | Uint8Array, rows: number, cols: number, byRows: boolean): number[][] {
  const n = byRows ? rows : cols;
  const out = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let a = 0; a < n; a++)
    for (let b = 0; b < n; b++) {
      let s = 0;
      if (byRows) for (let k = 0; k < cols; k++) s += w[a * cols + k] * w[b * cols + k];
      else for (let k = 0; k < rows; k++) s += w[k * cols + a] * w[k * cols + b];
      out[a][b] = s;
    }
  return out;
}

function assertIdentity(m: number[][], tol: number, what: string): void {
  m.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - (i === j ? 1 : 0)) < tol, `${what}[${i}][${j}] = ${v}`)));
}

forEachBackend('featureMap', () => {
  it('identity init embeds x (D >= d) or projects it (D < d)', () => {
    const x = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 1);
    const up = linearFeatureMap(3, 5, { init: 'identity' });
    assert.deepEqual(up.params[0].shape, [5, 3]);
    const f = applyFeatureMap(up, x);
    assert.deepEqual(f.shape, [2, 5, 5]);
    assertClose(f, tf.concat([x, tf.zeros([2, 5, 2])], -1), 0, 'D > d');
    const down = linearFeatureMap(3, 2);
    assertClose(applyFeatureMap(down, x), tf.slice(x, [0, 0, 0], [2, 5, 2]), 0, 'D < d');
    const same = linearFeatureMap(3);
    assertClose(applyFeatureMap(same, x), x, 0, 'D = d');
    tf.dispose([x, f]);
    [up, down, same].forEach(disposeFeatureMap);
  });

  it('orthogonal init is an isometry (orthonormal rows when D < d), reproducible by seed', () => {
    const tall = linearFeatureMap(4, 7, { init: 'orthogonal', seed: 3 });
    assertIdentity(gramT(tall.params[0].dataSync(), 7, 4, false), 1e-5, 'W^T W');
    const wide = linearFeatureMap(6, 3, { init: 'orthogonal', seed: 3 });
    assertIdentity(gramT(wide.params[0].dataSync(), 3, 6, true), 1e-5, 'W W^T');
    const again = linearFeatureMap(4, 7, { init: 'orthogonal', seed: 3 });
    const other = linearFeatureMap(4, 7, { init: 'orthogonal', seed: 4 });
    assertClose(again.params[0], tall.params[0], 0, 'same seed');
    assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(other.params[0], tall.params[0]))).dataSync()[0]) > 0.1, 'other seed');
    [tall, wide, again, other].forEach(disposeFeatureMap);
  });

  it("'normal' init has entries of variance 1/d (not the reference scripts' 1)", () => {
    const phi = linearFeatureMap(64, 64, { init: 'normal', seed: 5 });
    const w = phi.params[0].dataSync();
    const meanSq = Array.from(w).reduce((s, v) => s + v * v, 0) / w.length;
    assert.ok(Math.abs(meanSq * 64 - 1) < 0.1, `E[w^2] * d = ${meanSq * 64}`);
    disposeFeatureMap(phi);
  });

  it('mlp init starts exactly at an isometry and has the documented shapes', () => {
    const x = tf.randomNormal([10, 6], 0, 1, 'float32', 2);
    for (const [d, D, hidden] of [
      [6, 6, undefined],
      [6, 9, undefined],
      [6, 4, 9],
    ] as const) {
      const phi = mlpFeatureMap(d, D, { hidden, seed: 7 });
      const H = hidden ?? 2 * D;
      assert.deepEqual(
        phi.params.map((p) => p.shape),
        [[H, d], [H], [D, H]],
      );
      const info = featureMapInfo(phi);
      assert.equal(info.hidden, H);
      const f = applyFeatureMap(phi, x);
      const fx = f.arraySync() as number[][];
      const xs = x.arraySync() as number[][];
      if (D >= d) {
        // ||Phi(x)|| = ||x|| and <Phi(x), Phi(y)> = <x, y>: an isometry.
        for (let i = 0; i < 10; i++)
          for (let j = 0; j < 10; j++) {
            const a = fx[i].reduce((s, v, k) => s + v * fx[j][k], 0);
            const b = xs[i].reduce((s, v, k) => s + v * xs[j][k], 0);
            assert.ok(Math.abs(a - b) < 1e-4 * (1 + Math.abs(b)), `<Phi(x${i}), Phi(x${j})> = ${a}, <x${i}, x${j}> = ${b}`);
          }
      } else {
        // Linear with orthonormal rows: Phi(a x + b y) = a Phi(x) + b Phi(y) and ||Phi(x)|| <= ||x||.
        const lin = applyFeatureMap(phi, tf.sub(tf.mul(x, 2), tf.reverse(x, 0)));
        assertClose(lin, tf.sub(tf.mul(f, 2), tf.reverse(f, 0)), 1e-4, 'linearity');
        fx.forEach((row, i) => {
          const nf = Math.hypot(...row);
          const nx = Math.hypot(...xs[i]);
          assert.ok(nf <= nx * (1 + 1e-5), `||Phi(x)|| ${nf} > ||x|| ${nx}`);
        });
        lin.dispose();
      }
      f.dispose();
      disposeFeatureMap(phi);
    }
    x.dispose();
  });

  it('applyFeatureMap broadcasts shared, per-set and partly shared params', () => {
    const x = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 3);
    const shared = linearFeatureMap(4, 6, { init: 'normal', seed: 1 });
    const f = applyFeatureMap(shared, x);
    assert.deepEqual(f.shape, [2, 3, 5, 6]);
    assertClose(f, tf.reshape(tf.matMul(tf.reshape(x, [30, 4]), shared.params[0], false, true), [2, 3, 5, 6]), 1e-5, 'shared');
    // per head: W [3, 6, 4] broadcasts over the first dim of x
    const perHead: FeatureMap = { kind: 'linear', params: [tf.randomNormal([3, 6, 4], 0, 1, 'float32', 4)] };
    const g = applyFeatureMap(perHead, x);
    assert.deepEqual(g.shape, [2, 3, 5, 6]);
    for (let b = 0; b < 2; b++)
      for (let h = 0; h < 3; h++) {
        const xs = tf.reshape(tf.slice(x, [b, h, 0, 0], [1, 1, 5, 4]), [5, 4]);
        const ws = tf.reshape(tf.slice(perHead.params[0], [h, 0, 0], [1, 6, 4]), [6, 4]);
        const gs = tf.reshape(tf.slice(g, [b, h, 0, 0], [1, 1, 5, 6]), [5, 6]);
        assertClose(gs, tf.matMul(xs, ws, false, true), 1e-5, `set ${b},${h}`);
      }
    // mlp per set
    const mlp = mlpFeatureMap(4, 3, { seed: 2 });
    const perSet: FeatureMap = { kind: 'mlp', params: mlp.params.map((p) => tf.stack([p, tf.mul(p, 0.5)])) };
    const xm = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 5);
    const h = applyFeatureMap(perSet, xm);
    assert.deepEqual(h.shape, [2, 5, 3]);
    assertClose(
      tf.reshape(tf.slice(h, [0, 0, 0], [1, 5, 3]), [5, 3]),
      applyFeatureMap(mlp, tf.reshape(tf.slice(xm, [0, 0, 0], [1, 5, 4]), [5, 4])),
      1e-5,
      'mlp set 0',
    );
    tf.dispose([x, f, g, h, xm, ...perHead.params, ...perSet.params]);
    disposeFeatureMap(shared);
    disposeFeatureMap(mlp);
  });

  it('featureMapBackward equals tf.grad for linear and mlp maps, shared, per-set and broadcast params', () => {
    const x = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 6);
    const mlp = mlpFeatureMap(4, 3, { hidden: 5, seed: 9 });
    // perturb so that the relu pattern is not symmetric
    const mlpP: FeatureMap = {
      kind: 'mlp',
      params: mlp.params.map((p, i) => tf.add(p, tf.randomNormal(p.shape, 0, 0.3, 'float32', 20 + i))),
    };
    const cases: Array<[string, FeatureMap]> = [
      ['linear shared', linearFeatureMap(4, 3, { init: 'normal', seed: 1 })],
      ['linear per set', { kind: 'linear', params: [tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 2)] }],
      ['linear per head', { kind: 'linear', params: [tf.randomNormal([3, 3, 4], 0, 1, 'float32', 3)] }],
      ['mlp shared', mlpP],
      ['mlp per head', { kind: 'mlp', params: mlpP.params.map((p) => tf.stack([p, tf.mul(p, -1), tf.mul(p, 0.7)])) }],
    ];
    for (const [name, phi] of cases) {
      const dF = tf.randomNormal([2, 3, 5, 3], 0, 1, 'float32', 11);
      assertClose(applyFeatureMap(phi, x), referencePhi(phi.kind, phi.params, x), 1e-5, `${name} forward`);
      const got = featureMapBackward(phi, x, dF);
      const [wantX, ...want] = referenceGrads(phi, x, dF);
      assert.equal(got.length, phi.params.length);
      got.forEach((g, i) => {
        assert.deepEqual(g.shape, phi.params[i].shape, `${name} param ${i} shape`);
        assertClose(g, want[i], 1e-4, `${name} param ${i}`);
      });
      // tf.grad through applyFeatureMap (on wasm a customGrad with the analytic backward)
      const viaTape = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(dF, applyFeatureMap({ kind: phi.kind, params: a.slice(1) }, a[0]))))([
        x,
        ...phi.params,
      ]);
      assertClose(viaTape[0], wantX, 1e-4, `${name} d/dx`);
      viaTape.slice(1).forEach((g, i) => assertClose(g, want[i], 1e-4, `${name} tf.grad param ${i}`));
      tf.dispose([dF, wantX, ...got, ...want, ...viaTape, ...phi.params]);
    }
    tf.dispose([x, ...mlp.params]);
  });

  it('featureMapBackward agrees with float64 finite differences', () => {
    const x = tf.randomNormal([3, 2], 0, 1, 'float32', 12);
    const dF = tf.randomNormal([3, 3], 0, 1, 'float32', 13);
    const phi = mlpFeatureMap(2, 3, { hidden: 4, seed: 1 });
    const params = phi.params.map((p, i) => tf.add(p, tf.randomNormal(p.shape, 0, 0.3, 'float32', 30 + i)));
    const analytic = featureMapBackward({ kind: 'mlp', params }, x, dF);
    // sum(dF * W2 relu(W1 x + b1)) in float64 plain JS, W1 [4, 2], b1 [4], W2 [3, 4].
    const X = x.arraySync() as number[][];
    const G = dF.arraySync() as number[][];
    const value = ([w1, b1, w2]: number[][]) =>
      X.reduce((acc, xr, n) => {
        const hidden = b1.map((b, j) => Math.max(0, b + xr.reduce((z, xi, i) => z + w1[j * 2 + i] * xi, 0)));
        return acc + G[n].reduce((z, g, o) => z + g * hidden.reduce((y, hj, j) => y + w2[o * 4 + j] * hj, 0), 0);
      }, 0);
    const base = params.map((p) => Array.from(p.dataSync()));
    const h = 1e-6;
    let largest = 0;
    base.forEach((p, pi) => {
      const an = analytic[pi].dataSync();
      for (let i = 0; i < p.length; i++) {
        const moved = (d: number) => base.map((q, j) => (j === pi ? q.map((v, k) => (k === i ? v + d : v)) : q));
        const fd = (value(moved(h)) - value(moved(-h))) / (2 * h);
        largest = Math.max(largest, Math.abs(fd));
        assert.ok(
          Math.abs(fd - an[i]) <= 1e-4 + 1e-3 * Math.abs(fd),
          `param ${pi}[${i}]: analytic ${an[i]} vs float64 finite difference ${fd}`,
        );
      }
    });
    assert.ok(largest > 1e-2, `vacuous check: largest gradient ${largest}`);
    tf.dispose([x, dF, ...params, ...analytic, ...phi.params]);
  });

  it('rowNormalize gives unit rows and leaves the input alone', () => {
    const phi: FeatureMap = { kind: 'linear', params: [tf.randomNormal([2, 5, 3], 0, 2, 'float32', 14)] };
    const before = phi.params[0].dataSync().slice();
    const unit = rowNormalize(phi);
    assertClose(tf.sqrt(tf.sum(tf.square(unit.params[0]), -1)), new Float32Array(10).fill(1), 1e-5, 'row norms');
    assertClose(phi.params[0], before, 0, 'input unchanged');
    const mlp = mlpFeatureMap(3, 3, { seed: 1 });
    assert.throws(() => rowNormalize(mlp), /rowNormalize: only a linear feature map/);
    [phi, unit, mlp].forEach(disposeFeatureMap);
  });

  it('does not leak tensors', () => {
    const x = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 15);
    const dF = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 16);
    const lin = linearFeatureMap(3, 5, { init: 'orthogonal', seed: 1 });
    const mlp = mlpFeatureMap(3, 5, { seed: 1 });
    const perSet: FeatureMap = { kind: 'linear', params: [tf.randomNormal([2, 5, 3], 0, 1, 'float32', 17)] };
    for (const phi of [lin, mlp, perSet]) {
      assertNoLeak(() => applyFeatureMap(phi, x));
      assertNoLeak(() => featureMapBackward(phi, x, dF));
      assertNoLeak(() => tf.grads((...p: tf.Tensor[]) => tf.sum(applyFeatureMap({ kind: phi.kind, params: p }, x)))(phi.params));
    }
    assertNoLeak(() => rowNormalize(lin).params);
    assertNoLeak(() => {
      disposeFeatureMap(linearFeatureMap(3, 4, { init: 'normal' }));
      disposeFeatureMap(mlpFeatureMap(3, 4));
    });
    tf.dispose([x, dF]);
    [lin, mlp, perSet].forEach(disposeFeatureMap);
  });

  it('gives clear errors', () => {
    assert.throws(() => linearFeatureMap(0, 3), /linearFeatureMap: d must be an integer >= 1, got 0/);
    assert.throws(() => linearFeatureMap(3, 2.5), /linearFeatureMap: D must be an integer >= 1, got 2.5/);
    assert.throws(() => linearFeatureMap(3, 3, { init: 'eye' as never }), /init must be one of identity, orthogonal, normal, got 'eye'/);
    assert.throws(() => linearFeatureMap(3, 3, { seed: NaN }), /seed must be a finite number/);
    assert.throws(() => mlpFeatureMap(3, 3, { hidden: 0 }), /mlpFeatureMap: hidden must be an integer >= 1, got 0/);
    const phi = linearFeatureMap(3, 4);
    const x = tf.zeros([2, 5, 2]);
    assert.throws(() => applyFeatureMap(phi, x), /applyFeatureMap: x must be \[\.\.\., n, d\] with d = 3 .*got shape \[2, 5, 2\]/);
    assert.throws(() => applyFeatureMap(phi, tf.zeros([3])), /x must be \[\.\.\., n, d\]/);
    const perSet: FeatureMap = { kind: 'linear', params: [tf.zeros([3, 4, 3])] };
    assert.throws(
      () => applyFeatureMap(perSet, tf.zeros([2, 5, 3])),
      /leading dims of x \[2\] and of the feature map's params \[3\] do not broadcast/,
    );
    assert.throws(
      () => featureMapBackward(phi, tf.zeros([5, 3]), tf.zeros([5, 3])),
      /featureMapBackward: dF must have the shape of Phi\(x\), \[5, 4\], got \[5, 3\]/,
    );
    assert.throws(() => applyFeatureMap({ kind: 'linear', params: [] }, tf.zeros([5, 3])), /a linear feature map has params \[W\]/);
    assert.throws(
      () => applyFeatureMap({ kind: 'mlp', params: [tf.zeros([4, 3]), tf.zeros([5]), tf.zeros([2, 4])] }, tf.zeros([5, 3])),
      /an mlp feature map needs W1 \[\.\.\., H, d\], b1 \[\.\.\., H\], W2 \[\.\.\., D, H\]/,
    );
    assert.throws(
      () => applyFeatureMap({ kind: 'rbf' as never, params: [] }, tf.zeros([5, 3])),
      /kind must be 'linear' or 'mlp', got 'rbf'/,
    );
    tf.dispose([x, ...perSet.params]);
    disposeFeatureMap(phi);
  });
});
