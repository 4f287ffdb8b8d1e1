import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { saveModel, loadModel } from '../../src/node/io.js';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { HopfieldLayer } from '../../src/layers/hopfieldLayer.js';
import { forEachBackend, assertClose } from '../helpers.js';
import { maxDiff, randomizeWeights } from './util.js';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'uhop-io-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Attention layers of every flavour, with a mask input, causal self-attention and scores. */
function attentionModel(): tfl.LayersModel {
  const x = tfl.input({ shape: [5, 6], name: 'x' });
  const mem = tfl.input({ shape: [7, 4], name: 'mem' });
  const mask = tfl.input({ shape: [5, 7], name: 'mask' });
  const a = new MultiHeadAttention({ numHeads: 2, keyDim: 3, name: 'mha', seed: 101 }).apply(x, {
    value: x,
    useCausalMask: true,
  }) as tfl.SymbolicTensor;
  const b = new UHopAttention({
    numHeads: 2,
    keyDim: 3,
    valueDim: 2,
    featureMap: 'linear',
    featureDim: 5,
    fitSteps: 3,
    separation: 'sparsemax',
    beta: [0.5, 0.7],
    kernelInitializer: 'heNormal',
    kernelRegularizer: 'l2',
    name: 'uhop',
    seed: 102,
  }).apply(a, { value: mem, attentionMask: mask }) as tfl.SymbolicTensor;
  const [c, scores] = new UHopAttention({ numHeads: 1, keyDim: 4, featureMap: 'mlp', fitSteps: 2, name: 'uhop_mlp', seed: 103 }).apply(b, {
    value: b,
    returnAttentionScores: true,
  }) as tfl.SymbolicTensor[];
  const out = tfl.layers
    .dense({ units: 2, name: 'head', kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }) })
    .apply(c) as tfl.SymbolicTensor;
  return tfl.model({ inputs: [x, mem, mask], outputs: [out, scores], name: 'attention_io' });
}

function attentionInputs(): tf.Tensor[] {
  return [
    tf.randomNormal([3, 5, 6], 0, 1, 'float32', 1),
    tf.randomNormal([3, 7, 4], 0, 1, 'float32', 2),
    tf.cast(tf.greater(tf.randomUniform([3, 5, 7], 0, 1, 'float32', 3), 0.3), 'float32'),
  ];
}

/** A fetch() over local files, for tfjs' own browser/http loader. */
function fileFetch(dir: string) {
  return async (url: RequestInfo | URL): Promise<Response> => {
    const name = String(url)
      .replace(/^http:\/\/files\//, '')
      .split('?')[0];
    try {
      const body = await readFile(join(dir, name));
      return new Response(body, {
        status: 200,
        headers: { 'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' },
      });
    } catch {
      return new Response('not found', { status: 404 });
    }
  };
}

function predictAll(model: tfl.LayersModel, x: tf.Tensor[]): tf.Tensor[] {
  const y = model.predict(x);
  return Array.isArray(y) ? y : [y];
}

forEachBackend('saveModel / loadModel', (backend) => {
  it('round-trips attention models (UHopAttention with U-Hop, MultiHeadAttention) with identical predictions', async () => {
    const model = attentionModel();
    const x = attentionInputs();
    const y = predictAll(model, x);
    const dir = join(root, `${backend}-attention`);
    const result = await saveModel(model, dir);
    assert.ok((result.modelArtifactsInfo.weightDataBytes ?? 0) > 0);
    const loaded = await loadModel(dir);
    assert.deepEqual(
      loaded.layers.map((l) => `${l.name}:${l.getClassName()}`),
      model.layers.map((l) => `${l.name}:${l.getClassName()}`),
    );
    const u = loaded.getLayer('uhop') as UHopAttention;
    assert.equal(u.uhop.featureMap, 'linear');
    assert.equal(u.uhop.featureDim, 5);
    assert.equal(u.separation, 'sparsemax');
    assert.deepEqual(u.beta, [0.5, 0.7]);
    assert.equal(u.weights.length, 9);
    const y2 = predictAll(loaded, x);
    assert.equal(y2.length, 2);
    y2.forEach((t, i) => assertClose(t, y[i], 0, `output ${i}`));
    // The same folder through tfjs' own loader (the browser/http one, reading model.json and
    // then the weight paths it lists): the layout is the standard one.
    const viaTfjs = await tfl.loadLayersModel(tf.io.http('http://files/model.json', { fetchFunc: fileFetch(dir) }));
    predictAll(viaTfjs, x).forEach((t, i) => assertClose(t, y[i], 0, `tfjs loader output ${i}`));
  });

  it('round-trips the Hopfield layers', async () => {
    const bags = tfl.input({ shape: [6, 4] });
    const bagMask = tfl.input({ shape: [6] });
    const h = new Hopfield({ numHeads: 2, featureMap: 'linear', fitSteps: 2, seed: 104 }).apply(bags) as tfl.SymbolicTensor;
    const l = new HopfieldLayer({ quantity: 4, numHeads: 1, seed: 105 }).apply(h) as tfl.SymbolicTensor;
    const pooled = new HopfieldPooling({ numHeads: 2, separation: 'entmax15', seed: 106 }).apply([l, bagMask]) as tfl.SymbolicTensor;
    const model = tfl.model({
      inputs: [bags, bagMask],
      outputs: tfl.layers
        .dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 202 }) })
        .apply(pooled) as tfl.SymbolicTensor,
    });
    const x = [
      tf.randomNormal([3, 6, 4], 0, 1, 'float32', 4),
      tf.tensor2d([
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0],
      ]),
    ];
    const y = model.predict(x) as tf.Tensor;
    const dir = join(root, `${backend}-hopfield`);
    await saveModel(model, dir);
    const loaded = await loadModel(join(dir, 'model.json')); // the model.json path works too
    assertClose(loaded.predict(x) as tf.Tensor, y, 0, 'hopfield model');
  });

  it('writes the layout tfjs-node writes, and reads sharded converter output', async () => {
    const model = attentionModel();
    const x = attentionInputs();
    const y = predictAll(model, x);
    const dir = join(root, `${backend}-layout`);
    await saveModel(model, dir);
    assert.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin']);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    assert.deepEqual(Object.keys(json).sort(), ['convertedBy', 'format', 'generatedBy', 'modelTopology', 'weightsManifest']);
    assert.equal(json.format, 'layers-model');
    assert.match(json.generatedBy, /^TensorFlow.js tfjs-layers v/);
    assert.equal(json.modelTopology.class_name, 'Model');
    assert.equal(json.weightsManifest.length, 1);
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    const specs = json.weightsManifest[0].weights as { name: string; shape: number[]; dtype: string }[];
    assert.equal(specs.length, model.weights.length);
    const bytes = (await readFile(join(dir, 'weights.bin'))).byteLength;
    assert.equal(
      bytes,
      specs.reduce((a, s) => a + 4 * s.shape.reduce((p, d) => p * d, 1), 0),
    );
    assert.ok(
      specs.some((s) => s.name === 'uhop/phi0_kernel'),
      'Phi0 is saved under the layer name',
    );

    // Converter style: weights split across shards, in a second manifest group.
    const bin = await readFile(join(dir, 'weights.bin'));
    const cut = 4 * 10;
    const sharded = join(root, `${backend}-sharded`);
    await mkdir(sharded, { recursive: true });
    await writeFile(join(sharded, 'group1-shard1of2.bin'), bin.subarray(0, cut));
    await writeFile(join(sharded, 'group1-shard2of2.bin'), bin.subarray(cut));
    const shardedJson = { ...json, weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: specs }] };
    await writeFile(join(sharded, 'model.json'), JSON.stringify(shardedJson));
    predictAll(await loadModel(sharded), x).forEach((t, i) => assertClose(t, y[i], 0, `sharded output ${i}`));
  });

  it('loads a Keras 2 model with MultiHeadAttention as tensorflowjs_converter writes it', async () => {
    // Keras 2 serializes mha(query, value, ...) with value/attention_mask as [layer, node,
    // tensor] references inside the query entry's kwargs, and names the weights
    // <layer>/{query,key,value,attention_output}/{kernel,bias}.
    const mhaConfig = (name: string, q: (number | null)[], v: (number | null)[]) => ({
      name,
      trainable: true,
      dtype: 'float32',
      num_heads: 2,
      key_dim: 3,
      value_dim: 3,
      dropout: 0.0,
      use_bias: true,
      output_shape: null,
      attention_axes: [1],
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
      query_shape: q,
      key_shape: v,
      value_shape: v,
    });
    const input = (name: string, shape: (number | null)[]) => ({
      class_name: 'InputLayer',
      config: { batch_input_shape: shape, dtype: 'float32', sparse: false, ragged: false, name },
      name,
      inbound_nodes: [],
    });
    const topology = {
      class_name: 'Functional',
      config: {
        name: 'model',
        layers: [
          input('input_1', [null, 5, 8]),
          input('input_2', [null, 7, 6]),
          input('input_3', [null, 5, 7]),
          {
            class_name: 'MultiHeadAttention',
            config: mhaConfig('multi_head_attention', [null, 5, 8], [null, 7, 6]),
            name: 'multi_head_attention',
            inbound_nodes: [[['input_1', 0, 0, { value: ['input_2', 0, 0], attention_mask: ['input_3', 0, 0] }]]],
          },
          {
            class_name: 'MultiHeadAttention',
            config: mhaConfig('multi_head_attention_1', [null, 5, 8], [null, 5, 8]),
            name: 'multi_head_attention_1',
            inbound_nodes: [[['multi_head_attention', 0, 0, { value: ['multi_head_attention', 0, 0], use_causal_mask: true }]]],
          },
        ],
        input_layers: [
          ['input_1', 0, 0],
          ['input_2', 0, 0],
          ['input_3', 0, 0],
        ],
        output_layers: [['multi_head_attention_1', 0, 0]],
      },
      keras_version: '2.15.0',
      backend: 'tensorflow',
    };
    const shapes = (dq: number, dv: number) => [[dq, 2, 3], [2, 3], [dv, 2, 3], [2, 3], [dv, 2, 3], [2, 3], [2, 3, dq], [dq]];
    const parts = [
      'query/kernel',
      'query/bias',
      'key/kernel',
      'key/bias',
      'value/kernel',
      'value/bias',
      'attention_output/kernel',
      'attention_output/bias',
    ];
    const specs: { name: string; shape: number[]; dtype: 'float32' }[] = [];
    const values: tf.Tensor[] = [];
    for (const [layer, dv] of [
      ['multi_head_attention', 6],
      ['multi_head_attention_1', 8],
    ] as const) {
      shapes(8, dv).forEach((shape, i) => {
        specs.push({ name: `${layer}/${parts[i]}`, shape, dtype: 'float32' });
        values.push(tf.randomNormal(shape, 0, 0.5, 'float32', 100 + specs.length));
      });
    }
    const dir = join(root, `${backend}-keras`);
    await mkdir(dir, { recursive: true });
    const data = new Float32Array(values.flatMap((v) => Array.from(v.dataSync())));
    await writeFile(join(dir, 'group1-shard1of1.bin'), new Uint8Array(data.buffer));
    const modelJson = {
      format: 'layers-model',
      generatedBy: 'keras v2.15.0',
      convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: topology,
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: specs }],
    };
    await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
    const loaded = await loadModel(dir);
    assert.deepEqual(
      loaded.layers.map((l) => l.getClassName()),
      ['InputLayer', 'InputLayer', 'InputLayer', 'MultiHeadAttention', 'MultiHeadAttention'],
    );

    // The same model built by hand with the same weights.
    const q = tfl.input({ shape: [5, 8] });
    const v = tfl.input({ shape: [7, 6] });
    const m = tfl.input({ shape: [5, 7] });
    const a1 = new MultiHeadAttention({ numHeads: 2, keyDim: 3, seed: 107 });
    const a2 = new MultiHeadAttention({ numHeads: 2, keyDim: 3, seed: 108 });
    const h = a1.apply(q, { value: v, attentionMask: m }) as tfl.SymbolicTensor;
    const ref = tfl.model({ inputs: [q, v, m], outputs: a2.apply(h, { value: h, useCausalMask: true }) as tfl.SymbolicTensor });
    a1.setWeights(values.slice(0, 8));
    a2.setWeights(values.slice(8));
    const x = [
      tf.randomNormal([3, 5, 8], 0, 1, 'float32', 7),
      tf.randomNormal([3, 7, 6], 0, 1, 'float32', 8),
      tf.cast(tf.greater(tf.randomUniform([3, 5, 7], 0, 1, 'float32', 9), 0.3), 'float32'),
    ];
    assertClose(loaded.predict(x) as tf.Tensor, ref.predict(x) as tf.Tensor, 1e-6, 'keras model');
    // And it converts to U-Hop like any other.
    const { replaceAttention } = await import('../../src/layers/replaceAttention.js');
    assertClose(replaceAttention(loaded).predict(x) as tf.Tensor, ref.predict(x) as tf.Tensor, 1e-5, 'replaced keras model');
  });

  it('saves and restores the optimizer state with includeOptimizer', async () => {
    const input = tfl.input({ shape: [4, 3] });
    const attention = new UHopAttention({ numHeads: 1, keyDim: 2, featureMap: 'linear', fitSteps: 1, seed: 109 });
    const h = attention.apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.globalAveragePooling1d().apply(h) as tfl.SymbolicTensor });
    randomizeWeights(attention, 23); // seeded values (UHopAttention's own seed is not applied yet)
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const x = tf.randomNormal([4, 4, 3], 0, 1, 'float32', 5);
    const t = tf.randomNormal([4, 3], 0, 1, 'float32', 6);
    await model.fit(x, t, { epochs: 2, verbose: 0 });
    const dir = join(root, `${backend}-optimizer`);
    await saveModel(model, dir, { includeOptimizer: true });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    assert.ok(json.trainingConfig, 'training config saved');
    assert.ok(
      json.weightsManifest[0].weights.some((w: { group?: string }) => w.group === 'optimizer'),
      'optimizer weights saved',
    );
    const loaded = await loadModel(dir);
    assertClose(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor, 0, 'predictions');
    // The optimizer comes back with its iteration count (2 epochs of one batch) and Adam's moments.
    const saved = await model.optimizer.getWeights();
    const restored = await loaded.optimizer.getWeights();
    assert.equal(restored.length, saved.length, 'optimizer weight count');
    assert.equal(saved[0].tensor.dataSync()[0], 2, 'iterations before saving');
    assert.equal(restored[0].tensor.dataSync()[0], 2, 'iterations restored');
    for (const [i, w] of saved.entries()) assertClose(restored[i].tensor, w.tensor, 0, `optimizer weight ${w.name}`);
    // So one more step from the loaded model is the step the original takes; a model loaded
    // without the optimizer state (fresh Adam: no moments, iteration 0) takes another one.
    const bare = join(root, `${backend}-no-optimizer`);
    await saveModel(model, bare);
    const fresh = await loadModel(bare);
    fresh.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    for (const m of [model, loaded, fresh]) await m.fit(x, t, { epochs: 1, verbose: 0 });
    assertClose(
      loaded.predict(x) as tf.Tensor,
      model.predict(x) as tf.Tensor,
      1e-5,
      'one more step, restored optimizer (tfjs recomputes beta^t as a power on load, the original multiplies)',
    );
    const off = Math.max(...fresh.weights.map((w, i) => maxDiff(w.read(), model.weights[i].read())));
    // Measured: 0.014 (cpu and wasm).
    assert.ok(off > 1e-3, `a fresh optimizer steps differently (max weight |diff| ${off})`);
  });

  it('gives clear errors', async () => {
    const missing = join(root, 'no-such-dir');
    await assert.rejects(
      loadModel(missing),
      (e: Error) => e.message.startsWith('loadModel: ') && e.message.includes(missing) && /does not exist/.test(e.message),
    );
    const empty = join(root, `${backend}-empty`);
    await mkdir(empty, { recursive: true });
    await assert.rejects(loadModel(empty), /loadModel: .*-empty has no model.json/);

    const model = attentionModel();
    const dir = join(root, `${backend}-broken`);
    await saveModel(model, dir);
    const bin = await readFile(join(dir, 'weights.bin'));
    await writeFile(join(dir, 'weights.bin'), bin.subarray(0, bin.byteLength - 8));
    await assert.rejects(
      loadModel(dir),
      new RegExp(
        `loadModel: weight size mismatch .* describes ${model.weights.length} weights of ${bin.byteLength} bytes, the files \\[weights.bin\\] hold ${bin.byteLength - 8} bytes`,
      ),
    );
    await rm(join(dir, 'weights.bin'));
    await assert.rejects(loadModel(dir), /loadModel: weight file .*weights.bin \(listed in .*model.json\) does not exist/);
    await writeFile(join(dir, 'model.json'), '{"modelTopology": ');
    await assert.rejects(loadModel(dir), /loadModel: .*model.json is not valid JSON/);
    await writeFile(join(dir, 'model.json'), '{"weightsManifest": []}');
    await assert.rejects(loadModel(dir), /has no modelTopology/);

    // A layer class nobody registered.
    const unknown = join(root, `${backend}-unknown`);
    await saveModel(model, unknown);
    const text = (await readFile(join(unknown, 'model.json'), 'utf8')).replace('"class_name":"UHopAttention"', '"class_name":"NotALayer"');
    await writeFile(join(unknown, 'model.json'), text);
    await assert.rejects(loadModel(unknown), /loadModel: .*Unknown layer: NotALayer.*registerClass/);

    const file = join(root, `${backend}-file`);
    await writeFile(file, 'x');
    await assert.rejects(saveModel(model, file), /saveModel: .* exists and is not a directory/);
    await assert.rejects(saveModel({} as tfl.LayersModel, dir), /saveModel: model must be a tf.LayersModel/);
  });

  it('takes file:// URLs (strings and URL objects) as tfjs-node does, and refuses other schemes', async () => {
    const model = tfl.sequential({ layers: [new HopfieldPooling({ inputShape: [4, 3], hiddenSize: 3, name: 'pool', seed: 7 })] });
    const x = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 5);
    const dir = join(root, `${backend}-url dir`); // a space: percent-encoded in the URL
    const cwdBefore = await readdir(process.cwd());
    await saveModel(model, pathToFileURL(dir).href);
    assert.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin'], 'written to the path the URL names');
    assert.deepEqual(await readdir(process.cwd()), cwdBefore, 'nothing written under the working directory (no ./file:)');
    for (const where of [pathToFileURL(dir).href, pathToFileURL(join(dir, 'model.json')), pathToFileURL(dir)]) {
      const loaded = await loadModel(where);
      assertClose(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor, 0, `predictions via ${String(where)}`);
    }
    await saveModel(model, new URL(pathToFileURL(join(root, `${backend}-url2`))));
    assert.ok((await readdir(join(root, `${backend}-url2`))).includes('model.json'));
    await assert.rejects(
      saveModel(model, 'indexeddb://m'),
      /saveModel: dir 'indexeddb:\/\/m' uses the indexeddb:\/\/ scheme; .*model\.save\('indexeddb:\/\/m'\)/,
    );
    await assert.rejects(loadModel('https://example.org/model.json'), /loadModel: .*https:\/\/ scheme; .*tf\.loadLayersModel/);
    await assert.rejects(
      saveModel(model, new URL('http://host/x')),
      /saveModel: dir must be a path or a file:\/\/ URL, got the http:\/\/ URL/,
    );
    await assert.rejects(saveModel(model, ''), /saveModel: dir must be a non-empty path or file:\/\/ URL, got ''/);
  });
});
