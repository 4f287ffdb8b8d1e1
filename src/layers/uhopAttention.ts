/**
 * `UHopAttention`: a drop-in for tfjs-layers' `MultiHeadAttention` whose attention is a
 * (U-Hop) Hopfield retrieval.
 *
 * A subclass of this package's `MultiHeadAttention` (./multiHeadAttention.ts), as Keras
 * subclasses extend its MultiHeadAttention: same constructor arguments, call signature, weight
 * shapes and weight order (query, key, value, output: kernel then bias each), so code and
 * weights written for MultiHeadAttention carry over unchanged. It overrides only the hook
 * `computeAttention` (Keras' `_compute_attention`): with the defaults (separation 'softmax',
 * similarity 'dot', beta = 1/sqrt(keyDim), featureMap 'none', one update step) the hook is
 * MultiHeadAttention's, masks included; the Hopfield options switch it to the retrieval core
 * (`multiHeadRetrieval`, src/ops/retrievalCore.ts): other separations (sparsemax, entmax, ...),
 * similarities, several update steps, and U-Hop's feature map Phi fitted in every call on each
 * sample's projected keys, per head.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { multiHeadRetrieval } from '../ops/retrievalCore.js';
import type { MaskType } from '../ops/masks.js';
import { configOf, defineSchema, parseOptions } from '../ops/schema.js';
import {
  ALPHA,
  ALPHA_TRAINABLE,
  BETA,
  MASK_TYPE,
  SEPARATION,
  SIMILARITY,
  TOP_K,
  UPDATE_STEPS_EPS,
  UPDATE_STEPS_MAX,
} from '../ops/vocabulary.js';
import { getInitializer } from './keras.js';
import type { FeatureMap, SeparationKind, SimilarityKind } from '../ops/types.js';
import {
  phi0WeightSpecs,
  resolveUHopArgs,
  uhopConfigToJSON,
  uhopFit,
  UHOP_SCHEMA,
  type UHopArgs,
  type UHopConfig,
  type UHopRuntime,
} from './hopfieldCore.js';
import {
  MultiHeadAttention,
  MHA_PROJECTION_KEYS,
  type AttentionMasks,
  type MultiHeadAttentionArgs,
  type MultiHeadAttentionCallArgs,
} from './multiHeadAttention.js';
import type { CallSpec } from './attentionCall.js';
import { tensorsByRole } from './attentionCall.js';
import { fitSets, type UHopKeys } from './fitKeys.js';

export { MHA_PROJECTION_KEYS, type MultiHeadAttentionArgs };
export type { AttentionInputRole } from './attentionCall.js';

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
  /** alpha of separation 'entmax', in [1, 2] (the initial value when trainable). Default 1.5. */
  alpha?: number | null;
  /** Learn alpha (one per head) with the task loss, as the Hopfield trio does (separation 'entmax'). Default true. */
  alphaTrainable?: boolean;
  /** k of separation 'topk'. Default 1. */
  topK?: number | null;
  /**
   * Extra Hopfield update steps after the first retrieval (ml-jku's and the trio's meaning):
   * 0 = attention, n = up to n + 1 steps, state patterns iterating in key space. Default 0.
   * (Before 0.2.0 it counted all steps, default 1; saved models are migrated on load.)
   */
  updateStepsMax?: number;
  /** A query row stops updating once its association moves by <= this (L2). Default 1e-4 (0 before 0.2.0). */
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
export type UHopAttentionCallArgs = MultiHeadAttentionCallArgs;

/** The declaration of the Hopfield and U-Hop options (src/ops/schema.ts; the shared specs in src/ops/vocabulary.ts). */
export const HOPFIELD_ATTENTION_SCHEMA = defineSchema<UHopAttentionOptions>()({
  separation: { ...SEPARATION, doc: `${SEPARATION.doc} 'softmax' is MultiHeadAttention.` },
  similarity: SIMILARITY,
  beta: { ...BETA, defaultText: '1/sqrt(keyDim)' },
  alpha: ALPHA,
  alphaTrainable: ALPHA_TRAINABLE,
  topK: TOP_K,
  updateStepsMax: UPDATE_STEPS_MAX,
  updateStepsEps: UPDATE_STEPS_EPS,
  maskType: MASK_TYPE,
  ...UHOP_SCHEMA,
});

/** Names of the Hopfield/U-Hop options (everything UHopAttention adds to MultiHeadAttention). */
export const HOPFIELD_ATTENTION_KEYS: readonly string[] = Object.keys(HOPFIELD_ATTENTION_SCHEMA);

/**
 * The config key that marks a config written in the 0.2.0 vocabulary: a config without it was
 * written by 0.1, whose `updateStepsMax` counted all steps and whose entmax alpha was fixed.
 */
const VOCABULARY_KEY = 'optionsVersion';

/** A UHopAttention config saved by 0.1, in today's meaning (same outputs). */
function migrateAttentionConfig(config: tf.serialization.ConfigDict): tf.serialization.ConfigDict {
  const { [VOCABULARY_KEY]: version, ...c } = config;
  if (version != null) return c;
  const steps = c.updateStepsMax;
  if (typeof steps === 'number') c.updateStepsMax = Math.max(0, steps - 1);
  else if (steps === undefined) c.updateStepsMax = 0;
  if (c.updateStepsEps === undefined) c.updateStepsEps = 0;
  if (c.separation === 'entmax') c.alphaTrainable = false;
  else delete c.alpha;
  if (c.separation !== 'topk') delete c.topK;
  return c;
}

/**
 * Multi-head attention as a Hopfield retrieval, with U-Hop's learned feature map; a drop-in
 * for tfjs-layers' `MultiHeadAttention` (and a subclass of this package's).
 *
 * Inputs, outputs and the projection weights are `MultiHeadAttention`'s; U-Hop adds Phi0
 * (phi0_kernel [heads, featureDim, keyDim] for the linear map) after them.
 *
 * U-Hop (featureMap 'linear' or 'mlp'): in every call, training and inference alike, Phi is
 * fitted for `fitSteps` steps on each sample's projected keys, per head, from Phi0 (keys
 * detached; Phi0 trained straight through when phiTrainable), then scores are
 * beta * sim(Phi(q), Phi(k)). The fit sees every memory at least one query may attend to
 * (`uhopKeys` gives exactly those keys and that fit mask), so `useCausalMask` is refused with a
 * U-Hop fit (it would read future keys; fitSteps 0 is allowed).
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
export class UHopAttention extends MultiHeadAttention {
  static override className = 'UHopAttention';

  readonly separation: SeparationKind;
  readonly similarity: SimilarityKind;
  protected readonly betaArg: number | number[] | null;
  readonly alpha: number;
  readonly alphaTrainable: boolean;
  readonly topK: number;
  readonly updateStepsMax: number;
  readonly updateStepsEps: number;
  readonly uhop: UHopConfig;
  readonly maskType: MaskType;
  private phi0: LayerVariable[] = [];
  private alphaWeight: LayerVariable | null = null;

  /** @param args MultiHeadAttention's arguments plus the Hopfield and U-Hop options. */
  constructor(args: UHopAttentionArgs) {
    super(args, HOPFIELD_ATTENTION_KEYS);
    const where = `${this.getClassName()}${args.name ? ` '${args.name}'` : ''}`;
    const hopfieldOnly = Object.fromEntries(HOPFIELD_ATTENTION_KEYS.map((k) => [k, (args as unknown as Record<string, unknown>)[k]]));
    const o = parseOptions(HOPFIELD_ATTENTION_SCHEMA, hopfieldOnly, where);
    this.maskType = o.maskType;
    this.separation = o.separation;
    this.similarity = o.similarity;
    const beta = o.beta;
    if (Array.isArray(beta) && beta.length !== this.numHeads) {
      throw new Error(`${where}: beta per head must have numHeads=${this.numHeads} entries, got ${beta.length}`);
    }
    this.betaArg = beta == null ? null : Array.isArray(beta) ? beta.slice() : beta;
    this.alpha = o.alpha;
    this.alphaTrainable = o.alphaTrainable;
    this.topK = o.topK;
    this.updateStepsMax = o.updateStepsMax;
    this.updateStepsEps = o.updateStepsEps;
    this.uhop = resolveUHopArgs(args, where);
    // Fail at construction, not at the first call, on an impossible Phi0 (e.g. D < keyDim).
    phi0WeightSpecs(this.numHeads, this.keyDim, this.uhop, where);
  }

  /** beta actually used: the argument or 1/sqrt(keyDim). */
  override get beta(): number | number[] {
    return this.betaArg ?? 1 / Math.sqrt(this.keyDim);
  }

  protected override get attentionMaskType(): MaskType {
    return this.maskType;
  }

  /** True when the layer computes exactly MultiHeadAttention (no Hopfield option changes it). */
  get isPlainAttention(): boolean {
    return this.separation === 'softmax' && this.similarity === 'dot' && this.uhop.featureMap === 'none' && this.updateStepsMax === 0;
  }

  /** A per-call U-Hop fit reads every key, future ones included: refuse it in causal attention. */
  protected override checkCall(spec: CallSpec): void {
    if (spec.useCausalMask && this.uhop.featureMap !== 'none' && this.uhop.fitSteps > 0) {
      throw new Error(
        `${this.where}: useCausalMask with a U-Hop fit (featureMap '${this.uhop.featureMap}', fitSteps ${this.uhop.fitSteps}) would fit Phi on future keys (the fit sees the whole memory set), so outputs would depend on later positions; use fitSteps 0 or featureMap 'none' in causal attention`,
      );
    }
  }

  /** Phi0, after the projections (so the weight order stays MultiHeadAttention's, then Phi0). */
  protected override buildExtraWeights(): void {
    this.phi0 = phi0WeightSpecs(this.numHeads, this.keyDim, this.uhop, this.where, this.seed == null ? null : this.seed + 1000).map((s) =>
      this.addWeight(s.name, s.shape, 'float32', s.initializer, undefined, s.trainable),
    );
    // A trainable entmax alpha per head (as in the trio), after Phi0; a fixed alpha is a
    // number, not a weight (models saved by 0.1, whose alpha was fixed, have no such weight).
    if (this.separation === 'entmax' && this.alphaTrainable) {
      const init = getInitializer({ className: 'Constant', config: { value: this.alpha } }, 'zeros', this.where, 'alpha');
      this.alphaWeight = this.addWeight('alpha', [this.numHeads, 1, 1], 'float32', init, undefined, true);
    }
  }

  /** The memory mask of the fit: a memory no query may attend to is padding, left out of the fit. */
  private fitMemoryMask(masks: AttentionMasks): tf.Tensor | undefined {
    const m = masks.attentionMask;
    return this.uhop.featureMap !== 'none' && m ? tf.cast(tf.any(m, 2), 'float32') : undefined;
  }

  /**
   * Stage I of a call: Phi fitted from Phi0 on the keys and fit mask the retrieval core hands
   * over (those `uhopKeys` gives). A seam for tests and subclasses; not to be called directly.
   */
  protected fitPhi(keys: tf.Tensor, fitMask: tf.Tensor | undefined, uhop: UHopRuntime): FeatureMap {
    return uhopFit(keys, fitMask, uhop);
  }

  /**
   * The attention as a Hopfield retrieval: MultiHeadAttention's softmax attention when no
   * Hopfield option changes it, else the retrieval core with this layer's separation,
   * similarity, update steps and U-Hop fit.
   */
  protected override computeAttention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    masks: AttentionMasks,
    training: boolean,
  ): [tf.Tensor, tf.Tensor] {
    if (this.isPlainAttention) return super.computeAttention(query, key, value, masks, training);
    const uhop: UHopRuntime | undefined =
      this.uhop.featureMap !== 'none' ? { config: this.uhop, phi0: this.phi0.map((p) => p.read()) } : undefined;
    const result = multiHeadRetrieval(query, key, value, {
      beta: this.beta,
      similarity: this.similarity,
      separation: this.separation,
      ...(this.separation === 'entmax' ? { alpha: this.alphaWeight ? this.alphaWeight.read() : this.alpha } : {}),
      ...(this.separation === 'topk' ? { topK: this.topK } : {}),
      associationMask: masks.attentionMask,
      memoryMask: this.fitMemoryMask(masks),
      steps: this.updateStepsMax + 1,
      stepsEps: this.updateStepsEps,
      dropout: this.dropout,
      ...(training && this.dropout > 0 ? { dropoutSeed: this.nextDropoutSeed() } : {}),
      training,
      fit: uhop ? (keys: tf.Tensor, fitMask: tf.Tensor | undefined) => this.fitPhi(keys, fitMask, uhop) : undefined,
      returnAssociation: true,
    });
    return [result.output, result.association as tf.Tensor];
  }

  /**
   * The projected keys and the fit mask that this layer's U-Hop fit sees in a call on these
   * inputs: keys [B|1, H, S, keyDim] per head (padded memories zeroed) and a 0/1 fit mask
   * [B|1, 1|H, S] (1 = a memory at least one query may attend to, after the attention mask,
   * the inputs' Keras masks and the causal mask), or no mask when every memory is fitted.
   * Takes the call's arguments (`(query, {value, key, attentionMask, useCausalMask})` or the
   * list form with `inputRoles`). The layer must be built. The caller disposes the tensors.
   *
   * @example
   * ```ts
   * const { keys, mask } = attn.uhopKeys(x, { value: memories, attentionMask });
   * // keys [B, numHeads, S, keyDim], mask [B, 1, S]
   * ```
   */
  uhopKeys(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs = {}): UHopKeys {
    if (!this.built) throw new Error(`${this.where}: uhopKeys needs a built layer; call the layer once first`);
    const { tensors, spec } = this.concreteCall(inputs, kwargs);
    return tf.tidy(() => {
      const { query, value, key, attentionMask } = tensorsByRole(tensors, spec);
      const p = this.projectInputs(query, value, key, attentionMask, spec.useCausalMask);
      if ('empty' in p) return { keys: tf.zeros([p.layout.BF, this.numHeads, p.layout.Sk, this.keyDim]) };
      return fitSets(p.key, p.layout.BF, this.fitMemoryMask(p.masks));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...configOf(HOPFIELD_ATTENTION_SCHEMA, {
        separation: this.separation,
        similarity: this.similarity,
        beta: this.betaArg,
        alpha: this.alpha,
        alphaTrainable: this.alphaTrainable,
        topK: this.topK,
        updateStepsMax: this.updateStepsMax,
        updateStepsEps: this.updateStepsEps,
        maskType: this.maskType !== 'allowed' ? this.maskType : null,
      }),
      ...uhopConfigToJSON(this.uhop),
      [VOCABULARY_KEY]: 2,
    };
  }

  /** Loads a config saved by any version (0.1's counted all steps and had a fixed alpha). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(migrateAttentionConfig(config));
  }
}
tf.serialization.registerClass(UHopAttention);
