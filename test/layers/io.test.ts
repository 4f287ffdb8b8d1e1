import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UHopAttention } from '../../src/layers/uhopAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { saveModel, loadModel } from '../../src/layers/io.js';
import { Hopfield } from '../../src/layers/hopfield.js';
import { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
import { HopfieldLayer } from '../../src/layers/hopfieldLayer.js';
import { forEachBackend, assertClose } from '../helpers.js';

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
  const a = new MultiHeadAttention({ numHeads: 2, keyDim: 3, name: 'mha' }).apply(x, { value: x, useCausalMask: true }) as tfl.SymbolicTensor;
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
  }).apply(a, { value: mem, attentionMask: mask }) as tfl.SymbolicTensor;
  const [c, scores] = new UHopAttention({ numHeads: 1, keyDim: 4, featureMap: 'mlp', fitSteps: 2, name: 'uhop_mlp' }).apply(b, {
    value: b,
    returnAttentionScores: true,
  }) as tfl.SymbolicTensor[];
  const out = tfl.layers.dense({ units: 2, name: 'head' }).apply(c) as tfl.SymbolicTensor;
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
    const name = String(url).replace(/^http:\/\/files\//, '').split('?')[0];
    try {
      const body = await readFile(join(dir, name));
      return new Response(body, { status: 200, headers: { 'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' } });
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
    const h = new Hopfield({ numHeads: 2, featureMap: 'linear', fitSteps: 2 }).apply(bags) as tfl.SymbolicTensor;
    const l = new HopfieldLayer({ quantity: 4, numHeads: 1 }).apply(h) as tfl.SymbolicTensor;
    const pooled = new HopfieldPooling({ numHeads: 2, separation: 'entmax15' }).apply([l, bagMask]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: [bags, bagMask], outputs: tfl.layers.dense({ units: 1 }).apply(pooled) as tfl.SymbolicTensor });
    const x = [tf.randomNormal([3, 6, 4], 0, 1, 'float32', 4), tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])];
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
    assert.equal(bytes, specs.reduce((a, s) => a + 4 * s.shape.reduce((p, d) => p * d, 1), 0));
    assert.ok(specs.some((s) => s.name === 'uhop/phi0_kernel'), 'Phi0 is saved under the layer name');

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

  it('saves and restores the optimizer state with includeOptimizer', async () => {
    const input = tfl.input({ shape: [4, 3] });
    const h = new UHopAttention({ numHeads: 1, keyDim: 2, featureMap: 'linear', fitSteps: 1 }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.globalAveragePooling1d().apply(h) as tfl.SymbolicTensor });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const x = tf.randomNormal([4, 4, 3], 0, 1, 'float32', 5);
    const t = tf.randomNormal([4, 3], 0, 1, 'float32', 6);
    await model.fit(x, t, { epochs: 2, verbose: 0 });
    const dir = join(root, `${backend}-optimizer`);
    await saveModel(model, dir, { includeOptimizer: true });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    assert.ok(json.trainingConfig, 'training config saved');
    assert.ok(json.weightsManifest[0].weights.some((w: { group?: string }) => w.group === 'optimizer'), 'optimizer weights saved');
    const loaded = await loadModel(dir);
    assertClose(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor, 0, 'predictions');
    await loaded.fit(x, t, { epochs: 1, verbose: 0 }); // compiled from the saved training config
  });

  it('gives clear errors', async () => {
    const missing = join(root, 'no-such-dir');
    await assert.rejects(loadModel(missing), (e: Error) => e.message.startsWith('loadModel: ') && e.message.includes(missing) && /does not exist/.test(e.message));
    const empty = join(root, `${backend}-empty`);
    await mkdir(empty, { recursive: true });
    await assert.rejects(loadModel(empty), /loadModel: .*-empty has no model.json/);

    const model = attentionModel();
    const dir = join(root, `${backend}-broken`);
    await saveModel(model, dir);
    const bin = await readFile(join(dir, 'weights.bin'));
    await writeFile(join(dir, 'weights.bin'), bin.subarray(0, bin.byteLength - 8));
    await assert.rejects(loadModel(dir), new RegExp(`loadModel: weight size mismatch .* describes ${model.weights.length} weights of ${bin.byteLength} bytes, the files \\[weights.bin\\] hold ${bin.byteLength - 8} bytes`));
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
});
