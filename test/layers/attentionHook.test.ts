/**
 * The Keras layout of the attention layers: MultiHeadAttention is the base (usable without any
 * U-Hop option), `computeAttention` the hook its subclasses override (UHopAttention among
 * them), and `uhopKeys` gives exactly the keys and fit mask that a layer's Stage-I fit receives.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { MultiHeadAttention, type AttentionMasks } from '../../src/layers/multiHeadAttention.js';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import type { UHopRuntime } from '../../src/layers/hopfieldCore.js';
import type { FeatureMap } from '../../src/ops/types.js';
import { forEachBackend, assertClose } from '../helpers.js';

/** Softmax attention written out from the layer's weights (rank-3 inputs, useBias). */
function referenceMha(layer: MultiHeadAttention, query: tf.Tensor, value: tf.Tensor, allowed?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [qK, qB, kK, kB, vK, vB, oK, oB] = layer.getWeights();
    const proj = (x: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => {
      const [F, H, d] = k.shape;
      const [B, T] = x.shape;
      const y = tf.add(tf.reshape(tf.matMul(tf.reshape(x, [B * T, F]), tf.reshape(k, [F, H * d])), [B, T, H, d]), b);
      return tf.transpose(y, [0, 2, 1, 3]); // [B, H, T, d]
    };
    const q = proj(query, qK, qB);
    const k = proj(value, kK, kB);
    const v = proj(value, vK, vB);
    let scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(layer.keyDim));
    if (allowed) scores = tf.add(scores, tf.mul(tf.sub(1, tf.expandDims(allowed, 1)), -1e9));
    const heads = tf.matMul(tf.softmax(scores), v); // [B, H, T, dv]
    const [B, H, T, dv] = heads.shape;
    const merged = tf.reshape(tf.transpose(heads, [0, 2, 1, 3]), [B * T, H * dv]);
    const out = tf.add(tf.matMul(merged, tf.reshape(oK, [H * dv, oK.shape[2] as number])), oB);
    return tf.reshape(out, [B, T, oK.shape[2] as number]);
  });
}

/** A subclass that doubles the heads in the hook and remembers what it was given. */
class DoubledHeads extends MultiHeadAttention {
  static override className = 'DoubledHeadsTest';
  seen: { shapes: number[][]; mask: number[] | null; training: boolean }[] = [];
  protected override computeAttention(
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    masks: AttentionMasks,
    training: boolean,
  ): [tf.Tensor, tf.Tensor] {
    this.seen.push({ shapes: [q.shape, k.shape, v.shape], mask: masks.attentionMask ? masks.attentionMask.shape : null, training });
    const [heads, scores] = super.computeAttention(q, k, v, masks, training);
    return [tf.mul(heads, 2), scores];
  }
}

/** Records the keys and fit mask its Stage-I fit receives. */
class RecordingUHop extends UHopAttention {
  static override className = 'RecordingUHopTest';
  seen: { keys: tf.Tensor; mask?: tf.Tensor }[] = [];
  protected override fitPhi(keys: tf.Tensor, mask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    this.seen.push({ keys: tf.keep(tf.clone(keys)), ...(mask ? { mask: tf.keep(tf.clone(mask)) } : {}) });
    return super.fitPhi(keys, mask, uhop);
  }
}

class RecordingHopfield extends Hopfield {
  static override className = 'RecordingHopfieldTest';
  seen: { keys: tf.Tensor; mask?: tf.Tensor }[] = [];
  protected override fitPhi(keys: tf.Tensor, mask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    this.seen.push({ keys: tf.keep(tf.clone(keys)), ...(mask ? { mask: tf.keep(tf.clone(mask)) } : {}) });
    return super.fitPhi(keys, mask, uhop);
  }
}

class RecordingPooling extends HopfieldPooling {
  static override className = 'RecordingPoolingTest';
  seen: { keys: tf.Tensor; mask?: tf.Tensor }[] = [];
  protected override fitPhi(keys: tf.Tensor, mask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    this.seen.push({ keys: tf.keep(tf.clone(keys)), ...(mask ? { mask: tf.keep(tf.clone(mask)) } : {}) });
    return super.fitPhi(keys, mask, uhop);
  }
}

function assertSameSets(got: { keys: tf.Tensor; mask?: tf.Tensor }, fitSaw: { keys: tf.Tensor; mask?: tf.Tensor }, what: string): void {
  assert.deepEqual(got.keys.shape, fitSaw.keys.shape, `${what}: keys shape`);
  assertClose(got.keys.dataSync(), fitSaw.keys.dataSync(), 0, `${what}: keys`);
  assert.equal(got.mask == null, fitSaw.mask == null, `${what}: a fit mask on one side only`);
  if (got.mask && fitSaw.mask) {
    assert.deepEqual(got.mask.shape, fitSaw.mask.shape, `${what}: mask shape`);
    assert.deepEqual(Array.from(got.mask.dataSync()), Array.from(fitSaw.mask.dataSync()), `${what}: mask`);
  }
}

forEachBackend('MultiHeadAttention as the base class', () => {
  it('is usable without any U-Hop option: equals softmax attention written out from its weights, masks included', () => {
    const mha = new MultiHeadAttention({ numHeads: 2, keyDim: 3, seed: 11 });
    const q = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 1);
    const v = tf.randomNormal([2, 6, 5], 0, 1, 'float32', 2);
    const allowed = tf.tensor3d(
      Array.from({ length: 2 * 4 * 6 }, (_, i) => (i % 5 === 0 ? 0 : 1)),
      [2, 4, 6],
    );
    const plain = mha.call(q, { value: v }) as tf.Tensor;
    const masked = mha.call(q, { value: v, attentionMask: allowed }) as tf.Tensor;
    const refPlain = referenceMha(mha, q, v);
    const refMasked = referenceMha(mha, q, v, allowed);
    assertClose(plain.dataSync(), refPlain.dataSync(), 1e-5, 'plain');
    assertClose(masked.dataSync(), refMasked.dataSync(), 1e-5, 'masked');
    // The mask changes the output (the check above could not pass with the mask ignored).
    assert.ok(tf.max(tf.abs(tf.sub(plain, masked))).dataSync()[0] > 1e-3);
    // Not a UHopAttention, no Hopfield keys in its config, and the Hopfield options are unknown to it.
    assert.ok(!(mha instanceof UHopAttention));
    assert.ok(new UHopAttention({ numHeads: 1, keyDim: 2, seed: 1 }) instanceof MultiHeadAttention);
    const cfg = mha.getConfig();
    for (const key of ['separation', 'featureMap', 'fitSteps', 'updateStepsMax', 'beta']) assert.ok(!(key in cfg), key);
    assert.throws(
      () => new MultiHeadAttention({ numHeads: 2, keyDim: 3, featureMap: 'linear' } as never),
      /MultiHeadAttention.*featureMap/,
    );
    assert.deepEqual(
      mha.weights.map((w) => w.name.slice(w.name.indexOf('/') + 1)),
      [
        'query/kernel',
        'query/bias',
        'key/kernel',
        'key/bias',
        'value/kernel',
        'value/bias',
        'attention_output/kernel',
        'attention_output/bias',
      ],
    );
    tf.dispose([q, v, allowed, plain, masked, refPlain, refMasked]);
  });

  it('trains in a functional model and round-trips through its config', async () => {
    const x = tfl.input({ shape: [4, 6] });
    const mha = new MultiHeadAttention({ numHeads: 2, keyDim: 3, seed: 5, name: 'mha' });
    const h = mha.apply(x, { value: x }) as tfl.SymbolicTensor;
    const y = tfl.layers.globalAveragePooling1d({}).apply(h) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: y });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    const xs = tf.randomNormal([8, 4, 6], 0, 1, 'float32', 3);
    const ys = tf.randomNormal([8, 6], 0, 1, 'float32', 4);
    const before = mha.getWeights().map((w) => w.dataSync().slice());
    const hist = await model.fit(xs, ys, { epochs: 2, batchSize: 8, verbose: 0, shuffle: false });
    assert.ok((hist.history.loss as number[]).every(Number.isFinite));
    const after = mha.getWeights();
    assert.ok(
      after.every((w, i) => tf.util.arraysEqual(w.dataSync(), before[i]) === false),
      'every projection weight trains',
    );
    const copy = MultiHeadAttention.fromConfig(MultiHeadAttention, mha.getConfig()) as MultiHeadAttention;
    assert.equal(copy.getClassName(), 'MultiHeadAttention');
    assert.deepEqual(copy.getConfig(), mha.getConfig());
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it("a subclass's computeAttention is what call, apply and a model's predict run", () => {
    const base = new MultiHeadAttention({ numHeads: 2, keyDim: 3, seed: 7 });
    const sub = new DoubledHeads({ numHeads: 2, keyDim: 3, seed: 7 });
    const q = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 5);
    const v = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 6);
    const mask = tf.ones([2, 4, 3]);
    const a = base.call(q, { value: v }) as tf.Tensor;
    const b = sub.call(q, { value: v, attentionMask: mask, training: true }) as tf.Tensor;
    // Same seed, same weights; the output projection is affine: sub - bias = 2 (base - bias).
    const oB = base.getWeights()[7];
    assertClose(tf.sub(b, oB).dataSync(), tf.mul(tf.sub(a, oB), 2).dataSync(), 1e-5, 'doubled heads');
    assert.deepEqual(sub.seen[sub.seen.length - 1], {
      shapes: [
        [2, 2, 4, 3],
        [2, 2, 3, 3],
        [2, 2, 3, 3],
      ],
      mask: [2, 1, 4, 3],
      training: true,
    });
    const x = tfl.input({ shape: [4, 5] });
    const m = tfl.input({ shape: [3, 5] });
    const model = tfl.model({ inputs: [x, m], outputs: sub.apply(x, { value: m }) as tfl.SymbolicTensor });
    const n = sub.seen.length;
    const p = model.predict([q, v]) as tf.Tensor;
    assert.equal(sub.seen.length, n + 1, 'predict ran the hook');
    assertClose(tf.sub(p, oB).dataSync(), tf.mul(tf.sub(a, oB), 2).dataSync(), 1e-5, 'predict');
    tf.dispose([q, v, mask, a, b, p]);
    model.dispose();
  });
});

forEachBackend('uhopKeys gives what the Stage-I fit receives', () => {
  it('UHopAttention: additive attention mask, fully blocked memories, per-sample masks', () => {
    const layer = new RecordingUHop({ numHeads: 2, keyDim: 3, featureMap: 'linear', fitSteps: 1, maskType: 'additive', seed: 21 });
    const q = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 7);
    const v = tf.randomNormal([2, 6, 5], 0, 1, 'float32', 8);
    // 0 = allowed, -Infinity = blocked; memory 2 of sample 0 and memories 4, 5 of sample 1 are blocked for every query.
    const blocked = (b: number, s: number) => (b === 0 && s === 2) || (b === 1 && s >= 4) || (s === 1 && b === 0);
    const am = tf.tensor3d(
      Array.from({ length: 2 * 4 * 6 }, (_, i) => {
        const b = Math.floor(i / 24);
        const t = Math.floor(i / 6) % 4;
        const s = i % 6;
        return blocked(b, s) && !(s === 1 && t === 0) ? -Infinity : 0;
      }),
      [2, 4, 6],
    );
    const out = layer.call(q, { value: v, attentionMask: am }) as tf.Tensor;
    const fitSaw = layer.seen[layer.seen.length - 1];
    const got = layer.uhopKeys(q, { value: v, attentionMask: am });
    assertSameSets(got, fitSaw, 'UHopAttention');
    // The mask leaves out exactly the memories no query may attend to (memory 1 of sample 0 stays: query 0 may).
    assert.deepEqual(Array.from(got.mask!.dataSync()), [1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    tf.dispose([q, v, am, out, got.keys, got.mask!, ...layer.seen.flatMap((s) => [s.keys, s.mask ?? []])]);
  });

  it('Hopfield: NaN in padded stored patterns, bias and zero memories', () => {
    const layer = new RecordingHopfield({
      numHeads: 2,
      featureMap: 'linear',
      featureDim: 4,
      fitSteps: 1,
      concatBiasPattern: true,
      addZeroAssociation: true,
      normalizeHopfieldSpace: true,
      seed: 31,
    });
    const pad = tf.tensor2d([
      [1, 1, 1, 0, 0],
      [1, 0, 1, 1, 1],
    ]);
    const x0 = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 9);
    const x = tf.where(tf.cast(tf.expandDims(pad, 2), 'bool'), x0, tf.fill([2, 5, 6], NaN));
    const out = layer.apply([x, pad]) as tf.Tensor;
    assert.ok(Array.from(out.dataSync()).every(Number.isFinite));
    const fitSaw = layer.seen[layer.seen.length - 1];
    const got = layer.uhopKeys([x, pad]);
    assertSameSets(got, fitSaw, 'Hopfield');
    assert.ok(Array.from(got.keys.dataSync()).every(Number.isFinite), 'padded keys are zeroed, not NaN');
    assert.deepEqual(Array.from(got.mask!.dataSync()), [1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0]);
    tf.dispose([pad, x0, x, out, got.keys, got.mask!, ...layer.seen.flatMap((s) => [s.keys, s.mask ?? []])]);
  });

  it('HopfieldPooling: no mask at all', () => {
    const layer = new RecordingPooling({ numHeads: 2, featureMap: 'mlp', featureDim: 4, fitSteps: 1, seed: 41 });
    const x = tf.randomNormal([3, 5, 6], 0, 1, 'float32', 10);
    const out = layer.apply(x) as tf.Tensor;
    const got = layer.uhopKeys(x);
    assertSameSets(got, layer.seen[layer.seen.length - 1], 'HopfieldPooling');
    assert.equal(got.mask, undefined);
    tf.dispose([x, out, got.keys, ...layer.seen.flatMap((s) => [s.keys, s.mask ?? []])]);
  });
});
