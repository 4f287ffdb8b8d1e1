/**
 * `UHopAttention`: a drop-in for tfjs-layers' `MultiHeadAttention` whose attention is a
 * (U-Hop) Hopfield retrieval.
 *
 * Same constructor arguments, call signature, weight shapes and weight order as
 * `MultiHeadAttention` (query, key, value, output: kernel then bias each), so code and
 * weights written for it carry over unchanged. With the defaults (separation 'softmax',
 * similarity 'dot', beta = 1/sqrt(keyDim), featureMap 'none', one update step) the layer
 * computes exactly what `MultiHeadAttention` computes, masks included. The Hopfield options
 * switch the retrieval to `hopfieldRetrieval` (./hopfieldCore.ts): other separations
 * (sparsemax, entmax, ...), similarities, several update steps, and U-Hop's feature map
 * Phi fitted in every call on each sample's projected keys, per head.
 *
 * Why not subclass tfjs' MultiHeadAttention: tfjs-layers 4.22 does not ship it in its Node
 * bundle nor export it from its index (only a deep ESM import reaches it, which in Node gives
 * a second copy of the layers engine), its projection weights live in untracked sublayers (so
 * `getWeights()`, `fit()` and `save()` miss them), and its `apply()` loses `value` when a
 * functional model runs it. This layer keeps every weight on itself and passes value, key and
 * attentionMask as layer inputs, so it trains, saves and runs inside functional models.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from './keras.js';
import type { Kwargs } from './keras.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { checkSimilarityKind } from '../ops/similarity.js';
import { checkSeparationKind } from '../ops/separation.js';
import { checkUpdateSteps } from '../ops/retrievalCore.js';
import { allowedMask, checkMaskType, type MaskType } from '../ops/masks.js';
import type { SeparationKind, SimilarityKind } from '../ops/types.js';
import {
  hopfieldRetrieval,
  batchMatMul,
  phi0WeightSpecs,
  resolveUHopArgs,
  uhopConfigToJSON,
  UHOP_ARG_KEYS,
  type UHopArgs,
  type UHopConfig,
} from './hopfieldCore.js';
import {
  checkKnownArgs,
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
type AnyTensor = tf.Tensor | tfl.SymbolicTensor;

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

/** The Hopfield options of `UHopAttention` besides the U-Hop ones (`UHopArgs`). */
export interface HopfieldAttentionOptions {
  /** Map from scores to association weights. Default 'softmax' (= MultiHeadAttention). */
  separation?: SeparationKind;
  /** Score between a query and a key. Default 'dot'. With U-Hop: between Phi(q) and Phi(k). */
  similarity?: SimilarityKind;
  /**
   * Inverse temperature beta multiplying the scores before the separation: one number or one
   * per head. Default 1/sqrt(keyDim) (MultiHeadAttention's scaling).
   */
  beta?: number | number[] | null;
  /** alpha of separation 'entmax', in [1, 2]. Default 1.5. */
  alpha?: number | null;
  /** k of separation 'topk'. Default 1. */
  topK?: number | null;
  /** Number of Hopfield update steps (state patterns iterate in key space). Default 1. */
  updateStepsMax?: number;
  /** A query row stops updating once its association moves by <= eps (L2). Default 0. */
  updateStepsEps?: number;
  /**
   * How `attentionMask` is written: 'allowed' (default, Keras and tfjs: bool or 0/1, 1 = may
   * attend) or 'additive' (PyTorch's float attn_mask: 0 = allowed, -Infinity = blocked).
   * Other values are an error (src/ops/masks.ts), so a PyTorch mask is never inverted silently.
   */
  maskType?: MaskType;
}

/** Everything `UHopAttention` accepts. */
export interface UHopAttentionArgs extends MultiHeadAttentionArgs, HopfieldAttentionOptions, UHopArgs {}

/** The Hopfield and U-Hop options (what `replaceAttention` adds to a MultiHeadAttention config). */
export type UHopAttentionOptions = HopfieldAttentionOptions & UHopArgs;

/** Call options, as `MultiHeadAttention.call(query, options)` takes them. */
export interface UHopAttentionCallArgs {
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

/** Which layer input is which, in the order they are passed to `Layer.apply`. */
export type AttentionInputRole = 'query' | 'value' | 'key' | 'attentionMask';

interface CallSpec {
  /**
   * The role(s) of each layer input, e.g. ['query', 'value', 'attentionMask']; one tensor
   * passed in several roles is one input ('query+value'): tfjs-layers' executor disposes a
   * tensor that a node lists twice before its other consumers run.
   */
  roles: string[];
  useCausalMask: boolean;
  returnAttentionScores: boolean;
}

const ROLES: readonly AttentionInputRole[] = ['query', 'value', 'key', 'attentionMask'];

/** Index of the input that plays `role` (-1 when none does). */
function roleIndex(roles: readonly string[], role: AttentionInputRole): number {
  return roles.findIndex((group) => group.split('+').includes(role));
}

function validRoles(roles: unknown, n: number): roles is string[] {
  if (!Array.isArray(roles) || roles.length !== n || roles.some((r) => typeof r !== 'string')) return false;
  const all = (roles as string[]).flatMap((r) => r.split('+'));
  return (
    all.every((r) => ROLES.includes(r as AttentionInputRole)) &&
    new Set(all).size === all.length &&
    (roles[0] as string).split('+').includes('query')
  );
}

/**
 * MultiHeadAttention's arguments that define its projections: what `replaceAttention` carries
 * over from a MultiHeadAttention config.
 */
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

const MHA_ARG_KEYS = [...MHA_PROJECTION_KEYS, 'activityRegularizer', 'queryShape', 'keyShape', 'valueShape', 'seed'] as const;

/** Names of the Hopfield/U-Hop options (everything UHopAttention adds to MultiHeadAttention). */
export const HOPFIELD_ATTENTION_KEYS: readonly string[] = [
  'separation',
  'similarity',
  'beta',
  'alpha',
  'topK',
  'updateStepsMax',
  'updateStepsEps',
  'maskType',
  ...UHOP_ARG_KEYS,
];

function isPosInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 1;
}

function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

function isSymbolic(x: unknown): x is tfl.SymbolicTensor {
  return x instanceof tfl.SymbolicTensor;
}

function describe(x: unknown): string {
  if (x instanceof tf.Tensor) return `a tensor [${x.shape}]`;
  if (isSymbolic(x)) return `a symbolic tensor [${x.shape}]`;
  if (Array.isArray(x)) return `an array of ${x.length}`;
  return x === null ? 'null' : typeof x;
}

/**
 * Multi-head attention as a Hopfield retrieval, with U-Hop's learned feature map; a drop-in
 * for tfjs-layers' `MultiHeadAttention`.
 *
 * Inputs: query [B, T, dim_q], value [B, S, dim_v], key [B, S, dim_k] (default value), an
 * optional attentionMask [B, T, S]. Output [B, T, outputShape or dim_q], and with
 * `returnAttentionScores` also the association [B, heads, T, S]. Higher-rank inputs attend over
 * `attentionAxes` as in Keras.
 *
 * Weights, in this order: query/kernel [dim_q, heads, keyDim], query/bias [heads, keyDim],
 * key/kernel, key/bias, value/kernel [dim_v, heads, valueDim], value/bias,
 * attention_output/kernel [heads, valueDim, ...outputShape], attention_output/bias, then U-Hop's
 * Phi0 (phi0_kernel [heads, featureDim, keyDim] for the linear map). The names are Keras'
 * (`<layer>/query/kernel`, ..., `<layer>/attention_output/bias`), so weights of a Keras
 * MultiHeadAttention converted with the tfjs converter load by name.
 *
 * U-Hop (featureMap 'linear' or 'mlp'): in every call, training and inference alike, Phi is
 * fitted for `fitSteps` steps on each sample's projected keys, per head, from Phi0 (keys
 * detached; Phi0 trained straight through when phiTrainable), then scores are
 * beta * sim(Phi(q), Phi(k)). The fit sees every memory at least one query may attend to, so
 * `useCausalMask` is refused with a U-Hop fit (it would read future keys; fitSteps 0 is
 * allowed).
 *
 * Fully masked query rows: the default softmax path adds -1e9 to masked scores as
 * MultiHeadAttention does (such a row averages all values); the Hopfield path gives them an
 * all-zero association.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { UHopAttention } from 'uhop';
 *
 * const tokens = tfl.input({ shape: [16, 32] });
 * const attn = new UHopAttention({ numHeads: 4, keyDim: 8, featureMap: 'linear', fitSteps: 5 });
 * const h = attn.apply(tokens, { value: tokens }) as tfl.SymbolicTensor;
 * const model = tfl.model({ inputs: tokens, outputs: h });
 * const y = model.predict(tf.randomNormal([2, 16, 32])) as tf.Tensor; // [2, 16, 32]
 * // eager, as with MultiHeadAttention:
 * const [out, scores] = attn.callAndReturnAttentionScores(tf.randomNormal([2, 16, 32]), {
 *   value: tf.randomNormal([2, 10, 32]),
 * }); // [2, 16, 32], [2, 4, 16, 10]
 * ```
 */
export class UHopAttention extends tfl.layers.Layer {
  static className = 'UHopAttention';

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
  readonly separation: SeparationKind;
  readonly similarity: SimilarityKind;
  protected readonly betaArg: number | number[] | null;
  readonly alpha: number | null;
  readonly topK: number | null;
  readonly updateStepsMax: number;
  readonly updateStepsEps: number;
  readonly uhop: UHopConfig;
  readonly maskType: MaskType;

  readonly seed: number | null;
  private dropoutCalls = 0;
  private projection: LayerVariable[] = [];
  private phi0: LayerVariable[] = [];
  /** The call structure of this layer's node(s) in a functional model. */
  private callSpec: CallSpec | null = null;
  /** The call structure of the apply() in progress (read by computeOutputShape/computeMask). */
  private pendingSpec: CallSpec | null = null;
  /** Inputs and outputs of the last computation (references only; see call()). */
  private lastCall: { inputs: tf.Tensor[]; outputs: tf.Tensor[] } | null = null;

  /**
   * @param args MultiHeadAttention's arguments plus the Hopfield and U-Hop options.
   * @param allowHopfield false for the plain `MultiHeadAttention` subclass (rejects the
   *   Hopfield options).
   */
  constructor(args: UHopAttentionArgs, allowHopfield = true) {
    if (args == null || typeof args !== 'object') {
      throw new Error(
        `${allowHopfield ? 'UHopAttention' : 'MultiHeadAttention'}: args must be an object with numHeads and keyDim, got ${String(args)}`,
      );
    }
    super(args);
    const cls = (this.constructor as { className?: string }).className ?? 'UHopAttention';
    const where = `${cls}${args.name ? ` '${args.name}'` : ''}`;
    checkKnownArgs(args, allowHopfield ? [...MHA_ARG_KEYS, ...HOPFIELD_ATTENTION_KEYS] : MHA_ARG_KEYS, where);
    if (!isPosInt(args.numHeads)) throw new Error(`${where}: numHeads must be an integer >= 1, got ${String(args.numHeads)}`);
    if (!isPosInt(args.keyDim)) throw new Error(`${where}: keyDim must be an integer >= 1, got ${String(args.keyDim)}`);
    if (args.valueDim != null && !isPosInt(args.valueDim))
      throw new Error(`${where}: valueDim must be an integer >= 1, got ${String(args.valueDim)}`);
    const dropout = args.dropout ?? 0;
    if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1))
      throw new Error(`${where}: dropout must be a number in [0, 1), got ${String(dropout)}`);
    if (args.useBias != null && typeof args.useBias !== 'boolean')
      throw new Error(`${where}: useBias must be a boolean, got ${String(args.useBias)}`);
    this.numHeads = args.numHeads;
    this.keyDim = args.keyDim;
    this.valueDim = args.valueDim ?? args.keyDim;
    this.dropout = dropout;
    this.useBias = args.useBias ?? true;
    if (args.seed != null && !Number.isInteger(args.seed)) throw new Error(`${where}: seed must be an integer, got ${String(args.seed)}`);
    this.seed = args.seed ?? null;

    if (args.outputShape != null) {
      const os = Array.isArray(args.outputShape) ? args.outputShape : [args.outputShape];
      if (os.length === 0 || !os.every(isPosInt))
        throw new Error(`${where}: outputShape must be an integer >= 1 or an array of them, got ${JSON.stringify(args.outputShape)}`);
      this.outputShapeArg = os.slice();
    } else {
      this.outputShapeArg = null;
    }
    if (args.attentionAxes != null) {
      const ax = Array.isArray(args.attentionAxes) ? args.attentionAxes : [args.attentionAxes];
      if (ax.length === 0 || !ax.every((a) => Number.isInteger(a)) || new Set(ax).size !== ax.length) {
        throw new Error(
          `${where}: attentionAxes must be an integer or an array of distinct integers, got ${JSON.stringify(args.attentionAxes)}`,
        );
      }
      this.attentionAxesArg = ax.slice();
    } else {
      this.attentionAxesArg = null;
    }

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

    this.maskType = checkMaskType(args.maskType, where);
    const separation = args.separation ?? 'softmax';
    checkSeparationKind(separation, where);
    const similarity = args.similarity ?? 'dot';
    checkSimilarityKind(similarity, where);
    this.separation = separation;
    this.similarity = similarity;
    const beta = args.beta ?? null;
    if (beta != null) {
      const bs = Array.isArray(beta) ? beta : [beta];
      if (!bs.every((b) => typeof b === 'number' && Number.isFinite(b) && b > 0)) {
        throw new Error(`${where}: beta must be a finite number > 0 or an array of them (one per head), got ${JSON.stringify(beta)}`);
      }
      if (Array.isArray(beta) && beta.length !== this.numHeads) {
        throw new Error(`${where}: beta per head must have numHeads=${this.numHeads} entries, got ${beta.length}`);
      }
    }
    this.betaArg = Array.isArray(beta) ? beta.slice() : beta;
    const alpha = args.alpha ?? null;
    if (alpha != null && (typeof alpha !== 'number' || !(alpha >= 1 && alpha <= 2))) {
      throw new Error(`${where}: alpha (entmax) must be a number in [1, 2], got ${String(alpha)}`);
    }
    this.alpha = alpha;
    const topK = args.topK ?? null;
    if (topK != null && !isPosInt(topK)) throw new Error(`${where}: topK must be an integer >= 1, got ${String(topK)}`);
    this.topK = topK;
    // updateStepsMax counts all steps here (1..MAX_UPDATE_STEPS).
    const steps = args.updateStepsMax === undefined ? 1 : args.updateStepsMax;
    const eps = args.updateStepsEps ?? 0;
    checkUpdateSteps(steps, eps, where, { steps: 'updateStepsMax', eps: 'updateStepsEps' });
    this.updateStepsMax = steps;
    this.updateStepsEps = eps;
    this.uhop = resolveUHopArgs(args, where);
    // Fail at construction, not at the first call, on an impossible Phi0 (e.g. D < keyDim).
    phi0WeightSpecs(this.numHeads, this.keyDim, this.uhop, where);
    this.supportsMasking = true;
  }

  /** Where errors come from: the class and layer name. */
  protected get where(): string {
    return `${this.getClassName()} '${this.name}'`;
  }

  /** beta actually used: the argument or 1/sqrt(keyDim). */
  get beta(): number | number[] {
    return this.betaArg ?? 1 / Math.sqrt(this.keyDim);
  }

  /** True when the layer computes exactly MultiHeadAttention (no Hopfield option changes it). */
  get isPlainAttention(): boolean {
    return this.separation === 'softmax' && this.similarity === 'dot' && this.uhop.featureMap === 'none' && this.updateStepsMax === 1;
  }

  // -------------------------------------------------------------------------------------
  // Call plumbing: value/key/attentionMask travel as layer inputs
  // -------------------------------------------------------------------------------------

  /**
   * Flattens `(query, {value, key, attentionMask})` into the list of layer inputs, or reads a
   * list back (functional models hand the layer its inputs as a list, without the options).
   */
  private normalizeCall(inputs: unknown, kwargs: Kwargs): { list: AnyTensor[]; spec: CallSpec } {
    const where = this.where;
    const hasNamed = kwargs.value != null || kwargs.key != null || kwargs.attentionMask != null;
    const flag = (name: 'useCausalMask' | 'returnAttentionScores', fallback: boolean): boolean => {
      const v = kwargs[name];
      if (v == null) return fallback;
      if (typeof v !== 'boolean') throw new Error(`${where}: ${name} must be a boolean, got ${String(v)}`);
      return v;
    };
    if (Array.isArray(inputs)) {
      if (hasNamed) {
        throw new Error(
          `${where}: pass the query alone as the first argument when value/key/attentionMask are given as options, got ${describe(inputs)} and options`,
        );
      }
      const list = inputs as AnyTensor[];
      let roles = kwargs.inputRoles as string[] | undefined;
      if (roles != null) {
        if (!validRoles(roles, list.length)) {
          throw new Error(
            `${where}: inputRoles must name the role(s) of each of the ${list.length} inputs ('query' first; one input in several roles as 'query+value'), from ${ROLES.join(', ')}; got ${JSON.stringify(roles)}`,
          );
        }
      } else if (this.callSpec && this.callSpec.roles.length === list.length) {
        roles = this.callSpec.roles;
      } else {
        if (list.length < 1 || list.length > 4) {
          throw new Error(`${where}: a list of inputs must be [query, value?, key?, attentionMask?], got ${list.length} inputs`);
        }
        roles = ROLES.slice(0, list.length) as string[];
      }
      const fb = this.callSpec ?? { useCausalMask: false, returnAttentionScores: false };
      return {
        list,
        spec: {
          roles: roles.slice(),
          useCausalMask: flag('useCausalMask', fb.useCausalMask),
          returnAttentionScores: flag('returnAttentionScores', fb.returnAttentionScores),
        },
      };
    }
    if (!(inputs instanceof tf.Tensor) && !isSymbolic(inputs)) {
      throw new Error(`${where}: query must be a tensor or a symbolic tensor, got ${describe(inputs)}`);
    }
    const list: AnyTensor[] = [inputs];
    const roles: string[] = ['query'];
    if (kwargs.key != null && kwargs.value == null) {
      throw new Error(`${where}: key was given without value; pass {value, key} (the value is required whenever the key is)`);
    }
    for (const role of ['value', 'key', 'attentionMask'] as const) {
      const t = kwargs[role];
      if (t == null) continue;
      if (!(t instanceof tf.Tensor) && !isSymbolic(t))
        throw new Error(`${where}: ${role} must be a tensor or a symbolic tensor, got ${describe(t)}`);
      const same = list.indexOf(t);
      if (same >= 0) {
        roles[same] += `+${role}`;
      } else {
        list.push(t);
        roles.push(role);
      }
    }
    return {
      list,
      spec: { roles, useCausalMask: flag('useCausalMask', false), returnAttentionScores: flag('returnAttentionScores', false) },
    };
  }

  /** A per-call U-Hop fit reads every key, future ones included: refuse it in causal attention. */
  private checkCausalFit(useCausalMask: boolean): void {
    if (useCausalMask && this.uhop.featureMap !== 'none' && this.uhop.fitSteps > 0) {
      throw new Error(
        `${this.where}: useCausalMask with a U-Hop fit (featureMap '${this.uhop.featureMap}', fitSteps ${this.uhop.fitSteps}) would fit Phi on future keys (the fit sees the whole memory set), so outputs would depend on later positions; use fitSteps 0 or featureMap 'none' in causal attention`,
      );
    }
  }

  private rememberSpec(spec: CallSpec): void {
    if (this.callSpec == null) {
      this.callSpec = spec;
      return;
    }
    const same =
      this.callSpec.roles.join() === spec.roles.join() &&
      this.callSpec.useCausalMask === spec.useCausalMask &&
      this.callSpec.returnAttentionScores === spec.returnAttentionScores;
    if (!same) {
      throw new Error(
        `${this.where}: called in a functional model with inputs [${spec.roles}] and useCausalMask=${spec.useCausalMask}, returnAttentionScores=${spec.returnAttentionScores}, ` +
          `but it was called before with [${this.callSpec.roles}], useCausalMask=${this.callSpec.useCausalMask}, returnAttentionScores=${this.callSpec.returnAttentionScores}. ` +
          'tfjs-layers does not pass per-call options when it runs a model, so one layer must be called the same way each time; use a second layer (weights can be shared by copying).',
      );
    }
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
    const { list, spec } = this.normalizeCall(inputs, kw);
    const symbolic = list.map(isSymbolic);
    if (symbolic.some((s) => s !== symbolic[0])) {
      throw new Error(
        `${this.where}: ${spec.roles.map((r, i) => `${r} is ${symbolic[i] ? 'symbolic' : 'a tensor'}`).join(', ')}; ` +
          'they must be all symbolic (model inputs / layer outputs) or all tensors. In a functional model a constant mask must come in through a model input.',
      );
    }
    this.checkCausalFit(spec.useCausalMask);
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
    const { list, spec } = this.normalizeCall(inputs, kw);
    this.checkCausalFit(spec.useCausalMask);
    if (!list.every((t) => t instanceof tf.Tensor)) {
      throw new Error(`${this.where}: call() needs concrete tensors; use apply() for symbolic tensors`);
    }
    const tensors = list as tf.Tensor[];
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
    const get = (role: AttentionInputRole): tf.Tensor | undefined => {
      const i = roleIndex(spec.roles, role);
      return i < 0 ? undefined : (list[i] as tf.Tensor);
    };
    const training = kw.training === true;
    const result = tf.tidy(() => {
      const query = get('query') as tf.Tensor;
      const value = get('value') ?? query;
      const key = get('key') ?? value;
      const [out, scores] = this.attend(query, value, key, get('attentionMask'), spec.useCausalMask, training);
      return spec.returnAttentionScores ? [out, scores] : out;
    });
    this.lastCall = { inputs: tensors, outputs: Array.isArray(result) ? result : [result] };
    return result;
  }

  /** `call` that also returns the attention scores [B, heads, T, S] (MultiHeadAttention's method). */
  callAndReturnAttentionScores(query: tf.Tensor, options: UHopAttentionCallArgs): [tf.Tensor, tf.Tensor] {
    return this.call(query, { ...options, returnAttentionScores: true }) as [tf.Tensor, tf.Tensor];
  }

  // -------------------------------------------------------------------------------------
  // Shapes, weights, masks
  // -------------------------------------------------------------------------------------

  private shapesByRole(inputShape: Shape | Shape[]): { query: Shape; value: Shape; key: Shape; mask?: Shape } {
    const shapes: Shape[] = Array.isArray(inputShape[0]) || inputShape.length === 0 ? (inputShape as Shape[]) : [inputShape as Shape];
    const spec = this.pendingSpec ?? this.callSpec;
    const roles = spec && spec.roles.length === shapes.length ? spec.roles : (ROLES.slice(0, shapes.length) as string[]);
    const by = (r: AttentionInputRole) => {
      const i = roleIndex(roles, r);
      return i < 0 ? undefined : shapes[i];
    };
    const query = by('query') as Shape;
    const value = by('value') ?? query;
    const key = by('key') ?? value;
    return { query, value, key, mask: by('attentionMask') };
  }

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
    const { query, value, key } = this.shapesByRole(inputShape);
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
    this.phi0 = phi0WeightSpecs(H, this.keyDim, this.uhop, where, this.seed == null ? null : this.seed + 1000).map((s) =>
      this.addWeight(s.name, s.shape, 'float32', s.initializer, undefined, s.trainable),
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const { query, value, key } = this.shapesByRole(inputShape);
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
    const spec = this.pendingSpec ?? this.callSpec;
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

  /**
   * The boolean mask over the scores [B, F..., 1|H, Aq..., Ak...] from the attention mask,
   * the inputs' Keras masks (rank 3) and the causal mask, combined as MultiHeadAttention
   * does; undefined when there is none.
   */
  private buildMask(
    query: tf.Tensor,
    value: tf.Tensor,
    attentionMask: tf.Tensor | undefined,
    useCausalMask: boolean,
    axes: number[],
    scoresShape: number[],
  ): tf.Tensor | undefined {
    const where = this.where;
    let m: tf.Tensor | undefined = attentionMask
      ? tf.cast(allowedMask(attentionMask, this.maskType, where, 'attentionMask'), 'bool')
      : undefined;
    const and = (a: tf.Tensor | undefined, b: tf.Tensor) => (a ? tf.logicalAnd(a, b) : b);
    if (query.rank === 3) {
      const qm = (query as unknown as { kerasMask?: tf.Tensor | null }).kerasMask;
      const vm = (value as unknown as { kerasMask?: tf.Tensor | null }).kerasMask;
      if (qm) m = and(m, tf.expandDims(tf.cast(qm, 'bool'), 2));
      if (vm) m = and(m, tf.expandDims(tf.cast(vm, 'bool'), 1));
    }
    if (useCausalMask) {
      if (axes.length !== 1) {
        throw new Error(`${where}: useCausalMask needs exactly one attention axis, got attentionAxes [${axes}]`);
      }
      const T = query.shape[axes[0]];
      const S = value.shape[axes[0]];
      m = and(m, tf.cast(tf.linalg.bandPart(tf.ones([T, S]), -1, 0), 'bool'));
    }
    if (!m) return undefined;
    const rank = scoresShape.length;
    const nA = axes.length;
    if (m.rank > rank) {
      throw new Error(
        `${where}: attentionMask must be broadcastable to the scores [${scoresShape}] (without the heads axis, e.g. [B, T, S]), got [${attentionMask?.shape}]`,
      );
    }
    while (m.rank < rank) m = tf.expandDims(m, -(2 * nA) - 1);
    const headAxis = rank - 2 * nA - 1;
    for (let i = 0; i < rank; i++) {
      if (m.shape[i] !== 1 && m.shape[i] !== scoresShape[i]) {
        throw new Error(
          `${where}: the attention mask${attentionMask ? ` [${attentionMask.shape}]` : ''} does not broadcast to the scores [${scoresShape}] (batch, ..., heads, query positions, key positions); expected e.g. [B, T, S]`,
        );
      }
    }
    const target = scoresShape.slice();
    target[headAxis] = m.shape[headAxis];
    return tf.broadcastTo(m, target);
  }

  // -------------------------------------------------------------------------------------
  // The computation
  // -------------------------------------------------------------------------------------

  /** Projects x [B, ..., d] with kernel [d, ...out] and bias [...out]. */
  private project(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, inDims: number): tf.Tensor {
    const lead = x.shape.slice(0, x.rank - inDims);
    const outDims = kernel.shape.slice(inDims);
    const inSize = prod(kernel.shape.slice(0, inDims));
    const outSize = prod(outDims);
    // Not tf.fused.matMul with the bias: the wasm backend checks the rank of a reshaped
    // bias against its original shape ([heads, dim]) and refuses it.
    let y = tf.matMul(tf.reshape(x, [prod(lead), inSize]), tf.reshape(kernel, [inSize, outSize]));
    if (bias) y = tf.add(y, tf.reshape(bias, [outSize]));
    return tf.reshape(y, [...lead, ...outDims]);
  }

  /** Returns [output, scores]. Runs inside the caller's tidy. */
  private attend(
    query: tf.Tensor,
    value: tf.Tensor,
    key: tf.Tensor,
    attentionMask: tf.Tensor | undefined,
    useCausalMask: boolean,
    training: boolean,
  ): [tf.Tensor, tf.Tensor] {
    const where = this.where;
    const rank = query.rank;
    if (value.rank !== rank || key.rank !== rank) {
      throw new Error(`${where}: query, value and key must have the same rank, got [${query.shape}], [${value.shape}], [${key.shape}]`);
    }
    const axes = this.attentionAxesFor(rank);
    const inner = Array.from({ length: rank - 2 }, (_, i) => i + 1);
    const free = inner.filter((a) => !axes.includes(a));
    const w = this.projection;
    const [qK, qB, kK, kB, vK, vB, oK, oB] = this.useBias
      ? w.map((v) => v.read())
      : [w[0].read(), undefined, w[1].read(), undefined, w[2].read(), undefined, w[3].read(), undefined];
    const checkFeat = (t: tf.Tensor, k: tf.Tensor, name: string) => {
      if (t.shape[rank - 1] !== k.shape[0]) {
        throw new Error(`${where}: ${name} has ${t.shape[rank - 1]} features but the layer was built for ${k.shape[0]}, got [${t.shape}]`);
      }
    };
    checkFeat(query, qK, 'query');
    checkFeat(value, vK, 'value');
    checkFeat(key, kK, 'key');
    for (const a of [0, ...free]) {
      if (value.shape[a] !== query.shape[a] || key.shape[a] !== query.shape[a]) {
        throw new Error(
          `${where}: query, value and key must agree on the batch${free.length ? ' and non-attention' : ''} dims, got [${query.shape}], [${value.shape}], [${key.shape}]`,
        );
      }
    }
    for (const a of axes) {
      if (value.shape[a] !== key.shape[a])
        throw new Error(`${where}: value and key must agree on all dims but the last, got [${value.shape}] and [${key.shape}]`);
    }
    const H = this.numHeads;
    const B = query.shape[0];
    const Fdims = free.map((a) => query.shape[a]);
    const Aq = axes.map((a) => query.shape[a]);
    const Ak = axes.map((a) => value.shape[a]);
    const BF = B * prod(Fdims);
    const Lq = prod(Aq);
    const Sk = prod(Ak);
    if (BF === 0 || Lq === 0 || Sk === 0) {
      // Empty batch, queries or memories: every head's retrieval is an empty weighted sum
      // (zeros), so the output is the output projection's bias. Computed without running
      // kernels on empty shapes, so every backend gives the same (wasm's XNNPACK products
      // return garbage for an empty memory, and its transpose divides by zero on a batch of 0).
      const outShape = [...query.shape.slice(0, -1), ...(this.outputShapeArg ?? [query.shape[rank - 1]])];
      const zeros = tf.zeros(outShape);
      const output = oB ? tf.add(zeros, oB) : zeros;
      return [output, tf.zeros([B, ...Fdims, H, ...Aq, ...Ak])];
    }
    // Projected [B, d..., H, dh] -> [B, F..., H, A..., dh] -> [B*F, H, L, dh].
    const perm = [0, ...free, rank - 1, ...axes, rank];
    const identityPerm = perm.every((p, i) => p === i);
    const toCore = (x: tf.Tensor, L: number) => {
      const t = identityPerm ? x : tf.transpose(x, perm);
      return tf.reshape(t, [BF, H, L, x.shape[rank]]);
    };
    const q = toCore(this.project(query, qK, qB, 1), Lq);
    const k = toCore(this.project(key, kK, kB, 1), Sk);
    const v = toCore(this.project(value, vK, vB, 1), Sk);

    const scoresShape = [B, ...Fdims, H, ...Aq, ...Ak];
    const mask = this.buildMask(query, value, attentionMask, useCausalMask, axes, scoresShape);
    // [B, F..., 1|H, Aq..., Ak...] -> [B*F, 1|H, Lq, Sk]
    const mask4 = mask ? tf.reshape(mask, [BF, mask.shape[1 + free.length], Lq, Sk]) : undefined;

    let heads: tf.Tensor;
    let association: tf.Tensor;
    const beta = this.beta;
    if (this.isPlainAttention) {
      // MultiHeadAttention's computation: scaled query, dot product, additive -1e9 mask, softmax.
      const betaT = typeof beta === 'number' ? beta : tf.reshape(tf.tensor1d(beta), [1, H, 1, 1]);
      // batchMatMul: on wasm a batched tf.matMul runs a naive loop; this runs XNNPACK convolutions.
      let scores = batchMatMul(tf.mul(q, betaT), k);
      if (mask4) scores = tf.add(scores, tf.mul(tf.sub(1, tf.cast(mask4, 'float32')), -1e9));
      association = tf.softmax(scores);
      const dropped = training && this.dropout > 0 ? tf.dropout(association, this.dropout, undefined, this.nextDropoutSeed()) : association;
      heads = batchMatMul(dropped, v, false);
    } else {
      const uhopOn = this.uhop.featureMap !== 'none';
      const result = hopfieldRetrieval(q, k, v, {
        beta,
        similarity: this.similarity,
        separation: this.separation,
        ...(this.alpha != null ? { alpha: this.alpha } : {}),
        ...(this.topK != null ? { topK: this.topK } : {}),
        associationMask: mask4,
        // A memory no query may attend to is padding: leave it out of the U-Hop fit.
        memoryMask: uhopOn && mask4 ? tf.cast(tf.any(mask4, 2), 'float32') : undefined,
        steps: this.updateStepsMax,
        stepsEps: this.updateStepsEps,
        dropout: this.dropout,
        ...(training && this.dropout > 0 ? { dropoutSeed: this.nextDropoutSeed() } : {}),
        training,
        uhop: uhopOn ? { config: this.uhop, phi0: this.phi0.map((p) => p.read()) } : undefined,
        returnAssociation: true,
      });
      heads = result.output;
      association = result.association as tf.Tensor;
    }
    // [B*F, H, Lq, dv] -> [B, F..., H, Aq..., dv] -> [B, d..., H, dv] -> output projection.
    const dv = this.valueDim;
    let o = tf.reshape(heads, [B, ...Fdims, H, ...Aq, dv]);
    if (!identityPerm) {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      o = tf.transpose(o, inv);
    }
    const output = this.project(o, oK, oB, 2);
    return [output, tf.reshape(association, scoresShape)];
  }

  /** The dropout seed of this call (undefined when the layer is unseeded). */
  private nextDropoutSeed(): number | undefined {
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
      ...this.hopfieldConfig(),
    };
    return { ...super.getConfig(), ...config };
  }

  /** The Hopfield/U-Hop part of the config. */
  protected hopfieldConfig(): tf.serialization.ConfigDict {
    return {
      separation: this.separation,
      similarity: this.similarity,
      beta: this.betaArg,
      alpha: this.alpha,
      topK: this.topK,
      updateStepsMax: this.updateStepsMax,
      updateStepsEps: this.updateStepsEps,
      ...(this.maskType !== 'allowed' ? { maskType: this.maskType } : {}),
      ...uhopConfigToJSON(this.uhop),
    };
  }
}
tf.serialization.registerClass(UHopAttention);
