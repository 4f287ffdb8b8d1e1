import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { replaceAttention, attentionProjectionWeights } from '../../src/layers/replaceAttention.js';
import { forEachBackend, assertClose } from '../helpers.js';

/**
 * A small encoder-decoder block: causal self-attention on the target, cross-attention from
 * target to a source with its own feature size (and optionally an attention mask input),
 * residuals, layer norm and a dense head.
 */
function buildModel(withMask: boolean): tfl.LayersModel {
  const target = tfl.input({ shape: [5, 8], name: 'target' });
  const source = tfl.input({ shape: [7, 6], name: 'source' });
  const mask = withMask ? tfl.input({ shape: [5, 7], name: 'mask' }) : undefined;
  const h = tfl.layers
    .dense({ units: 8, activation: 'relu', name: 'embed', kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }) })
    .apply(target) as tfl.SymbolicTensor;
  const selfAtt = new MultiHeadAttention({ numHeads: 2, keyDim: 4, name: 'self_attention', seed: 101 });
  const s = selfAtt.apply(h, { value: h, useCausalMask: true }) as tfl.SymbolicTensor;
  const h1 = tfl.layers.layerNormalization({ name: 'norm1' }).apply(tfl.layers.add().apply([h, s])) as tfl.SymbolicTensor;
  const crossAtt = new MultiHeadAttention({ numHeads: 3, keyDim: 2, valueDim: 3, name: 'cross_attention', seed: 102 });
  const c = crossAtt.apply(h1, { value: source, ...(mask ? { attentionMask: mask } : {}) }) as tfl.SymbolicTensor;
  const h2 = tfl.layers.add().apply([h1, c]) as tfl.SymbolicTensor;
  const out = tfl.layers
    .dense({ units: 3, name: 'head', kernelInitializer: tfl.initializers.glorotUniform({ seed: 202 }) })
    .apply(h2) as tfl.SymbolicTensor;
  return tfl.model({ inputs: mask ? [target, source, mask] : [target, source], outputs: out, name: 'encdec' });
}

function inputs(withMask: boolean): tf.Tensor[] {
  const t = tf.randomNormal([4, 5, 8], 0, 1, 'float32', 1);
  const s = tf.randomNormal([4, 7, 6], 0, 1, 'float32', 2);
  if (!withMask) return [t, s];
  const m = tf.cast(tf.greater(tf.randomUniform([4, 5, 7], 0, 1, 'float32', 3), 0.3), 'float32');
  return [t, s, m];
}

forEachBackend('replaceAttention', () => {
  for (const withMask of [false, true]) {
    it(`gives the same outputs as the original with U-Hop off (${withMask ? 'with' : 'without'} attentionMask)`, () => {
      const model = buildModel(withMask);
      const x = inputs(withMask);
      const y = model.predict(x) as tf.Tensor;
      const copy = replaceAttention(model);
      assert.notEqual(copy, model);
      assert.deepEqual(
        copy.layers.map((l) => l.name),
        model.layers.map((l) => l.name),
      );
      const attention = copy.layers.filter((l) => l instanceof UHopAttention) as UHopAttention[];
      assert.deepEqual(attention.map((l) => l.name).sort(), ['cross_attention', 'self_attention']);
      assert.ok(attention.every((l) => l.getClassName() === 'UHopAttention'));
      assert.equal(copy.layers.filter((l) => l.getClassName() === 'MultiHeadAttention').length, 0);
      const cross = copy.getLayer('cross_attention') as UHopAttention;
      assert.equal(cross.valueDim, 3);
      assert.equal(cross.numHeads, 3);
      assertClose(copy.predict(x) as tf.Tensor, y, 1e-5, 'replaced model');
      // A copy, not a view: training the copy leaves the original alone.
      const before = model.getLayer('self_attention').getWeights()[0].dataSync().slice();
      (copy.getLayer('self_attention').getWeights()[0] as tf.Variable).assign(tf.zeros([8, 2, 4]));
      assert.deepEqual(model.getLayer('self_attention').getWeights()[0].dataSync(), before);
      assertClose(model.predict(x) as tf.Tensor, y, 0, 'original unchanged');
    });
  }

  it('with U-Hop on starts from the same projections (and, with fitSteps 0, the same outputs)', () => {
    const model = buildModel(true);
    const x = inputs(true);
    const y = model.predict(x) as tf.Tensor;
    const same = replaceAttention(model, { featureMap: 'linear', fitSteps: 0 });
    assertClose(same.predict(x) as tf.Tensor, y, 1e-5, 'isometry Phi0, no fit');
    // A per-call fit would read future keys in the causal self-attention: refused, with a hint.
    assert.throws(() => replaceAttention(model, { featureMap: 'linear', fitSteps: 5 }), /'self_attention': useCausalMask with a U-Hop fit/);
    const uhop = replaceAttention(model, { featureMap: 'linear', featureDim: 6, fitSteps: 5, separation: 'entmax15' }, ['cross_attention']);
    assert.equal(uhop.getLayer('self_attention').getClassName(), 'MultiHeadAttention');
    assertClose(
      attentionProjectionWeights(uhop.getLayer('self_attention'))[0],
      attentionProjectionWeights(model.getLayer('self_attention'))[0],
      0,
      'unselected layer copied',
    );
    for (const name of ['cross_attention']) {
      const a = uhop.getLayer(name) as UHopAttention;
      assert.equal(a.uhop.featureMap, 'linear');
      assert.equal(a.separation, 'entmax15');
      const orig = attentionProjectionWeights(model.getLayer(name));
      const now = attentionProjectionWeights(a);
      assert.equal(now.length, 8);
      now.forEach((w, i) => assertClose(w, orig[i], 0, `${name} projection ${i}`));
      assert.deepEqual(a.getWeights()[8].shape, [a.numHeads, 6, a.keyDim], 'Phi0');
    }
    const yu = uhop.predict(x) as tf.Tensor;
    assert.deepEqual(yu.shape, y.shape);
    assert.ok(tf.all(tf.isFinite(yu)).dataSync()[0] === 1);
    assert.ok(tf.max(tf.abs(tf.sub(yu, y))).dataSync()[0] > 1e-4, 'U-Hop with a fit must change the outputs');
  });

  it('handles Sequential and nested models, and copies every other layer with its weights', () => {
    const seq = tfl.sequential({
      layers: [
        tfl.layers.dense({ units: 6, inputShape: [4, 5], kernelInitializer: tfl.initializers.glorotUniform({ seed: 203 }) }),
        new MultiHeadAttention({ numHeads: 2, keyDim: 3, seed: 103 }), // self-attention (value = query)
        tfl.layers.globalAveragePooling1d(),
      ],
    });
    const x = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 4);
    const seqCopy = replaceAttention(seq);
    assert.ok(seqCopy instanceof tfl.Sequential);
    assertClose(seqCopy.predict(x) as tf.Tensor, seq.predict(x) as tf.Tensor, 1e-5, 'sequential');

    const inp = tfl.input({ shape: [4, 5] });
    const outer = tfl.model({
      inputs: inp,
      outputs: tfl.layers
        .dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: 204 }) })
        .apply(seq.apply(inp)) as tfl.SymbolicTensor,
    });
    const outerCopy = replaceAttention(outer, { separation: 'sparsemax' });
    const inner = outerCopy.layers.find((l) => l instanceof tfl.LayersModel) as tfl.LayersModel;
    assert.ok(inner && inner !== seq);
    const att = inner.layers.find((l) => l instanceof UHopAttention) as UHopAttention;
    assert.equal(att.separation, 'sparsemax');
    assert.deepEqual((outerCopy.predict(x) as tf.Tensor).shape, [3, 2]);
    const plainCopy = replaceAttention(outer);
    assertClose(plainCopy.predict(x) as tf.Tensor, outer.predict(x) as tf.Tensor, 1e-5, 'nested');
  });

  it('gives clear errors', () => {
    assert.throws(() => replaceAttention({} as tfl.LayersModel), /replaceAttention: model must be a tf.LayersModel/);
    const model = buildModel(false);
    assert.throws(() => replaceAttention(model, { featureMapp: 'linear' } as never), /replaceAttention: unknown option 'featureMapp'/);
    assert.throws(() => replaceAttention(model, { separation: 'soft' } as never), /separation/);
    assert.throws(() => replaceAttention(model, { numHeads: 4 } as never), /unknown option 'numHeads'/);
    assert.throws(() => replaceAttention(model, {}, 'cross_attention' as never), /only must be an array of layer names or a function/);
  });
});
