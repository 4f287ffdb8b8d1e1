/**
 * Every public options object rejects unknown keys, naming the function or layer, the key and
 * the closest known key; names given to replaceAttention must name attention layers. The
 * builders' schemas (src/ops/schema.ts) drive their value checks and defaults.
 */
import { it, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkOptions, suggestKeys } from '../../src/ops/options.js';
import { trainMilModel, predictBags, TRAIN_MIL_SCHEMA, PREDICT_BAGS_SCHEMA } from '../../src/models/milTraining.js';
import { milClassifier, MIL_CLASSIFIER_SCHEMA } from '../../src/models/mil.js';
import { defaultsText } from '../../src/ops/schema.js';
import { sequenceClassifier, SEQUENCE_CLASSIFIER_SCHEMA } from '../../src/models/sequence.js';
import { visionClassifier, VISION_CLASSIFIER_SCHEMA } from '../../src/models/vision.js';
import { transformerEncoder, transformerEncoderBlock, TRANSFORMER_ENCODER_SCHEMA } from '../../src/models/transformer.js';
import { AlternatingFitCallback, ALTERNATING_FIT_SCHEMA } from '../../src/models/alternatingFit.js';
import { padBags, PAD_BAGS_SCHEMA, type Bag } from '../../src/data/mil.js';
import { readMilCsv } from '../../src/node/data.js';
import { saveModel, loadModel, SAVE_MODEL_SCHEMA, LOAD_MODEL_SCHEMA } from '../../src/node/io.js';
import { replaceAttention } from '../../src/layers/replaceAttention.js';
import { MultiHeadAttention } from '../../src/layers/multiHeadAttention.js';
import { Hopfield } from '../../src/layers/hopfield.js';
import { retrieve } from '../../src/ops/retrieve.js';
import { UHopMemory, uhopRetrieve } from '../../src/ops/uhop.js';
import { initBackend } from '../../src/node/backend.js';

describe('unknown options are errors, with a did-you-mean', () => {
  it('suggestKeys finds typos, plural slips and case slips', () => {
    assert.deepEqual(suggestKeys('epoch', ['epochs', 'batchSize']), ['epochs']);
    assert.deepEqual(suggestKeys('numLayer', ['numLayers', 'numHeads']), ['numLayers']);
    assert.deepEqual(suggestKeys('BATCHSIZE', ['batchSize']), ['batchSize']);
    assert.deepEqual(suggestKeys('zzzzzz', ['epochs']), []);
    assert.throws(() => checkOptions([1], ['a'], 'f'), /f: options must be an object, got an array/);
    assert.doesNotThrow(() => checkOptions({ a: 1, b: undefined }, ['a'], 'f'));
  });

  it('the builders, training helpers, io and data functions', async () => {
    await initBackend('cpu');
    const bag: Bag = { id: 0, label: 1, size: 2, instances: new Float32Array(6) };
    const mil = milClassifier({ numFeatures: 3, hidden: [], seed: 1 });
    const cases: [() => unknown, RegExp][] = [
      [() => milClassifier({ numFeatures: 3, hiden: [3] } as never), /milClassifier: unknown option 'hiden' \(did you mean 'hidden'\?\)/],
      [
        () => sequenceClassifier({ vocabSize: 10, maxLen: 4, numClasses: 2, dModel: 8, numLayer: 1 } as never),
        /sequenceClassifier: unknown option 'numLayer' \(did you mean 'numLayers'\?\)/,
      ],
      [
        () => sequenceClassifier({ vocabSize: 10, maxLen: 4, numClasses: 2, dModel: 8, updateSteps: 2 } as never),
        /sequenceClassifier: 'updateSteps' was renamed 'updateStepsMax' in 0.2.0 \(it counts the extra steps/,
      ],
      [
        () =>
          sequenceClassifier({
            vocabSize: 10,
            maxLen: 4,
            numClasses: 2,
            dModel: 8,
            pooling: 'hopfield',
            poolingOptions: { quantites: 2 },
          } as never),
        /sequenceClassifier poolingOptions: unknown option 'quantites' \(did you mean 'quantity'\?\)/,
      ],
      [
        () => visionClassifier({ imageSize: 8, patchSize: 4, numClasses: 2, dModel: 8, patchSize2: 2 } as never),
        /visionClassifier: unknown option 'patchSize2' \(did you mean 'patchSize'\?\)/,
      ],
      [
        () => transformerEncoder({ dModel: 8, numHead: 2 } as never),
        /transformerEncoder: unknown option 'numHead' \(did you mean 'numHeads'/,
      ],
      [
        () => transformerEncoderBlock(tfl.input({ shape: [4, 8] }), { mlpDims: 16 } as never),
        /transformerEncoderBlock: unknown option 'mlpDims' \(did you mean 'mlpDim'\?\)/,
      ],
      [
        () => new AlternatingFitCallback({ x: tf.zeros([2, 3]), alternation: 2 } as never),
        /AlternatingFitCallback: unknown option 'alternation' \(did you mean 'alternations'\?\)/,
      ],
      [() => padBags([bag], { maxsize: 3 } as never), /padBags: unknown option 'maxsize' \(did you mean 'maxSize'\?\)/],
      [
        () => (readMilCsv as (p: string, o: unknown) => unknown)('x.csv', { name: 'x' }),
        /readMilCsv: takes one argument \(the CSV path\), got 2/,
      ],
      [() => predictBags(mil, [bag], { batch: 2 } as never), /predictBags: unknown option 'batch'/],
      [
        () => retrieve(tf.zeros([1, 2]), tf.zeros([3, 2]), { updateStepMax: 2 } as never),
        /retrieve: unknown option 'updateStepMax' \(did you mean 'updateStepsMax'\?\)/,
      ],
      [() => new UHopMemory({ fitStep: 2 } as never), /UHopMemory: unknown option 'fitStep' \(did you mean 'fitSteps'\?\)/],
      [
        () => uhopRetrieve(tf.zeros([1, 2]), tf.zeros([3, 2]), { fitstep: 2 } as never),
        /UHopMemory: unknown option 'fitstep' \(did you mean 'fitSteps'\?\)/,
      ],
      [() => new Hopfield({ updateStepMax: 2 } as never), /Hopfield: unknown option 'updateStepMax' \(did you mean 'updateStepsMax'\?\)/],
    ];
    for (const [f, re] of cases) assert.throws(f, re);
    await assert.rejects(
      trainMilModel(mil, [bag], { epoch: 1 } as never),
      /trainMilModel: unknown option 'epoch' \(did you mean 'epochs'\?\)/,
    );
    await assert.rejects(
      saveModel(mil, '/nonexistent-dir-for-test', { includeOptimiser: true } as never),
      /saveModel: unknown option 'includeOptimiser' \(did you mean 'includeOptimizer'\?\)/,
    );
    await assert.rejects(
      loadModel('/nonexistent-dir-for-test', { strct: true } as never),
      /loadModel: unknown option 'strct' \(did you mean 'strict'\?\)/,
    );
    mil.dispose();
  });

  it('replaceAttention: a name that matches no attention layer is an error', () => {
    const x = tfl.input({ shape: [4, 8] });
    const y = new MultiHeadAttention({ numHeads: 2, keyDim: 4, name: 'attn', seed: 5 } as never).apply(x) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: y });
    assert.throws(
      () => replaceAttention(model, {}, ['atn']),
      /replaceAttention: only names 'atn', which is no MultiHeadAttention layer of the model \(did you mean 'attn'\?\); its MultiHeadAttention layers: attn/,
    );
    const replaced = replaceAttention(model, { separation: 'sparsemax' }, ['attn']);
    assert.equal(replaced.getLayer('attn').getClassName(), 'UHopAttention');
    model.dispose();
    replaced.dispose();
  });
});

describe('the builders declare their options in one schema each (src/ops/schema.ts)', () => {
  it('milClassifier, trainMilModel and predictBags: unknown keys, bad values, defaults from the schema', async () => {
    await initBackend('cpu');
    assert.throws(
      () => milClassifier({ numFeatures: 3, atentionUnits: 4 } as never),
      /milClassifier: unknown option 'atentionUnits' \(did you mean 'attentionUnits'\?\)/,
    );
    assert.throws(() => milClassifier({ numFeatures: 3, dropout: 1.5 }), /milClassifier: dropout must be a number in \[0, 1\), got 1.5/);
    assert.throws(
      () => milClassifier({ numFeatures: 3, hidden: [2, 0] }),
      /milClassifier: hidden must be an array of integers >= 1, got \[2,0\]/,
    );
    assert.throws(() => milClassifier({ numFeatures: 3, seed: 1.5 }), /milClassifier: seed must be an integer, got 1.5/);
    assert.throws(() => milClassifier({ hidden: [] } as never), /milClassifier: numFeatures must be an integer >= 1, got undefined/);
    // The Hopfield options are checked by HopfieldPooling's own schema, not a copy.
    assert.throws(
      () => milClassifier({ numFeatures: 3, hopfield: { numHead: 2 } as never }),
      /HopfieldPooling: unknown option 'numHead' \(did you mean 'numHeads'\?\)/,
    );
    assert.throws(
      () => milClassifier({ numFeatures: 3, hopfield: { scaling: 2 } as never }),
      /HopfieldPooling: 'scaling' was renamed 'beta' in 0.2.0/,
    );
    assert.deepEqual(defaultsText(MIL_CLASSIFIER_SCHEMA), {
      numFeatures: undefined,
      hidden: '[256,128]',
      pooling: "'hopfield'",
      hopfield: undefined,
      attentionUnits: '64',
      dropout: '0',
      bagDropout: '0',
      weightDecay: '0',
      seed: undefined,
      name: "'mil_<pooling>'",
    });
    // The defaults the model is built with are the schema's.
    const model = milClassifier({ numFeatures: 3, seed: 1 });
    assert.deepEqual(
      model.layers.filter((l) => l.getClassName().includes('InstanceDense')).map((l) => (l as unknown as { units: number }).units),
      MIL_CLASSIFIER_SCHEMA.hidden.default,
    );
    assert.equal(model.getLayer('hopfield_pooling').getClassName(), 'HopfieldPooling');
    const bag: Bag = { id: 0, label: 1, size: 2, instances: new Float32Array(6) };
    await assert.rejects(trainMilModel(model, [bag], { epochs: 0 }), /trainMilModel: epochs must be an integer >= 1, got 0/);
    await assert.rejects(trainMilModel(model, [bag], { lrDecay: 1.5 }), /trainMilModel: lrDecay must be a number in \(0, 1\], got 1.5/);
    await assert.rejects(trainMilModel(model, [bag], { validation: [] }), /trainMilModel: validation must be a non-empty array of bags/);
    await assert.rejects(
      trainMilModel(model, [bag], { monitr: 'auc' } as never),
      /trainMilModel: unknown option 'monitr' \(did you mean 'monitor'\?\)/,
    );
    assert.equal(TRAIN_MIL_SCHEMA.epochs.default, 50);
    const { history } = await trainMilModel(model, [bag], { epochs: 1 });
    assert.equal(history.length, 1);
    assert.equal(history[0].learningRate, TRAIN_MIL_SCHEMA.learningRate.default);
    assert.throws(() => predictBags(model, [bag], { batchSize: 0 }), /predictBags: batchSize must be an integer >= 1, got 0/);
    assert.equal(PREDICT_BAGS_SCHEMA.batchSize.default, 32);
    model.dispose();
  });

  it('transformerEncoderBlock, transformerEncoder, sequenceClassifier, visionClassifier: unknown keys, bad values, defaults from the schema', () => {
    const seq = { vocabSize: 10, maxLen: 4, numClasses: 2, dModel: 8 };
    const vis = { imageSize: 8, patchSize: 4, numClasses: 2, dModel: 8 };
    const x = tfl.input({ shape: [4, 8] });
    const cases: [() => unknown, RegExp][] = [
      [
        () => transformerEncoderBlock(x, { dropuot: 0.1 } as never),
        /transformerEncoderBlock: unknown option 'dropuot' \(did you mean 'dropout'\?\)/,
      ],
      [
        () => transformerEncoderBlock(x, { activation: 'tanh' as never }),
        /transformerEncoderBlock: activation must be one of 'gelu', 'relu', got 'tanh'/,
      ],
      [
        () => transformerEncoderBlock(x, { layerNormEpsilon: 0 }),
        /transformerEncoderBlock: layerNormEpsilon must be a finite number > 0, got 0/,
      ],
      [() => transformerEncoderBlock(x, { mlpDim: 2.5 }), /transformerEncoderBlock: mlpDim must be an integer >= 1, got 2.5/],
      [() => transformerEncoder({ dModel: 8, numLayers: -1 }), /transformerEncoder: numLayers must be an integer >= 0, got -1/],
      [() => transformerEncoder({ dModel: 8, finalNorm: 'yes' as never }), /transformerEncoder: finalNorm must be a boolean, got 'yes'/],
      [() => transformerEncoder({ numLayers: 1 } as never), /transformerEncoder: dModel must be an integer >= 1, got undefined/],
      [() => transformerEncoder({ dModel: 8, seqLen: 0 }), /transformerEncoder: seqLen must be an integer >= 1, got 0/],
      [
        () => transformerEncoder({ dModel: 8, attentionDropout: 1 }),
        /transformerEncoder: attentionDropout must be a number in \[0, 1\), got 1/,
      ],
      // The passed-on Hopfield/U-Hop options are checked by the attention layer's own schema.
      [
        () => transformerEncoder({ dModel: 8, attention: 'uhop-attention', separation: 'bogus' as never }),
        /UHopAttention 'encoder_block0_attention': separation must be one of 'softmax'/,
      ],
      [
        () => transformerEncoder({ dModel: 8, attention: 'hopfield', updateStepsMax: -1 }),
        /Hopfield: updateStepsMax must be an integer in \[0, /,
      ],
      [
        () => sequenceClassifier({ ...seq, outputActivation: 'relu' as never }),
        /sequenceClassifier: outputActivation must be one of 'softmax', 'linear', got 'relu'/,
      ],
      [
        () => sequenceClassifier({ ...seq, classifierDropout: -0.1 }),
        /sequenceClassifier: classifierDropout must be a number in \[0, 1\), got -0.1/,
      ],
      [
        () => sequenceClassifier({ ...seq, vocabSize: undefined } as never),
        /sequenceClassifier: vocabSize must be an integer >= 1, got undefined/,
      ],
      [
        () => sequenceClassifier({ ...seq, poolingOptions: { quantity: 2 } }),
        /sequenceClassifier: poolingOptions applies to pooling 'hopfield' only, got pooling 'cls'/,
      ],
      [
        () => sequenceClassifier({ ...seq, clasifierDropout: 0.1 } as never),
        /sequenceClassifier: unknown option 'clasifierDropout' \(did you mean 'classifierDropout'\?\)/,
      ],
      [
        () => visionClassifier({ ...vis, patchEmbeding: 'conv' } as never),
        /visionClassifier: unknown option 'patchEmbeding' \(did you mean 'patchEmbedding'\?\)/,
      ],
      [
        () => visionClassifier({ ...vis, encoder: 'cnn' as never }),
        /visionClassifier: encoder must be one of 'transformer', 'single-hopfield', got 'cnn'/,
      ],
      [
        () => visionClassifier({ ...vis, imageSize: [8, 8, 8] as never }),
        /visionClassifier: imageSize must be an integer >= 1 or \[height, width\] of them, got \[8,8,8\]/,
      ],
      [() => visionClassifier({ ...vis, channels: 0 }), /visionClassifier: channels must be an integer >= 1, got 0/],
    ];
    for (const [f, re] of cases) assert.throws(f, re);
    // The defaults the models are built with are the schemas'.
    assert.equal(TRANSFORMER_ENCODER_SCHEMA.numLayers.default, 2);
    const enc = transformerEncoder({ dModel: 8, seed: 1 });
    assert.equal(enc.name, TRANSFORMER_ENCODER_SCHEMA.name.default);
    assert.equal(enc.layers.filter((l) => l instanceof MultiHeadAttention).length, TRANSFORMER_ENCODER_SCHEMA.numLayers.default);
    assert.ok(enc.getLayer('encoder_block_final_ln'), 'finalNorm defaults to true');
    enc.dispose();
    const sc = sequenceClassifier({ ...seq, seed: 1 });
    assert.equal(sc.name, SEQUENCE_CLASSIFIER_SCHEMA.name.default);
    assert.equal(SEQUENCE_CLASSIFIER_SCHEMA.pooling.default, 'cls');
    assert.ok(sc.getLayer('class_token'), "pooling defaults to 'cls'");
    sc.dispose();
    const vc = visionClassifier({ ...vis, seed: 1 });
    assert.equal(vc.name, VISION_CLASSIFIER_SCHEMA.name.default);
    assert.deepEqual(vc.inputs[0].shape, [null, 8, 8, VISION_CLASSIFIER_SCHEMA.channels.default]);
    vc.dispose();
  });

  it('AlternatingFitCallback, padBags, saveModel, loadModel: bad values, defaults from the schema', async () => {
    const x = tf.zeros([2, 3]);
    assert.throws(
      () => new AlternatingFitCallback({ x, batchSize: 0 }),
      /AlternatingFitCallback: batchSize must be an integer >= 1, got 0/,
    );
    assert.throws(
      () => new AlternatingFitCallback({ x, optimizer: 'rmsprop' as never }),
      /AlternatingFitCallback: optimizer must be 'adam', 'sgd' or a tf.Optimizer, got 'rmsprop'/,
    );
    const own = tf.train.sgd(0.1);
    // lr sets the rate of a named optimizer only: with one's own it would be ignored.
    assert.throws(
      () => new AlternatingFitCallback({ x, optimizer: own, lr: 0.5 }),
      /AlternatingFitCallback: lr applies to optimizer 'adam' or 'sgd' only/,
    );
    const alt = new AlternatingFitCallback({ x });
    assert.equal(alt.alternations, ALTERNATING_FIT_SCHEMA.alternations.default);
    assert.equal(alt.batchSize, ALTERNATING_FIT_SCHEMA.batchSize.default);
    assert.equal(alt.freezePhi, true);
    const bag: Bag = { id: 0, label: 1, size: 2, instances: new Float32Array(6) };
    assert.throws(() => padBags([bag], { maxSize: 0 }), /padBags: maxSize must be an integer >= 1, got 0/);
    assert.throws(() => padBags([bag], { truncate: 1 as never }), /padBags: truncate must be a boolean, got 1/);
    assert.equal(PAD_BAGS_SCHEMA.truncate.default, false);
    const padded = padBags([bag]);
    assert.deepEqual(padded.x.shape, [1, 2, 3]);
    tf.dispose([x, padded.x, padded.mask, padded.y]);
    own.dispose();
    const model = milClassifier({ numFeatures: 3, hidden: [], seed: 1 });
    await assert.rejects(
      saveModel(model, '/nonexistent-dir-for-test', { includeOptimizer: 1 } as never),
      /saveModel: includeOptimizer must be a boolean, got 1/,
    );
    model.dispose();
    await assert.rejects(
      loadModel('/nonexistent-dir-for-test', { strict: 'no' } as never),
      /loadModel: strict must be a boolean, got 'no'/,
    );
    assert.equal(SAVE_MODEL_SCHEMA.includeOptimizer.default, false);
    assert.equal(LOAD_MODEL_SCHEMA.strict.default, true);
  });
});
