/**
 * Models saved by the code before issue 12's changes (commit 12a505b: the Hopfield trio,
 * UHopAttention with several steps, U-Hop linear and mlp, and a milClassifier) still load:
 * same layers, same weights, and a finite prediction of the saved shape. (The predictions
 * themselves are not compared: the Stage-I step rule is being changed separately, which
 * changes U-Hop outputs by design.)
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '../../src/layers/index.js';
import '../../src/models/index.js';
import { forEachBackend, assertClose } from '../helpers.js';

interface Saved {
  modelTopology: tf.io.ModelArtifacts['modelTopology'];
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: string;
  outputShape: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/saved-models-12a505b.json', import.meta.url), 'utf8')) as {
  input: { x: number[]; mask: number[] };
  layers: Saved;
  mil: Saved;
};

forEachBackend('models saved by the earlier code load', () => {
  for (const name of ['layers', 'mil'] as const) {
    it(`${name}: loads with the saved weights and predicts`, async () => {
      const saved = fixture[name];
      const buf = Buffer.from(saved.weightData, 'base64');
      const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      const model = await tfl.loadLayersModel(
        tf.io.fromMemory({ modelTopology: saved.modelTopology, weightSpecs: saved.weightSpecs, weightData }),
      );
      const expected = tf.io.decodeWeights(weightData, saved.weightSpecs);
      const byName = new Map(model.weights.map((w) => [w.originalName, w.read()]));
      for (const spec of saved.weightSpecs) {
        const w = byName.get(spec.name);
        assert.ok(w, `weight ${spec.name} missing after load`);
        assertClose(w, expected[spec.name], 0, spec.name);
      }
      const x = tf.tensor3d(fixture.input.x, [2, 5, 4]);
      const m = tf.tensor2d(fixture.input.mask, [2, 5]);
      const y = model.predict([x, m]) as tf.Tensor;
      assert.deepEqual(y.shape, saved.outputShape);
      assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
      tf.dispose([x, m, y, ...Object.values(expected)]);
      model.dispose();
    });
  }
});
