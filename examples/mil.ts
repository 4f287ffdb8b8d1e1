/**
 * Multiple-instance learning with U-Hop pooling on MUSK1 (or any MIL CSV):
 *
 *   npx tsx examples/mil.ts [path/to/bags.csv]
 *
 * One stratified 90/10 split: the 90% is standardized and split again into inner-train and
 * inner-validation bags (model selection); the 10% is scored once at the end.
 */
import { existsSync } from 'node:fs';
import { stratifiedKFold, standardize, milClassifier, trainMilModel, predictBags, rocAuc, bagAccuracy } from 'uhop';
import { initBackend, describeBackend, readMilCsv } from 'uhop/node';

const path = process.argv[2] ?? process.env.UHOP_MIL_CSV ?? '../shared/data/mil/musk1.csv';
if (!existsSync(path)) {
  console.error(`examples/mil.ts: ${path} not found; pass the path of a MIL CSV (bag_id,bag_label,f0,...)`);
  process.exit(2);
}
console.log(describeBackend(await initBackend()));
// UHOP_EXAMPLE_SMOKE=1: a tiny, fast run (the test suite runs every example this way).
const SMOKE = process.env.UHOP_EXAMPLE_SMOKE === '1';

const { name, bags, numFeatures } = readMilCsv(path);
const labels = bags.map((b) => b.label);
const [outer] = stratifiedKFold(labels, 10, 0);
const { train, other: test } = standardize(
  outer.train.map((i) => bags[i]),
  outer.test.map((i) => bags[i]),
);
const [inner] = stratifiedKFold(
  train.map((b) => b.label),
  5,
  1,
);

const model = milClassifier({
  numFeatures,
  hidden: [128, 64],
  pooling: 'hopfield',
  hopfield: { numHeads: 4, hiddenSize: 16, separation: 'softmax', featureMap: 'linear', fitSteps: 5, fitLr: 0.1 },
  dropout: 0.1,
  weightDecay: 1e-4,
  seed: 0,
});
if (!SMOKE) model.summary();

const { bestEpoch, history } = await trainMilModel(
  model,
  inner.train.map((i) => train[i]),
  {
    epochs: SMOKE ? 2 : 40,
    batchSize: 4,
    learningRate: 1e-3,
    lrDecay: 0.98,
    validation: inner.test.map((i) => train[i]),
    patience: 15,
    onEpochEnd: (l) =>
      console.log(`epoch ${l.epoch + 1}: loss ${l.loss.toFixed(3)}, val loss ${l.valLoss?.toFixed(3)}, val AUC ${l.valAuc?.toFixed(3)}`),
  },
);
const p = predictBags(model, test);
const y = test.map((b) => b.label);
console.log(
  `${name}: best epoch ${bestEpoch + 1} of ${history.length}; test accuracy ${bagAccuracy(p, y).toFixed(3)}, ROC AUC ${rocAuc(p, y).toFixed(3)} on ${test.length} bags`,
);
model.dispose();
