import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { attentionProjectionWeights } from '../../src/layers/replaceAttention.js';
import { forEachBackend, assertClose, assertNoLeak } from '../helpers.js';
import { addRow, matmul } from './reference.js';
import { randomizeWeights } from './util.js';
import { maxAbsDiff, splitHeads64, uhopAssociation } from './uhopReference.js';
import { SIMILARITY_KINDS } from '../../src/ops/similarity.js';
import { separation } from '../../src/ops/separation.js';

// ---------------------------------------------------------------------------------------
// The reference: tfjs-layers' own MultiHeadAttention. Its Node bundle does not contain it, so
// it is loaded from the package's ESM files (tsx resolves their extension-less imports). That
// is a second copy of the layers engine: it registers its own classes under the shared
// serialization names and its code uses chained tensor ops that only @tensorflow/tfjs
// registers. Both are swapped in only while the reference runs, so this package's code is
// tested without them.
// ---------------------------------------------------------------------------------------
type RefLayer = {
  call(q: tf.Tensor, o: Record<string, unknown>): tf.Tensor;
  callAndReturnAttentionScores(q: tf.Tensor, o: Record<string, unknown>): [tf.Tensor, tf.Tensor];
};
type RefCtor = new (args: Record<string, unknown>) => RefLayer & tfl.layers.Layer;
const registry = tf.serialization.SerializationMap.getMap().classNameMap;
const ownRegistry = { ...registry };
const { MultiHeadAttention: TfjsMultiHeadAttention } =
  (await import('@tensorflow/tfjs-layers/dist/layers/nlp/multihead_attention.js')) as unknown as { MultiHeadAttention: RefCtor };
const refRegistry = { ...registry };
const setRegistry = (m: typeof registry) => {
  for (const k of Object.keys(registry)) delete registry[k];
  Object.assign(registry, m);
};
setRegistry(ownRegistry);

/**
 * Runs tfjs' MultiHeadAttention. Its einsum has no wasm kernel, so on such a backend the
 * reference runs on cpu (tensors move between backends on their own).
 */
async function withReference<T>(f: () => T): Promise<T> {
  const backend = tf.getBackend();
  const switchTo = tf.getKernel('Einsum', backend) ? null : 'cpu';
  if (switchTo) await tf.setBackend(switchTo);
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const added: string[] = [];
  const add = (name: string, fn: unknown) => {
    if (proto[name] === undefined) {
      proto[name] = fn;
      added.push(name);
    }
  };
  add('add', function (this: tf.Tensor, b: tf.Tensor) {
    return tf.add(this, b);
  });
  add('logicalAnd', function (this: tf.Tensor, b: tf.Tensor) {
    return tf.logicalAnd(this, b);
  });
  add('expandDims', function (this: tf.Tensor, axis: number) {
    return tf.expandDims(this, axis);
  });
  setRegistry(refRegistry);
  try {
    return f();
  } finally {
    for (const n of added) delete proto[n];
    setRegistry(ownRegistry);
    if (switchTo) await tf.setBackend(backend);
  }
}

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

forEachBackend('UHopAttention', () => {
  it('equals tfjs-layers MultiHeadAttention with the same weights (U-Hop off)', async () => {
    const rank3 = { q: [2, 5, 8], v: [2, 7, 6], k: [2, 7, 5], mask: [2, 5, 7] };
    const cases: {
      name: string;
      args: Record<string, unknown>;
      shapes?: typeof rank3;
      key?: boolean;
      mask?: boolean;
      causal?: boolean;
      self?: boolean;
    }[] = [
      { name: 'self-attention', args: { numHeads: 2, keyDim: 3 }, self: true },
      { name: 'self-attention, causal', args: { numHeads: 2, keyDim: 3 }, self: true, causal: true },
      { name: 'cross-attention with key', args: { numHeads: 2, keyDim: 3 }, key: true },
      { name: 'cross-attention with attentionMask (one row fully masked)', args: { numHeads: 2, keyDim: 3 }, key: true, mask: true },
      { name: 'causal + attentionMask', args: { numHeads: 2, keyDim: 4 }, mask: true, causal: true },
      {
        name: 'no bias, valueDim, outputShape',
        args: { numHeads: 3, keyDim: 2, valueDim: 4, useBias: false, outputShape: [7] },
        key: true,
        mask: true,
      },
      { name: 'outputShape with two dims', args: { numHeads: 2, keyDim: 2, outputShape: [3, 2] } },
      {
        name: 'rank 4, attentionAxes [2]',
        args: { numHeads: 2, keyDim: 2, attentionAxes: [2] },
        shapes: { q: [2, 3, 4, 8], v: [2, 3, 6, 6], k: [2, 3, 6, 5], mask: [2, 3, 4, 6] },
        key: true,
        mask: true,
      },
      {
        name: 'rank 4, attentionAxes [1, 2]',
        args: { numHeads: 2, keyDim: 2, attentionAxes: [1, 2] },
        shapes: { q: [2, 3, 4, 8], v: [2, 2, 5, 6], k: [2, 2, 5, 5], mask: [2, 3, 4, 2, 5] },
        mask: true,
      },
    ];
    for (const c of cases) {
      const s = c.shapes ?? rank3;
      const q = tf.randomNormal(s.q, 0, 1, 'float32', 1);
      const v = c.self ? q : tf.randomNormal(s.v, 0, 1, 'float32', 2);
      const k = c.key ? tf.randomNormal(s.k, 0, 1, 'float32', 3) : undefined;
      let mask: tf.Tensor | undefined;
      if (c.mask) {
        mask = tf.greater(tf.randomUniform(s.mask, 0, 1, 'float32', 4), 0.35);
        if (s === rank3) {
          // Fully mask the first query row of the first sample: MultiHeadAttention's -1e9
          // additive mask then averages all values, and so must UHopAttention. (Not with two
          // attention axes: there tfjs' exp(x - logSumExp(x)) loses the log(S) next to -1e9 in
          // float32 and sums the values instead.)
          const m = mask;
          const zero = tf.zerosLike(tf.slice(m, [0, 0], [1, 1]));
          mask = tf.concat([tf.concat([zero, tf.slice(m, [0, 1], [1, -1])], 1), tf.slice(m, [1], [-1])], 0);
        }
      }
      const opts = { value: v, key: k, attentionMask: mask, useCausalMask: c.causal ?? false };
      const ref = new TfjsMultiHeadAttention(c.args);
      const [refOut, refScores] = await withReference(() => ref.callAndReturnAttentionScores(q, opts));
      const layer = new UHopAttention(c.args as never);
      layer.call(q, { value: v, key: k }); // builds
      layer.setWeights(attentionProjectionWeights(ref));
      const [out, scores] = layer.callAndReturnAttentionScores(q, opts);
      assert.deepEqual(out.shape, refOut.shape, `${c.name}: output shape`);
      assert.deepEqual(scores.shape, refScores.shape, `${c.name}: scores shape`);
      assertClose(out, refOut, 1e-5, `${c.name}: output`);
      assertClose(scores, refScores, 1e-5, `${c.name}: scores`);
      // call() without scores and apply() give the same output.
      assertClose(layer.call(q, opts) as tf.Tensor, refOut, 1e-5, `${c.name}: call`);
      assertClose(layer.apply(q, opts) as tf.Tensor, refOut, 1e-5, `${c.name}: apply`);
      tf.dispose([q, v, k, mask, refOut, refScores, out, scores].filter((t): t is tf.Tensor => t != null));
    }
  });

  it('uses the Keras masks of query and value as tfjs MultiHeadAttention does', async () => {
    const q = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 5);
    const v = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 6);
    const qMask = tf.tensor2d(
      [
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1],
      ],
      undefined,
      'bool',
    );
    const vMask = tf.tensor2d(
      [
        [1, 1, 0, 0],
        [1, 0, 1, 1],
      ],
      undefined,
      'bool',
    );
    (q as unknown as { kerasMask: tf.Tensor }).kerasMask = qMask;
    (v as unknown as { kerasMask: tf.Tensor }).kerasMask = vMask;
    const ref = new TfjsMultiHeadAttention({ numHeads: 2, keyDim: 3 });
    const refOut = await withReference(() => ref.call(q, { value: v }));
    const layer = new UHopAttention({ numHeads: 2, keyDim: 3, seed: 101 });
    layer.call(q, { value: v });
    layer.setWeights(attentionProjectionWeights(ref));
    assertClose(layer.call(q, { value: v }) as tf.Tensor, refOut, 1e-5, 'masked output');
    // The masks matter (else this test could not fail).
    const unmasked = layer.call(tf.clone(q), { value: tf.clone(v) }) as tf.Tensor;
    assert.ok(maxAbs(unmasked, refOut) > 1e-3, 'Keras masks must change the output');
  });

  it('has the weight layout of MultiHeadAttention, and Phi0 after it', () => {
    const layer = new UHopAttention({ numHeads: 2, keyDim: 3, valueDim: 5, featureMap: 'linear', featureDim: 4, seed: 102 });
    layer.apply(tf.zeros([1, 4, 7]), { value: tf.zeros([1, 6, 9]), key: tf.zeros([1, 6, 8]) });
    const names = layer.weights.map((w) => w.originalName.split('/').slice(1).join('/'));
    assert.deepEqual(names, [
      'query/kernel',
      'query/bias',
      'key/kernel',
      'key/bias',
      'value/kernel',
      'value/bias',
      'attention_output/kernel',
      'attention_output/bias',
      'phi0_kernel',
    ]);
    assert.deepEqual(
      layer.weights.map((w) => w.shape),
      [[7, 2, 3], [2, 3], [8, 2, 3], [2, 3], [9, 2, 5], [2, 5], [2, 5, 7], [7], [2, 4, 3]],
    );
    assert.ok(
      layer.weights.every((w) => w.originalName.startsWith(`${layer.name}/`)),
      'weights carry the layer name scope',
    );
    assert.equal(layer.trainableWeights.length, 9);
  });

  it('runs in functional models: value, key and attentionMask as model inputs, scores as an output', () => {
    const q = tfl.input({ shape: [5, 8] });
    const v = tfl.input({ shape: [7, 6] });
    const m = tfl.input({ shape: [5, 7] });
    const cross = new UHopAttention({ numHeads: 2, keyDim: 3, seed: 103 });
    const h = cross.apply(q, { value: v, attentionMask: m }) as tfl.SymbolicTensor;
    const self = new UHopAttention({ numHeads: 2, keyDim: 4, seed: 104 });
    const [out, scores] = self.apply(h, { value: h, useCausalMask: true, returnAttentionScores: true }) as tfl.SymbolicTensor[];
    assert.deepEqual(h.shape, [null, 5, 8]);
    assert.deepEqual(scores.shape, [null, 2, 5, 5]);
    const model = tfl.model({ inputs: [q, v, m], outputs: [out, scores] });
    const xq = tf.randomNormal([3, 5, 8], 0, 1, 'float32', 7);
    const xv = tf.randomNormal([3, 7, 6], 0, 1, 'float32', 8);
    const xm = tf.cast(tf.greater(tf.randomUniform([3, 5, 7], 0, 1, 'float32', 9), 0.3), 'float32');
    const [yOut, yScores] = model.predict([xq, xv, xm]) as tf.Tensor[];
    const eagerH = cross.call(xq, { value: xv, attentionMask: xm }) as tf.Tensor;
    const [eOut, eScores] = self.callAndReturnAttentionScores(eagerH, { value: eagerH, useCausalMask: true });
    assertClose(yOut, eOut, 1e-5, 'functional output');
    assertClose(yScores, eScores, 1e-5, 'functional scores');
    // Causal: no weight on later positions.
    const a = eScores.arraySync() as number[][][][];
    for (let t = 0; t < 5; t++) for (let s = t + 1; s < 5; s++) assert.equal(a[0][1][t][s], 0);
    // Self-attention without `value` works too (e.g. in a Sequential model).
    const seq = tfl.sequential({
      layers: [
        new UHopAttention({ numHeads: 2, keyDim: 2, inputShape: [5, 8], seed: 105 }),
        tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }) }),
      ],
    });
    assert.deepEqual((seq.predict(xq) as tf.Tensor).shape, [3, 5, 3]);
  });

  it('U-Hop: fitSteps 0 with the isometry Phi0 equals the plain layer; fitting changes the scores', () => {
    const q = tf.randomNormal([3, 5, 8], 0, 1, 'float32', 10);
    const v = tf.randomNormal([3, 7, 6], 0, 1, 'float32', 11);
    const plain = new UHopAttention({ numHeads: 2, keyDim: 4, seed: 106 });
    const y = plain.call(q, { value: v }) as tf.Tensor;
    const proj = plain.getWeights();
    for (const featureDim of [4, 6]) {
      const u0 = new UHopAttention({ numHeads: 2, keyDim: 4, featureMap: 'linear', featureDim, fitSteps: 0, seed: 107 });
      u0.call(q, { value: v });
      u0.setWeights([...proj, ...u0.getWeights().slice(8)]);
      assertClose(u0.call(q, { value: v }) as tf.Tensor, y, 1e-5, `fitSteps 0, featureDim ${featureDim}`);
      const u5 = new UHopAttention({ numHeads: 2, keyDim: 4, featureMap: 'linear', featureDim, fitSteps: 5, fitLr: 0.5, seed: 108 });
      u5.call(q, { value: v });
      u5.setWeights(u0.getWeights());
      const [y5, s5] = u5.callAndReturnAttentionScores(q, { value: v });
      assert.deepEqual(y5.shape, [3, 5, 8]);
      assert.deepEqual(s5.shape, [3, 2, 5, 7]);
      assert.ok(maxAbs(y5, y) > 1e-4, `the fit must change the retrieval (featureDim ${featureDim})`);
      assertClose(tf.sum(s5, -1), tf.ones([3, 2, 5]), 1e-5, 'association rows sum to 1');
    }
    const mlp = new UHopAttention({ numHeads: 2, keyDim: 4, featureMap: 'mlp', featureDim: 8, fitSteps: 2, seed: 109 });
    assert.deepEqual((mlp.call(q, { value: v }) as tf.Tensor).shape, [3, 5, 8]);
  });

  it("U-Hop forward pass: the attention scores use Phi fitted on each sample's projected keys (reference from fitFeatureMap), linear and mlp Phi, every similarity", () => {
    const q = tf.randomNormal([3, 5, 8], 0, 1, 'float32', 12);
    const v = tf.randomNormal([3, 7, 6], 0, 1, 'float32', 13);
    const [Xq, Xv] = [q, v].map((t) => t.arraySync() as number[][][]);
    const [H, dk] = [2, 4];
    for (const featureMap of ['linear', 'mlp'] as const) {
      for (const similarity of SIMILARITY_KINDS) {
        const what = `${featureMap} ${similarity}`;
        const make = (fitSteps: number) =>
          new UHopAttention({ numHeads: H, keyDim: dk, featureMap, fitSteps, fitLr: 1, similarity, seed: 91 });
        const fitted = make(5);
        const plain = make(0);
        fitted.call(q, { value: v });
        plain.call(q, { value: v });
        randomizeWeights(fitted, 29); // seeded values (UHopAttention's own seed is not applied yet)
        plain.setWeights(fitted.getWeights());
        // Projections [F, H, dk] as [F, H*dk] (head-major columns), biases [H, dk] as [H*dk].
        const w = (n: string) => fitted.weights.find((x) => x.originalName.endsWith(`/${n}`))!.read();
        const kernel = (n: string) => tf.reshape(w(`${n}/kernel`), [-1, H * dk]).arraySync() as number[][];
        const bias = (n: string) => tf.reshape(w(`${n}/bias`), [H * dk]).arraySync() as number[];
        const Q = Xq.map((xb) => splitHeads64(addRow(matmul(xb, kernel('query')), bias('query')), H));
        const K = Xv.map((xb) => splitHeads64(addRow(matmul(xb, kernel('key')), bias('key')), H));
        const phi0 = fitted.weights.filter((x) => /phi0_/.test(x.originalName)).map((x) => x.read());
        const ref = uhopAssociation(Q, K, phi0, fitted.uhop, 1 / Math.sqrt(dk), similarity);
        const ref0 = uhopAssociation(Q, K, phi0, { ...fitted.uhop, fitSteps: 0 }, 1 / Math.sqrt(dk), similarity);
        const [o, a] = fitted.callAndReturnAttentionScores(q, { value: v });
        const [o0, a0] = plain.callAndReturnAttentionScores(q, { value: v });
        // Measured (cpu, wasm): within 5.2e-5 of the reference; the fit moves the scores by 0.086 to 0.99.
        assert.ok(
          maxAbsDiff(a.arraySync(), ref) < 1e-3,
          `${what}: scores vs the fitted reference, max |diff| ${maxAbsDiff(a.arraySync(), ref)}`,
        );
        assert.ok(maxAbsDiff(a0.arraySync(), ref0) < 1e-3, `${what}: fitSteps 0 vs the Phi0 reference`);
        assert.ok(maxAbsDiff(ref, ref0) > 1e-2, `${what}: the fit must change the scores (max change ${maxAbsDiff(ref, ref0)})`);
        tf.dispose([o, a, o0, a0]);
      }
    }
    tf.dispose([q, v]);
  });

  it('U-Hop: predict(x)[i] equals predict(x[i]) (one fit per sample and head)', () => {
    const q = tfl.input({ shape: [5, 8] });
    const v = tfl.input({ shape: [7, 6] });
    const m = tfl.input({ shape: [5, 7] });
    const layer = new UHopAttention({
      numHeads: 2,
      keyDim: 4,
      featureMap: 'linear',
      featureDim: 6,
      fitSteps: 4,
      fitLr: 0.3,
      separation: 'sparsemax',
      seed: 110,
    });
    const model = tfl.model({ inputs: [q, v, m], outputs: layer.apply(q, { value: v, attentionMask: m }) as tfl.SymbolicTensor });
    const B = 4;
    const xq = tf.randomNormal([B, 5, 8], 0, 1, 'float32', 12);
    const xv = tf.randomNormal([B, 7, 6], 0, 1, 'float32', 13);
    // Sample 2 has padded memories (masked for every query): they must not enter its fit.
    const xm = tf.tidy(() => {
      const pad = tf.concat([tf.ones([1, 5, 4]), tf.zeros([1, 5, 3])], 2);
      return tf.concat([tf.ones([2, 5, 7]), pad, tf.ones([1, 5, 7])], 0);
    });
    const batch = model.predict([xq, xv, xm]) as tf.Tensor;
    for (let i = 0; i < B; i++) {
      const one = model.predict([tf.slice(xq, [i], [1]), tf.slice(xv, [i], [1]), tf.slice(xm, [i], [1])]) as tf.Tensor;
      assertClose(one, tf.slice(batch, [i], [1]), 1e-5, `sample ${i}`);
    }
    // Padding really is left out: changing padded memories changes nothing for sample 2.
    const xv2 = tf.tidy(() => {
      const noise = tf.concat([tf.zeros([2, 7, 6]), tf.concat([tf.zeros([1, 4, 6]), tf.fill([1, 3, 6], 5)], 1), tf.zeros([1, 7, 6])], 0);
      return tf.add(xv, noise);
    });
    const batch2 = model.predict([xq, xv2, xm]) as tf.Tensor;
    assertClose(tf.slice(batch2, [2], [1]), tf.slice(batch, [2], [1]), 1e-5, 'padded memories do not matter');
  });

  it('U-Hop: gradients reach every weight, and training reduces a loss', async () => {
    const q = tf.randomNormal([4, 5, 6], 0, 1, 'float32', 14);
    // Euclidean similarity: the key bias changes the scores per memory, so it gets gradient
    // too (with the dot product it adds a per-query constant that the softmax removes).
    const layer = new UHopAttention({
      numHeads: 2,
      keyDim: 3,
      featureMap: 'linear',
      fitSteps: 3,
      similarity: 'euclidean',
      dropout: 0.1,
      seed: 111,
    });
    layer.call(q, { value: q });
    const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(layer.call(q, { value: q, training: true }) as tf.Tensor)) as tf.Scalar,
      vars,
    );
    assert.equal(Object.keys(grads).length, 9);
    for (const [name, g] of Object.entries(grads)) {
      assert.ok(tf.norm(g).dataSync()[0] > 1e-6, `no gradient reaches ${name}`);
    }
    tf.dispose([value, ...Object.values(grads)]);
    // phiTrainable false: Phi0 is not a trainable weight.
    const frozen = new UHopAttention({ numHeads: 2, keyDim: 3, featureMap: 'linear', phiTrainable: false, seed: 112 });
    frozen.call(q, { value: q });
    assert.equal(frozen.trainableWeights.length, 8);
    assert.equal(frozen.nonTrainableWeights.length, 1);

    // A small task: predict the mean of each sequence's features from self-attention.
    const input = tfl.input({ shape: [5, 6] });
    const att = new UHopAttention({ numHeads: 2, keyDim: 3, featureMap: 'linear', fitSteps: 2, seed: 113 });
    const h = att.apply(input, { value: input }) as tfl.SymbolicTensor;
    const out = tfl.layers
      .dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 202 }) })
      .apply(tfl.layers.globalAveragePooling1d().apply(h)) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    model.compile({ optimizer: tf.train.adam(0.03), loss: 'meanSquaredError' });
    const x = tf.randomNormal([16, 5, 6], 0, 1, 'float32', 15);
    const y = tf.reshape(tf.mean(x, [1, 2]), [16, 1]);
    const first = model.evaluate(x, y) as tf.Scalar;
    const before = first.dataSync()[0];
    for (let i = 0; i < 40; i++) await model.trainOnBatch(x, y);
    const after = (model.evaluate(x, y) as tf.Scalar).dataSync()[0];
    assert.ok(after < 0.5 * before, `loss ${before} -> ${after} must fall by half`);
  });

  it('Hopfield separations: the association equals the separation op on beta Q K^T of the projected heads (masked memories get 0)', () => {
    const q = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 16);
    const v = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 17);
    const maskRows = [
      [1, 1, 0, 1, 1],
      [1, 0, 1, 1, 0],
    ];
    const mask = tf.tensor3d(maskRows.map((r) => [r])); // [B, 1, S]
    const [Xq, Xv] = [q, v].map((t) => t.arraySync() as number[][][]);
    const [H, dk] = [2, 3];
    for (const kind of ['sparsemax', 'entmax15', 'entmax', 'topk', 'max'] as const) {
      const extra = kind === 'entmax' ? { alpha: 1.3 } : kind === 'topk' ? { topK: 2 } : {};
      const layer = new UHopAttention({ numHeads: H, keyDim: dk, separation: kind, ...extra, seed: 114 });
      layer.call(q, { value: v });
      randomizeWeights(layer, 31);
      const w = (n: string) => layer.weights.find((x) => x.originalName.endsWith(`/${n}`))!.read();
      const kernel = (n: string) => tf.reshape(w(`${n}/kernel`), [-1, H * dk]).arraySync() as number[][];
      const bias = (n: string) => tf.reshape(w(`${n}/bias`), [H * dk]).arraySync() as number[];
      const Q = Xq.map((xb) => splitHeads64(addRow(matmul(xb, kernel('query')), bias('query')), H));
      const K = Xv.map((xb) => splitHeads64(addRow(matmul(xb, kernel('key')), bias('key')), H));
      // Scores beta <q, k> in float64, then the separation op (tested against float64 references in
      // test/ops/separation.test.ts) with the mask: this checks the layer's plumbing of each kind.
      const scores = Q.map((qb, b) =>
        qb.map((qh, h) => qh.map((row) => K[b][h].map((k) => row.reduce((s, x, i) => s + x * k[i], 0) / Math.sqrt(dk)))),
      );
      // alpha is a trainable weight per head (alphaTrainable), randomized above: read it back.
      const alphaWeight = layer.weights.find((x) => /alpha/.test(x.originalName));
      const opts = kind === 'entmax' ? { alpha: tf.reshape(alphaWeight!.read(), [1, H, 1, 1]) } : extra;
      const ref = separation(tf.tensor4d(scores), kind, { mask: tf.tensor4d(maskRows.map((r) => [[r]])), ...opts });
      const [out, a] = layer.callAndReturnAttentionScores(q, { value: v, attentionMask: mask });
      assert.deepEqual(out.shape, [2, 4, 6]);
      assertClose(a, ref, 1e-5, `${kind}: association`);
      const arr = a.arraySync() as number[][][][];
      for (let h = 0; h < H; h++)
        for (let t = 0; t < 4; t++) {
          assert.equal(arr[0][h][t][2], 0, `${kind}: masked memory`);
          assert.equal(arr[1][h][t][4], 0, `${kind}: masked memory`);
        }
      // With extra update steps (no closed form here), the rows stay distributions on the allowed memories.
      const iterated = new UHopAttention({ numHeads: H, keyDim: dk, separation: kind, ...extra, updateStepsMax: 2, seed: 115 });
      const [, a2] = iterated.callAndReturnAttentionScores(q, { value: v, attentionMask: mask });
      assertClose(tf.sum(a2, -1), tf.ones([2, 2, 4]), 1e-5, `${kind}, 2 extra steps: rows sum to 1`);
      assert.equal((a2.arraySync() as number[][][][])[1][0][0][4], 0, `${kind}, 2 extra steps: masked memory`);
    }
  });

  it('leaks no tensors over 100 training steps and 100 predictions', async () => {
    const input = tfl.input({ shape: [4, 6] });
    const att = new UHopAttention({ numHeads: 2, keyDim: 3, featureMap: 'linear', fitSteps: 2, dropout: 0.1, seed: 115 });
    const h = att.apply(input, { value: input }) as tfl.SymbolicTensor;
    const model = tfl.model({
      inputs: input,
      outputs: tfl.layers
        .dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: 203 }) })
        .apply(h) as tfl.SymbolicTensor,
    });
    model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
    const x = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 18);
    const y = tf.randomNormal([3, 4, 2], 0, 1, 'float32', 19);
    await model.trainOnBatch(x, y);
    tf.dispose(model.predict(x) as tf.Tensor);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) await model.trainOnBatch(x, y);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked by training');
    for (let i = 0; i < 100; i++) tf.dispose(model.predict(x) as tf.Tensor);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked by predict');
    const mask = tf.ones([3, 4, 4]);
    assertNoLeak(() => att.callAndReturnAttentionScores(x, { value: x, attentionMask: mask }), 3);
  });

  it('gives clear errors for bad arguments and calls', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ numHeads: 0, keyDim: 2 }, /numHeads must be an integer >= 1, got 0/],
      [{ numHeads: 2, keyDim: 'a' }, /keyDim must be an integer >= 1, got 'a'/],
      [{ numHeads: 2, keyDim: 2, dropout: 1 }, /dropout must be a number in \[0, 1\), got 1/],
      [{ numHeads: 2, keyDim: 2, seperation: 'sparsemax' }, /unknown option 'seperation'/],
      [{ numHeads: 2, keyDim: 2, separation: 'soft' }, /separation/],
      [{ numHeads: 2, keyDim: 2, similarity: 'l2' }, /similarity/],
      [{ numHeads: 2, keyDim: 2, beta: -1 }, /beta must be a finite number > 0/],
      [{ numHeads: 2, keyDim: 2, beta: [1, 2, 3] }, /beta per head must have numHeads=2 entries, got 3/],
      [{ numHeads: 2, keyDim: 2, separation: 'entmax', alpha: 3 }, /UHopAttention: alpha must be a number in \[1, 2\], got 3/],
      [{ numHeads: 2, keyDim: 2, updateStepsMax: -1 }, /updateStepsMax must be an integer in \[0, 999\]/],
      [{ numHeads: 2, keyDim: 2, alpha: 1.3 }, /alpha applies to separation 'entmax' only, got separation 'softmax'/],
      [{ numHeads: 2, keyDim: 2, outputShape: [0] }, /outputShape must be/],
      [{ numHeads: 2, keyDim: 2, activityRegularizer: 'l1l2' }, /activityRegularizer is not supported/],
      [{ numHeads: 2, keyDim: 4, featureMap: 'linear', featureDim: 2 }, /featureDim \(2\) < key dimension per head \(4\)/],
      [{ numHeads: 2, keyDim: 2, featureMap: 'kernel' }, /featureMap must be one of 'none', 'linear', 'mlp'/],
      [{ numHeads: 2, keyDim: 2, kernelInitializer: 'glorotUnifrm' }, /unknown initializer 'glorotUnifrm'/],
    ];
    for (const [args, re] of bad) assert.throws(() => new UHopAttention(args as never), re, JSON.stringify(args));
    assert.throws(() => new UHopAttention(undefined as never), /UHopAttention: args must be an object with numHeads and keyDim/);
    assert.throws(
      () => new MultiHeadAttention({ numHeads: 2, keyDim: 2, separation: 'sparsemax' } as never),
      /MultiHeadAttention: unknown option 'separation'/,
    );

    const layer = new UHopAttention({ numHeads: 2, keyDim: 2, name: 'att', seed: 117 });
    const x = tf.zeros([2, 3, 4]);
    assert.throws(() => layer.call(x, { key: x }), /UHopAttention 'att': key was given without value/);
    assert.throws(() => layer.apply(tf.zeros([2, 4])), /rank >= 3/);
    layer.call(x, { value: x });
    assert.throws(() => layer.call(tf.zeros([2, 3, 5]), { value: x }), /query has 5 features but the layer was built for 4/);
    assert.throws(() => layer.call(x, { value: tf.zeros([3, 3, 4]) }), /must agree on the batch dims/);
    assert.throws(() => layer.call(x, { value: x, attentionMask: tf.ones([2, 2, 3]) }), /does not broadcast to the scores \[2,2,3,3\]/);
    assert.throws(() => layer.apply(tfl.input({ shape: [3, 4] }), { value: x }), /must be all symbolic .* or all tensors/);
    const uhop = new UHopAttention({ numHeads: 1, keyDim: 2, featureMap: 'linear', seed: 118 });
    assert.throws(() => uhop.call(x, { value: x, useCausalMask: true }), /useCausalMask with a U-Hop fit/);
    const twice = new UHopAttention({ numHeads: 1, keyDim: 2, name: 'twice', seed: 119 });
    const s = tfl.input({ shape: [3, 4] });
    twice.apply(s, { value: s });
    assert.throws(
      () => twice.apply(s, { value: s, useCausalMask: true }),
      /'twice': called in a functional model with .* but it was called before/,
    );
  });
});
