import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients tf.grad needs
import { fitFeatureMap, fitFeatureMapOp, fitFeatureMapSpanForTest } from '../../src/ops/fit.js';
import { applyFeatureMap, disposeFeatureMap, featureMapBackward, linearFeatureMap, mlpFeatureMap } from '../../src/ops/featureMap.js';
import { separationLossAndGrad } from '../../src/ops/separationLoss.js';
import type { FeatureMap, SeparationLossKind } from '../../src/ops/types.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';

const KINDS: SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

/** Memory sets that start badly separated: a shared offset plus small private parts. */
function clustered(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const d = shape[shape.length - 1];
    const offset = tf.mul(tf.ones([d]), 1.5);
    return tf.add(offset, tf.randomNormal(shape, 0, 1, 'float32', seed));
  });
}

function slice0(t: tf.Tensor, i: number): tf.Tensor {
  return tf.tidy(() => tf.squeeze(tf.slice(t, [i], [1]), [0]));
}

forEachBackend('fitFeatureMap', () => {
  it('lowers the loss of every set, for every loss and optimizer', () => {
    const keys = clustered([3, 8, 6], 1);
    const phi0 = linearFeatureMap(6, 6);
    for (const loss of KINDS) {
      for (const optimizer of ['sgd', 'adam'] as const) {
        const lr = optimizer === 'adam' ? 0.05 : loss === 'lse' ? 5 : 0.2;
        const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps: 20, lr, loss, optimizer });
        assert.deepEqual(lossTrace.shape, [21, 3]);
        assert.deepEqual(featureMap.params[0].shape, [3, 6, 6]);
        const tr = lossTrace.arraySync() as number[][];
        for (let s = 0; s < 3; s++) {
          assert.ok(tr[20][s] < tr[0][s] - 1e-3, `${loss}/${optimizer} set ${s}: ${tr[0][s]} -> ${tr[20][s]}`);
        }
        // the trace's last entry is the loss of the returned map
        const { loss: final } = separationLossAndGrad(applyFeatureMap(featureMap, keys), loss);
        assertClose(final, tr[20], 1e-4, `${loss}/${optimizer} final loss`);
        tf.dispose([lossTrace, final]);
        disposeFeatureMap(featureMap);
      }
    }
    const mlp = mlpFeatureMap(6, 6, { seed: 1 });
    const { featureMap, lossTrace } = fitFeatureMap(keys, mlp, { steps: 20, lr: 0.2, loss: 'uniform' });
    assert.deepEqual(
      featureMap.params.map((p) => p.shape),
      [
        [3, 12, 6],
        [3, 12],
        [3, 6, 12],
      ],
    );
    const tr = lossTrace.arraySync() as number[][];
    for (let s = 0; s < 3; s++) assert.ok(tr[20][s] < tr[0][s] - 1e-3, `mlp set ${s}: ${tr[0][s]} -> ${tr[20][s]}`);
    tf.dispose([keys, lossTrace]);
    [phi0, mlp, featureMap].forEach(disposeFeatureMap);
  });

  it('one step equals W0 - lr dL/dW from the public pieces (sgd) and moves by about lr (adam)', () => {
    const keys = clustered([2, 5, 4], 2);
    const phi0 = linearFeatureMap(4, 6, { init: 'orthogonal', seed: 2 });
    for (const loss of KINDS) {
      const { grad } = separationLossAndGrad(applyFeatureMap(phi0, keys), loss);
      // per-set gradients: treat W as per set [2, 6, 4]
      const perSet: FeatureMap = { kind: 'linear', params: [tf.stack([phi0.params[0], phi0.params[0]])] };
      const [dW] = featureMapBackward(perSet, keys, grad);
      const sgd = fitFeatureMap(keys, phi0, { steps: 1, lr: 0.3, loss, optimizer: 'sgd' });
      assertClose(sgd.featureMap.params[0], tf.sub(perSet.params[0], tf.mul(dW, 0.3)), 1e-5, `${loss} sgd step`);
      const adam = fitFeatureMap(keys, phi0, { steps: 1, lr: 0.01, loss, optimizer: 'adam' });
      // first Adam step: lr * g / (|g| + eps) = lr * sign(g) where g != 0
      const step = tf.sub(perSet.params[0], adam.featureMap.params[0]);
      const want = tf.mul(tf.sign(dW), tf.mul(0.01, tf.div(tf.abs(dW), tf.add(tf.abs(dW), 1e-8))));
      assertClose(step, want, 1e-4, `${loss} adam step`);
      tf.dispose([grad, dW, sgd.lossTrace, adam.lossTrace, step, want]);
      [perSet, sgd.featureMap, adam.featureMap].forEach(disposeFeatureMap);
    }
    tf.dispose(keys);
    disposeFeatureMap(phi0);
  });

  it('the span-of-the-memories engine (sgd and normalized, S < 2d) gives the same fit as the W-space one', () => {
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1],
      [1, 0, 1, 1, 1],
    ]);
    for (const B of [1, 3]) {
      const keys = clustered(B === 1 ? [5, 6] : [B, 5, 6], 30 + B);
      const phi0 = linearFeatureMap(6, 8, { init: 'orthogonal', seed: 3 });
      for (const [loss, optimizer] of KINDS.flatMap((l) => (['sgd', 'normalized'] as const).map((o) => [l, o] as const))) {
        // a stable regime: no chaotic amplification of rounding ('uniform' at lr 0.1 overshoots and
        // oscillates from step 4 on wasm, where the two engines then drift apart by ~1e-5 per step)
        const lr = optimizer === 'normalized' ? 0.2 : loss === 'lse' ? 0.02 : 0.03;
        const opts = { steps: 8, lr, loss, optimizer, mask: B === 1 ? undefined : mask };
        const a = fitFeatureMapSpanForTest(keys, phi0, opts, true);
        const b = fitFeatureMapSpanForTest(keys, phi0, opts, false);
        assertClose(a.featureMap.params[0], b.featureMap.params[0], 1e-5, `B=${B} ${loss} ${optimizer} W`);
        assertClose(a.lossTrace, b.lossTrace, 1e-5, `B=${B} ${loss} ${optimizer} trace`);
        assert.ok(a.lossTrace.dataSync()[a.lossTrace.size - 1] < a.lossTrace.dataSync()[0], 'loss went down');
        tf.dispose([a.lossTrace, b.lossTrace]);
        disposeFeatureMap(a.featureMap);
        disposeFeatureMap(b.featureMap);
      }
      assertNoLeak(() => {
        const r = fitFeatureMapSpanForTest(keys, phi0, { steps: 3 }, true);
        return [...r.featureMap.params, r.lossTrace];
      });
      tf.dispose(keys);
      disposeFeatureMap(phi0);
    }
    mask.dispose();
  });

  it('fits the sets independently: A and B together equal A and B alone', () => {
    const A = clustered([7, 5], 3);
    const B = clustered([7, 5], 4);
    const both = tf.stack([A, B]);
    const maskAB = tf.tensor2d([
      [1, 1, 1, 0, 1, 1, 1],
      [1, 1, 1, 1, 1, 1, 0],
    ]);
    for (const [phi0, opts] of [
      [linearFeatureMap(5, 5, { init: 'orthogonal', seed: 1 }), { steps: 6, lr: 0.3, loss: 'uniform' as const }],
      [linearFeatureMap(5, 8), { steps: 6, lr: 0.05, loss: 'lse' as const, optimizer: 'adam' as const }],
      [mlpFeatureMap(5, 4, { seed: 3 }), { steps: 6, lr: 0.2, loss: 'worst-pair' as const }],
    ] as const) {
      const together = fitFeatureMap(both, phi0, { ...opts, mask: maskAB });
      for (let s = 0; s < 2; s++) {
        const mask = slice0(maskAB, s);
        const alone = fitFeatureMap(s === 0 ? A : B, phi0, { ...opts, mask });
        together.featureMap.params.forEach((p, i) => {
          const mine = slice0(p, s);
          assertClose(mine, alone.featureMap.params[i], 1e-5, `${phi0.kind} ${opts.loss} set ${s} param ${i}`);
          mine.dispose();
        });
        const tr = tf.tidy(() => tf.squeeze(tf.slice(together.lossTrace, [0, s], [-1, 1]), [1]));
        assertClose(tr, alone.lossTrace, 1e-5, `${phi0.kind} ${opts.loss} set ${s} trace`);
        tf.dispose([mask, tr, alone.lossTrace]);
        disposeFeatureMap(alone.featureMap);
      }
      tf.dispose(together.lossTrace);
      disposeFeatureMap(together.featureMap);
      disposeFeatureMap(phi0);
    }
    tf.dispose([A, B, both, maskAB]);
  });

  it('broadcasts phi0 over the sets and keeps the leading dims', () => {
    const keys = clustered([2, 3, 6, 4], 5);
    const perHead: FeatureMap = {
      kind: 'linear',
      params: [tf.stack([0, 1, 2].map((s) => linearFeatureMap(4, 4, { init: 'orthogonal', seed: s }).params[0]))],
    };
    const { featureMap, lossTrace } = fitFeatureMap(keys, perHead, { steps: 3 });
    assert.deepEqual(featureMap.params[0].shape, [2, 3, 4, 4]);
    assert.deepEqual(lossTrace.shape, [4, 2, 3]);
    // set (1, 2) alone with its head's phi0
    const one = fitFeatureMap(
      tf.reshape(tf.slice(keys, [1, 2, 0, 0], [1, 1, 6, 4]), [6, 4]),
      { kind: 'linear', params: [slice0(perHead.params[0], 2)] },
      { steps: 3 },
    );
    assertClose(
      tf.reshape(tf.slice(featureMap.params[0], [1, 2, 0, 0], [1, 1, 4, 4]), [4, 4]),
      one.featureMap.params[0],
      1e-5,
      'set (1,2)',
    );
    assert.deepEqual(one.lossTrace.shape, [4]);
    // zero steps: phi0 broadcast, unchanged
    const zero = fitFeatureMap(keys, perHead, { steps: 0 });
    assertClose(zero.featureMap.params[0], tf.stack([perHead.params[0], perHead.params[0]]), 0, 'steps 0');
    assert.deepEqual(zero.lossTrace.shape, [1, 2, 3]);
    tf.dispose([keys, lossTrace, one.lossTrace, zero.lossTrace]);
    [perHead, featureMap, one.featureMap, zero.featureMap].forEach(disposeFeatureMap);
  });

  it('a masked memory does not influence the fit', () => {
    const keys = clustered([2, 6, 4], 6);
    const mask = tf.tensor2d([
      [1, 1, 0, 1, 1, 1],
      [0, 1, 1, 1, 1, 0],
    ]);
    const changed = tf.add(keys, tf.mul(tf.randomNormal([2, 6, 4], 0, 3, 'float32', 7), tf.expandDims(tf.sub(1, mask), -1)));
    const phi0 = linearFeatureMap(4, 4);
    for (const loss of KINDS) {
      const a = fitFeatureMap(keys, phi0, { steps: 5, lr: 0.3, loss, mask });
      const b = fitFeatureMap(changed, phi0, { steps: 5, lr: 0.3, loss, mask });
      assertClose(a.featureMap.params[0], b.featureMap.params[0], 1e-6, `${loss} W`);
      assertClose(a.lossTrace, b.lossTrace, 1e-6, `${loss} trace`);
      tf.dispose([a.lossTrace, b.lossTrace]);
      disposeFeatureMap(a.featureMap);
      disposeFeatureMap(b.featureMap);
    }
    tf.dispose([keys, mask, changed]);
    disposeFeatureMap(phi0);
  });

  it('rowNormalize gives unit rows and leaves the trace alone', () => {
    const keys = clustered([2, 6, 4], 8);
    const phi0 = linearFeatureMap(4, 5, { init: 'normal', seed: 3 });
    const plain = fitFeatureMap(keys, phi0, { steps: 4, lr: 0.5, loss: 'uniform' });
    const unit = fitFeatureMap(keys, phi0, { steps: 4, lr: 0.5, loss: 'uniform', rowNormalize: true });
    assertClose(tf.sqrt(tf.sum(tf.square(unit.featureMap.params[0]), -1)), new Float32Array(10).fill(1), 1e-5, 'row norms');
    const rows = tf.div(plain.featureMap.params[0], tf.sqrt(tf.sum(tf.square(plain.featureMap.params[0]), -1, true)));
    assertClose(unit.featureMap.params[0], rows, 1e-5, 'normalized rows of the plain fit');
    assertClose(unit.lossTrace, plain.lossTrace, 0, 'trace');
    tf.dispose([keys, plain.lossTrace, unit.lossTrace, rows]);
    [phi0, plain.featureMap, unit.featureMap].forEach(disposeFeatureMap);
  });

  it('is detached: no gradient reaches the memory sets or phi0', () => {
    const keys = clustered([2, 5, 3], 9);
    const W0 = linearFeatureMap(3, 3, { init: 'orthogonal', seed: 1 }).params[0];
    const q = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 10);
    const [dKeys, dW0] = tf.grads((k: tf.Tensor, w: tf.Tensor) => {
      const { featureMap, lossTrace } = fitFeatureMap(k, { kind: 'linear', params: [w] }, { steps: 3, loss: 'uniform' });
      return tf.add(tf.sum(applyFeatureMap(featureMap, q)), tf.sum(lossTrace));
    })([keys, W0]);
    assertClose(dKeys, new Float32Array(30), 0, 'd/dkeys');
    assertClose(dW0, new Float32Array(9), 0, 'd/dphi0');
    tf.dispose([keys, W0, q, dKeys, dW0]);
  });

  it('does not leak tensors, also under tf.grad', () => {
    const keys = clustered([2, 5, 3], 11);
    const mask = tf.tensor2d([
      [1, 1, 1, 0, 1],
      [1, 1, 1, 1, 1],
    ]);
    for (const phi0 of [linearFeatureMap(3, 4), mlpFeatureMap(3, 3, { seed: 1 })]) {
      for (const optimizer of ['normalized', 'sgd', 'adam'] as const) {
        assertNoLeak(() => {
          const { featureMap, lossTrace } = fitFeatureMap(keys, phi0, { steps: 3, optimizer, mask });
          return [...featureMap.params, lossTrace];
        });
      }
      assertNoLeak(() => tf.grad((k) => tf.sum(fitFeatureMap(k, phi0, { steps: 2 }).lossTrace))(keys));
      disposeFeatureMap(phi0);
    }
    tf.dispose([keys, mask]);
  });

  it('gives clear errors', () => {
    const keys = tf.zeros([2, 5, 3]);
    const phi0 = linearFeatureMap(3, 3);
    const fit =
      (o: object, k: tf.Tensor = keys, p: FeatureMap = phi0) =>
      () =>
        fitFeatureMap(k, p, o);
    assert.throws(fit({ steps: -1 }), /fitFeatureMap: steps must be an integer >= 0, got -1/);
    assert.throws(fit({ steps: 1.5 }), /steps must be an integer >= 0, got 1.5/);
    assert.throws(fit({ lr: 0 }), /lr must be a finite number > 0, got 0/);
    assert.throws(fit({ lr: Infinity }), /lr must be a finite number > 0, got Infinity/);
    assert.throws(fit({ loss: 'hinge' }), /the separation loss must be one of uniform, worst-pair, lse, got 'hinge'/);
    assert.throws(fit({ optimizer: 'rmsprop' }), /optimizer must be one of normalized, sgd, adam, got 'rmsprop'/);
    assert.throws(fit({ tau: -1 }), /tau must be a finite number > 0, got -1/);
    assert.throws(fit({}, tf.zeros([3])), /fitFeatureMap: memory sets must be \[\.\.\., S, d\], got shape \[3\]/);
    assert.throws(fit({}, tf.zeros([2, 5, 4])), /the memories' dim d = 4 .* does not match the feature map's input dim 3/);
    assert.throws(fit({ mask: tf.ones([2, 4]) }), /mask must broadcast to \[2, 5\].*got shape \[2, 4\]/);
    assert.throws(
      fit({}, keys, { kind: 'linear', params: [tf.zeros([3, 3, 3])] }),
      /the feature map's leading dims \[3\] must broadcast to the memory sets' leading dims \[2\]/,
    );
    const mlp = mlpFeatureMap(3, 3);
    assert.throws(fit({ rowNormalize: true }, keys, mlp), /rowNormalize applies to a linear feature map only, got kind 'mlp'/);
    assert.throws(
      () => fitFeatureMapOp(keys, [tf.zeros([3, 3]), tf.zeros([3])]),
      /fitFeatureMapOp: phi0Params must be \[W\] \(linear\) or \[W1, b1, W2\] \(mlp\), got 2 tensors/,
    );
    assert.throws(() => fitFeatureMapOp(keys, phi0.params, { steps: -2 }), /fitFeatureMapOp: steps must be an integer >= 0, got -2/);
    keys.dispose();
    disposeFeatureMap(phi0);
    disposeFeatureMap(mlp);
  });
});

forEachBackend('fitFeatureMapOp', () => {
  it('runs the same fit as fitFeatureMap', () => {
    const keys = clustered([2, 3, 6, 4], 12);
    const W0 = tf.stack([0, 1, 2].map((s) => linearFeatureMap(4, 4, { init: 'orthogonal', seed: s }).params[0]));
    const opts = { steps: 4, lr: 0.5, loss: 'lse' as const };
    const [W] = fitFeatureMapOp(keys, [W0], 'linear', opts);
    const ref = fitFeatureMap(keys, { kind: 'linear', params: [W0] }, opts);
    assert.deepEqual(W.shape, [2, 3, 4, 4]);
    assertClose(W, ref.featureMap.params[0], 1e-6, 'linear');
    const mlp = mlpFeatureMap(4, 4, { seed: 2 });
    const fitted = fitFeatureMapOp(keys, mlp.params, { ...opts, loss: 'uniform' }); // kind read from 3 params
    const refM = fitFeatureMap(keys, mlp, { ...opts, loss: 'uniform' });
    fitted.forEach((p, i) => assertClose(p, refM.featureMap.params[i], 1e-6, `mlp param ${i}`));
    tf.dispose([keys, W0, W, ref.lossTrace, refM.lossTrace, ...fitted]);
    [ref.featureMap, mlp, refM.featureMap].forEach(disposeFeatureMap);
  });

  it('backward: zero for the keys, the fitted params gradient summed over the sets for phi0', () => {
    const keys = clustered([2, 3, 5, 4], 13);
    const W0 = tf.randomNormal([3, 4, 4], 0, 0.5, 'float32', 14); // per head, broadcast over the batch
    const w = tf.randomNormal([2, 3, 4, 4], 0, 1, 'float32', 15);
    for (const rowNormalize of [false, true]) {
      const [dKeys, dW0] = tf.grads((k: tf.Tensor, p: tf.Tensor) =>
        tf.sum(tf.mul(w, fitFeatureMapOp(k, [p], 'linear', { steps: 2, loss: 'uniform', rowNormalize })[0])),
      )([keys, W0]);
      assertClose(dKeys, new Float32Array(keys.size), 0, 'd/dkeys');
      assertClose(dW0, tf.sum(w, 0), 1e-6, 'd/dphi0 = sum over the batch');
      tf.dispose([dKeys, dW0]);
    }
    // mlp, shared phi0: each param's gradient is the sum over all sets
    const mlp = mlpFeatureMap(4, 3, { seed: 4 });
    const ws = mlp.params.map((p, i) => tf.randomNormal([2, 3, ...p.shape], 0, 1, 'float32', 20 + i));
    const grads = tf.grads((...p: tf.Tensor[]) => {
      const out = fitFeatureMapOp(keys, p, 'mlp', { steps: 2 });
      return tf.addN(out.map((o, i) => tf.sum(tf.mul(ws[i], o))));
    })(mlp.params);
    grads.forEach((g, i) => assertClose(g, tf.sum(ws[i], [0, 1]), 1e-5, `mlp param ${i}`));
    tf.dispose([keys, W0, w, ...ws, ...grads]);
    disposeFeatureMap(mlp);
  });

  it('trains phi0 through optimizer.minimize without leaking', () => {
    const keys = clustered([2, 2, 5, 4], 16);
    const target = tf.randomNormal([2, 2, 5, 4], 0, 1, 'float32', 17);
    const W0 = tf.variable(linearFeatureMap(4, 4).params[0]);
    const opt = tf.train.adam(0.01);
    const loss = () =>
      tf.tidy(() => {
        const [W] = fitFeatureMapOp(keys, [W0], 'linear', { steps: 2, lr: 0.5 });
        return tf.mean(tf.squaredDifference(applyFeatureMap({ kind: 'linear', params: [W] }, keys), target)) as tf.Scalar;
      });
    const before = tf.clone(W0);
    const first = opt.minimize(loss, true)!;
    first.dispose();
    assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(W0, before))).dataSync()[0]) > 0, 'phi0 moved');
    before.dispose();
    assertNoLeak(() => opt.minimize(loss, true));
    const mask = tf.tensor1d([1, 1, 0, 1, 1]);
    assertNoLeak(() => fitFeatureMapOp(keys, [W0], 'linear', { steps: 2, optimizer: 'adam', mask }));
    opt.dispose();
    tf.dispose([keys, target, W0, mask]);
  });
});
