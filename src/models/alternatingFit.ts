/**
 * The U-Hop paper's alternative training schedule as a tfjs-layers callback: during the first
 * `alternations` epochs of `model.fit`, every task epoch is preceded by a "Phi epoch" that fits
 * the feature maps over the whole training set.
 *
 * Phi epoch: for every U-Hop layer of the model (`UHopAttention`, `Hopfield`,
 * `HopfieldPooling`, `HopfieldLayer` with a feature map), only its Phi0 weights are trained, by
 * gradient steps over mini-batches of the training inputs, on the layer's Stage-I separation
 * loss (its `separationLoss` kind and temperature) of Phi0 applied to the layer's projected
 * keys, the memory sets exactly as the layer forms them in a call (per sample and head, padded
 * memories left out, the zero memory left out, the bias memory in): the callback takes them from
 * the layer's own `uhopKeys` on the inputs of the layer's node, so it cannot drift from the fit. The keys are detached:
 * nothing but Phi0 changes. The loss is the mean over memory sets, summed over layers.
 *
 * Task epoch: the ordinary `model.fit` epoch; with `freezePhi` (default) Phi0 is held fixed so
 * that the task loss trains the rest of the model. After the alternations Phi0 returns to the
 * trainability the layer was built with (`phiTrainable`).
 *
 * Inside every call the layers still run their own per-memory-set fit (`fitSteps`) from Phi0:
 * the Phi epochs move the starting point of that fit to a map that separates the data's keys
 * well in general (with `fitSteps: 0`, the layers use exactly the map the Phi epochs learned).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { UHopAttention } from '../layers/uhopAttention.js';
import { HopfieldBase } from '../layers/hopfieldBase.js';
import type { UHopKeys, UHopKeysHook } from '../layers/fitKeys.js';
import type { UHopConfig } from '../layers/hopfieldCore.js';
import { bool, custom, defineSchema, int, number, parseOptions } from '../ops/schema.js';
import { applyFeatureMap, featureMapBackward } from '../ops/featureMap.js';
import { separationLossAndGrad } from '../ops/separationLoss.js';
import type { FeatureMapKind } from '../ops/types.js';
import { seededRandom } from '../data/random.js';

type Layer = tfl.layers.Layer;

export type { UHopKeys, UHopKeysHook };

/** One U-Hop layer as the callback sees it. */
export interface UHopLayerInfo {
  layer: Layer;
  config: UHopConfig;
  /** Phi0's weights, in the order of the feature map's params (linear: [W]; mlp: [W1, b1, W2]). */
  phi0: LayerVariable[];
}

const PHI0_NAMES = ['phi0_kernel', 'phi0_w1', 'phi0_b1', 'phi0_w2'];

function baseName(v: LayerVariable): string {
  const name = (v as unknown as { originalName?: string }).originalName ?? v.name;
  return name.slice(name.lastIndexOf('/') + 1);
}

function uhopConfigOf(layer: Layer): UHopConfig | null {
  if (layer instanceof UHopAttention || layer instanceof HopfieldBase) return layer.uhop.featureMap === 'none' ? null : layer.uhop;
  return null;
}

/**
 * The layers of `model` (nested models included) that fit a U-Hop feature map, with their
 * Phi0 weights. Layers without a feature map (plain attention/Hopfield) are skipped.
 *
 * @example
 * ```ts
 * const layers = findUHopLayers(model);   // [{ layer, config, phi0: [LayerVariable] }, ...]
 * ```
 */
export function findUHopLayers(model: tfl.LayersModel): UHopLayerInfo[] {
  const out: UHopLayerInfo[] = [];
  const visit = (layers: Layer[]) => {
    for (const layer of layers) {
      if (layer instanceof tfl.LayersModel) {
        visit(layer.layers);
        continue;
      }
      const config = uhopConfigOf(layer);
      if (!config) continue;
      if (!layer.built)
        throw new Error(`findUHopLayers: layer '${layer.name}' (${layer.getClassName()}) is not built yet; call the model once first`);
      const phi0 = layer.weights.filter((w) => PHI0_NAMES.includes(baseName(w)));
      const expected = config.featureMap === 'linear' ? 1 : 3;
      if (phi0.length !== expected) {
        throw new Error(
          `findUHopLayers: layer '${layer.name}' (${layer.getClassName()}) has featureMap '${config.featureMap}' but ${phi0.length} Phi0 weights [${phi0.map((w) => w.name)}], expected ${expected}`,
        );
      }
      out.push({ layer, config, phi0 });
    }
  };
  visit(model.layers);
  return out;
}

/** The input tensors of a layer's node, with the call options tfjs recorded for it. */
interface NodeInputs {
  tensors: tfl.SymbolicTensor[];
  callArgs: Record<string, unknown>;
}

function nodeOf(model: tfl.LayersModel, layer: Layer): NodeInputs | null {
  const found: NodeInputs[] = [];
  const byDepth = (
    model as unknown as {
      nodesByDepth: Record<string, { outboundLayer: Layer; inputTensors: tfl.SymbolicTensor[]; callArgs?: Record<string, unknown> }[]>;
    }
  ).nodesByDepth;
  for (const nodes of Object.values(byDepth)) {
    for (const node of nodes) if (node.outboundLayer === layer) found.push({ tensors: node.inputTensors, callArgs: node.callArgs ?? {} });
  }
  if (found.length > 1) {
    throw new Error(
      `AlternatingFitCallback: layer '${layer.name}' is called ${found.length} times in the model; Phi epochs support U-Hop layers called once`,
    );
  }
  return found[0] ?? null;
}

// ---------------------------------------------------------------------------------------

/** Options of {@link AlternatingFitCallback}. */
export interface AlternatingFitOptions {
  /** The training inputs (what `model.fit` gets as x). Required. */
  x: tf.Tensor | tf.Tensor[];
  /** Number of alternations: task epochs 0 .. alternations-1 are each preceded by a Phi epoch. Default 2. */
  alternations?: number;
  /** Mini-batch size of the Phi epochs. Default 32. */
  batchSize?: number;
  /** Optimizer of the Phi epochs: 'adam', 'sgd' or a tf.Optimizer (kept across Phi epochs). Default 'adam'. */
  optimizer?: 'adam' | 'sgd' | tf.Optimizer;
  /** Learning rate when `optimizer` is a name. Default 0.01. */
  lr?: number;
  /** Hold Phi0 fixed during the alternating task epochs. Default true. */
  freezePhi?: boolean;
  /** Shuffle the Phi epochs' batches (seeded). Default true. */
  shuffle?: boolean;
  /** Seed of the shuffling. Default 0. */
  seed?: number;
  /** Evaluate the separation loss over the whole set before and after each Phi epoch. Default true. */
  evaluate?: boolean;
  /** Called after each Phi epoch. */
  onPhiEpochEnd?: (log: PhiEpochLog) => void | Promise<void>;
}

/** What one Phi epoch did. */
export interface PhiEpochLog {
  /** The task epoch this Phi epoch preceded (0-based). */
  epoch: number;
  /** Separation loss over the training set before the Phi epoch (NaN when evaluate is off). */
  lossBefore: number;
  /** ... and after it (NaN when evaluate is off). */
  lossAfter: number;
  /** Mean of the mini-batch losses during the epoch (each before its step). */
  lossDuring: number;
  /** Number of gradient steps. */
  steps: number;
  /** Wall time of the Phi epoch (ms, evaluation included). */
  ms: number;
}

/** The declaration of {@link AlternatingFitOptions} (src/ops/schema.ts). */
export const ALTERNATING_FIT_SCHEMA = defineSchema<AlternatingFitOptions>()({
  x: {
    check: custom<tf.Tensor | tf.Tensor[]>(
      "a tensor or a non-empty array of tensors (the model's inputs)",
      (v) => v instanceof tf.Tensor || (Array.isArray(v) && v.length > 0 && v.every((t) => t instanceof tf.Tensor)),
    ),
    required: true,
    noConfig: true,
    doc: 'The training inputs (what model.fit gets as x).',
  },
  alternations: {
    check: int(0),
    default: 2,
    doc: 'Number of alternations: task epochs 0 .. alternations-1 are each preceded by a Phi epoch.',
  },
  batchSize: { check: int(1), default: 32, doc: 'Mini-batch size of the Phi epochs.' },
  optimizer: {
    check: custom<'adam' | 'sgd' | tf.Optimizer>(
      "'adam', 'sgd' or a tf.Optimizer",
      (v) => v === 'adam' || v === 'sgd' || v instanceof tf.Optimizer,
    ),
    default: 'adam',
    doc: 'Optimizer of the Phi epochs (kept across Phi epochs).',
  },
  lr: {
    check: number({ gt: 0 }),
    default: 0.01,
    appliesIf: { option: 'optimizer', is: ['adam', 'sgd'] },
    doc: 'Learning rate when optimizer is a name.',
  },
  freezePhi: { check: bool, default: true, doc: 'Hold Phi0 fixed during the alternating task epochs.' },
  shuffle: { check: bool, default: true, doc: "Shuffle the Phi epochs' batches (seeded)." },
  seed: { check: int(0), default: 0, doc: 'Seed of the shuffling.' },
  evaluate: { check: bool, default: true, doc: 'Evaluate the separation loss over the whole set before and after each Phi epoch.' },
  onPhiEpochEnd: {
    check: custom<(log: PhiEpochLog) => void | Promise<void>>('a function (log) => void', (v) => typeof v === 'function'),
    doc: 'Called after each Phi epoch.',
  },
});

/**
 * The U-Hop paper's alternating schedule (see the file header): Phi epochs that train only the
 * layers' Phi0 on the separation loss of their projected keys over the training set,
 * alternating with task epochs that train the rest.
 *
 * @example
 * ```ts
 * import { AlternatingFitCallback, visionClassifier } from 'uhop';
 * const model = visionClassifier({ imageSize: 28, patchSize: 7, dModel: 32, numClasses: 10,
 *   encoder: 'single-hopfield', featureMap: 'linear', fitSteps: 5 });
 * model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['acc'] });
 * const alt = new AlternatingFitCallback({ x: images, alternations: 2, lr: 0.01 });
 * await model.fit(images, labels, { epochs: 5, batchSize: 64, callbacks: [alt] });
 * console.log(alt.history);   // [{ epoch: 0, lossBefore, lossAfter, ... }, { epoch: 1, ... }]
 * ```
 */
export class AlternatingFitCallback extends tfl.Callback {
  readonly alternations: number;
  readonly batchSize: number;
  readonly freezePhi: boolean;
  readonly shuffle: boolean;
  readonly evaluate: boolean;
  /** One entry per Phi epoch run so far. */
  readonly history: PhiEpochLog[] = [];
  private readonly x: tf.Tensor[];
  private readonly optimizer: tf.Optimizer;
  private readonly ownsOptimizer: boolean;
  private readonly onPhiEpochEnd?: AlternatingFitOptions['onPhiEpochEnd'];
  private readonly rng: () => number;
  private layersInfo: UHopLayerInfo[] | null = null;
  private probe: { model: tfl.LayersModel; inputs: number[][]; callArgs: Record<string, unknown>[] } | null = null;
  private saved: Map<LayerVariable, boolean> | null = null;

  constructor(options: AlternatingFitOptions) {
    super();
    const where = 'AlternatingFitCallback';
    if (options == null || typeof options !== 'object')
      throw new Error(`${where}: options must be an object with x (the training inputs), got ${String(options)}`);
    const o = parseOptions(ALTERNATING_FIT_SCHEMA, options, where);
    const xs = Array.isArray(o.x) ? o.x : [o.x];
    const n = xs[0].shape[0];
    if (!xs.every((t) => t.rank >= 1 && t.shape[0] === n) || n < 1) {
      throw new Error(
        `${where}: every x tensor must hold the same number of samples >= 1 along axis 0, got shapes ${xs.map((t) => `[${t.shape}]`).join(', ')}`,
      );
    }
    this.x = xs;
    this.alternations = o.alternations;
    this.batchSize = o.batchSize;
    const opt = o.optimizer;
    this.ownsOptimizer = !(opt instanceof tf.Optimizer);
    this.optimizer = opt instanceof tf.Optimizer ? opt : opt === 'adam' ? tf.train.adam(o.lr) : tf.train.sgd(o.lr);
    this.freezePhi = o.freezePhi;
    this.shuffle = o.shuffle;
    this.evaluate = o.evaluate;
    this.onPhiEpochEnd = o.onPhiEpochEnd;
    this.rng = seededRandom(o.seed).uniform;
  }

  /** The model's U-Hop layers (found on first use). */
  get uhopLayers(): UHopLayerInfo[] {
    if (!this.layersInfo) {
      if (!this.model) throw new Error('AlternatingFitCallback: no model yet; pass the callback to model.fit or call setModel(model)');
      this.layersInfo = findUHopLayers(this.model);
      if (this.layersInfo.length === 0) {
        throw new Error(
          `AlternatingFitCallback: model '${this.model.name}' has no U-Hop layer (UHopAttention / Hopfield / HopfieldPooling / HopfieldLayer with featureMap 'linear' or 'mlp')`,
        );
      }
    }
    return this.layersInfo;
  }

  override setModel(model: tfl.LayersModel): void {
    if (model !== this.model) {
      this.layersInfo = null;
      this.probe = null;
    }
    super.setModel(model);
  }

  /** A model from the inputs to every tensor a U-Hop layer reads, built once. */
  private probeModel(): NonNullable<AlternatingFitCallback['probe']> {
    if (this.probe) return this.probe;
    const model = this.model!;
    const outputs: tfl.SymbolicTensor[] = [];
    const index = new Map<number, number>();
    const inputs: number[][] = [];
    const callArgs: Record<string, unknown>[] = [];
    for (const info of this.uhopLayers) {
      const node = nodeOf(model, info.layer);
      if (!node) {
        throw new Error(
          `AlternatingFitCallback: layer '${info.layer.name}' is not called in model '${model.name}' itself (it sits in a nested model); ` +
            'Phi epochs need the U-Hop layers in the model given to fit: build it flat (the builders of this package do)',
        );
      }
      inputs.push(
        node.tensors.map((t) => {
          if (!index.has(t.id)) {
            index.set(t.id, outputs.length);
            outputs.push(t);
          }
          return index.get(t.id)!;
        }),
      );
      // The call options the node recorded (UHopAttention: inputRoles, useCausalMask), without
      // the ones that belong to one run (training, a propagated mask).
      const { training: _training, mask: _mask, ...args } = node.callArgs;
      callArgs.push(args);
    }
    const probe = tfl.model({ inputs: model.inputs, outputs });
    this.probe = { model: probe, inputs, callArgs };
    return this.probe;
  }

  /**
   * The memory sets (keys and fit mask) of layer i for a batch of probe outputs: what the
   * layer's own `uhopKeys` gives for its node's inputs, so the Phi epochs fit exactly the keys
   * and masks the layer's per-call fit sees.
   */
  private keysOf(i: number, values: tf.Tensor[]): UHopKeys {
    const { layer } = this.uhopLayers[i];
    const probe = this.probeModel();
    const ins = probe.inputs[i].map((j) => values[j]);
    const hook = (layer as unknown as Partial<UHopKeysHook>).uhopKeys;
    if (typeof hook !== 'function') {
      throw new Error(`AlternatingFitCallback: layer '${layer.name}' (${layer.getClassName()}) has no uhopKeys method to give its keys`);
    }
    return hook.call(layer, ins.length === 1 ? ins[0] : ins, probe.callArgs[i]);
  }

  /** Per-layer mean separation loss at Phi0 and, when `withGrad`, the Phi0 gradients (mean over sets). */
  private batchLoss(batch: tf.Tensor[], withGrad: boolean): { loss: tf.Scalar; grads: tf.NamedTensorMap } {
    const grads: tf.NamedTensorMap = {};
    const loss = tf.tidy(() => {
      const probe = this.probeModel();
      const out = probe.model.predict(batch.length === 1 ? batch[0] : batch);
      const values = Array.isArray(out) ? out : [out];
      let total: tf.Tensor = tf.scalar(0);
      this.uhopLayers.forEach((info, i) => {
        const sets = this.keysOf(i, values);
        const phi = { kind: info.config.featureMap as FeatureMapKind, params: info.phi0.map((v) => v.read()) };
        // keys [B|1, H, S, dk] and mask [B|1, 1|H, S] to one batch, as the layer's fit does.
        const [Bk, H, S, dk] = sets.keys.shape as number[];
        const B = Math.max(Bk, sets.mask ? (sets.mask.shape[0] as number) : 1);
        const keys = Bk === B ? sets.keys : tf.broadcastTo(sets.keys, [B, H, S, dk]);
        const fitMask = sets.mask ? tf.broadcastTo(sets.mask, [B, H, S]) : undefined;
        const features = applyFeatureMap(phi, keys);
        const opts = {
          ...(fitMask ? { mask: fitMask } : {}),
          ...(info.config.separationLossT != null ? { t: info.config.separationLossT } : {}),
          ...(info.config.separationLossTau != null ? { tau: info.config.separationLossTau } : {}),
        };
        const { loss, grad } = separationLossAndGrad(features, info.config.separationLoss, opts);
        const count = B * H;
        total = tf.add(total, tf.div(tf.sum(loss), count));
        if (withGrad) {
          const dParams = featureMapBackward(phi, keys, tf.div(grad, count));
          info.phi0.forEach((v, j) => {
            const name = (v.read() as tf.Variable).name;
            grads[name] = tf.keep(dParams[j]);
          });
        }
      });
      return total as tf.Scalar;
    });
    return { loss, grads };
  }

  private *batches(shuffle: boolean): Generator<tf.Tensor[]> {
    const n = this.x[0].shape[0];
    const order = Array.from({ length: n }, (_, i) => i);
    if (shuffle) {
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(this.rng() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    for (let start = 0; start < n; start += this.batchSize) {
      const idx = tf.tensor1d(order.slice(start, start + this.batchSize), 'int32');
      const batch = this.x.map((t) => tf.gather(t, idx));
      idx.dispose();
      yield batch;
    }
  }

  /**
   * The separation loss over the whole training set at the current Phi0: the mean over
   * memory sets (samples x heads) of each U-Hop layer's Stage-I loss, summed over layers.
   */
  async separationLoss(): Promise<number> {
    let sum = 0;
    let count = 0;
    for (const batch of this.batches(false)) {
      const { loss } = this.batchLoss(batch, false);
      const n = batch[0].shape[0];
      sum += (await loss.data())[0] * n;
      count += n;
      tf.dispose([loss, ...batch]);
    }
    return sum / count;
  }

  /**
   * One Phi epoch: a pass over the training set in mini-batches, each a gradient step on the
   * layers' Phi0 (and on nothing else). Returns its log (also appended to `history`).
   */
  async phiEpoch(epoch = this.history.length): Promise<PhiEpochLog> {
    const t0 = Date.now();
    const lossBefore = this.evaluate ? await this.separationLoss() : NaN;
    const vars = this.uhopLayers.flatMap((l) => l.phi0);
    // Phi0 may be frozen (phiTrainable false, or a task epoch): the optimizer needs it trainable.
    const tfVars = vars.map((v) => v.read() as tf.Variable);
    const flags = tfVars.map((v) => v.trainable);
    tfVars.forEach((v) => (v.trainable = true));
    let sum = 0;
    let steps = 0;
    try {
      for (const batch of this.batches(this.shuffle)) {
        const { loss, grads } = this.batchLoss(batch, true);
        this.optimizer.applyGradients(grads);
        sum += (await loss.data())[0];
        steps++;
        tf.dispose([loss, ...batch, ...Object.values(grads)]);
      }
    } finally {
      tfVars.forEach((v, i) => (v.trainable = flags[i]));
    }
    const lossAfter = this.evaluate ? await this.separationLoss() : NaN;
    const log: PhiEpochLog = { epoch, lossBefore, lossAfter, lossDuring: sum / Math.max(steps, 1), steps, ms: Date.now() - t0 };
    this.history.push(log);
    await this.onPhiEpochEnd?.(log);
    return log;
  }

  private freeze(): void {
    if (!this.freezePhi || this.saved) return;
    this.saved = new Map();
    for (const info of this.uhopLayers) {
      for (const v of info.phi0) {
        this.saved.set(v, v.trainable);
        v.trainable = false;
      }
    }
  }

  private unfreeze(): void {
    if (!this.saved) return;
    for (const [v, t] of this.saved) v.trainable = t;
    this.saved = null;
  }

  override async onEpochBegin(epoch: number): Promise<void> {
    if (epoch >= this.alternations) return;
    this.unfreeze();
    await this.phiEpoch(epoch);
    this.freeze();
  }

  override async onEpochEnd(epoch: number): Promise<void> {
    if (epoch >= this.alternations - 1) this.unfreeze();
  }

  override async onTrainEnd(): Promise<void> {
    this.unfreeze();
  }

  /** Frees the Phi epochs' optimizer state (when the callback created the optimizer). */
  dispose(): void {
    if (this.ownsOptimizer) this.optimizer.dispose();
    this.probe = null;
  }
}
