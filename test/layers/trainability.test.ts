/**
 * Every option combination trains: each layer with multi-step retrieval and an eps (the
 * stopping rule), every separation and similarity, masks and U-Hop, gives a finite loss and a
 * nonzero gradient to every trainable weight that should get one; model.fit runs. The same
 * for the functional cores (retrieve, hopfieldRetrieval, UHopMemory's retrieval) under tf.grad.
 *
 * Weights allowed a zero gradient, and why (checked here to be the only ones):
 * - with separation 'max' (a hard argmax), everything before the scores: only values, output
 *   and their norms get a gradient;
 * - with dot scores and a shift-invariant separation (all but 'softmax1'), a shift common to
 *   all keys moves every score of a row by the same amount: key_bias and stored_norm_beta
 *   (and, with a linear Phi, the same through Phi) get zero gradient by the maths.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { HopfieldLayer } from '../../src/layers/hopfieldLayer.js';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { hopfieldRetrieval } from '../../src/layers/hopfieldCore.js';
import { retrieve } from '../../src/ops/retrieve.js';
import { UHopMemory } from '../../src/ops/uhop.js';
import { SEPARATION_KINDS } from '../../src/ops/separation.js';
import { SIMILARITY_KINDS } from '../../src/ops/similarity.js';
import type { SeparationKind, SimilarityKind } from '../../src/ops/types.js';
import { forEachBackend } from '../helpers.js';

const B = 2;
const S = 5;
const F = 4;

type LayerKind = 'Hopfield' | 'HopfieldPooling' | 'HopfieldLayer' | 'UHopAttention' | 'MultiHeadAttention';
interface Case {
  name: string;
  separation?: SeparationKind;
  similarity?: SimilarityKind;
  featureMap?: 'linear' | 'mlp';
  masks?: boolean;
}

const CASES: Case[] = [
  ...SEPARATION_KINDS.map((separation) => ({ name: `separation ${separation}`, separation })),
  ...SIMILARITY_KINDS.filter((s) => s !== 'dot').map((similarity) => ({ name: `similarity ${similarity}`, similarity })),
  { name: 'masks', masks: true },
  { name: 'U-Hop linear, masks', featureMap: 'linear', masks: true },
  { name: 'U-Hop mlp, sparsemax', featureMap: 'mlp', separation: 'sparsemax' },
  { name: 'U-Hop linear, cosine, entmax', featureMap: 'linear', similarity: 'cosine', separation: 'entmax' },
];

/** Hopfield options of a case: three steps at most (updateStepsMax counts extra steps in the trio). */
function options(kind: LayerKind, c: Case): Record<string, unknown> {
  const common: Record<string, unknown> = {
    separation: c.separation ?? 'softmax',
    similarity: c.similarity ?? 'dot',
    ...(c.separation === 'topk' ? { topK: 2 } : {}),
    ...(c.featureMap ? { featureMap: c.featureMap, fitSteps: 2 } : {}),
  };
  if (kind === 'UHopAttention') return { numHeads: 2, keyDim: 2, seed: 3, updateStepsMax: 3, updateStepsEps: 1e-4, ...common };
  return { numHeads: 2, seed: 3, updateStepsMax: 2, updateStepsEps: 1e-4, ...common };
}

function makeLayer(kind: LayerKind, c: Case): tfl.layers.Layer {
  const o = options(kind, c) as never;
  switch (kind) {
    case 'Hopfield':
      return new Hopfield(o);
    case 'HopfieldPooling':
      return new HopfieldPooling(o);
    case 'HopfieldLayer':
      return new HopfieldLayer({ ...(o as object), quantity: 3 } as never);
    case 'UHopAttention':
      return new UHopAttention(o);
    case 'MultiHeadAttention':
      return new MultiHeadAttention({ numHeads: 2, keyDim: 2, seed: 3 } as never);
  }
}

/** Inputs of a seeded call, with a padding mask (last memory of sample 0 padded) when asked. */
function callFor(kind: LayerKind, c: Case): { inputs: tf.Tensor | tf.Tensor[]; kwargs: Record<string, unknown> } {
  const x = tf.randomNormal([B, S, F], 0, 1, 'float32', 21);
  const pad = tf.tensor2d([
    [1, 1, 1, 1, 0],
    [1, 1, 1, 1, 1],
  ]);
  const assoc = tf.tensor2d([
    [1, 1, 0, 1, 1],
    [1, 1, 1, 1, 1],
    [0, 1, 1, 1, 1],
    [1, 1, 1, 0, 1],
    [1, 1, 1, 1, 1],
  ]);
  const masked = c.masks === true;
  switch (kind) {
    case 'Hopfield':
      return { inputs: masked ? [x, pad] : x, kwargs: masked ? { associationMask: assoc, training: true } : { training: true } };
    case 'HopfieldPooling':
      return { inputs: masked ? [x, pad] : x, kwargs: { training: true } };
    case 'HopfieldLayer':
      return { inputs: x, kwargs: { training: true } };
    case 'UHopAttention':
    case 'MultiHeadAttention':
      return {
        inputs: x,
        kwargs: masked
          ? { value: x, attentionMask: tf.mul(tf.expandDims(assoc, 0), tf.expandDims(pad, 1)), training: true }
          : { training: true },
      };
  }
}

/** Trainable weights that may get a zero gradient in this case (see the file header). */
function mayBeZero(name: string, kind: LayerKind, c: Case): boolean {
  const sep = c.separation ?? (kind === 'MultiHeadAttention' ? 'softmax' : 'softmax');
  const sim = c.similarity ?? 'dot';
  if (sep === 'max') return !/value|output|projection_norm/.test(name);
  const shiftInvariant = sep !== 'softmax1' && sim === 'dot' && c.featureMap !== 'mlp';
  if (shiftInvariant && /key_bias|key\/bias|stored_norm_beta/.test(name)) return true;
  return false;
}

const KINDS: LayerKind[] = ['Hopfield', 'HopfieldPooling', 'HopfieldLayer', 'UHopAttention', 'MultiHeadAttention'];

forEachBackend('trainability: every layer and option combination gets gradients', () => {
  for (const kind of KINDS) {
    for (const c of kind === 'MultiHeadAttention' ? CASES.filter((x) => x.name === 'masks' || x.name === 'separation softmax') : CASES) {
      it(`${kind}: ${c.name}, multi-step with eps`, () => {
        const layer = makeLayer(kind, c);
        const { inputs, kwargs } = callFor(kind, c);
        tf.tidy(() => layer.apply(inputs, kwargs) as tf.Tensor); // builds
        const vars = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
        const names = layer.trainableWeights.map((w) => w.originalName);
        const { value, grads } = tf.variableGrads(() => {
          const y = layer.apply(inputs, kwargs) as tf.Tensor;
          const w = tf.randomNormal(y.shape, 0, 1, 'float32', 5);
          return tf.sum(tf.mul(y, w)) as tf.Scalar;
        }, vars);
        assert.ok(Number.isFinite(value.dataSync()[0]), `${kind} ${c.name}: loss ${value.dataSync()[0]}`);
        vars.forEach((v, i) => {
          const g = grads[v.name];
          assert.ok(g, `${names[i]}: no gradient`);
          const data = Array.from(g.dataSync() as Float32Array);
          assert.ok(data.every(Number.isFinite), `${names[i]}: non-finite gradient`);
          if (!mayBeZero(names[i], kind, c)) {
            const maxAbs = data.reduce((m, z) => Math.max(m, Math.abs(z)), 0);
            assert.ok(maxAbs > 1e-7, `${kind} ${c.name}: zero gradient to ${names[i]}`);
          }
        });
        tf.dispose([value, ...Object.values(grads), ...(Array.isArray(inputs) ? inputs : [inputs])]);
        tf.dispose(Object.values(kwargs).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
        layer.dispose();
      });
    }
  }

  it('model.fit trains each layer with several update steps and eps (the Greater/LogicalAnd gradients)', async () => {
    const x = tf.randomNormal([4, S, F], 0, 1, 'float32', 31);
    const y = tf.randomNormal([4, 1], 0, 1, 'float32', 32);
    for (const kind of ['Hopfield', 'HopfieldPooling', 'HopfieldLayer', 'UHopAttention'] as LayerKind[]) {
      const inp = tfl.input({ shape: [S, F] });
      const layer = makeLayer(kind, { name: 'fit', featureMap: 'linear' });
      let h = layer.apply(inp) as tfl.SymbolicTensor;
      if (h.shape.length === 3) h = tfl.layers.globalAveragePooling1d().apply(h) as tfl.SymbolicTensor;
      const out = tfl.layers
        .dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) })
        .apply(h) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: inp, outputs: out });
      model.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
      const hist = await model.fit(x, y, { epochs: 2, batchSize: 2, shuffle: false, verbose: 0 });
      const losses = hist.history.loss as number[];
      assert.ok(losses.every(Number.isFinite), `${kind}: losses ${losses}`);
      model.dispose();
    }
    tf.dispose([x, y]);
  });

  it('tf.grad through retrieve with several steps and eps, for every separation', () => {
    const k = tf.randomNormal([6, F], 0, 1, 'float32', 41);
    const q = tf.randomNormal([3, F], 0, 1, 'float32', 42);
    for (const separation of SEPARATION_KINDS) {
      const [gq, gk] = tf.grads((qq: tf.Tensor, kk: tf.Tensor) =>
        tf.sum(
          tf.mul(
            retrieve(qq, kk, { updateStepsMax: 2, updateStepsEps: 1e-4, beta: 0.3, separation, topK: 2 }).states,
            tf.reshape(tf.range(0, F), [1, F]),
          ),
        ),
      )([q, k]);
      for (const [g, what] of [
        [gq, 'queries'],
        [gk, 'memories'],
      ] as const) {
        const data = g.dataSync();
        assert.ok(data.every(Number.isFinite), `${separation}: non-finite gradient to ${what}`);
        // 'max' is a hard argmax: the queries get no gradient by the maths.
        if (!(separation === 'max' && what === 'queries'))
          assert.ok(
            data.some((z) => z !== 0),
            `${separation}: zero gradient to ${what}`,
          );
      }
      tf.dispose([gq, gk]);
    }
    tf.dispose([k, q]);
  });

  it('tf.grad through hopfieldRetrieval (the layers core) with steps, eps, masks and U-Hop', () => {
    const H = 2;
    const q = tf.randomNormal([B, H, 3, F], 0, 1, 'float32', 51);
    const k = tf.randomNormal([B, H, S, F], 0, 1, 'float32', 52);
    const v = tf.randomNormal([B, H, S, 3], 0, 1, 'float32', 53);
    const phi0 = tf.randomNormal([H, F, F], 0, 0.5, 'float32', 54);
    const memoryMask = tf.tensor2d([
      [1, 1, 1, 0, 1],
      [1, 1, 1, 1, 1],
    ]);
    for (const uhop of [false, true]) {
      const f = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, pp?: tf.Tensor) =>
        tf.sum(
          hopfieldRetrieval(qq, kk, vv, {
            beta: 0.7,
            steps: 4,
            stepsEps: 1e-4,
            memoryMask,
            uhop: uhop
              ? {
                  config: {
                    featureMap: 'linear',
                    featureDim: null,
                    featureHiddenDim: null,
                    separationLoss: 'lse',
                    separationLossT: null,
                    separationLossTau: null,
                    fitSteps: 2,
                    fitLr: 0.1,
                    fitOptimizer: 'sgd',
                    fitRowNormalize: false,
                    phiTrainable: true,
                    phi0Initializer: 'isometry',
                  },
                  phi0: [pp!],
                }
              : undefined,
          }).output,
        );
      const [gq, gk, gv, gp] = uhop
        ? tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => f(a, b, c, d))([q, k, v, phi0])
        : tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => f(a, b, c))([q, k, v]);
      for (const [g, what] of [[gq, 'q'], [gk, 'k'], [gv, 'v'], ...(gp ? [[gp, 'phi0'] as const] : [])] as const) {
        const data = g.dataSync();
        assert.ok(data.every(Number.isFinite), `uhop ${uhop}: non-finite gradient to ${what}`);
        assert.ok(
          data.some((z) => z !== 0),
          `uhop ${uhop}: zero gradient to ${what}`,
        );
      }
      tf.dispose([gq, gk, gv, ...(gp ? [gp] : [])]);
    }
    tf.dispose([q, k, v, phi0, memoryMask]);
  });

  it("tf.grad through UHopMemory's retrieval (Stage II) with steps and eps", () => {
    const memories = tf.randomNormal([6, F], 0, 1, 'float32', 61);
    const queries = tf.randomNormal([3, F], 0, 1, 'float32', 62);
    const memory = new UHopMemory({ fitSteps: 3, updateStepsMax: 2, updateStepsEps: 1e-4, beta: 2, seed: 63 }).store(memories);
    const g = tf.grad((qq: tf.Tensor) => tf.sum(tf.mul(memory.retrieve(qq).states, tf.reshape(tf.range(0, F), [1, F]))))(queries);
    assert.ok(g.dataSync().every(Number.isFinite));
    assert.ok(g.dataSync().some((z) => z !== 0));
    memory.dispose();
    tf.dispose([memories, queries, g]);
  });
});
