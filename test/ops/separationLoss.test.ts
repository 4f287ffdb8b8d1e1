import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients tf.grad needs
import { separationLoss, separationLossAndGrad } from '../../src/ops/separationLoss.js';
import type { SeparationLossKind } from '../../src/ops/types.js';
import { disposePairConsts, makePairConsts, pairLossAndGradF, type PairLayout } from '../../src/ops/stage1Internal.js';
import { forEachBackend, assertClose, assertNoLeak, checkGradient } from '../helpers.js';

const KINDS: SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

/**
 * The losses written out the straightforward way (explicit pairwise distances over i < j), for
 * sets [B, S, D] where every set has at least two unmasked memories.
 */
function reference(F: tf.Tensor, kind: SeparationLossKind, mask?: tf.Tensor, t = 2, tau = 0.1): tf.Tensor {
  const [B, S] = F.shape;
  const u = tf.div(F, tf.sqrt(tf.add(tf.sum(tf.square(F), -1, true), 1e-12)));
  const dist2 = tf.sum(tf.square(tf.sub(tf.expandDims(u, 2), tf.expandDims(u, 1))), -1); // [B,S,S]
  const m = mask ?? tf.ones([B, S]);
  const upper = tf.sub(tf.linalg.bandPart(tf.ones([S, S]), 0, -1), tf.eye(S));
  const pairs = tf.mul(tf.mul(tf.expandDims(m, 2), tf.expandDims(m, 1)), upper);
  const count = tf.sum(pairs, [1, 2]);
  if (kind === 'uniform') return tf.log(tf.div(tf.sum(tf.mul(pairs, tf.exp(tf.mul(dist2, -t))), [1, 2]), count));
  if (kind === 'lse') {
    const dots = tf.matMul(u, u, false, true);
    return tf.div(tf.log(tf.div(tf.sum(tf.mul(pairs, tf.exp(tf.div(dots, tau))), [1, 2]), count)), tf.sum(m, 1));
  }
  // worst pair: max over the pairs (others pushed far below)
  return tf.max(tf.add(tf.mul(dist2, -t), tf.mul(tf.sub(1, pairs), -1e4)), [1, 2]);
}

/**
 * The losses of every set of a flat [B, S, D] array in float64 plain JS (pairs i < j of unmasked
 * memories, unit features u = F / sqrt(|F|^2 + 1e-12)): the float64 reference of checkGradient.
 */
function reference64(flat: number[], [B, S, D]: number[], kind: SeparationLossKind, mask?: number[][], t = 2, tau = 0.1): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    const keep = Array.from({ length: S }, (_, i) => (mask ? mask[b][i] !== 0 : true));
    const u = Array.from({ length: S }, (_, i) => {
      const row = flat.slice((b * S + i) * D, (b * S + i + 1) * D);
      const n = Math.sqrt(row.reduce((acc, x) => acc + x * x, 0) + 1e-12);
      return row.map((x) => x / n);
    });
    const terms: number[] = [];
    for (let i = 0; i < S; i++) {
      for (let j = i + 1; j < S; j++) {
        if (!keep[i] || !keep[j]) continue;
        const dot = u[i].reduce((acc, x, k) => acc + x * u[j][k], 0);
        const d2 = u[i].reduce((acc, x, k) => acc + (x - u[j][k]) ** 2, 0);
        terms.push(kind === 'uniform' ? Math.exp(-t * d2) : kind === 'lse' ? Math.exp(dot / tau) : -t * d2);
      }
    }
    const mean = terms.reduce((x, y) => x + y, 0) / terms.length;
    if (kind === 'uniform') out.push(Math.log(mean));
    else if (kind === 'lse') out.push(Math.log(mean) / keep.filter(Boolean).length);
    else out.push(Math.max(...terms));
  }
  return out;
}

forEachBackend('separationLoss', () => {
  it('matches closed forms: two orthogonal, two equal and two opposite unit vectors', () => {
    const orth = tf.tensor2d([
      [1, 0, 0],
      [0, 2, 0],
    ]); // norms do not matter
    const equal = tf.tensor2d([
      [1, 1, 0],
      [3, 3, 0],
    ]);
    const opposite = tf.tensor2d([
      [0, 0, 1],
      [0, 0, -0.5],
    ]);
    const t = 2;
    const tau = 0.1;
    // ||u-v||^2 = 2, 0, 4; <u,v> = 0, 1, -1
    const expected: Record<SeparationLossKind, number[]> = {
      uniform: [-2 * t, 0, -4 * t],
      'worst-pair': [-2 * t, 0, -4 * t],
      lse: [0, 1 / tau / 2, -1 / tau / 2],
    };
    for (const kind of KINDS) {
      const got = [orth, equal, opposite].map((x) => {
        const l = separationLoss(x, kind);
        assert.deepEqual(l.shape, [], 'one set -> scalar');
        const v = l.dataSync()[0];
        l.dispose();
        return v;
      });
      assertClose(got, expected[kind], 1e-5, kind);
    }
    tf.dispose([orth, equal, opposite]);
  });

  it("'uniform' and 'lse' of a regular simplex match their closed forms", () => {
    // S = 5 unit vectors with <u_i, u_j> = -1/4 for i != j: centred standard basis of R^5.
    const S = 5;
    const simplex = tf.tidy(() => tf.sub(tf.eye(S), 1 / S));
    const g = -1 / (S - 1);
    const uni = separationLoss(simplex, 'uniform', { t: 1.5 });
    assertClose(uni, [-1.5 * (2 - 2 * g)], 1e-5, 'uniform');
    const lse = separationLoss(simplex, 'lse', { tau: 0.2 });
    assertClose(lse, [g / 0.2 / S], 1e-5, 'lse');
    const worst = separationLoss(simplex, 'worst-pair');
    assertClose(worst, [-2 * (2 - 2 * g)], 1e-5, 'worst-pair');
    tf.dispose([simplex, uni, lse, worst]);
  });

  it('the gradient equals tf.grad of the straightforward formula, with and without a mask', () => {
    const F = tf.randomNormal([3, 6, 4], 0, 1, 'float32', 1);
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 1, 1],
      [1, 0, 1, 1, 0, 1],
      [0, 1, 1, 0, 0, 0],
    ]);
    for (const kind of KINDS) {
      for (const m of [undefined, mask]) {
        const { loss, grad } = separationLossAndGrad(F, kind, { mask: m });
        const refLoss = reference(F, kind, m);
        const refGrad = tf.grad((x) => tf.sum(reference(x, kind, m)))(F);
        const what = `${kind}${m ? ' masked' : ''}`;
        assert.deepEqual(loss.shape, [3]);
        assert.deepEqual(grad.shape, [3, 6, 4]);
        assertClose(loss, refLoss, 1e-5, `${what} loss`);
        assertClose(grad, refGrad, 1e-4, `${what} grad`);
        // tf.grad of separationLoss itself uses the same analytic gradient
        const viaTape = tf.grad((x) => tf.sum(separationLoss(x, kind, { mask: m })))(F);
        assertClose(viaTape, refGrad, 1e-4, `${what} tf.grad(separationLoss)`);
        tf.dispose([loss, grad, refLoss, refGrad, viaTape]);
      }
    }
    tf.dispose([F, mask]);
  });

  it('the gradient agrees with float64 finite differences', () => {
    const F = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 2);
    const mask = tf.tensor2d([
      [1, 1, 0, 1],
      [1, 1, 1, 1],
    ]);
    const M = mask.arraySync() as number[][];
    for (const kind of KINDS) {
      // tf.grad of separationLoss runs its analytic gradient (a customGrad); float64 reference.
      checkGradient(
        (x) => separationLoss(x, kind),
        F,
        (v) => reference64(v, F.shape, kind),
      );
      checkGradient(
        (x) => separationLoss(x, kind, { mask }),
        F,
        (v) => reference64(v, F.shape, kind, M),
      );
    }
    tf.dispose([F, mask]);
  });

  it('excludes pairs with a masked memory: changing a masked memory changes nothing', () => {
    const F = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 3);
    const mask = tf.tensor2d([
      [1, 0, 1, 1, 0],
      [1, 1, 1, 0, 1],
    ]);
    const noise = tf.mul(tf.randomNormal([2, 5, 3], 0, 5, 'float32', 4), tf.expandDims(tf.sub(1, mask), -1));
    const F2 = tf.add(F, noise); // only masked rows differ
    for (const kind of KINDS) {
      const a = separationLossAndGrad(F, kind, { mask });
      const b = separationLossAndGrad(F2, kind, { mask });
      assertClose(a.loss, b.loss, 1e-6, `${kind} loss`);
      assertClose(a.grad, b.grad, 1e-6, `${kind} grad`);
      const maskedGrad = tf.mul(a.grad, tf.expandDims(tf.sub(1, mask), -1));
      assertClose(maskedGrad, new Float32Array(30), 0, `${kind}: masked memories get zero gradient`);
      // and the loss equals that of the set with the masked memories removed
      const kept = tf.gather(tf.reshape(F, [10, 3]), [0, 2, 3]);
      const alone = separationLoss(kept, kind);
      assertClose(tf.slice(a.loss, [0], [1]), alone, 1e-5, `${kind} equals the loss of the kept memories`);
      tf.dispose([a.loss, a.grad, b.loss, b.grad, maskedGrad, kept, alone]);
    }
    tf.dispose([F, mask, noise, F2]);
  });

  it('both memory layouts and both row log-sum-exp paths give the same loss and gradient', () => {
    // set 0 random; set 1: one memory opposite to all others (its row has only logits -scale);
    // set 2: masked memories; set 3: two antipodal memories (every logit at its minimum)
    const v = [0.3, -1, 0.5, 2];
    const F = tf.tidy(() =>
      tf.stack([
        tf.randomNormal([5, 4], 0, 1, 'float32', 21),
        tf.tensor2d([v, v, v, v, v.map((x) => -x)]),
        tf.randomNormal([5, 4], 0, 1, 'float32', 22),
        tf.tensor2d([v, v.map((x) => -2 * x), [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
      ]),
    );
    const mask = tf.tensor2d([
      [1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1],
      [0, 1, 1, 0, 1],
      [1, 1, 0, 0, 0],
    ]);
    for (const kind of ['uniform', 'lse'] as const) {
      for (const spec of [
        { kind, t: 2, tau: 0.1 },
        { kind, t: 9, tau: 0.03 },
      ]) {
        const results: Array<{ loss: tf.Tensor; dF: tf.Tensor; what: string }> = [];
        for (const layout of ['bsd', 'dbs'] as PairLayout[]) {
          for (const rowRef of [false, true]) {
            const c = makePairConsts(4, 5, mask, spec, layout, rowRef);
            assert.equal(c.rowRef, rowRef, `rowRef used for ${JSON.stringify(spec)}`);
            const { loss, dF } = tf.tidy(() => {
              const out = pairLossAndGradF(layout === 'bsd' ? F : tf.transpose(F, [2, 0, 1]), c, true);
              return { loss: out.loss, dF: layout === 'bsd' ? out.dF! : tf.transpose(out.dF!, [1, 2, 0]) };
            });
            disposePairConsts(c);
            results.push({ loss, dF, what: `${kind} t=${spec.t} tau=${spec.tau} ${layout} rowRef=${rowRef}` });
          }
        }
        const ref = reference(F, kind, mask, spec.t, spec.tau);
        for (const r of results) {
          assertClose(r.loss, ref, 1e-5, `${r.what} loss`);
          assertClose(r.dF, results[0].dF, 1e-4, `${r.what} grad`);
          assert.ok(r.dF.dataSync().every(Number.isFinite), `${r.what} finite`);
        }
        tf.dispose([ref, ...results.flatMap((r) => [r.loss, r.dF])]);
      }
    }
    tf.dispose([F, mask]);
  });

  it("the feature-major layout's feature sums (pooling over chunks of B*S, or tf.sum) agree with the set-major layout", () => {
    // B*S = 2560: pooled as 4 x 640 channels (in one 2560-channel pool, XNNPACK keeps a 2560-float
    // accumulator on the wasm stack; 16384 channels overflow it);
    // B*S = 1031 (prime, > 1024): no usable chunk, the tf.sum fallback
    for (const [B, S, D] of [
      [40, 64, 8],
      [1, 1031, 3],
    ]) {
      const F = tf.randomNormal([B, S, D], 0.5, 1, 'float32', 7);
      const mask = tf.cast(tf.greater(tf.randomUniform([B, S], 0, 1, 'float32', 8), 0.2), 'float32') as tf.Tensor2D;
      const spec = { kind: 'lse' as const, t: 2, tau: 0.1 };
      const out = (['bsd', 'dbs'] as PairLayout[]).map((layout) => {
        const c = makePairConsts(B, S, mask, spec, layout);
        const r = tf.tidy(() => {
          const o = pairLossAndGradF(layout === 'bsd' ? F : tf.transpose(F, [2, 0, 1]), c, true);
          return { loss: o.loss, dF: layout === 'bsd' ? o.dF! : tf.transpose(o.dF!, [1, 2, 0]) };
        });
        disposePairConsts(c);
        return r;
      });
      assertClose(out[1].loss, out[0].loss, 1e-5, `B=${B} S=${S} loss`);
      assertClose(out[1].dF, out[0].dF, 1e-4, `B=${B} S=${S} grad`);
      tf.dispose([F, mask, ...out.flatMap((o) => [o.loss, o.dF])]);
    }
  });

  it('sets with fewer than two unmasked memories have loss 0 and gradient 0 (no NaN)', () => {
    const F = tf.randomNormal([3, 4, 2], 0, 1, 'float32', 5);
    const mask = tf.tensor2d([
      [0, 0, 0, 0],
      [0, 0, 1, 0],
      [1, 1, 0, 0],
    ]);
    const one = tf.randomNormal([1, 3], 0, 1, 'float32', 6); // S = 1
    for (const kind of KINDS) {
      const { loss, grad } = separationLossAndGrad(F, kind, { mask });
      const l = loss.dataSync();
      assert.equal(l[0], 0);
      assert.equal(l[1], 0);
      assert.ok(Number.isFinite(l[2]) && l[2] !== 0);
      const g = grad.dataSync();
      assert.ok(g.every(Number.isFinite), `${kind}: finite gradient`);
      assert.ok(
        g.slice(0, 16).every((v) => v === 0),
        `${kind}: zero gradient for the degenerate sets`,
      );
      const single = separationLossAndGrad(one, kind);
      assert.equal(single.loss.dataSync()[0], 0);
      assert.ok(single.grad.dataSync().every((v) => v === 0));
      tf.dispose([loss, grad, single.loss, single.grad]);
    }
    tf.dispose([F, mask, one]);
  });

  it('is numerically stable for small temperatures and extreme feature norms', () => {
    const big = tf.tensor2d([
      [1e4, 0],
      [0, 1e4],
      [1e4, 1e4],
    ]);
    const tiny = tf.mul(big, 1e-7);
    // <u,v>: 0, 1/sqrt2, 1/sqrt2
    const c = Math.SQRT1_2;
    for (const x of [big, tiny]) {
      const l = separationLoss(x, 'lse', { tau: 0.005 }).dataSync()[0];
      // log mean exp(g/tau) / 3 with g in {0, c, c}: dominated by c/tau
      const want = (c / 0.005 + Math.log((2 + Math.exp(-c / 0.005)) / 3)) / 3;
      assert.ok(Math.abs(l - want) < 1e-3 * Math.abs(want), `lse ${l} vs ${want}`);
      const u = separationLoss(x, 'uniform', { t: 60 }).dataSync()[0];
      // ||u-v||^2: 2, 2 - 2c, 2 - 2c
      const wantU = -60 * (2 - 2 * c) + Math.log((2 + Math.exp(-60 * 2 * c)) / 3);
      assert.ok(Math.abs(u - wantU) < 1e-3 * Math.abs(wantU), `uniform ${u} vs ${wantU}`);
      const { grad } = separationLossAndGrad(x, 'lse', { tau: 0.005 });
      assert.ok(grad.dataSync().every(Number.isFinite));
      grad.dispose();
    }
    tf.dispose([big, tiny]);
  });

  it('keeps the leading dims and accepts a broadcastable or boolean mask', () => {
    const F = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 7);
    const loss = separationLoss(F, 'uniform');
    assert.deepEqual(loss.shape, [2, 3]);
    const maskRow = tf.tensor1d([1, 1, 0, 1, 1]);
    const full = tf.tile(tf.reshape(maskRow, [1, 1, 5]), [2, 3, 1]);
    const a = separationLossAndGrad(F, 'lse', { mask: maskRow });
    const b = separationLossAndGrad(F, 'lse', { mask: tf.cast(full, 'bool') });
    assertClose(a.loss, b.loss, 1e-6, 'loss');
    assertClose(a.grad, b.grad, 1e-6, 'grad');
    tf.dispose([F, loss, maskRow, full, a.loss, a.grad, b.loss, b.grad]);
  });

  it('does not leak tensors, also under tf.grad', () => {
    const F = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 8);
    const mask = tf.tensor2d([
      [1, 1, 0, 1, 1],
      [1, 1, 1, 1, 1],
    ]);
    for (const kind of KINDS) {
      assertNoLeak(() => separationLoss(F, kind));
      assertNoLeak(() => separationLossAndGrad(F, kind, { mask }));
      assertNoLeak(() => tf.grad((x) => tf.sum(separationLoss(x, kind, { mask })))(F));
    }
    tf.dispose([F, mask]);
  });

  it('gives clear errors', () => {
    const F = tf.zeros([2, 3, 4]);
    assert.throws(() => separationLoss(tf.zeros([4])), /separationLoss: features must be \[\.\.\., S, D\].*got shape \[4\]/);
    assert.throws(() => separationLoss(F, 'cosine' as never), /the separation loss must be one of uniform, worst-pair, lse, got 'cosine'/);
    assert.throws(() => separationLossAndGrad(F, 'uniform', { t: 0 }), /separationLossAndGrad: t must be a finite number > 0, got 0/);
    assert.throws(() => separationLoss(F, 'lse', { tau: NaN }), /tau must be a finite number > 0, got NaN/);
    assert.throws(() => separationLoss(F, 'lse', { mask: tf.ones([2, 4]) }), /mask must broadcast to \[2, 3\].*got shape \[2, 4\]/);
    F.dispose();
  });
});
