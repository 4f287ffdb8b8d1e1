/**
 * Op-level checks of the browser test: every similarity, every separation map (forward and
 * gradient), every separation loss (value and analytic gradient), the Stage-I fit (linear and
 * MLP Phi; the sgd, adam and default 'normalized' step rules), dense and U-Hop retrieval and the energy, on seeded inputs, with the
 * active backend. Node runs them on cpu for the reference; the page runs them on each browser
 * backend, so that the GPU backends' code paths (webgl shaders, WebGPU compute) are exercised.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  similarity,
  separation,
  separationLoss,
  separationLossAndGrad,
  fitFeatureMap,
  linearFeatureMap,
  mlpFeatureMap,
  retrieve,
  energy,
  UHopMemory,
  seededRandom,
  type SimilarityKind,
  type SeparationKind,
  type SeparationLossKind,
  type FitFeatureMapOptions,
  type FeatureMap,
} from '../../src/index.js';

export const SIMILARITIES: readonly SimilarityKind[] = ['dot', 'euclidean', 'manhattan', 'cosine'];
export const SEPARATIONS: readonly SeparationKind[] = ['softmax', 'sparsemax', 'entmax15', 'entmax', 'softmax1', 'topk', 'max'];
export const SEPARATION_LOSSES: readonly SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

/** Named results, each flattened to a plain array (JSON between Node and the page). */
export type OpResults = Record<string, number[]>;

function seeded(seed: number, shape: number[], scale = 1): tf.Tensor {
  const rng = seededRandom(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()),
    shape,
  );
}

function fitCase(out: Record<string, tf.Tensor>, name: string, memories: tf.Tensor, phi0: FeatureMap, options: FitFeatureMapOptions): void {
  const { featureMap, lossTrace } = fitFeatureMap(memories, phi0, options);
  out[`${name} lossTrace`] = lossTrace;
  featureMap.params.forEach((p, i) => (out[`${name} param ${i}`] = p));
}

/** Every check's result as a tensor, computed on the active backend (the caller disposes them). */
function computeAll(): Record<string, tf.Tensor> {
  return tf.tidy(() => {
    const out: Record<string, tf.Tensor> = {};
    // Two memory sets of 6 patterns in 5 dims, 3 queries each.
    const queries = seeded(1, [2, 3, 5]);
    const memories = seeded(2, [2, 6, 5]);
    for (const kind of SIMILARITIES) out[`similarity ${kind}`] = similarity(queries, memories, kind);

    // Scores with distinct values, and a mask that removes one memory per row.
    const scores = seeded(3, [2, 3, 6], 2);
    const maskValues = Float32Array.from({ length: 2 * 3 * 6 }, (_, i) => (i % 6 === Math.floor(i / 6) % 6 ? 0 : 1));
    const mask = tf.tensor(maskValues, [2, 3, 6]);
    const weights = seeded(4, [2, 3, 6]);
    for (const kind of SEPARATIONS) {
      const options = { mask, alpha: 1.3, topK: 2 };
      out[`separation ${kind}`] = separation(scores, kind, options);
      // 'max' is a hard argmax: its gradient is zero wherever it is defined, so checking it
      // adds nothing; the others are checked through d(sum(w * sep(s)))/ds.
      if (kind !== 'max') {
        out[`separation ${kind} gradient`] = tf.grad((s: tf.Tensor) => tf.sum(tf.mul(separation(s, kind, options), weights)))(scores);
      }
    }

    const features = seeded(5, [2, 6, 4]);
    const setMask = tf.tensor([
      [1, 1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1, 1],
    ]);
    for (const kind of SEPARATION_LOSSES) {
      out[`separationLoss ${kind}`] = separationLoss(features, kind, { mask: setMask });
      const { loss, grad } = separationLossAndGrad(features, kind, { mask: setMask });
      out[`separationLossAndGrad ${kind} loss`] = loss;
      out[`separationLossAndGrad ${kind} grad`] = grad;
    }

    // Stage I on memory sets of non-negative patterns (as images are), one Phi per set.
    const images = tf.abs(seeded(6, [2, 8, 6]));
    fitCase(out, 'fit linear uniform sgd', images, linearFeatureMap(6), { steps: 4, lr: 0.1, loss: 'uniform', optimizer: 'sgd' });
    fitCase(out, 'fit linear lse sgd', images, linearFeatureMap(6), { steps: 4, lr: 0.3, loss: 'lse', optimizer: 'sgd' });
    fitCase(out, 'fit linear lse normalized (default)', images, linearFeatureMap(6), { steps: 4, loss: 'lse' });
    fitCase(out, 'fit linear worst-pair adam masked', images, linearFeatureMap(6, 8, { init: 'orthogonal', seed: 2 }), {
      steps: 4,
      lr: 0.01,
      loss: 'worst-pair',
      optimizer: 'adam',
      mask: tf.tensor([
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
      ]),
    });
    fitCase(out, 'fit mlp uniform normalized (default)', images, mlpFeatureMap(6, 6, { seed: 3 }), { steps: 3, loss: 'uniform' });

    const corrupted = tf.mul(
      images,
      tf.tensor(
        Float32Array.from({ length: 2 * 8 * 6 }, (_, i) => (i % 3 === 0 ? 0 : 1)),
        [2, 8, 6],
      ),
    );
    out['retrieve dense, 2 steps'] = retrieve(corrupted, images, { beta: 2, updateStepsMax: 1, updateStepsEps: 0 }).states;
    out['retrieve euclidean sparsemax'] = retrieve(corrupted, images, { beta: 2, similarity: 'euclidean', separation: 'sparsemax' }).states;
    out['energy dense'] = energy(corrupted, images, { beta: 2 });
    const memory = new UHopMemory({ fitSteps: 4, fitLr: 0.1, separationLoss: 'uniform', beta: 2, seed: 1 });
    memory.store(images);
    const { states, association } = memory.retrieve(corrupted, { returnAssociation: true });
    out['UHopMemory lossTrace'] = tf.clone(memory.lossTrace);
    out['UHopMemory states'] = states;
    out['UHopMemory association'] = association!;
    out['energy kernelized'] = energy(corrupted, images, { beta: 2, featureMap: memory.featureMap });
    memory.dispose();
    return out;
  });
}

/**
 * Runs every check on the active backend and returns the results by name. Reads back with
 * `data()`, never `dataSync()`: on webgpu in headless Chromium (SwiftShader) a synchronous
 * read loses the GPU device ("A valid external Instance reference no longer exists").
 */
export async function runOpChecks(): Promise<OpResults> {
  const tensors = computeAll();
  try {
    const out: OpResults = {};
    for (const [name, t] of Object.entries(tensors)) out[name] = Array.from(await t.data());
    return out;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** The largest |a - b| / (1 + |b|) over every result of `actual` against `expected`, per name. */
export function compareResults(actual: OpResults, expected: OpResults): Record<string, number> {
  const diffs: Record<string, number> = {};
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name];
    if (!got || got.length !== want.length) {
      diffs[name] = Number.POSITIVE_INFINITY;
      continue;
    }
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
      worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(worst, d);
    }
    diffs[name] = worst;
  }
  return diffs;
}
