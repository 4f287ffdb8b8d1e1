/**
 * Equivalence with ml-jku's hopfield-layers (hflayers): every fixture under
 * test/fixtures/hflayers/ holds the inputs, masks and weights of one configuration of the trio
 * and hflayers' float64 output and association on them (tools/hflayers-fixtures.py wrote them
 * with PyTorch 1.13; the README there says how to regenerate). Here the uhop layer gets the same
 * weights and must give the same output and association to float32 noise, so that a refactor
 * of the retrieval cannot drift from the reference.
 *
 * Left out on purpose (see the generator's doc): per-head scaling (hflayers interleaves the
 * heads' betas across the features), concat_bias_pattern (does nothing in hflayers) and
 * update_steps_max None (uhop needs a bound). The eps configurations iterate to convergence,
 * where hflayers' per-head-over-the-batch stopping and uhop's per-row stopping give one fixed point.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { forEachBackend } from '../helpers.js';
import { Hopfield, HopfieldLayer, HopfieldPooling } from '../../src/layers/index.js';

interface Arr {
  shape: number[];
  data: number[];
}

interface Fixture {
  name: string;
  layer: 'Hopfield' | 'HopfieldPooling' | 'HopfieldLayer';
  args: Record<string, unknown>;
  inputs: Arr[];
  weights: Record<string, Arr>;
  output: Arr;
  association: Arr;
  storedPatternPaddingMask?: Arr;
  associationMask?: Arr;
  associationMaskForm?: 'allowed' | 'additive';
}

const DIR = fileURLToPath(new URL('../fixtures/hflayers/', import.meta.url));
// Read at import: a missing or emptied directory fails the count test below, it is never skipped.
const FIXTURES: Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(DIR + f, 'utf8')) as Fixture);

// Measured 2026-12-06 (cpu and wasm): at most 8.3e-7 over the 22 fixtures (float32 rounding),
// so 1e-5 leaves a factor of 12 for other backends and summation orders and still catches a drift
// far below the 1e-4 the comparison was asked to hold.
const TOL = 1e-5;

const LAYERS = { Hopfield, HopfieldPooling, HopfieldLayer } as const;

const tensor = (a: Arr) => tf.tensor(a.data, a.shape, 'float32');

/**
 * Largest |a - e| / (1 + |e|) over the elements (the test's relative-plus-absolute measure),
 * leaving out the query rows that `skipRow(b, l)` names. `queryAxis` is the axis of the query
 * rows (1 in the output [B, L, F], 2 in the association [B, H, L, S]).
 */
function worst(actual: tf.Tensor, expected: Arr, queryAxis: number, skipRow: (b: number, l: number) => boolean = () => false): number {
  assert.deepEqual(actual.shape, expected.shape);
  const a = actual.dataSync();
  const shape = expected.shape;
  const inner = shape.slice(queryAxis + 1).reduce((p, q) => p * q, 1);
  const perBatch = shape.slice(1).reduce((p, q) => p * q, 1);
  return expected.data.reduce((m, e, i) => {
    if (skipRow(Math.floor(i / perBatch), Math.floor(i / inner) % shape[queryAxis])) return m;
    return Math.max(m, Math.abs(a[i] - e) / (1 + Math.abs(e)));
  }, 0);
}

/**
 * The query rows not to compare: in a self-association with padding, uhop zeroes the padded
 * rows of the one input before anything else, so that NaN or Inf there cannot reach a real
 * output or a gradient (src/layers/hopfieldBase.ts `project`); the padded rows are then also
 * zero queries, where hflayers still queries with the padding's values. Their outputs are
 * padding either way: every real row must agree.
 */
function paddedQueries(fx: Fixture): (b: number, l: number) => boolean {
  const pad = fx.storedPatternPaddingMask;
  if (!pad || fx.layer !== 'Hopfield' || fx.inputs.length !== 1) return () => false;
  return (b, l) => pad.data[b * pad.shape[1] + l] === 0;
}

/** The uhop layer of a fixture with hflayers' weights, and its [output, association] on the fixture's inputs. */
function runFixture(fx: Fixture): { output: tf.Tensor; association: tf.Tensor; layer: tfl.layers.Layer } {
  const layer = new LAYERS[fx.layer]({ ...toVocabulary(fx.args), returnAssociation: true, seed: 7 } as never);
  const inputs = fx.inputs.map(tensor);
  const kwargs: Record<string, tf.Tensor> = {};
  if (fx.storedPatternPaddingMask) kwargs.storedPatternPaddingMask = tensor(fx.storedPatternPaddingMask);
  if (fx.associationMask) {
    const m = fx.associationMask;
    // JSON has no -Infinity: the fixture keeps the 0/1 pattern and says which form the layer takes.
    kwargs.associationMask =
      fx.associationMaskForm === 'additive'
        ? tf.tensor(
            m.data.map((v) => (v === 1 ? 0 : -Infinity)),
            m.shape,
            'float32',
          )
        : tensor(m);
  }
  const call = () => layer.apply(inputs.length === 1 ? inputs[0] : inputs, kwargs) as tf.Tensor[];
  tf.dispose(call()); // builds the weights
  const names = layer.weights.map((w) => w.originalName.slice(w.originalName.lastIndexOf('/') + 1));
  assert.deepEqual([...names].sort(), Object.keys(fx.weights).sort(), `${fx.name}: uhop's weights are exactly hflayers' weights`);
  const values = names.map((n) => tensor(fx.weights[n]));
  layer.setWeights(values);
  const [output, association] = call();
  tf.dispose([values, inputs, Object.values(kwargs)]);
  return { output, association, layer };
}

/**
 * The fixtures' options in today's vocabulary: the generator writes hflayers' `scaling`, which
 * the trio calls `beta` since 0.2.0 (updateStepsMax has ml-jku's meaning in both).
 */
function toVocabulary(args: Record<string, unknown>): Record<string, unknown> {
  const { scaling, ...rest } = args;
  return scaling === undefined ? rest : { ...rest, beta: scaling };
}

forEachBackend('hflayers reference fixtures', () => {
  it('the fixtures are there and cover the trio (a missing fixture fails, never skips)', () => {
    assert.ok(FIXTURES.length >= 20, `expected >= 20 fixtures in ${DIR}, found ${FIXTURES.length}`);
    for (const layer of Object.keys(LAYERS))
      assert.ok(
        FIXTURES.some((f) => f.layer === layer),
        `no fixture for ${layer}`,
      );
    const used = (key: string) => FIXTURES.some((f) => key in f.args);
    for (const key of ['numHeads', 'scaling', 'updateStepsMax', 'addZeroAssociation', 'normalizeHopfieldSpace', 'useBias', 'maskType']) {
      assert.ok(used(key), `no fixture sets ${key}`);
    }
    assert.ok(FIXTURES.some((f) => f.storedPatternPaddingMask) && FIXTURES.some((f) => f.associationMask));
  });

  for (const fx of FIXTURES) {
    it(`${fx.name}: output and association agree with hflayers to ${TOL}`, () => {
      const before = tf.memory().numTensors;
      const { output, association, layer } = runFixture(fx);
      const skip = paddedQueries(fx);
      const errOut = worst(output, fx.output, 1, skip);
      const errAssoc = worst(association, fx.association, 2, skip);
      tf.dispose([output, association]);
      layer.dispose();
      assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
      assert.ok(errOut <= TOL, `${fx.name}: output differs from hflayers by ${errOut.toExponential(2)}`);
      assert.ok(errAssoc <= TOL, `${fx.name}: association differs from hflayers by ${errAssoc.toExponential(2)}`);
    });
  }

  it('the comparison can fail: a perturbed weight moves the output beyond the tolerance', () => {
    const fx = FIXTURES.find((f) => f.name === 'hopfield-self-default')!;
    const w = fx.weights['key_kernel'];
    const bent: Fixture = { ...fx, weights: { ...fx.weights, key_kernel: { ...w, data: w.data.map((v, i) => (i === 0 ? v + 0.05 : v)) } } };
    const { output, association, layer } = runFixture(bent);
    const err = Math.max(worst(output, fx.output, 1), worst(association, fx.association, 2));
    tf.dispose([output, association]);
    layer.dispose();
    assert.ok(err > 10 * TOL, `a 0.05 change of one key weight moved the result by only ${err}`);
  });
});
