/**
 * Association masks: the 'allowed' form (bool or 0/1) and the 'additive' form (0 / -inf,
 * maskType 'additive') give the same result; a PyTorch-style additive mask passed as an
 * 'allowed' mask is an error (never silently inverted); a per-head mask [B, H, L, S] masks
 * each head on its own.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Hopfield } from '../../src/layers/hopfield.js';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { allowedMask } from '../../src/ops/masks.js';
import { forEachBackend, assertClose } from '../helpers.js';

const B = 2;
const L = 3;
const S = 4;
const F = 8;
const ALLOWED = [
  [1, 0, 1, 1],
  [1, 1, 0, 1],
  [0, 1, 1, 1],
];
const ADDITIVE = ALLOWED.map((r) => r.map((a) => (a ? 0 : -Infinity)));

forEachBackend('association masks: allowed and additive forms, per head', () => {
  it('allowedMask converts both forms and rejects mixed-up values', () => {
    assertClose(allowedMask(tf.tensor2d(ADDITIVE), 'additive', 'f', 'm'), ALLOWED.flat(), 0);
    assertClose(allowedMask(tf.tensor2d(ALLOWED.map((r) => r.map((a) => (a ? 0 : -1e9)))), 'additive', 'f', 'm'), ALLOWED.flat(), 0);
    assertClose(allowedMask(tf.tensor2d(ALLOWED, undefined, 'bool'), 'allowed', 'f', 'm'), ALLOWED.flat(), 0);
    assert.throws(
      () => allowedMask(tf.tensor2d(ADDITIVE), 'allowed', 'f', 'm'),
      /f: m must hold 0\/1 or bool values \(1 = allowed\) with maskType 'allowed' \(it holds negative values: for a PyTorch-style additive mask of 0 \/ -inf pass maskType: 'additive'\)/,
    );
    assert.throws(() => allowedMask(tf.tensor2d([[0.5, 1]]), 'allowed', 'f', 'm'), /must hold 0\/1 or bool values/);
    assert.throws(() => allowedMask(tf.tensor2d([[0, -3]]), 'additive', 'f', 'm'), /score biases are not supported/);
    assert.throws(() => allowedMask(tf.tensor2d([[1, 0]], undefined, 'bool'), 'additive', 'f', 'm'), /must be a float mask/);
  });

  it('Hopfield: bool, 0/1 and additive masks agree; an additive mask without maskType is an error', () => {
    const x = tf.randomNormal([B, L, F], 0, 1, 'float32', 1);
    const stored = tf.randomNormal([B, S, F], 0, 1, 'float32', 2);
    const plain = new Hopfield({ numHeads: 2, seed: 4, updateStepsMax: 1 });
    const additive = new Hopfield({ numHeads: 2, seed: 4, updateStepsMax: 1, maskType: 'additive' });
    const ref = plain.apply([stored, x, stored], { associationMask: tf.tensor2d(ALLOWED) }) as tf.Tensor;
    const viaBool = plain.apply([stored, x, stored], { associationMask: tf.tensor2d(ALLOWED, undefined, 'bool') }) as tf.Tensor;
    const viaAdd = additive.apply([stored, x, stored], { associationMask: tf.tensor2d(ADDITIVE) }) as tf.Tensor;
    assertClose(viaBool, ref, 1e-6, 'bool');
    assertClose(viaAdd, ref, 1e-6, 'additive');
    assert.throws(
      () => plain.apply([stored, x, stored], { associationMask: tf.tensor2d(ADDITIVE) }),
      /Hopfield.*associationMask must hold 0\/1 or bool values.*maskType: 'additive'/,
    );
    assert.equal(additive.getConfig().maskType, 'additive');
    assert.equal(plain.getConfig().maskType, undefined);
    assert.throws(
      () => new Hopfield({ maskType: 'inverted' as never }),
      /Hopfield: maskType must be one of 'allowed', 'additive', got 'inverted'/,
    );
    tf.dispose([x, stored, ref, viaBool, viaAdd]);
  });

  it('Hopfield: a per-head mask [B, H, L, S] masks each head on its own', () => {
    const x = tf.randomNormal([B, L, F], 0, 1, 'float32', 5);
    const layer = new Hopfield({ numHeads: 2, seed: 6, returnAssociation: true });
    // Head 0 may not see memory 0; head 1 sees everything.
    const perHead = tf.tensor4d(buildPerHead(), [B, 2, L, L]);
    const [, assoc] = layer.apply(x, { associationMask: perHead }) as tf.Tensor[];
    const a = assoc.arraySync() as number[][][][];
    for (let b = 0; b < B; b++) {
      for (let l = 0; l < L; l++) {
        assert.equal(a[b][0][l][0], 0, `head 0 row ${l}: memory 0 is masked`);
        assert.ok(a[b][1][l][0] > 0, `head 1 row ${l}: memory 0 is allowed`);
      }
    }
    tf.dispose([x, perHead, assoc]);
  });

  it('UHopAttention and MultiHeadAttention: additive masks with maskType, an error without', () => {
    const q = tf.randomNormal([B, L, F], 0, 1, 'float32', 7);
    const v = tf.randomNormal([B, S, F], 0, 1, 'float32', 8);
    for (const separation of ['softmax', 'sparsemax'] as const) {
      const a = new UHopAttention({ numHeads: 2, keyDim: 4, seed: 9, separation });
      const b = new UHopAttention({ numHeads: 2, keyDim: 4, seed: 9, separation, maskType: 'additive' });
      const ref = a.apply(q, { value: v, attentionMask: tf.tensor2d(ALLOWED) }) as tf.Tensor;
      const add = b.apply(q, { value: v, attentionMask: tf.tensor2d(ADDITIVE) }) as tf.Tensor;
      assertClose(add, ref, 1e-6, `${separation}: additive`);
      assert.throws(
        () => a.apply(q, { value: v, attentionMask: tf.tensor2d(ADDITIVE) }),
        /UHopAttention.*attentionMask must hold 0\/1 or bool values/,
      );
      tf.dispose([ref, add]);
    }
    const mha = new MultiHeadAttention({ numHeads: 2, keyDim: 4, seed: 5 });
    assert.throws(
      () => mha.apply(q, { value: v, attentionMask: tf.tensor2d(ADDITIVE) }),
      /MultiHeadAttention.*attentionMask must hold 0\/1 or bool values/,
    );
    tf.dispose([q, v]);
  });
});

/** [B, 2, L, L] with head 0 blocking memory 0 and head 1 allowing all. */
function buildPerHead(): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < L; l++) for (let s = 0; s < L; s++) out.push(h === 0 && s === 0 ? 0 : 1);
    }
  }
  return out;
}

forEachBackend('retrieve: mask forms', () => {
  it('an additive mask with maskType gives the allowed-form result; without it, an error', async () => {
    const { retrieve } = await import('../../src/ops/retrieve.js');
    const k = tf.randomNormal([S, F], 0, 1, 'float32', 11);
    const q = tf.randomNormal([L, F], 0, 1, 'float32', 12);
    const ref = retrieve(q, k, { mask: tf.tensor2d(ALLOWED), updateStepsMax: 1 }).states;
    const add = retrieve(q, k, { mask: tf.tensor2d(ADDITIVE), maskType: 'additive', updateStepsMax: 1 }).states;
    assertClose(add, ref, 1e-6, 'additive');
    assert.throws(() => retrieve(q, k, { mask: tf.tensor2d(ADDITIVE) }), /retrieve: mask must hold 0\/1 or bool values/);
    tf.dispose([k, q, ref, add]);
  });
});
