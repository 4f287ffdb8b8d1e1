/**
 * `MultiHeadAttention`, the base class of this package's attention layers, laid out as Keras'
 * MultiHeadAttention: the layer projects query, key and value per head, hands them to the
 * protected hook {@link MultiHeadAttention.computeAttention} (Keras' `_compute_attention`),
 * merges the heads and projects the output. `UHopAttention` overrides only that hook (a
 * Hopfield retrieval with U-Hop's per-call fit of Phi); the plumbing around it (input roles,
 * masks, projections, head split/merge) lives in ./attentionCall.ts.
 *
 * Why this package has its own: tfjs-layers 4.22 has a MultiHeadAttention class, but its Node
 * bundle (what `import '@tensorflow/tfjs-layers'` loads in Node) does not contain it, so it is
 * neither importable nor registered there, and a model.json holding one fails with "Unknown
 * layer". Its projection weights also live in untracked sublayers (so `getWeights()`, `fit()`
 * and `save()` miss them), and its `apply()` loses `value` when a functional model runs it.
 * This class keeps every weight on itself and passes value, key and attentionMask as layer
 * inputs, so it trains, saves and runs inside functional models. It registers itself under the
 * class name 'MultiHeadAttention' when no other class holds that name, so such model.json files
 * load; `replaceAttention` turns its instances (or tfjs' own) into `UHopAttention`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs, Kwargs } from './keras.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import type { MaskType } from '../ops/masks.js';
import { batchMatMul } from '../ops/batchMatMul.js';
import {
  buildAttentionMask,
  checkSameSpec,
  HeadLayout,
  isSymbolic,
  normalizeCall,
  project,
  shapesByRole,
  tensorsByRole,
  type AnyTensor,
  type CallSpec,
} from './attentionCall.js';
import { anything, bool, custom, defineSchema, int, number, parseOptions } from '../ops/schema.js';
import {
  LAYER_ARG_KEYS,
  PROJECTION_WEIGHT_SCHEMA,
  getConstraint,
  getInitializer,
  getRegularizer,
  serializeKerasObject,
  PROJECTION_WEIGHT_KEYS,
  type ProjectionWeightArgs,
  type Constraint,
  type Initializer,
  type Regularizer,
  type RegularizerLike,
} from './keras.js';

type Shape = tfl.Shape;

/** The arguments `MultiHeadAttention` takes (tfjs-layers and Keras), same names and defaults. */
export interface MultiHeadAttentionArgs extends LayerArgs, ProjectionWeightArgs {
  /** Number of attention heads. Required. */
  numHeads: number;
  /** Size of each head for query and key. Required. */
  keyDim: number;
  /** Size of each head for value. Default: keyDim. */
  valueDim?: number | null;
  /** Dropout rate on the attention weights (association), applied when training. Default 0. */
  dropout?: number;
  /** Whether the projections have biases. Default true. */
  useBias?: boolean;
  /** Output shape besides the batch and sequence dims. Default: the query's last dim. */
  outputShape?: number | number[] | null;
  /** Axes (of the inputs, 1..rank-2) attended over. Default: all but batch and features. */
  attentionAxes?: number | number[] | null;
  /** Not supported by tfjs-layers' Layer.apply; accepted only as null. */
  activityRegularizer?: RegularizerLike | null;
  /** Written by tfjs/Keras MultiHeadAttention configs; accepted and ignored (built lazily). */
  queryShape?: Shape | null;
  /** Written by tfjs/Keras MultiHeadAttention configs; accepted and ignored. */
  keyShape?: Shape | null;
  /** Written by tfjs/Keras MultiHeadAttention configs; accepted and ignored. */
  valueShape?: Shape | null;
  /**
   * Seed of the weight initializers (those given by name, or without their own seed), of a
   * random Phi0, and of the association dropout (advanced every call, so masks differ between
   * steps but repeat across runs). Default: unseeded.
   */
  seed?: number | null;
}

/** Call options, as `MultiHeadAttention.call(query, options)` takes them. */
export interface MultiHeadAttentionCallArgs {
  /** Value (memories to read out) [B, S, dim]. Default: the query (self-attention). */
  value?: AnyTensor;
  /** Key (stored patterns) [B, S, dim]. Default: the value. */
  key?: AnyTensor;
  /** [B, T, S] (broadcastable) 1/true = the query may attend to that memory. */
  attentionMask?: AnyTensor;
  /** Also return the attention scores [B, heads, T, S]. Default false. */
  returnAttentionScores?: boolean;
  /** Mask future positions (decoder self-attention). Default false. */
  useCausalMask?: boolean;
  /** Training mode (dropout on). Default false. */
  training?: boolean;
}

/** The masks `computeAttention` receives. */
export interface AttentionMasks {
  /**
   * Which key each query may attend to, boolean [B*F, 1|H, Lq, Sk] (true = allowed): the
   * attention mask, the inputs' Keras masks and the causal mask combined. Absent when none.
   */
  attentionMask?: tf.Tensor;
}

/**
 * MultiHeadAttention's arguments that define its projections: what `replaceAttention` carries
 * over from a MultiHeadAttention config.
 */
/** The declaration of {@link MultiHeadAttentionArgs} (src/ops/schema.ts): Keras' names, defaults and ranges. */
export const MHA_SCHEMA = defineSchema<Omit<MultiHeadAttentionArgs, keyof LayerArgs>>()({
  numHeads: { check: int(1), required: true, doc: 'Number of attention heads.' },
  keyDim: { check: int(1), required: true, doc: 'Size of each head for query and key.' },
  valueDim: { check: int(1), defaultText: 'keyDim', doc: 'Size of each head for value.' },
  dropout: { check: number({ ge: 0, lt: 1 }), default: 0, doc: 'Dropout rate on the attention weights (association), when training.' },
  useBias: { check: bool, default: true, doc: 'Whether the projections have biases.' },
  outputShape: {
    check: custom<number | number[]>(
      'an integer >= 1 or an array of them',
      (v) => isPosInt(v) || (Array.isArray(v) && v.length > 0 && v.every(isPosInt)),
    ),
    defaultText: "the query's last dim",
    doc: 'Output shape besides the batch and sequence dims.',
  },
  attentionAxes: {
    check: custom<number | number[]>(
      'an integer or an array of distinct integers',
      (v) => Number.isInteger(v) || (Array.isArray(v) && v.length > 0 && v.every(Number.isInteger) && new Set(v).size === v.length),
    ),
    defaultText: 'all but batch and features',
    doc: 'Axes (of the inputs, 1..rank-2) attended over.',
  },
  activityRegularizer: { check: anything<RegularizerLike>(), doc: "Not supported by tfjs-layers' Layer.apply; accepted only as null." },
  queryShape: { check: anything<Shape>(), noConfig: true, doc: 'Written by tfjs/Keras configs; accepted and ignored (built lazily).' },
  keyShape: { check: anything<Shape>(), noConfig: true, doc: 'Written by tfjs/Keras configs; accepted and ignored.' },
  valueShape: { check: anything<Shape>(), noConfig: true, doc: 'Written by tfjs/Keras configs; accepted and ignored.' },
  seed: { check: int(), doc: 'Seed of the weight initializers, of a random Phi0 and of the association dropout.' },
  ...PROJECTION_WEIGHT_SCHEMA,
});

export const MHA_PROJECTION_KEYS = [
  'numHeads',
  'keyDim',
  'valueDim',
  'dropout',
  'useBias',
  'outputShape',
  'attentionAxes',
  ...PROJECTION_WEIGHT_KEYS,
] as const;

/** Every argument `MultiHeadAttention` accepts (besides the base Layer's). */
export const MHA_ARG_KEYS = [...MHA_PROJECTION_KEYS, 'activityRegularizer', 'queryShape', 'keyShape', 'valueShape', 'seed'] as const;

function isPosInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1;
}

/** The projected inputs of a call in the core layout, with the combined mask. */
export interface ProjectedAttentionInputs {
  /** [B*F, H, Lq, keyDim] */
  query: tf.Tensor;
  /** [B*F, H, Sk, keyDim] */
  key: tf.Tensor;
  /** [B*F, H, Sk, valueDim] */
  value: tf.Tensor;
  masks: AttentionMasks;
  layout: HeadLayout;
}

/**
 * Standard multi-head dot-product attention (Vaswani et al. 2017), as tfjs-layers and Keras
 * define `MultiHeadAttention`, with its weights tracked on the layer (so `getWeights`, `fit`
 * and `save` see them) and value/key/attentionMask passed as layer inputs (so it runs inside
 * functional models).
 *
 * Inputs: query [B, T, dim_q], value [B, S, dim_v], key [B, S, dim_k] (default value), an
 * optional attentionMask [B, T, S]. Output [B, T, outputShape or dim_q], and with
 * `returnAttentionScores` also the scores [B, heads, T, S]. Higher-rank inputs attend over
 * `attentionAxes` as in Keras. Weights, in this order: query/kernel [dim_q, heads, keyDim],
 * query/bias [heads, keyDim], key/kernel, key/bias, value/kernel [dim_v, heads, valueDim],
 * value/bias, attention_output/kernel [heads, valueDim, ...outputShape], attention_output/bias
 * (Keras' names, so weights of a converted Keras model load by name).
 *
 * Subclasses change the attention between the head split and merge by overriding
 * {@link MultiHeadAttention.computeAttention}, as Keras subclasses override `_compute_attention`.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { MultiHeadAttention } from 'uhop';
 *
 * const target = tfl.input({ shape: [8, 16] });
 * const source = tfl.input({ shape: [4, 16] });
 * const mha = new MultiHeadAttention({ numHeads: 2, keyDim: 2 });
 * const out = mha.apply(target, { value: source }) as tfl.SymbolicTensor; // [null, 8, 16]
 * const model = tfl.model({ inputs: [target, source], outputs: out });
 * ```
 */
export class MultiHeadAttention extends tfl.layers.Layer {
  static className = 'MultiHeadAttention';

  readonly numHeads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly dropout: number;
  readonly useBias: boolean;
  protected readonly outputShapeArg: number[] | null;
  protected readonly attentionAxesArg: number[] | null;
  protected readonly kernelInitializer: Initializer;
  protected readonly biasInitializer: Initializer;
  protected readonly kernelRegularizer: Regularizer | null;
  protected readonly biasRegularizer: Regularizer | null;
  protected readonly kernelConstraint: Constraint | null;
  protected readonly biasConstraint: Constraint | null;
  readonly seed: number | null;
  private dropoutCalls = 0;
  private projection: LayerVariable[] = [];
  /** The call structure of this layer's node(s) in a functional model. */
  protected callSpec: CallSpec | null = null;
  /** The call structure of the apply() in progress (read by computeOutputShape/computeMask). */
  private pendingSpec: CallSpec | null = null;
  /** Inputs and outputs of the last computation (references only; see call()). */
  private lastCall: { inputs: tf.Tensor[]; outputs: tf.Tensor[] } | null = null;

  /**
   * @param args MultiHeadAttention's arguments.
   * @param extraKeys the argument names a subclass adds (so that they are not unknown keys here).
   */
  constructor(args: MultiHeadAttentionArgs, extraKeys: readonly string[] = []) {
    const cls = (new.target as unknown as { className?: string }).className ?? 'MultiHeadAttention';
    if (args == null || typeof args !== 'object') {
      throw new Error(`${cls}: args must be an object with numHeads and keyDim, got ${String(args)}`);
    }
    super(args);
    const where = `${cls}${args.name ? ` '${args.name}'` : ''}`;
    const o = parseOptions(MHA_SCHEMA, args, where, { extraKeys: [...LAYER_ARG_KEYS, ...extraKeys] });
    this.numHeads = o.numHeads;
    this.keyDim = o.keyDim;
    this.valueDim = o.valueDim ?? o.keyDim;
    this.dropout = o.dropout;
    this.useBias = o.useBias;
    this.seed = o.seed ?? null;
    this.outputShapeArg = o.outputShape == null ? null : Array.isArray(o.outputShape) ? o.outputShape.slice() : [o.outputShape];
    this.attentionAxesArg = o.attentionAxes == null ? null : Array.isArray(o.attentionAxes) ? o.attentionAxes.slice() : [o.attentionAxes];

    this.kernelInitializer = getInitializer(args.kernelInitializer, 'glorotUniform', where, 'kernelInitializer');
    this.biasInitializer = getInitializer(args.biasInitializer, 'zeros', where, 'biasInitializer');
    this.kernelRegularizer = getRegularizer(args.kernelRegularizer, where, 'kernelRegularizer');
    this.biasRegularizer = getRegularizer(args.biasRegularizer, where, 'biasRegularizer');
    if (args.activityRegularizer != null) {
      throw new Error(
        `${where}: activityRegularizer is not supported (tfjs-layers' Layer.apply throws NotImplementedError for activity regularizers); got ${JSON.stringify(args.activityRegularizer)}`,
      );
    }
    this.kernelConstraint = getConstraint(args.kernelConstraint, where, 'kernelConstraint');
    this.biasConstraint = getConstraint(args.biasConstraint, where, 'biasConstraint');
    this.supportsMasking = true;
  }

  /** Where errors come from: the class and layer name. */
  protected get where(): string {
    return `${this.getClassName()} '${this.name}'`;
  }

  /** beta, the factor of the scores: 1/sqrt(keyDim) (MultiHeadAttention's scaling). */
  get beta(): number | number[] {
    return 1 / Math.sqrt(this.keyDim);
  }

  /** How `attentionMask` is written ('allowed': 1/true = may attend, as Keras and tfjs). */
  protected get attentionMaskType(): MaskType {
    return 'allowed';
  }

  /** Checks a call's structure before it runs (subclasses refuse what they cannot compute). */
  protected checkCall(_spec: CallSpec): void {}

  // -------------------------------------------------------------------------------------
  // Call plumbing: value/key/attentionMask travel as layer inputs (./attentionCall.ts)
  // -------------------------------------------------------------------------------------

  private rememberSpec(spec: CallSpec): void {
    if (this.callSpec == null) this.callSpec = spec;
    else checkSameSpec(this.where, this.callSpec, spec);
  }

  /**
   * Applies the layer as `MultiHeadAttention.apply(query, {value, key, attentionMask, ...})`:
   * on tensors it computes, on symbolic tensors it adds a node to the functional graph (value,
   * key and attentionMask become inputs of that node). Without `value` it is self-attention.
   */
  override apply(
    inputs: tf.Tensor | tf.Tensor[] | tfl.SymbolicTensor | tfl.SymbolicTensor[],
    kwargs?: Kwargs,
  ): tf.Tensor | tf.Tensor[] | tfl.SymbolicTensor | tfl.SymbolicTensor[] {
    const kw = kwargs ?? {};
    const { list, spec } = normalizeCall(this.where, inputs, kw, this.callSpec);
    const symbolic = list.map(isSymbolic);
    if (symbolic.some((s) => s !== symbolic[0])) {
      throw new Error(
        `${this.where}: ${spec.roles.map((r, i) => `${r} is ${symbolic[i] ? 'symbolic' : 'a tensor'}`).join(', ')}; ` +
          'they must be all symbolic (model inputs / layer outputs) or all tensors. In a functional model a constant mask must come in through a model input.',
      );
    }
    this.checkCall(spec);
    if (symbolic[0]) this.rememberSpec(spec);
    const passOn: Kwargs = {};
    for (const [k, v] of Object.entries(kw)) {
      if (k === 'value' || k === 'key' || k === 'attentionMask' || k === 'mask' || k === 'inputRoles') continue;
      passOn[k] = v;
    }
    passOn.inputRoles = spec.roles;
    passOn.useCausalMask = spec.useCausalMask;
    passOn.returnAttentionScores = spec.returnAttentionScores;
    const prev = this.pendingSpec;
    this.pendingSpec = spec;
    try {
      return super.apply((list.length === 1 ? list[0] : list) as tf.Tensor | tf.Tensor[], passOn);
    } finally {
      this.pendingSpec = prev;
    }
  }

  /** The concrete inputs of a call (either form) by role, with its structure. */
  protected concreteCall(inputs: unknown, kwargs: Kwargs): { tensors: tf.Tensor[]; spec: CallSpec } {
    const { list, spec } = normalizeCall(this.where, inputs, kwargs, this.callSpec);
    this.checkCall(spec);
    if (!list.every((t) => t instanceof tf.Tensor)) {
      throw new Error(`${this.where}: call() needs concrete tensors; use apply() for symbolic tensors`);
    }
    return { tensors: list as tf.Tensor[], spec };
  }

  /**
   * Computes the attention on concrete tensors. Accepts MultiHeadAttention's form
   * `call(query, {value, key, attentionMask, useCausalMask, returnAttentionScores, training})`
   * and the list form a functional model uses.
   */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const kw = kwargs ?? {};
    if (!this.built) {
      // Build inside apply(), so that the weights get this layer's name scope.
      return this.apply(inputs, kw) as tf.Tensor | tf.Tensor[];
    }
    const { tensors, spec } = this.concreteCall(inputs, kw);
    const last = this.lastCall;
    if (
      last &&
      tensors.some((t) => t.isDisposed) &&
      last.inputs.length === tensors.length &&
      last.inputs.every((t, i) => t === tensors[i]) &&
      last.outputs.every((t) => !t.isDisposed) &&
      last.outputs.length === (spec.returnAttentionScores ? 2 : 1)
    ) {
      // tfjs-layers' executor runs a multi-output layer once per fetched output and disposes
      // the inputs after the first run; the second run gets the first run's outputs.
      return spec.returnAttentionScores ? last.outputs.slice() : last.outputs[0];
    }
    const training = kw.training === true;
    const result = tf.tidy(() => {
      const [out, scores] = this.attend(tensors, spec, training);
      return spec.returnAttentionScores ? [out, scores] : out;
    });
    this.lastCall = { inputs: tensors, outputs: Array.isArray(result) ? result : [result] };
    return result;
  }

  /** `call` that also returns the attention scores [B, heads, T, S] (MultiHeadAttention's method). */
  callAndReturnAttentionScores(query: tf.Tensor, options: MultiHeadAttentionCallArgs): [tf.Tensor, tf.Tensor] {
    return this.call(query, { ...options, returnAttentionScores: true }) as [tf.Tensor, tf.Tensor];
  }

  // -------------------------------------------------------------------------------------
  // Shapes, weights, masks
  // -------------------------------------------------------------------------------------

  /** The attention axes for inputs of rank `rank` (validated). */
  protected attentionAxesFor(rank: number): number[] {
    if (rank < 3) throw new Error(`${this.where}: inputs must have rank >= 3 ([batch, ..., features]), got rank ${rank}`);
    if (this.attentionAxesArg == null) return Array.from({ length: rank - 2 }, (_, i) => i + 1);
    return this.attentionAxesArg.map((a) => {
      const n = a < 0 ? a + rank : a;
      if (!(n >= 1 && n <= rank - 2)) {
        throw new Error(
          `${this.where}: attentionAxes must lie in [1, ${rank - 2}] for inputs of rank ${rank} (not the batch or feature axis), got ${JSON.stringify(this.attentionAxesArg)}`,
        );
      }
      return n;
    });
  }

  override build(inputShape: Shape | Shape[]): void {
    const { query, value, key } = shapesByRole(inputShape, this.pendingSpec ?? this.callSpec);
    const where = this.where;
    const feat = (s: Shape, name: string): number => {
      const d = s[s.length - 1];
      if (d == null || !isPosInt(d)) throw new Error(`${where}: the ${name}'s last (feature) dimension must be known, got shape [${s}]`);
      return d;
    };
    const dq = feat(query, 'query');
    const dv = feat(value, 'value');
    const dk = feat(key, 'key');
    if (value.length !== query.length || key.length !== query.length) {
      throw new Error(`${where}: query, value and key must have the same rank, got [${query}], [${value}], [${key}]`);
    }
    this.attentionAxesFor(query.length);
    const H = this.numHeads;
    const out = this.outputShapeArg ?? [dq];
    let seedIndex = 0;
    // A fresh initializer per weight; with the layer's seed, each seedable one gets seed + index
    // (unless it carries its own seed), so weights differ from each other and repeat across runs.
    const fresh = (init: Initializer): Initializer => {
      const cfg = serializeKerasObject(init) as { className: string; config: tf.serialization.ConfigDict };
      if (this.seed != null && 'seed' in cfg.config && cfg.config.seed == null)
        cfg.config = { ...cfg.config, seed: this.seed + seedIndex++ };
      return getInitializer(cfg as unknown as tf.serialization.ConfigDict, 'zeros', where, 'initializer');
    };
    const kernel = (name: string, shape: number[]) =>
      this.addWeight(
        `${name}/kernel`,
        shape,
        'float32',
        fresh(this.kernelInitializer),
        this.kernelRegularizer ?? undefined,
        true,
        this.kernelConstraint ?? undefined,
      );
    const bias = (name: string, shape: number[]) =>
      this.addWeight(
        `${name}/bias`,
        shape,
        'float32',
        fresh(this.biasInitializer),
        this.biasRegularizer ?? undefined,
        true,
        this.biasConstraint ?? undefined,
      );
    const w: LayerVariable[] = [];
    const pair = (name: string, kShape: number[], bShape: number[]) => {
      w.push(kernel(name, kShape));
      if (this.useBias) w.push(bias(name, bShape));
    };
    pair('query', [dq, H, this.keyDim], [H, this.keyDim]);
    pair('key', [dk, H, this.keyDim], [H, this.keyDim]);
    pair('value', [dv, H, this.valueDim], [H, this.valueDim]);
    // Keras' name for the output projection (tfjs' sublayer is 'attentionOutput', but tfjs never
    // saves those weights, while Keras-converted weights use this name).
    pair('attention_output', [H, this.valueDim, ...out], out);
    this.projection = w;
    this.buildExtraWeights();
    this.built = true;
  }

  /** Weights a subclass adds after the projections (UHopAttention: Phi0). Called by build. */
  protected buildExtraWeights(): void {}

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const spec = this.pendingSpec ?? this.callSpec;
    const { query, value, key } = shapesByRole(inputShape, spec);
    if (value.length !== query.length || key.length !== query.length) {
      throw new Error(`${this.where}: query, value and key must have the same rank, got [${query}], [${value}], [${key}]`);
    }
    const rank = query.length;
    const axes = this.attentionAxesFor(rank);
    const free = Array.from({ length: rank - 2 }, (_, i) => i + 1).filter((a) => !axes.includes(a));
    for (const a of axes) {
      if (value[a] != null && key[a] != null && value[a] !== key[a]) {
        throw new Error(`${this.where}: value and key must agree on all dims but the last, got [${value}] and [${key}]`);
      }
    }
    const outShape = query.slice(0, -1).concat(this.outputShapeArg ?? [query[rank - 1]]);
    if (!spec?.returnAttentionScores) return outShape;
    const scores: Shape = [
      query[0],
      ...free.map((a) => query[a]),
      this.numHeads,
      ...axes.map((a) => query[a]),
      ...axes.map((a) => value[a]),
    ];
    return [outShape, scores];
  }

  /** Output mask: the query's (Keras' MultiHeadAttention); none for the scores. */
  override computeMask(inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    let m: tf.Tensor | null = Array.isArray(mask) ? (mask[0] ?? null) : (mask ?? null);
    if (m == null) {
      const q = Array.isArray(inputs) ? inputs[0] : inputs;
      m = (q as unknown as { kerasMask?: tf.Tensor | null })?.kerasMask ?? null;
    }
    const spec = this.pendingSpec ?? this.callSpec;
    return (spec?.returnAttentionScores ? [m, null] : m) as unknown as tf.Tensor | tf.Tensor[];
  }

  // -------------------------------------------------------------------------------------
  // The computation
  // -------------------------------------------------------------------------------------

  /** The projection weights' values: query, key, value and output kernel and bias (bias undefined without useBias). */
  private projectionValues(): (tf.Tensor | undefined)[] {
    const w = this.projection;
    return this.useBias
      ? w.map((v) => v.read())
      : [w[0].read(), undefined, w[1].read(), undefined, w[2].read(), undefined, w[3].read(), undefined];
  }

  /**
   * Projects a call's inputs into the heads (core layout [B*F, H, L, dh]) and builds its
   * combined mask; null when the batch, the queries or the memories are empty. Runs inside
   * the caller's tidy. Shared by the forward pass and `UHopAttention.uhopKeys`, so both see
   * the same keys and masks.
   */
  protected projectInputs(
    query: tf.Tensor,
    value: tf.Tensor,
    key: tf.Tensor,
    attentionMask: tf.Tensor | undefined,
    useCausalMask: boolean,
  ): ProjectedAttentionInputs | { layout: HeadLayout; empty: true } {
    const where = this.where;
    const rank = query.rank;
    if (value.rank !== rank || key.rank !== rank) {
      throw new Error(`${where}: query, value and key must have the same rank, got [${query.shape}], [${value.shape}], [${key.shape}]`);
    }
    const axes = this.attentionAxesFor(rank);
    const [qK, qB, kK, kB, vK, vB] = this.projectionValues();
    const checkFeat = (t: tf.Tensor, k: tf.Tensor, name: string) => {
      if (t.shape[rank - 1] !== k.shape[0]) {
        throw new Error(`${where}: ${name} has ${t.shape[rank - 1]} features but the layer was built for ${k.shape[0]}, got [${t.shape}]`);
      }
    };
    checkFeat(query, qK!, 'query');
    checkFeat(value, vK!, 'value');
    checkFeat(key, kK!, 'key');
    const layout = new HeadLayout(query, value, axes, this.numHeads);
    for (const a of [0, ...layout.free]) {
      if (value.shape[a] !== query.shape[a] || key.shape[a] !== query.shape[a]) {
        throw new Error(
          `${where}: query, value and key must agree on the batch${layout.free.length ? ' and non-attention' : ''} dims, got [${query.shape}], [${value.shape}], [${key.shape}]`,
        );
      }
    }
    for (const a of axes) {
      if (value.shape[a] !== key.shape[a])
        throw new Error(`${where}: value and key must agree on all dims but the last, got [${value.shape}] and [${key.shape}]`);
    }
    if (layout.BF === 0 || layout.Lq === 0 || layout.Sk === 0) return { layout, empty: true };
    const mask = buildAttentionMask(where, this.attentionMaskType, query, value, attentionMask, useCausalMask, axes, layout.scoresShape);
    return {
      query: layout.split(project(query, qK!, qB, 1), layout.Lq),
      key: layout.split(project(key, kK!, kB, 1), layout.Sk),
      value: layout.split(project(value, vK!, vB, 1), layout.Sk),
      masks: mask ? { attentionMask: layout.maskToCore(mask) } : {},
      layout,
    };
  }

  /** Returns [output, scores] for a call's tensors. Runs inside the caller's tidy. */
  private attend(tensors: tf.Tensor[], spec: CallSpec, training: boolean): [tf.Tensor, tf.Tensor] {
    const { query, value, key, attentionMask } = tensorsByRole(tensors, spec);
    const [, , , , , , oK, oB] = this.projectionValues();
    const p = this.projectInputs(query, value, key, attentionMask, spec.useCausalMask);
    if ('empty' in p) {
      // Empty batch, queries or memories: every head's retrieval is an empty weighted sum
      // (zeros), so the output is the output projection's bias. Computed without running
      // kernels on empty shapes, so every backend gives the same (wasm's XNNPACK products
      // return garbage for an empty memory, and its transpose divides by zero on a batch of 0).
      const outShape = [...query.shape.slice(0, -1), ...(this.outputShapeArg ?? [query.shape[query.rank - 1]])];
      const zeros = tf.zeros(outShape);
      const output = oB ? tf.add(zeros, oB) : zeros;
      return [output, tf.zeros(p.layout.scoresShape)];
    }
    const [heads, scores] = this.computeAttention(p.query, p.key, p.value, p.masks, training);
    const output = project(p.layout.merge(heads), oK!, oB, 2);
    return [output, tf.reshape(scores, p.layout.scoresShape)];
  }

  /**
   * The attention between the head split and the head merge (Keras' `_compute_attention`):
   * softmax of beta * q k^T with masked scores at -1e9, dropout on the weights when training,
   * weighted sum of the values. Subclasses override it to compute attention another way.
   *
   * @param query projected queries [B*F, H, Lq, keyDim]
   * @param key projected keys [B*F, H, Sk, keyDim]
   * @param value projected values [B*F, H, Sk, valueDim]
   * @param masks the combined boolean mask (see {@link AttentionMasks})
   * @param training whether the call trains (dropout on)
   * @returns [heads [B*F, H, Lq, valueDim], attention scores [B*F, H, Lq, Sk]]
   *
   * @example
   * ```ts
   * class ScaledBy2 extends MultiHeadAttention {
   *   static override className = 'ScaledBy2';
   *   protected override computeAttention(q, k, v, masks, training) {
   *     return super.computeAttention(tf.mul(q, 2), k, v, masks, training);
   *   }
   * }
   * ```
   */
  protected computeAttention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    masks: AttentionMasks,
    training: boolean,
  ): [tf.Tensor, tf.Tensor] {
    const H = this.numHeads;
    const beta = this.beta;
    const betaT = typeof beta === 'number' ? beta : tf.reshape(tf.tensor1d(beta), [1, H, 1, 1]);
    // batchMatMul: on wasm a batched tf.matMul runs a naive loop; this runs XNNPACK convolutions.
    let scores = batchMatMul(tf.mul(query, betaT), key);
    const m = masks.attentionMask;
    if (m) scores = tf.add(scores, tf.mul(tf.sub(1, tf.cast(m, 'float32')), -1e9));
    const weights = tf.softmax(scores);
    const dropped = training && this.dropout > 0 ? tf.dropout(weights, this.dropout, undefined, this.nextDropoutSeed()) : weights;
    return [batchMatMul(dropped, value, false), weights];
  }

  /** The dropout seed of this call (undefined when the layer is unseeded). */
  protected nextDropoutSeed(): number | undefined {
    return this.seed == null ? undefined : this.seed + 2000 + this.dropoutCalls++;
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      numHeads: this.numHeads,
      keyDim: this.keyDim,
      valueDim: this.valueDim,
      dropout: this.dropout,
      useBias: this.useBias,
      outputShape: this.outputShapeArg,
      attentionAxes: this.attentionAxesArg,
      kernelInitializer: serializeKerasObject(this.kernelInitializer),
      biasInitializer: serializeKerasObject(this.biasInitializer),
      kernelRegularizer: serializeKerasObject(this.kernelRegularizer),
      biasRegularizer: serializeKerasObject(this.biasRegularizer),
      activityRegularizer: null,
      kernelConstraint: serializeKerasObject(this.kernelConstraint),
      biasConstraint: serializeKerasObject(this.biasConstraint),
      ...(this.seed != null ? { seed: this.seed } : {}),
    };
    return { ...super.getConfig(), ...config };
  }
}

/**
 * Registers `MultiHeadAttention` for deserialization unless a class of that name is
 * registered already (e.g. tfjs-layers' own, when a bundler loaded it first).
 * Returns true when this package's class now holds the name.
 */
export function registerMultiHeadAttention(force = false): boolean {
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  const existing = map['MultiHeadAttention'];
  if (existing && !force) return existing[0] === MultiHeadAttention;
  tf.serialization.registerClass(MultiHeadAttention);
  return true;
}
registerMultiHeadAttention();
