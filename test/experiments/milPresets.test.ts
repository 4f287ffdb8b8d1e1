import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/node/backend.js';
import { toyBags } from './toyBags.js';
import {
  MIL_CONFIGS,
  buildMethodModel,
  methodConfig,
  milConfigFor,
  runMilBenchmark,
  type MilFoldResult,
} from '../../src/experiments/mil.js';
import { MIL_PRESETS, MIL_PRESET_NAMES, milPresetConfig } from '../../src/experiments/milPresets.js';
import { command } from '../../src/experiments/milCommand.js';

before(async () => {
  await initBackend('wasm');
});

/** MUSK1/MUSK2 have 166 features per instance, Elephant 230. */
const MUSK_F = 166;
const ELEPHANT_F = 230;

function weightShapes(model: tfl.LayersModel): Record<string, number[]> {
  return Object.fromEntries(model.weights.map((w) => [w.originalName, w.shape as number[]]));
}

/** Builds a preset's model for a method, checks it on a bag batch and returns it (the caller disposes it). */
function build(preset: keyof typeof MIL_PRESETS, method: Parameters<typeof buildMethodModel>[0], F: number): tfl.LayersModel {
  const model = buildMethodModel(method, F, milPresetConfig(preset, 'musk1'), 1);
  const y = tf.tidy(() => model.predict([tf.ones([2, 3, F]), tf.tensor2d([1, 1, 1, 1, 0, 0], [2, 3])]) as tf.Tensor);
  assert.deepEqual(y.shape, [2, 1]);
  y.dispose();
  return model;
}

describe('MIL presets build the published architectures', () => {
  it('ilse-attention: fc-256 + ReLU, fc-128 + ReLU, attention (L 64), fc-1 + sigmoid', () => {
    const model = build('ilse-attention', 'attention', MUSK_F);
    try {
      const shapes = weightShapes(model);
      assert.deepEqual(shapes['instance_dense_0/kernel'], [166, 256]);
      assert.deepEqual(shapes['instance_dense_1/kernel'], [256, 128]);
      assert.deepEqual(shapes['attention_pooling/V'], [128, 64]);
      assert.deepEqual(shapes['attention_pooling/w'], [64, 1]);
      assert.deepEqual(shapes['bag_output/kernel'], [128, 1]);
      // encoder 166*256+256 = 42752 and 256*128+128 = 32896; attention V 128*64 + bV 64 + w 64*1 = 8320;
      // output 128+1 = 129: 42752 + 32896 + 8320 + 129 = 84097.
      assert.equal(model.countParams(), 84097);
    } finally {
      model.dispose();
    }
  });

  it('ilse-gated: as ilse-attention plus the gate U (128 x 64) and its bias', () => {
    const model = build('ilse-gated', 'gated-attention', MUSK_F);
    try {
      assert.deepEqual(weightShapes(model)['gated_attention_pooling/U'], [128, 64]);
      // 84097 + U 128*64 + bU 64 = 84097 + 8256 = 92353.
      assert.equal(model.countParams(), 92353);
    } finally {
      model.dispose();
    }
  });

  it('ramsauer-hopfield: fc-256, fc-256, HopfieldPooling 8 heads x 32, fc-1 (MUSK and Elephant)', () => {
    const model = build('ramsauer-hopfield', 'hopfield-softmax', MUSK_F);
    try {
      const shapes = weightShapes(model);
      assert.deepEqual(shapes['instance_dense_1/kernel'], [256, 256]);
      assert.deepEqual(shapes['hopfield_pooling/query_kernel'], [256, 8 * 32]);
      assert.deepEqual(shapes['hopfield_pooling/output_kernel'], [8 * 32, 256]);
      // encoder 166*256+256 = 42752 and 256*256+256 = 65792;
      // pooling: state pattern 1*256 = 256, three input LayerNorms 3*(256+256) = 1536,
      // query, key, value, output projections 4*(256*256+256) = 263168 -> 264960;
      // output 256+1 = 257. Total 42752 + 65792 + 264960 + 257 = 373761.
      assert.equal(model.countParams(), 373761);
    } finally {
      model.dispose();
    }
    const uhop = build('ramsauer-hopfield', 'uhop', MUSK_F);
    try {
      // U-Hop adds Phi0, one linear map per head [8, 32, 32] = 8192: 373761 + 8192 = 381953.
      assert.deepEqual(weightShapes(uhop)['hopfield_pooling/phi0_kernel'], [8, 32, 32]);
      assert.equal(uhop.countParams(), 381953);
    } finally {
      uhop.dispose();
    }
    const elephant = build('ramsauer-hopfield', 'hopfield-softmax', ELEPHANT_F);
    try {
      // Only the first encoder layer differs: (230-166)*256 = 16384 more: 390145.
      assert.equal(elephant.countParams(), 390145);
    } finally {
      elephant.dispose();
    }
  });

  it('the training recipes: optimizer, lr schedule, regularization, epochs', () => {
    const ilse = methodConfig(milPresetConfig('ilse-attention', 'musk2'), 'attention');
    assert.equal(ilse.optimizer, 'adam');
    assert.equal(ilse.learningRate, 5e-4);
    assert.equal(ilse.weightDecay, 5e-3);
    assert.equal(ilse.lrDecay, 1);
    assert.equal(ilse.epochs, 100);
    assert.equal(ilse.batchSize, 1);
    const ram = methodConfig(milPresetConfig('ramsauer-hopfield', 'elephant'), 'uhop');
    assert.equal(ram.optimizer, 'adamw');
    assert.equal(ram.bagDropout, 0.75);
    assert.equal(ram.lrDecay, 0.98);
    assert.equal(ram.epochs, 160);
    // uhop-default is the harness's per-data-set configuration.
    assert.deepEqual(milPresetConfig('uhop-default', 'elephant'), milConfigFor('elephant'));
    assert.deepEqual(methodConfig(milPresetConfig('uhop-default', 'elephant'), 'uhop'), methodConfig(MIL_CONFIGS.elephant, 'uhop'));
    // Overrides win.
    assert.equal(methodConfig(milPresetConfig('ramsauer-hopfield', 'musk1', { bagDropout: 0.1 }), 'uhop').bagDropout, 0.1);
    assert.throws(() => milPresetConfig('nope' as never, 'musk1'), /milPresetConfig: unknown preset 'nope'/);
    // Every preset's reference is among its methods, and its search has candidates.
    for (const name of MIL_PRESET_NAMES) {
      const p = MIL_PRESETS[name];
      assert.ok(p.methods.includes(p.reference), name);
      for (const f of p.tuneFamilies) assert.ok(f.candidates.length > 0, `${name}/${f.name}`);
    }
  });
});

const numbersOf = (rows: MilFoldResult[]) => rows.map(({ seconds: _s, ...rest }) => rest);

describe('MIL presets are seeded and reproducible', () => {
  // Small widths and few epochs keep it fast; the recipe (optimizer, decay, bag dropout, batch size) is the preset's.
  const small = { hidden: [8], epochs: 3, patience: 3 };
  for (const [preset, methods, extra] of [
    ['ramsauer-hopfield', ['uhop', 'hopfield-softmax'], { hopfield: { numHeads: 2, hiddenSize: 4 } }],
    ['ilse-gated', ['gated-attention'], { attentionUnits: 4 }],
  ] as const) {
    it(`${preset}: the same seed gives the same folds, another seed other folds`, async () => {
      const config = milPresetConfig(preset, 'toy', { ...small, ...extra });
      const run = (seed: number) => runMilBenchmark({ dataset: toyBags(20, 1), methods: [...methods], folds: 2, repeats: 1, seed, config });
      const a = await run(3);
      assert.deepEqual(numbersOf((await run(3)).results), numbersOf(a.results));
      assert.notDeepEqual(numbersOf((await run(4)).results), numbersOf(a.results));
    });
  }
});

describe('MIL configurations reject unknown keys', () => {
  it('in the shared settings and in the per-method patches', async () => {
    const dataset = toyBags(8, 1);
    const config = milPresetConfig('ilse-attention', 'toy');
    await assert.rejects(
      runMilBenchmark({ dataset, config: { ...config, optimiser: 'adamw' } as never }),
      /runMilBenchmark: config: unknown option 'optimiser'/,
    );
    await assert.rejects(
      runMilBenchmark({ dataset, config: { ...config, methods: { uhop: { bagDropOut: 0.5 } } } as never }),
      /runMilBenchmark: config.methods\['uhop'\]: unknown option 'bagDropOut'/,
    );
    await assert.rejects(
      runMilBenchmark({ dataset, config: { ...config, methods: { uhopp: {} } } as never }),
      /runMilBenchmark: config.methods has unknown method 'uhopp'/,
    );
    await assert.rejects(
      runMilBenchmark({ dataset, config: { ...config, optimizer: 'sgd' } as never }),
      /config.optimizer must be 'adam' or 'adamw'/,
    );
  });
});

describe('uhop mil --preset', () => {
  it('takes the preset, its methods and the optimizer flag; rejects unknown names', () => {
    const p = command.parse(['--preset', 'ramsauer-hopfield', '--optimizer', 'adam']);
    assert.equal(p.preset, 'ramsauer-hopfield');
    assert.deepEqual(p.methods, MIL_PRESETS['ramsauer-hopfield'].methods);
    assert.equal(p.overrides.optimizer, 'adam');
    assert.equal(command.parse([]).preset, 'uhop-default');
    assert.deepEqual(command.parse(['--preset', 'ilse-attention', '--methods', 'uhop']).methods, ['uhop']);
    assert.throws(
      () => command.parse(['--preset', 'ilse']),
      /--preset must be one of uhop-default, ilse-attention, ilse-gated, ramsauer-hopfield, got 'ilse'/,
    );
    assert.throws(() => command.parse(['--optimizer', 'sgd']), /--optimizer must be one of adam, adamw/);
    // --tune searches the preset's grid: its family and candidate names.
    const t = command.parse([
      '--preset',
      'ramsauer-hopfield',
      '--tune',
      '--tune-families',
      'ramsauer',
      '--tune-candidates',
      'beta=0.1,bagDropout=0.75',
    ]);
    assert.deepEqual(t.tuneFamilies, ['ramsauer']);
    assert.throws(
      () => command.parse(['--preset', 'ramsauer-hopfield', '--tune', '--tune-families', 'hopfield']),
      /unknown family 'hopfield'/,
    );
  });
});
