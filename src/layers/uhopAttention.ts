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
import { checkSimilarityKind } from '../ops/similarity.js';
import { checkSeparationKind } from '../ops/separation.js';
import { checkUpdateSteps, multiHeadRetrieval } from '../ops/retrievalCore.js';
import { checkMaskType, type MaskType } from '../ops/masks.js';
import type { FeatureMap, SeparationKind, SimilarityKind } from '../ops/types.js';
import {
  phi0WeightSpecs,
  resolveUHopArgs,
  uhopConfigToJSON,
  uhopFit,
  UHOP_ARG_KEYS,
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
export type UHopAttentionCallArgs = MultiHeadAttentionCallArgs;

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
  readonly alpha: number | null;
  readonly topK: number | null;
  readonly updateStepsMax: number;
  readonly updateStepsEps: number;
  readonly uhop: UHopConfig;
  readonly maskType: MaskType;
  private phi0: LayerVariable[] = [];

  /** @param args MultiHeadAttention's arguments plus the Hopfield and U-Hop options. */
  constructor(args: UHopAttentionArgs) {
    super(args, HOPFIELD_ATTENTION_KEYS);
    const where = `${this.getClassName()}${args.name ? ` '${args.name}'` : ''}`;
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
    return this.separation === 'softmax' && this.similarity === 'dot' && this.uhop.featureMap === 'none' && this.updateStepsMax === 1;
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
      ...(this.alpha != null ? { alpha: this.alpha } : {}),
      ...(this.topK != null ? { topK: this.topK } : {}),
      associationMask: masks.attentionMask,
      memoryMask: this.fitMemoryMask(masks),
      steps: this.updateStepsMax,
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
