/**
 * Writes test/fixtures/saved-models-b8689e7.json: models saved by the code BEFORE the 0.2.0
 * vocabulary renames (commit b8689e7), each built with an option that 0.2.0 renames or whose
 * meaning it changes (the trio's `scaling`, UHopAttention's `updateStepsMax` counting all steps
 * and its fixed entmax `alpha`, `topK`, entmax `alpha` with and without `alphaTrainable`), with
 * their predictions on a fixed input. test/layers/savedCompat.test.ts loads them with today's
 * code and compares the predictions. Kept for provenance: it only runs on that commit
 * (`git checkout b8689e7 && node --import tsx test/tools/saveVocabularyFixtures.ts`).
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { Hopfield, HopfieldLayer, HopfieldPooling, UHopAttention, MultiHeadAttention } from '../../src/layers/index.js';
import { seededRandom } from '../../src/data/random.js';

await tf.setBackend('cpu');

const rng = seededRandom(12);
const rand = () => rng.uniform();
const normal = (n: number) => Array.from({ length: n }, () => Math.round((rand() * 4 - 2) * 1e4) / 1e4);
const x = normal(2 * 5 * 4);
const mask = [1, 1, 1, 1, 0, 1, 1, 0, 0, 0];

async function save(model: tfl.LayersModel, inputs: tf.Tensor[]) {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const y = model.predict(inputs) as tf.Tensor | tf.Tensor[];
  const outputs = (Array.isArray(y) ? y : [y]).map((t) => ({ shape: t.shape, values: Array.from(t.dataSync()) }));
  return {
    modelTopology: artifacts!.modelTopology,
    weightSpecs: artifacts!.weightSpecs,
    weightData: Buffer.from(artifacts!.weightData as ArrayBuffer).toString('base64'),
    outputs,
  };
}

// The trio with the options 0.2.0 renames or redefines.
const xi = tfl.input({ shape: [5, 4], name: 'x' });
const mi = tfl.input({ shape: [5], name: 'mask' });
const h1 = new Hopfield({ name: 'scaling_per_head', numHeads: 2, scaling: [0.6, 0.9], updateStepsMax: 2, seed: 1 } as never).apply([
  xi,
  mi,
]) as tfl.SymbolicTensor;
const h2 = new Hopfield({ name: 'topk_scaling', scaling: 0.8, separation: 'topk', topK: 2, seed: 2 } as never).apply(
  h1,
) as tfl.SymbolicTensor;
const h3 = new HopfieldLayer({ name: 'entmax_trainable', quantity: 3, separation: 'entmax', alpha: 1.3, seed: 3 }).apply(
  h2,
) as tfl.SymbolicTensor;
const p = new HopfieldPooling({
  name: 'entmax_fixed',
  numHeads: 2,
  separation: 'entmax',
  alpha: 1.7,
  alphaTrainable: false,
  scaling: 0.5,
  updateStepsMax: 1,
  updateStepsEps: 0,
  seed: 4,
} as never).apply([h3, mi]) as tfl.SymbolicTensor;
const trio = tfl.model({ inputs: [xi, mi], outputs: p, name: 'trio_b8689e7' });

// UHopAttention: updateStepsMax counted ALL steps (default 1), updateStepsEps defaulted to 0, alpha was fixed.
const ai = tfl.input({ shape: [5, 4], name: 'q' });
const a1 = new UHopAttention({
  name: 'steps_total',
  numHeads: 2,
  keyDim: 2,
  updateStepsMax: 2,
  separation: 'entmax',
  alpha: 1.3,
  seed: 5,
}).apply(ai) as tfl.SymbolicTensor;
const a2 = new UHopAttention({
  name: 'topk_eps',
  numHeads: 1,
  keyDim: 4,
  separation: 'topk',
  topK: 2,
  updateStepsMax: 3,
  updateStepsEps: 1e-3,
  beta: 0.7,
  seed: 6,
}).apply(a1, { value: ai }) as tfl.SymbolicTensor;
const a3 = new UHopAttention({ name: 'one_step', numHeads: 2, keyDim: 3, seed: 7 }).apply(a2) as tfl.SymbolicTensor;
const a4 = new MultiHeadAttention({ name: 'mha', numHeads: 2, keyDim: 2, seed: 8 }).apply(a3) as tfl.SymbolicTensor;
const attention = tfl.model({ inputs: ai, outputs: a4, name: 'attention_b8689e7' });

const xt = tf.tensor3d(x, [2, 5, 4]);
const mt = tf.tensor2d(mask, [2, 5]);
const fixture = {
  commit: 'b8689e7',
  note: 'Saved by test/tools/saveVocabularyFixtures.ts at b8689e7 (before the 0.2.0 vocabulary renames), cpu backend.',
  input: { x, mask },
  trio: await save(trio, [xt, mt]),
  attention: await save(attention, [xt]),
};
writeFileSync(new URL('../fixtures/saved-models-b8689e7.json', import.meta.url), JSON.stringify(fixture));
console.log('wrote saved-models-b8689e7.json');
