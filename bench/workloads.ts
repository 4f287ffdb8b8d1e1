/**
 * The benchmark workloads T1-T4 and R1 on uhop (see bench/README.md and the shared SPEC):
 * the same shapes, losses and optimizer as bench/torch_reference.py.
 *
 * A training workload's unit of work is one step = forward + backward + Adam update
 * (lr 1e-3), finished on the device: the loss is read back (and, on an asynchronous backend,
 * one element of the last updated weight, so the Adam update is done too). PyTorch's CPU step
 * is synchronous and ends with `loss.item()`, so both sides time the same thing.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Hopfield, HopfieldPooling } from '../src/layers/index.js';
import { fitFeatureMap, FIT_OPTIMIZERS, type FitOptimizer } from '../src/ops/fit.js';
import { linearFeatureMap, disposeFeatureMap } from '../src/ops/featureMap.js';
import { retrieve } from '../src/ops/retrieve.js';
import { InstanceDense } from '../src/layers/instanceDense.js';

export const WORKLOAD_IDS = ['T1', 'T2', 'T3', 'T4', 'R1'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

export const DESCRIPTIONS: Record<WorkloadId, string> = {
  T1: 'hopfield-self: Hopfield self-association, B=32 S=128 d=128, 4 heads x 32, MSE; train step',
  T2: 'uhop-self: T1 + U-Hop linear Phi fitted per (sample, head), 5 steps lr 0.1, lse tau 0.1; train step',
  T3: 'mil-pooling: Dense(230->128 relu) + HopfieldPooling(1 query, 4x32) + Dense(1), BCE, B=16 S=64; train step',
  T4: 'uhop-mil: T3 with the U-Hop fit of T2 in the pooling; train step',
  R1: 'retrieval: M=100 d=784, Stage I 100 steps lr 0.1 (lse) for Phi 784x784 + one update step, 100 half-masked queries',
};

/**
 * The SPEC's association: Q/K/V projections with biases, one update step, output projection,
 * no LayerNorms (the layers' ml-jku default LayerNorms on the inputs are switched off so both
 * sides compute the same thing).
 */
export const ASSOCIATION_OPTIONS = {
  numHeads: 4,
  hiddenSize: 32,
  beta: 1 / Math.sqrt(32),
  updateStepsMax: 0,
  normalizeStoredPattern: false,
  normalizeStatePattern: false,
  normalizePatternProjection: false,
} as const;

/** U-Hop options of T2 and T4 (the layers' option names). */
export const UHOP_OPTIONS = {
  featureMap: 'linear',
  fitSteps: 5,
  fitLr: 0.1,
  separationLoss: 'lse',
  separationLossTau: 0.1,
} as const;

export interface Workload {
  id: WorkloadId;
  /** One unit of work, resolved once the backend has finished it; returns a sanity value (loss or error). */
  run(): Promise<number>;
  /**
   * The same unit of work without reading anything back (for tf.profile and phase timings);
   * returns what it allocated for the caller to dispose.
   */
  runSync(): tf.TensorContainer;
  /** Only the forward pass of a training workload (under tidy), for phase timings. */
  forward?(): tf.Tensor;
  /** Forward + backward, no update, for phase timings. */
  forwardBackward?(): tf.TensorContainer;
  /** Frees the model, optimizer state and inputs. */
  dispose(): void;
  /** The model and its input (training workloads), for per-layer profiles (bench/kernelCounts.ts). */
  model?: tfl.LayersModel;
  input?: tf.Tensor;
}

/** Backends whose kernels finish when the op returns; others need a read to be sure. */
function isSynchronous(): boolean {
  return ['cpu', 'wasm'].includes(tf.getBackend());
}

interface TrainSetup {
  model: tfl.LayersModel;
  x: tf.Tensor;
  loss: (pred: tf.Tensor) => tf.Scalar;
}

function trainWorkload(id: WorkloadId, { model, x, loss }: TrainSetup): Workload {
  const optimizer = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const lossFn = () => loss(model.apply(x, { training: true }) as tf.Tensor);
  const last = vars[vars.length - 1];
  return {
    id,
    model,
    input: x,
    async run() {
      const cost = optimizer.minimize(lossFn, true, vars)!;
      const [value] = await cost.data();
      cost.dispose();
      if (!isSynchronous()) {
        // The device queue runs in order: when this element is read, the update is done.
        const probe = tf.slice(tf.reshape(last, [-1]), 0, 1);
        await probe.data();
        probe.dispose();
      }
      return value;
    },
    runSync() {
      return optimizer.minimize(lossFn, true, vars)!;
    },
    forward() {
      return tf.tidy(lossFn);
    },
    forwardBackward() {
      const { value, grads } = tf.variableGrads(lossFn, vars);
      return [value, ...Object.values(grads)];
    },
    dispose() {
      optimizer.dispose();
      model.dispose();
      x.dispose();
    },
  };
}

function selfWorkload(id: 'T1' | 'T2', seed: number, fitOptimizer: FitOptimizer): Workload {
  const [B, S, d] = [32, 128, 128];
  const model = tfl.sequential({
    layers: [new Hopfield({ inputShape: [S, d], ...ASSOCIATION_OPTIONS, ...(id === 'T2' ? { ...UHOP_OPTIONS, fitOptimizer } : {}) })],
  });
  const x = tf.randomNormal([B, S, d], 0, 1, 'float32', seed);
  const target = tf.randomNormal([B, S, d], 0, 1, 'float32', seed + 1);
  const w = trainWorkload(id, { model, x, loss: (pred) => tf.losses.meanSquaredError(target, pred) as tf.Scalar });
  const dispose = w.dispose;
  return { ...w, dispose: () => (dispose(), target.dispose()) };
}

/**
 * The instance encoder Dense(230->128, relu) of T3/T4: 'tfl' = tf.layers.dense (what the SPEC
 * names, and what a user's own model has), 'uhop' = the package's InstanceDense (same maths,
 * a backward pass without the transposed matMuls that tfjs-backend-wasm runs as a plain loop).
 */
export type MilEncoder = 'tfl' | 'uhop';

export interface WorkloadOptions {
  seed?: number;
  milEncoder?: MilEncoder;
  /**
   * Stage-I step rule of T2, T4 and R1. Default 'sgd' with lr 0.1: the SPEC's plain steps, what
   * bench/torch_reference.py runs. 'normalized' (the layers' default since the step-rule work)
   * takes the same lr as its relative step; the cost per step is what it is compared on.
   */
  fitOptimizer?: FitOptimizer;
}

function milWorkload(id: 'T3' | 'T4', seed: number, encoder: MilEncoder, fitOptimizer: FitOptimizer): Workload {
  const [B, S, features, hidden] = [16, 64, 230, 128];
  const model = tfl.sequential({
    layers: [
      encoder === 'uhop'
        ? new InstanceDense({ inputShape: [S, features], units: hidden, activation: 'relu' })
        : tfl.layers.dense({ inputShape: [S, features], units: hidden, activation: 'relu' }),
      // One learned query; output [B, 128] (flatten: true).
      new HopfieldPooling({ quantity: 1, ...ASSOCIATION_OPTIONS, ...(id === 'T4' ? { ...UHOP_OPTIONS, fitOptimizer } : {}) }),
      tfl.layers.dense({ units: 1 }),
    ],
  });
  const x = tf.randomNormal([B, S, features], 0, 1, 'float32', seed);
  const labels = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([B, 1], 0, 1, 'float32', seed + 1), 0.5), 'float32'));
  const w = trainWorkload(id, { model, x, loss: (logits) => tf.losses.sigmoidCrossEntropy(labels, logits) as tf.Scalar });
  const dispose = w.dispose;
  return { ...w, dispose: () => (dispose(), labels.dispose()) };
}

function retrievalWorkload(seed: number, optimizer: FitOptimizer): Workload {
  const [M, d, beta, fitSteps, fitLr] = [100, 784, 1, 100, 0.1];
  const memories = tf.randomUniform([M, d], 0, 1, 'float32', seed);
  const queries = tf.tidy(() =>
    tf.mul(memories, tf.cast(tf.greaterEqual(tf.randomUniform([M, d], 0, 1, 'float32', seed + 1), 0.5), 'float32')),
  );
  const phi0 = linearFeatureMap(d, d, { init: 'identity' });
  const once = (): { states: tf.Tensor; trace: tf.Tensor; params: tf.Tensor[] } => {
    const { featureMap, lossTrace } = fitFeatureMap(memories, phi0, { steps: fitSteps, lr: fitLr, loss: 'lse', tau: 0.1, optimizer }); // Stage I
    const { states } = retrieve(queries, memories, { beta, featureMap }); // Stage II
    return { states, trace: lossTrace, params: featureMap.params };
  };
  return {
    id: 'R1',
    async run() {
      const { states, trace, params } = once();
      const err = tf.tidy(() => tf.mean(tf.sum(tf.square(tf.sub(states, memories)), -1)));
      const [value] = await err.data();
      tf.dispose([states, trace, params, err]);
      return value;
    },
    runSync() {
      const { states, trace, params } = once();
      return [states, trace, ...params];
    },
    dispose() {
      disposeFeatureMap(phi0);
      tf.dispose([memories, queries]);
    },
  };
}

/** Builds workload `id` on the active backend, with seeded random inputs (options or just a seed). */
export function createWorkload(id: WorkloadId, options: WorkloadOptions | number = {}): Workload {
  const { seed = 0, milEncoder = 'tfl', fitOptimizer = 'sgd' } = typeof options === 'number' ? { seed: options } : options;
  if (milEncoder !== 'tfl' && milEncoder !== 'uhop') {
    throw new Error(`createWorkload: milEncoder must be 'tfl' or 'uhop', got '${String(milEncoder)}'`);
  }
  if (!FIT_OPTIMIZERS.includes(fitOptimizer)) {
    throw new Error(`createWorkload: fitOptimizer must be one of ${FIT_OPTIMIZERS.join(', ')}, got '${String(fitOptimizer)}'`);
  }
  switch (id) {
    case 'T1':
    case 'T2':
      return selfWorkload(id, seed, fitOptimizer);
    case 'T3':
    case 'T4':
      return milWorkload(id, seed, milEncoder, fitOptimizer);
    case 'R1':
      return retrievalWorkload(seed, fitOptimizer);
    default:
      throw new Error(`createWorkload: id must be one of ${WORKLOAD_IDS.join(', ')}, got '${String(id)}'`);
  }
}
