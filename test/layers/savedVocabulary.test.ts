/**
 * Models saved before the 0.2.0 vocabulary renames (commit b8689e7, written by
 * test/tools/saveVocabularyFixtures.ts) load with today's code and give the SAME predictions:
 * the trio's `scaling` (now `beta`), UHopAttention's `updateStepsMax` that counted all steps
 * (now the extra steps after the first, as in the trio and ml-jku), its `updateStepsEps` default
 * of 0 and its fixed entmax `alpha` (now trainable by default), and `topK`. fromConfig migrates
 * the old configs (src/ops/schema.ts, `migrateConfig`).
 */
import { it } from 'node:test';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { UHopAttention } from '../../src/layers/index.js';
import { forEachBackend, assertClose } from '../helpers.js';

interface Saved {
  modelTopology: tf.io.ModelArtifacts['modelTopology'];
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: string;
  outputs: { shape: number[]; values: number[] }[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/saved-models-b8689e7.json', import.meta.url), 'utf8')) as {
  input: { x: number[]; mask: number[] };
  trio: Saved;
  attention: Saved;
};

async function load(saved: Saved): Promise<tfl.LayersModel> {
  const buf = Buffer.from(saved.weightData, 'base64');
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: saved.modelTopology, weightSpecs: saved.weightSpecs, weightData }));
}

forEachBackend('models saved before the 0.2.0 renames load with the same outputs', (backend) => {
  const tol = backend === 'cpu' ? 1e-5 : 1e-4;
  for (const name of ['trio', 'attention'] as const) {
    it(`${name}: same predictions as when it was saved`, async () => {
      const saved = fixture[name];
      const model = await load(saved);
      const x = tf.tensor3d(fixture.input.x, [2, 5, 4]);
      const m = tf.tensor2d(fixture.input.mask, [2, 5]);
      const y = model.predict(name === 'trio' ? [x, m] : x) as tf.Tensor;
      const expected = tf.tensor(saved.outputs[0].values, saved.outputs[0].shape);
      assertClose(y, expected, tol, `${name} prediction`);
      // Saving again writes the new vocabulary, and that loads to the same outputs too.
      const again = JSON.parse(JSON.stringify(model.toJSON(null, false))) as tf.io.ModelArtifacts['modelTopology'];
      const specs = saved.weightSpecs;
      const buf = Buffer.from(saved.weightData, 'base64');
      const reloaded = await tfl.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: again,
          weightSpecs: specs,
          weightData: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
        }),
      );
      const y2 = reloaded.predict(name === 'trio' ? [x, m] : x) as tf.Tensor;
      assertClose(y2, expected, tol, `${name} prediction after a save in the new vocabulary`);
      tf.dispose([x, m, y, y2, expected]);
      model.dispose();
      reloaded.dispose();
    });
  }
});

forEachBackend('UHopAttention in the one vocabulary', () => {
  it('updateStepsMax counts the extra steps (0 = attention), and a 0.2.0 config is not migrated twice', () => {
    const x = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 41);
    const plain = new UHopAttention({ numHeads: 2, keyDim: 2, seed: 1 });
    assert.equal(plain.updateStepsMax, 0);
    assert.equal(plain.updateStepsEps, 1e-4);
    assert.ok(plain.isPlainAttention);
    const layer = new UHopAttention({ numHeads: 2, keyDim: 2, updateStepsMax: 2, separation: 'sparsemax', seed: 1 });
    const y = layer.apply(x) as tf.Tensor;
    const cfg = layer.getConfig();
    assert.equal(cfg.updateStepsMax, 2);
    const again = tf.serialization.SerializationMap.getMap().classNameMap['UHopAttention'][1](UHopAttention, cfg) as UHopAttention;
    assert.equal(again.updateStepsMax, 2);
    again.apply(x);
    again.setWeights(layer.getWeights());
    const y2 = again.apply(x) as tf.Tensor;
    assertClose(y2, y, 1e-6, 'round trip');
    tf.dispose([x, y, y2]);
  });

  it('entmax alpha is a trainable weight by default (as in the trio) and gets a gradient; alphaTrainable false keeps it fixed', () => {
    const x = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 42);
    const layer = new UHopAttention({ numHeads: 2, keyDim: 2, separation: 'entmax', alpha: 1.3, seed: 2 });
    layer.apply(x);
    const alpha = layer.trainableWeights.find((w) => w.originalName.endsWith('alpha'));
    assert.ok(alpha, 'an alpha weight');
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar,
      [(alpha as unknown as { val: tf.Variable }).val],
    );
    const ga = Object.values(grads)[0];
    assert.ok(
      Array.from(ga.dataSync()).some((v) => v !== 0 && Number.isFinite(v)),
      'alpha gets a gradient',
    );
    const fixed = new UHopAttention({ numHeads: 2, keyDim: 2, separation: 'entmax', alpha: 1.3, alphaTrainable: false, seed: 2 });
    fixed.apply(x);
    assert.ok(!fixed.weights.some((w) => w.originalName.endsWith('alpha')));
    tf.dispose([x, ga]);
  });
});
