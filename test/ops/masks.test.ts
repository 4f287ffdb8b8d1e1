/**
 * The value check of a numeric association mask reads data back once per mask tensor, not on
 * every call: a layer called again with the same mask does not sync, and a bad mask is still a
 * clear error on every call (it is never remembered as checked).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Hopfield } from '../../src/layers/hopfield.js';
import { allowedMask } from '../../src/ops/masks.js';
import { forEachBackend, assertClose } from '../helpers.js';

const ALLOWED = [
  [1, 0, 1, 1],
  [1, 1, 0, 1],
  [0, 1, 1, 1],
];
const ADDITIVE = ALLOWED.map((r) => r.map((a) => (a ? 0 : -Infinity)));

/** Number of dataSync / arraySync calls (read-backs) made while `f` runs. */
function readBacks(f: () => void): number {
  const proto = tf.Tensor.prototype as unknown as Record<'dataSync' | 'arraySync', (...a: unknown[]) => unknown>;
  const saved = { dataSync: proto.dataSync, arraySync: proto.arraySync };
  let n = 0;
  for (const k of ['dataSync', 'arraySync'] as const) {
    proto[k] = function (this: unknown, ...a: unknown[]) {
      n++;
      return saved[k].apply(this, a);
    };
  }
  try {
    f();
  } finally {
    proto.dataSync = saved.dataSync;
    proto.arraySync = saved.arraySync;
  }
  return n;
}

forEachBackend('association masks: one value check per mask tensor', () => {
  it('allowedMask reads a numeric mask back on its first use only, in either form; a bool mask never', () => {
    for (const [form, values] of [
      ['allowed', ALLOWED],
      ['additive', ADDITIVE],
    ] as const) {
      const mask = tf.tensor2d(values);
      const outs: tf.Tensor[] = [];
      assert.ok(readBacks(() => outs.push(allowedMask(mask, form, 'f', 'm'))) >= 1, `${form}: the first use checks`);
      assert.equal(
        readBacks(() => outs.push(allowedMask(mask, form, 'f', 'm'))),
        0,
        `${form}: the second use reads nothing back`,
      );
      for (const o of outs) assertClose(o, ALLOWED.flat(), 0, form);
      tf.dispose([mask, ...outs]);
    }
    const bool = tf.tensor2d(ALLOWED, undefined, 'bool');
    const out = [] as tf.Tensor[];
    assert.equal(
      readBacks(() => out.push(allowedMask(bool, 'allowed', 'f', 'm'))),
      0,
      'a bool mask needs no check',
    );
    tf.dispose([bool, ...out]);
  });

  it('a bad mask is an error on every use, and checked per form', () => {
    const torchStyle = tf.tensor2d(ADDITIVE);
    for (let i = 0; i < 2; i++) {
      assert.throws(() => allowedMask(torchStyle, 'allowed', 'f', 'm'), /f: m must hold 0\/1 or bool values/);
    }
    // valid as 'additive' (checked and remembered as such) is still an error as 'allowed'
    allowedMask(torchStyle, 'additive', 'f', 'm').dispose();
    assert.throws(() => allowedMask(torchStyle, 'allowed', 'f', 'm'), /must hold 0\/1 or bool values/);
    const soft = tf.tensor2d([[0, -3]]);
    for (let i = 0; i < 2; i++) assert.throws(() => allowedMask(soft, 'additive', 'f', 'm'), /score biases are not supported/);
    tf.dispose([torchStyle, soft]);
  });

  it('Hopfield: a second call with the same numeric mask reads nothing back and gives the same output', () => {
    const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1);
    const stored = tf.randomNormal([2, 4, 8], 0, 1, 'float32', 2);
    const layer = new Hopfield({ numHeads: 2, seed: 4 });
    const mask = tf.tensor2d(ALLOWED);
    const outs: tf.Tensor[] = [];
    const call = () => outs.push(layer.apply([stored, x, stored], { associationMask: mask }) as tf.Tensor);
    call(); // builds the layer and checks the mask
    assert.equal(readBacks(call), 0, 'no read-back on the second call');
    assertClose(outs[1], outs[0], 0, 'same output');
    tf.dispose([x, stored, mask, ...outs]);
  });
});
