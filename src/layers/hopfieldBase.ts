/**
 * The association machinery the three Hopfield layers share (ml-jku's `Hopfield` wrapped
 * around its `HopfieldCore`): input layer norms, per-head projections, Hopfield-space norm,
 * bias and zero memories, mask assembly, the retrieval (`multiHeadRetrieval` with the U-Hop fit
 * `fitPhi`), head merge and output projection; `uhopKeys` gives the keys and fit mask that fit
 * sees. `Hopfield`, `HopfieldPooling` and `HopfieldLayer` only decide where the stored, state
 * and projection patterns come from.
 *
 * Not exported from the package: users see the three layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from './keras.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import type { SeparationKind, SimilarityKind } from '../ops/types.js';
import { multiHeadRetrieval } from '../ops/retrievalCore.js';
import type { FeatureMap } from '../ops/types.js';
import { fitSets, type UHopKeys } from './fitKeys.js';
import { allowedMask, zeroPadded, type MaskType } from '../ops/masks.js';
import {
  appendMemory,
  dense3d,
  layerNorm,
  mergeHeads,
  padMask,
  phi0WeightSpecs,
  resolveUHopArgs,
  splitHeads,
  uhopConfigToJSON,
  uhopFit,
  uhopFitLossTrace,
  UHOP_SCHEMA,
  type UHopArgs,
  type UHopConfig,
  type UHopRuntime,
} from './hopfieldCore.js';
import { configOf, type OptionSpec, type Renamed, type Schema } from '../ops/schema.js';
import { bool, defineSchema, int, number } from '../ops/schema.js';
import {
  ALPHA,
  ALPHA_TRAINABLE,
  BETA,
  LAYER_RENAMES,
  MASK_TYPE,
  RENAMED_IN,
  SEED,
  SEPARATION,
  SIMILARITY,
  TOP_K,
  UPDATE_STEPS_EPS,
  UPDATE_STEPS_MAX,
} from '../ops/vocabulary.js';
import {
  migrateLayerConfig,
  parseLayerArgs,
  PROJECTION_WEIGHT_SCHEMA,
  getConstraint,
  getInitializer,
  getRegularizer,
  serializeKerasObject,
  type ProjectionWeightArgs,
  type Constraint,
  type Initializer,
  type InitializerLike,
  type Regularizer,
} from './keras.js';

/** Options shared by `Hopfield`, `HopfieldPooling` and `HopfieldLayer` (ml-jku names in camelCase). */
export interface HopfieldBaseArgs extends LayerArgs, UHopArgs, ProjectionWeightArgs {
  /** Number of parallel association heads. Default 1. */
  numHeads?: number;
  /** Dimension of the Hopfield (association) space per head, i.e. keyDim. Default: state pattern dim / numHeads (must divide). */
  hiddenSize?: number;
  /** Dimension of the retrieved (value) pattern per head, i.e. valueDim. Default: hiddenSize. */
  patternSize?: number;
  /** Dimension of the output projection. Default: the state pattern dim (ignored dims check: with disableOutProjection the output is numHeads * patternSize). */
  outputSize?: number;
  /**
   * beta: inverse temperature, one number or one per head, multiplies the scores before the
   * separation (ml-jku's `scaling`, renamed in 0.2.0). Default 1/sqrt(hiddenSize).
   */
  beta?: number | number[];
  /**
   * Extra update steps, ml-jku semantics: 0 = one retrieval step (attention-like), n = up to
   * n + 1 steps, each step's state xi K becoming the next query. Default 0, at most 999.
   * (ml-jku's None, "until convergence", is not offered: null is an error, since it would
   * need a data read-back per step; give a bound with updateStepsEps.)
   */
  updateStepsMax?: number;
  /**
   * A query row stops updating once its association moved by <= this (L2 norm over the
   * memories) in one step. Default 1e-4. Unlike ml-jku (which stops a head when its largest
   * change over the whole batch is small) the test is per row, so samples never couple.
   */
  updateStepsEps?: number;
  /**
   * How the `associationMask` call argument is written: 'allowed' (default; bool or 0/1,
   * 1 = the query may associate with that memory) or 'additive' (PyTorch's float attn_mask:
   * 0 = allowed, -Infinity = blocked). Any other value is an error (src/ops/masks.ts).
   */
  maskType?: MaskType;
  /** LayerNorm the stored patterns before their projection. Default true. */
  normalizeStoredPattern?: boolean;
  /** Learnable gain and bias of that LayerNorm. Default: normalizeStoredPattern. */
  normalizeStoredPatternAffine?: boolean;
  /** LayerNorm the state patterns before their projection. Default true. */
  normalizeStatePattern?: boolean;
  /** Learnable gain and bias of that LayerNorm. Default: normalizeStatePattern. */
  normalizeStatePatternAffine?: boolean;
  /** LayerNorm the pattern projections (values) before their projection. Default true. */
  normalizePatternProjection?: boolean;
  /** Learnable gain and bias of that LayerNorm. Default: normalizePatternProjection. */
  normalizePatternProjectionAffine?: boolean;
  /** LayerNorm projected queries and keys per head in the Hopfield space. Default false. */
  normalizeHopfieldSpace?: boolean;
  /** Learnable gain and bias of that LayerNorm (shared by the heads). Default false. */
  normalizeHopfieldSpaceAffine?: boolean;
  /** epsilon of every LayerNorm. Default 1e-5. */
  normalizeEps?: number;
  /** Dropout rate on the association matrix (training only). Default 0. */
  dropout?: number;
  /** Biases in the input and output projections (Keras name; ml-jku's input_bias, the trio's inputBias before 0.2.0). Default true. */
  useBias?: boolean;
  /** Append a learned bias memory (key and value) per head (ml-jku's concat_bias_pattern). Default false. */
  concatBiasPattern?: boolean;
  /** Append a zero memory (key and value) per head, so a query can retrieve "nothing". Default false. */
  addZeroAssociation?: boolean;
  /** No output projection: the output is the heads' retrieved patterns concatenated (numHeads * patternSize). Default false. */
  disableOutProjection?: boolean;
  /** Separation: 'softmax', 'sparsemax', 'entmax15', 'entmax' (alpha), 'softmax1', 'topk' (topK) or 'max'. Default 'softmax'. */
  separation?: SeparationKind;
  /** Similarity: 'dot', 'euclidean' (-||q-k||^2), 'manhattan' (-||q-k||_1) or 'cosine'. Default 'dot'. */
  similarity?: SimilarityKind;
  /** alpha in [1, 2] of 'entmax' (initial value when trainable; one per head). Default 1.5. */
  alpha?: number;
  /** Learn alpha (one per head) with the task loss. Default true. */
  alphaTrainable?: boolean;
  /** k of 'topk': memories kept per query. Default 1. */
  topK?: number;
  /** Return [output, association] where association is [batch, numHeads, queries, memories]. Default false. */
  returnAssociation?: boolean;
  /**
   * Seed of the initializers given by name (each weight gets seed + its index), so that the
   * layer's initial weights are reproducible. Default: unseeded.
   */
  seed?: number;
}

/** Call-time options (the second argument of `apply`/`call`). */
export interface HopfieldCallKwargs {
  /**
   * Which memory each query may associate with: [queries, memories] or [batch, queries,
   * memories]; 1/true = allowed (the Keras convention; ml-jku's bool mask is the inverse).
   */
  associationMask?: tf.Tensor;
  /** [batch, memories], 1/true = a real stored pattern, 0 = padding (zero weight, left out of the U-Hop fit). */
  storedPatternPaddingMask?: tf.Tensor;
  /** Keras mask propagated from upstream layers; used as the padding mask of the stored patterns. */
  mask?: tf.Tensor | tf.Tensor[];
  training?: boolean;
}

const normalize = (what: string): OptionSpec<boolean> => ({
  check: bool,
  default: true,
  doc: `LayerNorm the ${what} before their projection.`,
});
const affine = (on: string): OptionSpec<boolean> => ({
  check: bool,
  defaultText: on,
  doc: 'Learnable gain and bias of that LayerNorm.',
});

/** The declaration of every option of the trio (src/ops/schema.ts): check, default, doc. */
export const HOPFIELD_BASE_SCHEMA = defineSchema<Omit<HopfieldBaseArgs, keyof LayerArgs>>()({
  numHeads: { check: int(1), default: 1, doc: 'Number of parallel association heads.' },
  hiddenSize: {
    check: int(1),
    defaultText: 'state pattern dim / numHeads',
    doc: 'Dimension of the Hopfield (association) space per head, i.e. keyDim.',
  },
  patternSize: { check: int(1), defaultText: 'hiddenSize', doc: 'Dimension of the retrieved (value) pattern per head, i.e. valueDim.' },
  outputSize: { check: int(1), defaultText: 'the state pattern dim', doc: 'Dimension of the output projection.' },
  beta: { ...BETA, defaultText: '1/sqrt(hiddenSize)' },
  updateStepsMax: UPDATE_STEPS_MAX,
  updateStepsEps: UPDATE_STEPS_EPS,
  maskType: MASK_TYPE,
  normalizeStoredPattern: normalize('stored patterns'),
  normalizeStoredPatternAffine: affine('normalizeStoredPattern'),
  normalizeStatePattern: normalize('state patterns'),
  normalizeStatePatternAffine: affine('normalizeStatePattern'),
  normalizePatternProjection: normalize('pattern projections (values)'),
  normalizePatternProjectionAffine: affine('normalizePatternProjection'),
  normalizeHopfieldSpace: { check: bool, default: false, doc: 'LayerNorm projected queries and keys per head in the Hopfield space.' },
  normalizeHopfieldSpaceAffine: { check: bool, default: false, doc: 'Learnable gain and bias of that LayerNorm (shared by the heads).' },
  normalizeEps: { check: number({ gt: 0 }), default: 1e-5, doc: 'epsilon of every LayerNorm.' },
  dropout: { check: number({ ge: 0, lt: 1 }), default: 0, doc: 'Dropout rate on the association matrix (training only).' },
  useBias: { check: bool, default: true, doc: 'Biases in the input and output projections.' },
  concatBiasPattern: {
    check: bool,
    default: false,
    doc: "Append a learned bias memory (key and value) per head (ml-jku's concat_bias_pattern).",
  },
  addZeroAssociation: {
    check: bool,
    default: false,
    doc: 'Append a zero memory (key and value) per head, so a query can retrieve "nothing".',
  },
  disableOutProjection: {
    check: bool,
    default: false,
    doc: "No output projection: the output is the heads' retrieved patterns concatenated.",
  },
  separation: SEPARATION,
  similarity: SIMILARITY,
  alpha: ALPHA,
  alphaTrainable: ALPHA_TRAINABLE,
  topK: TOP_K,
  returnAssociation: {
    check: bool,
    default: false,
    doc: 'Return [output, association] where association is [batch, numHeads, queries, memories].',
  },
  seed: { ...SEED, doc: 'Seed of the initializers given by name (each weight gets seed + its index).' },
  ...PROJECTION_WEIGHT_SCHEMA,
  ...UHOP_SCHEMA,
});

/** The trio's renames of 0.2.0 (a config saved before loads; the old name given now is an error). */
export const HOPFIELD_RENAMES: Renamed = {
  ...LAYER_RENAMES,
  inputBias: { to: 'useBias', since: RENAMED_IN },
};

/** The patterns a subclass hands to `associate`. */
export interface HopfieldPatterns {
  /** [B or 1, S, storedDim] */
  stored: tf.Tensor;
  /** [B or 1, L, stateDim]; batch 1 is broadcast to the batch of `batchSize`. */
  state: tf.Tensor;
  /** [B or 1, S, projectionDim] */
  projection: tf.Tensor;
  /** The batch size of the output. */
  batchSize: number;
  /** [B, S] 1 = real stored pattern. */
  paddingMask?: tf.Tensor;
  /** [L, S] or [B, L, S] 1 = allowed. */
  associationMask?: tf.Tensor;
}

/** Dimensions fixed at build time. */
export interface HopfieldDims {
  storedDim: number;
  stateDim: number;
  projectionDim: number;
}

/** Base class of the Hopfield layers. Not registered for serialization (abstract). */
export abstract class HopfieldBase extends tfl.layers.Layer {
  readonly numHeads: number;
  readonly hiddenSizeArg: number | null;
  readonly patternSizeArg: number | null;
  readonly outputSizeArg: number | null;
  readonly betaArg: number | number[] | null;
  readonly updateStepsMax: number;
  readonly updateStepsEps: number;
  readonly normalizeStoredPattern: boolean;
  readonly normalizeStoredPatternAffine: boolean;
  readonly normalizeStatePattern: boolean;
  readonly normalizeStatePatternAffine: boolean;
  readonly normalizePatternProjection: boolean;
  readonly normalizePatternProjectionAffine: boolean;
  readonly normalizeHopfieldSpace: boolean;
  readonly normalizeHopfieldSpaceAffine: boolean;
  readonly normalizeEps: number;
  readonly dropoutRate: number;
  readonly useBias: boolean;
  readonly concatBiasPattern: boolean;
  readonly addZeroAssociation: boolean;
  readonly disableOutProjection: boolean;
  readonly separation: SeparationKind;
  readonly similarity: SimilarityKind;
  readonly alphaInit: number;
  readonly alphaTrainable: boolean;
  readonly topK: number;
  readonly returnAssociation: boolean;
  readonly maskType: MaskType;
  readonly uhop: UHopConfig;
  readonly seed: number | null;
  /** Every option with its default filled in (a subclass reads its own options here). */
  protected readonly parsedArgs: Readonly<Record<string, unknown>>;
  private seedIndex = 0;
  private dropoutCalls = 0;
  private readonly kernelInitializerId: InitializerLike | undefined;
  private readonly biasInitializerId: InitializerLike | undefined;
  protected readonly kernelInitializer: Initializer;
  protected readonly biasInitializer: Initializer;
  protected readonly kernelRegularizer: Regularizer | null;
  protected readonly biasRegularizer: Regularizer | null;
  protected readonly kernelConstraint: Constraint | null;
  protected readonly biasConstraint: Constraint | null;

  /** Sizes resolved at build time. */
  protected dims: (HopfieldDims & { keyDim: number; valueDim: number; outDim: number }) | null = null;
  private w: Record<string, LayerVariable> = {};
  private phi0Vars: LayerVariable[] = [];

  protected constructor(args: HopfieldBaseArgs, extraSchema: Schema<object> = {}) {
    super(args);
    const where = (this.constructor as unknown as { className: string }).className;
    const o = parseLayerArgs({ ...HOPFIELD_BASE_SCHEMA, ...extraSchema } as typeof HOPFIELD_BASE_SCHEMA, args, where, HOPFIELD_RENAMES);
    this.parsedArgs = o;
    this.maskType = o.maskType;
    this.numHeads = o.numHeads;
    this.hiddenSizeArg = o.hiddenSize ?? null;
    this.patternSizeArg = o.patternSize ?? null;
    this.outputSizeArg = o.outputSize ?? null;
    const beta = o.beta;
    if (Array.isArray(beta) && beta.length !== this.numHeads) {
      throw new Error(
        `${where}: beta must be a finite number > 0 or an array of ${this.numHeads} of them (one per head), got ${JSON.stringify(beta)}`,
      );
    }
    this.betaArg = beta == null ? null : Array.isArray(beta) ? beta.slice() : beta;
    this.updateStepsMax = o.updateStepsMax;
    this.updateStepsEps = o.updateStepsEps;
    const norm = (on: boolean, affineName: string, given: boolean | undefined, dflt: boolean): [boolean, boolean] => {
      if (given && !on)
        throw new Error(`${where}: ${affineName} needs its normalization: affine normalization without normalization has no effect`);
      return [on, given ?? (on && dflt)];
    };
    [this.normalizeStoredPattern, this.normalizeStoredPatternAffine] = norm(
      o.normalizeStoredPattern,
      'normalizeStoredPatternAffine',
      o.normalizeStoredPatternAffine,
      true,
    );
    [this.normalizeStatePattern, this.normalizeStatePatternAffine] = norm(
      o.normalizeStatePattern,
      'normalizeStatePatternAffine',
      o.normalizeStatePatternAffine,
      true,
    );
    [this.normalizePatternProjection, this.normalizePatternProjectionAffine] = norm(
      o.normalizePatternProjection,
      'normalizePatternProjectionAffine',
      o.normalizePatternProjectionAffine,
      true,
    );
    [this.normalizeHopfieldSpace, this.normalizeHopfieldSpaceAffine] = norm(
      o.normalizeHopfieldSpace,
      'normalizeHopfieldSpaceAffine',
      o.normalizeHopfieldSpaceAffine,
      false,
    );
    this.normalizeEps = o.normalizeEps;
    this.dropoutRate = o.dropout;
    this.useBias = o.useBias;
    this.concatBiasPattern = o.concatBiasPattern;
    this.addZeroAssociation = o.addZeroAssociation;
    this.disableOutProjection = o.disableOutProjection;
    this.returnAssociation = o.returnAssociation;
    this.separation = o.separation;
    this.similarity = o.similarity;
    this.alphaInit = o.alpha;
    this.alphaTrainable = o.alphaTrainable;
    this.topK = o.topK;
    this.uhop = resolveUHopArgs(args, where);
    this.seed = o.seed ?? null;
    this.kernelInitializerId = args.kernelInitializer;
    this.biasInitializerId = args.biasInitializer;
    this.kernelInitializer = getInitializer(args.kernelInitializer, 'glorotUniform', where, 'kernelInitializer');
    this.biasInitializer = getInitializer(args.biasInitializer, 'zeros', where, 'biasInitializer');
    this.kernelRegularizer = getRegularizer(args.kernelRegularizer, where, 'kernelRegularizer');
    this.biasRegularizer = getRegularizer(args.biasRegularizer, where, 'biasRegularizer');
    this.kernelConstraint = getConstraint(args.kernelConstraint, where, 'kernelConstraint');
    this.biasConstraint = getConstraint(args.biasConstraint, where, 'biasConstraint');
    this.supportsMasking = true;
  }

  /** Loads a config saved by any version: 0.1's `scaling` becomes `beta` (HOPFIELD_RENAMES). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(migrateLayerConfig(config, HOPFIELD_RENAMES));
  }

  protected get where(): string {
    return `${(this.constructor as unknown as { className: string }).className} '${this.name}'`;
  }

  /** Key dimension per head for a state pattern dim (the ml-jku default: stateDim / numHeads). */
  protected keyDimFor(stateDim: number): number {
    if (this.hiddenSizeArg != null) return this.hiddenSizeArg;
    if (stateDim % this.numHeads !== 0) {
      throw new Error(
        `${this.where}: the state pattern dim ${stateDim} is not divisible by numHeads ${this.numHeads}; set hiddenSize (the key dim per head)`,
      );
    }
    return stateDim / this.numHeads;
  }

  /** Output feature dim for a state pattern dim. */
  protected outDimFor(stateDim: number): number {
    if (this.disableOutProjection) {
      const dv = this.patternSizeArg ?? this.keyDimFor(stateDim);
      return this.numHeads * dv;
    }
    return this.outputSizeArg ?? stateDim;
  }

  /** Number of memories the association sees for S stored patterns (bias and zero memories added). */
  protected memoriesFor(S: number | null): number | null {
    return S == null ? null : S + (this.concatBiasPattern ? 1 : 0) + (this.addZeroAssociation ? 1 : 0);
  }

  /**
   * An initializer for the next weight: `id` (or `fallback`) seeded with seed + index when the
   * layer has a seed and the initializer is given by name; otherwise `resolved` or `id` as is.
   */
  protected nextInitializer(id: InitializerLike | undefined, fallback: string, arg: string, resolved?: Initializer): Initializer {
    if (this.seed != null && (id == null || typeof id === 'string')) {
      return getInitializer(id, fallback, this.where, arg, this.seed + this.seedIndex++);
    }
    return resolved ?? getInitializer(id, fallback, this.where, arg);
  }

  private add(name: string, shape: number[], init: Initializer, reg: Regularizer | null, con: Constraint | null, trainable = true) {
    this.w[name] = this.addWeight(name, shape, 'float32', init, reg ?? undefined, trainable, con ?? undefined);
  }

  /** Creates every weight of the association for the given pattern dims. */
  protected buildAssociation(dims: HopfieldDims): void {
    const { storedDim, stateDim, projectionDim } = dims;
    if (this.disableOutProjection && this.outputSizeArg != null) {
      const dv0 = this.patternSizeArg ?? this.keyDimFor(stateDim);
      if (this.outputSizeArg !== this.numHeads * dv0) {
        throw new Error(
          `${this.where}: with disableOutProjection the output size is numHeads * patternSize = ${this.numHeads * dv0}; got outputSize ${this.outputSizeArg}`,
        );
      }
    }
    const H = this.numHeads;
    const keyDim = this.keyDimFor(stateDim);
    const valueDim = this.patternSizeArg ?? keyDim;
    const outDim = this.outDimFor(stateDim);
    const ones = getInitializer('ones', 'ones', this.where, 'gamma');
    const zeros = getInitializer('zeros', 'zeros', this.where, 'beta');
    const normW = (prefix: string, dim: number, on: boolean, affine: boolean) => {
      if (on && affine) {
        this.add(`${prefix}_gamma`, [dim], ones, null, null);
        this.add(`${prefix}_beta`, [dim], zeros, null, null);
      }
    };
    normW('stored_norm', storedDim, this.normalizeStoredPattern, this.normalizeStoredPatternAffine);
    normW('state_norm', stateDim, this.normalizeStatePattern, this.normalizeStatePatternAffine);
    normW('projection_norm', projectionDim, this.normalizePatternProjection, this.normalizePatternProjectionAffine);
    const ki = () => this.nextInitializer(this.kernelInitializerId, 'glorotUniform', 'kernelInitializer', this.kernelInitializer);
    const bi = () => this.nextInitializer(this.biasInitializerId, 'zeros', 'biasInitializer', this.biasInitializer);
    const kr = this.kernelRegularizer;
    const kc = this.kernelConstraint;
    const proj = (name: string, inDim: number, outD: number) => {
      this.add(`${name}_kernel`, [inDim, outD], ki(), kr, kc);
      if (this.useBias) this.add(`${name}_bias`, [outD], bi(), this.biasRegularizer, this.biasConstraint);
    };
    proj('query', stateDim, H * keyDim);
    proj('key', storedDim, H * keyDim);
    proj('value', projectionDim, H * valueDim);
    normW('hopfield_norm', keyDim, this.normalizeHopfieldSpace, this.normalizeHopfieldSpaceAffine);
    if (this.concatBiasPattern) {
      this.add('bias_key', [H, keyDim], this.nextInitializer('glorotNormal', 'glorotNormal', 'bias pattern'), null, null);
      this.add('bias_value', [H, valueDim], this.nextInitializer('glorotNormal', 'glorotNormal', 'bias pattern'), null, null);
    }
    if (!this.disableOutProjection) proj('output', H * valueDim, outDim);
    if (this.separation === 'entmax') {
      const c = getInitializer({ className: 'Constant', config: { value: this.alphaInit } }, 'zeros', this.where, 'alpha');
      this.add('alpha', [H, 1, 1], c, null, null, this.alphaTrainable);
    }
    this.phi0Vars = phi0WeightSpecs(H, keyDim, this.uhop, this.where, this.seed == null ? null : this.seed + 1000).map((s) =>
      this.addWeight(s.name, s.shape, 'float32', s.initializer, undefined, s.trainable),
    );
    this.dims = { storedDim, stateDim, projectionDim, keyDim, valueDim, outDim };
  }

  private read(name: string): tf.Tensor | undefined {
    return this.w[name]?.read();
  }

  /** Checks the feature dims of the patterns against those the layer was built for. */
  protected checkDims(p: HopfieldPatterns): void {
    const d = this.dims!;
    const last = (t: tf.Tensor) => t.shape[t.rank - 1];
    const expect: [tf.Tensor, number, string][] = [
      [p.stored, d.storedDim, 'stored pattern'],
      [p.state, d.stateDim, 'state pattern'],
      [p.projection, d.projectionDim, 'pattern projection'],
    ];
    for (const [t, dim, what] of expect) {
      if (t.rank !== 3) throw new Error(`${this.where}: the ${what} must be [batch, n, features], got shape [${t.shape}]`);
      if (last(t) !== dim)
        throw new Error(`${this.where}: the ${what} must have ${dim} features (as at build time), got shape [${t.shape}]`);
    }
    if (p.stored.shape[1] !== p.projection.shape[1]) {
      throw new Error(
        `${this.where}: stored patterns [${p.stored.shape}] and pattern projections [${p.projection.shape}] must hold the same number of patterns`,
      );
    }
    for (const [t, what] of [
      [p.stored, 'stored pattern'],
      [p.state, 'state pattern'],
      [p.projection, 'pattern projection'],
    ] as const) {
      if (t.shape[0] !== p.batchSize && t.shape[0] !== 1) {
        throw new Error(`${this.where}: batch sizes differ: the ${what} has shape [${t.shape}], the batch is ${p.batchSize}`);
      }
    }
    const S = p.stored.shape[1];
    const L = p.state.shape[1];
    if (p.paddingMask) {
      const m = p.paddingMask;
      if (m.rank !== 2 || m.shape[1] !== S || (m.shape[0] !== p.batchSize && m.shape[0] !== 1)) {
        throw new Error(`${this.where}: storedPatternPaddingMask must be [batch=${p.batchSize}, stored patterns=${S}], got [${m.shape}]`);
      }
    }
    if (p.associationMask) {
      const m = p.associationMask;
      const batchOk = (n: number) => n === p.batchSize || n === 1;
      const ok =
        (m.rank === 2 && m.shape[0] === L && m.shape[1] === S) ||
        (m.rank === 3 && batchOk(m.shape[0]) && m.shape[1] === L && m.shape[2] === S) ||
        (m.rank === 4 && batchOk(m.shape[0]) && (m.shape[1] === this.numHeads || m.shape[1] === 1) && m.shape[2] === L && m.shape[3] === S);
      if (!ok) {
        throw new Error(
          `${this.where}: associationMask must be [state patterns=${L}, stored patterns=${S}], [batch=${p.batchSize}, ${L}, ${S}] or per head [batch, heads=${this.numHeads}, ${L}, ${S}], got [${m.shape}]`,
        );
      }
    }
  }

  /** Norms and projections: q [B|1,H,L,dk], k [B|1,H,S',dk], v [B|1,H,S',dv] with the extra memories appended. */
  private project(p: HopfieldPatterns): { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
    const H = this.numHeads;
    const eps = this.normalizeEps;
    const norm = (x: tf.Tensor, on: boolean, prefix: string) =>
      on ? layerNorm(x, eps, this.read(`${prefix}_gamma`), this.read(`${prefix}_beta`)) : x;
    // Padded stored patterns (and their projections, and the state when it is the same
    // tensor) become zeros before any product: NaN, Inf or 1e30 there cannot reach an
    // output or a weight's gradient (a kernel's gradient sums x^T dy over all rows).
    const pad = p.paddingMask;
    const clean = (x: tf.Tensor) => (pad && x.shape[1] === pad.shape[1] ? zeroPadded(x, pad) : x);
    const stored = norm(clean(p.stored), this.normalizeStoredPattern, 'stored_norm');
    const state = norm(p.state === p.stored ? clean(p.state) : p.state, this.normalizeStatePattern, 'state_norm');
    const projection = norm(clean(p.projection), this.normalizePatternProjection, 'projection_norm');
    let q = splitHeads(dense3d(state, this.read('query_kernel')!, this.read('query_bias')), H);
    let k = splitHeads(dense3d(stored, this.read('key_kernel')!, this.read('key_bias')), H);
    let v = splitHeads(dense3d(projection, this.read('value_kernel')!, this.read('value_bias')), H);
    if (this.normalizeHopfieldSpace) {
      q = layerNorm(q, eps, this.read('hopfield_norm_gamma'), this.read('hopfield_norm_beta'));
      k = layerNorm(k, eps, this.read('hopfield_norm_gamma'), this.read('hopfield_norm_beta'));
    }
    if (this.concatBiasPattern) ({ k, v } = appendMemory(k, v, this.read('bias_key')!, this.read('bias_value')!));
    if (this.addZeroAssociation) {
      const d = this.dims!;
      ({ k, v } = appendMemory(k, v, tf.zeros([H, d.keyDim]), tf.zeros([H, d.valueDim])));
    }
    return { q, k, v };
  }

  private uhopRuntime(): UHopRuntime | undefined {
    if (this.uhop.featureMap === 'none') return undefined;
    return { config: this.uhop, phi0: this.phi0Vars.map((w) => w.read()) };
  }

  /** Padding mask over all memories (extra memories count as real) and the fit mask (zero memory left out). */
  private masks(p: HopfieldPatterns, S: number): { memoryMask?: tf.Tensor; fitMask?: tf.Tensor; associationMask?: tf.Tensor } {
    const nBias = this.concatBiasPattern ? 1 : 0;
    const nZero = this.addZeroAssociation ? 1 : 0;
    let memoryMask: tf.Tensor | undefined;
    let fitMask: tf.Tensor | undefined;
    const pm = p.paddingMask ? tf.cast(tf.notEqual(p.paddingMask, 0), 'float32') : undefined;
    if (pm) memoryMask = nBias + nZero ? padMask(pm, nBias + nZero, 1) : pm;
    if (nZero && this.uhop.featureMap !== 'none') {
      // The zero memory takes part in the retrieval but not in the fit (it has no direction).
      const base = pm ?? tf.ones([1, S]);
      fitMask = padMask(nBias ? padMask(base, nBias, 1) : base, nZero, 0);
    }
    let associationMask: tf.Tensor | undefined;
    if (p.associationMask) {
      let am = allowedMask(p.associationMask, this.maskType, this.where, 'associationMask');
      if (nBias + nZero) am = padMask(am, nBias + nZero, 1);
      associationMask = am.rank === 2 ? tf.reshape(am, [1, 1, ...am.shape]) : am.rank === 3 ? tf.expandDims(am, 1) : am;
    }
    return { memoryMask, fitMask, associationMask };
  }

  /**
   * Runs the association on the patterns: returns [B, L, outDim] (and the association
   * [B, H, L, S'] when returnAssociation).
   */
  protected associate(p: HopfieldPatterns, training: boolean): tf.Tensor | tf.Tensor[] {
    this.checkDims(p);
    return tf.tidy(() => {
      const B = p.batchSize;
      const L = p.state.shape[1] as number;
      if (B === 0 || L === 0) {
        // Nothing to associate: an empty result of the right shape, the same on every
        // backend (wasm's transposes and products fail or misbehave on empty shapes).
        const out = tf.zeros([B, L, this.outDimFor(this.dims!.stateDim)]);
        return this.returnAssociation ? [out, tf.zeros([B, this.numHeads, L, this.memoriesFor(p.stored.shape[1] as number)!])] : out;
      }
      let { q, k, v } = this.project(p);
      if (q.shape[0] !== B) q = tf.broadcastTo(q, [B, ...q.shape.slice(1)]);
      const { memoryMask, fitMask, associationMask } = this.masks(p, p.stored.shape[1] as number);
      const beta = this.betaArg ?? 1 / Math.sqrt(this.dims!.keyDim);
      const uhop = this.uhopRuntime();
      const { output, association } = multiHeadRetrieval(q, k, v, {
        beta,
        similarity: this.similarity,
        separation: this.separation,
        alpha: this.separation === 'entmax' ? this.read('alpha') : undefined,
        topK: this.topK,
        associationMask,
        memoryMask,
        fitMask,
        steps: this.updateStepsMax + 1,
        stepsEps: this.updateStepsEps,
        dropout: this.dropoutRate,
        // Seeded layers draw a fresh, reproducible dropout mask per call.
        ...(training && this.dropoutRate > 0 && this.seed != null ? { dropoutSeed: this.seed + 2000 + this.dropoutCalls++ } : {}),
        training,
        fit: uhop ? (keys: tf.Tensor, mask: tf.Tensor | undefined) => this.fitPhi(keys, mask, uhop) : undefined,
        returnAssociation: this.returnAssociation,
      });
      let out = mergeHeads(output);
      if (!this.disableOutProjection) out = dense3d(out, this.read('output_kernel')!, this.read('output_bias'));
      return association ? [out, association] : out;
    });
  }

  /** The stored, state and projection patterns of a call on `inputs` (where the three layers differ). */
  protected abstract patterns(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): HopfieldPatterns;

  /** Builds the layer for the shapes of `inputs` (a call's first argument). */
  protected buildFor(inputs: tf.Tensor | tf.Tensor[]): void {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    this.build(list.length === 1 ? list[0].shape : list.map((t) => t.shape));
  }

  /**
   * The U-Hop Stage-I loss trace of the fit a call on `inputs` runs: [fitSteps + 1, batch,
   * numHeads] (the separation loss of each sample's and head's projected keys before each
   * fit step and after the last; detached, for inspection and tests). Builds the layer if needed.
   *
   * @example
   * ```ts
   * const trace = layer.fitLossTrace(x);          // [6, B, H] for fitSteps 5
   * ```
   */
  fitLossTrace(inputs: tf.Tensor | tf.Tensor[], kwargs: HopfieldCallKwargs = {}): tf.Tensor {
    if (this.uhop.featureMap === 'none') {
      throw new Error(`${this.where}: fitLossTrace needs a feature map (featureMap 'linear' or 'mlp'), got featureMap 'none'`);
    }
    const { keys, mask } = this.uhopKeys(inputs, kwargs);
    try {
      return uhopFitLossTrace(keys, mask, this.uhopRuntime()!);
    } finally {
      tf.dispose([keys, mask ?? []]);
    }
  }

  /**
   * The projected keys and the fit mask that this layer's U-Hop fit sees in a call on
   * `inputs`: keys [B|1, numHeads, S', hiddenSize] per head (after the norms, with the bias
   * memory and the zero memory appended, padded memories zeroed) and a 0/1 fit mask
   * [B|1, 1, S'] (0 = padding or the zero memory), or no mask when every memory is fitted.
   * Takes the call's arguments; builds the layer if needed. The caller disposes the tensors.
   *
   * @example
   * ```ts
   * const { keys, mask } = layer.uhopKeys(x, { storedPatternPaddingMask: padding });
   * ```
   */
  uhopKeys(inputs: tf.Tensor | tf.Tensor[], kwargs: HopfieldCallKwargs = {}): UHopKeys {
    if (!this.built) this.buildFor(inputs);
    const p = this.patterns(inputs, kwargs as Kwargs);
    this.checkDims(p);
    return tf.tidy(() => {
      const { k } = this.project(p);
      const { memoryMask, fitMask } = this.masks(p, p.stored.shape[1] as number);
      return fitSets(k, p.batchSize, memoryMask, fitMask);
    });
  }

  /**
   * Stage I of a call: Phi fitted from Phi0 on the keys and fit mask the retrieval core hands
   * over (those `uhopKeys` gives). A seam for tests and subclasses; not to be called directly.
   */
  protected fitPhi(keys: tf.Tensor, fitMask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    return uhopFit(keys, fitMask, uhop);
  }

  /**
   * The padding mask [B, S] of the stored patterns: `storedPatternPaddingMask`, else the mask
   * passed as an input (`maskInput`), else Keras' propagated mask when it fits [B, S].
   */
  protected storedPaddingMask(kw: HopfieldCallKwargs, maskInput: tf.Tensor | undefined, B: number, S: number): tf.Tensor | undefined {
    const given = kw.storedPatternPaddingMask ?? maskInput;
    if (given != null) return given;
    const m = Array.isArray(kw.mask) ? kw.mask[0] : kw.mask;
    // tfjs passes the first input's mask only, and may pass a stale one from another layer: use it when it fits.
    if (m && m.rank === 2 && m.shape[0] === B && m.shape[1] === S) return m;
    return undefined;
  }

  /** Checks that a pattern input's shape is [batch, n, features] with a known feature dim. */
  protected checkPatternShape(shape: tfl.Shape, what: string): void {
    if (shape.length !== 3) throw new Error(`${this.where}: the ${what} input must be [batch, n, features], got shape [${shape}]`);
    if (shape[2] == null) throw new Error(`${this.where}: the ${what} input needs a known feature dim, got shape [${shape}]`);
  }

  private initializerConfig(id: InitializerLike | undefined, resolved: Initializer): string | tf.serialization.ConfigDict | null {
    if (id == null) return null;
    return typeof id === 'string' ? id : serializeKerasObject(resolved);
  }

  /** The shared part of getConfig. */
  protected baseConfig(): tf.serialization.ConfigDict {
    const values = {
      numHeads: this.numHeads,
      hiddenSize: this.hiddenSizeArg,
      patternSize: this.patternSizeArg,
      outputSize: this.outputSizeArg,
      beta: this.betaArg,
      updateStepsMax: this.updateStepsMax,
      updateStepsEps: this.updateStepsEps,
      normalizeStoredPattern: this.normalizeStoredPattern,
      normalizeStoredPatternAffine: this.normalizeStoredPatternAffine,
      normalizeStatePattern: this.normalizeStatePattern,
      normalizeStatePatternAffine: this.normalizeStatePatternAffine,
      normalizePatternProjection: this.normalizePatternProjection,
      normalizePatternProjectionAffine: this.normalizePatternProjectionAffine,
      normalizeHopfieldSpace: this.normalizeHopfieldSpace,
      normalizeHopfieldSpaceAffine: this.normalizeHopfieldSpaceAffine,
      normalizeEps: this.normalizeEps,
      dropout: this.dropoutRate,
      useBias: this.useBias,
      concatBiasPattern: this.concatBiasPattern,
      addZeroAssociation: this.addZeroAssociation,
      disableOutProjection: this.disableOutProjection,
      separation: this.separation,
      similarity: this.similarity,
      alpha: this.alphaInit,
      alphaTrainable: this.alphaTrainable,
      topK: this.topK,
      returnAssociation: this.returnAssociation,
      maskType: this.maskType !== 'allowed' ? this.maskType : null,
      // Names stay names (so that `seed` still seeds them after fromConfig); defaults stay unset.
      kernelInitializer: this.initializerConfig(this.kernelInitializerId, this.kernelInitializer),
      biasInitializer: this.initializerConfig(this.biasInitializerId, this.biasInitializer),
      seed: this.seed,
      kernelRegularizer: serializeKerasObject(this.kernelRegularizer),
      biasRegularizer: serializeKerasObject(this.biasRegularizer),
      kernelConstraint: serializeKerasObject(this.kernelConstraint),
      biasConstraint: serializeKerasObject(this.biasConstraint),
    };
    // The schema writes what applies (alpha for 'entmax', topK for 'topk') and drops nulls,
    // so that fromConfig sees exactly the options that were set.
    const cfg = {
      ...configOf(HOPFIELD_BASE_SCHEMA, values),
      ...uhopConfigToJSON(this.uhop),
    } as tf.serialization.ConfigDict;
    for (const key of Object.keys(cfg)) if (cfg[key] === null) delete cfg[key];
    return { ...cfg, ...super.getConfig() };
  }
}
