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
import '../../src/layers/index.js';
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
