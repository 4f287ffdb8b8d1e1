import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients tf.grads needs
import { batchMatMul, bmm } from '../../src/ops/batchMatMul.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';

forEachBackend('bmm / batchMatMul', () => {
  it('bmm equals tf.matMul for every transpose combination, one set (2-D path on wasm) and many (depthwise path)', () => {
    for (const N of [1, 3]) {
      const [m, k, n] = [5, 4, 6];
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = tf.randomNormal(ta ? [N, k, m] : [N, m, k], 0, 1, 'float32', 1);
          const b = tf.randomNormal(tb ? [N, n, k] : [N, k, n], 0, 1, 'float32', 2);
          const got = bmm(a, b, ta, tb);
          const want = tf.matMul(a, b, ta, tb);
          assertClose(got, want, 1e-5, `N=${N} transposeA=${ta} transposeB=${tb}`);
          tf.dispose([a, b, got, want]);
        }
      }
    }
  });

  it('batchMatMul equals tf.matMul in value and gradient, with one product and with several', () => {
    for (const lead of [
      [1, 1],
      [2, 3],
    ]) {
      const a = tf.randomNormal([...lead, 5, 4], 0, 1, 'float32', 3);
      const w = tf.randomNormal([...lead, 5, 6], 0, 1, 'float32', 4);
      for (const transposeB of [true, false]) {
        const b = tf.randomNormal(transposeB ? [...lead, 6, 4] : [...lead, 4, 6], 0, 1, 'float32', 5);
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, batchMatMul(x, y, transposeB)));
        const r = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(w, tf.matMul(x, y, false, transposeB)));
        const what = `lead [${lead}] transposeB=${transposeB}`;
        assertClose(f(a, b), r(a, b), 1e-5, `${what} value`);
        const g = tf.grads(f)([a, b]);
        const rg = tf.grads(r)([a, b]);
        assertClose(g[0], rg[0], 1e-4, `${what} dA`);
        assertClose(g[1], rg[1], 1e-4, `${what} dB`);
        assertNoLeak(() => tf.grads(f)([a, b]));
        tf.dispose([b, ...g, ...rg]);
      }
      tf.dispose([a, w]);
    }
  });
});
