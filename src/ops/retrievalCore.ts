/**
 * THE retrieval core: the Hopfield update loop and its one stopping rule, used by every
 * retrieval in the package (`retrieve`, `UHopMemory`, and through {@link multiHeadRetrieval}
 * the layers `Hopfield`, `HopfieldPooling`, `HopfieldLayer`, `UHopAttention`).
 *
 *     xi_1     = sep( beta * sim(Phi(q), Phi(K)) )          the first association [.., L, S]
 *     x_t      = xi_t K                                      the state in key space
 *     xi_{t+1} = sep( beta * sim(Phi(x_t), Phi(K)) )
 *     output   = xi_T V                                      T = steps
 *
 * Stopping rule (one for the whole package, ml-jku's test per query row): after each update
 * t -> t+1, a query row whose association moved by at most eps,
 * ||xi_{t+1} - xi_t||_2 <= eps (L2 norm over the S memories), keeps xi_{t+1} and is frozen for
 * the remaining steps. eps = 0 runs every step. The test runs per row (samples and heads never
 * couple) and on the device with a select (no data is read back to decide, so `steps` is
 * an upper bound on the work, not a count of synchronizations).
 *
 * Trainability: the freeze test is a comparison, which has no gradient. It is computed inside
 * a `tf.customGrad` with a zero gradient, so the condition of the select is a constant for the
 * tape and `tf.grad` / `model.fit` differentiate through every step (the select routes the
 * gradient to the update a row kept).
 */
import * as tf from '@tensorflow/tfjs-core';
import { similarity, checkSimilarityKind } from './similarity.js';
import { separation, checkSeparationKind } from './separation.js';
import { applyFeatureMap } from './featureMap.js';
import { batchMatMul } from './batchMatMul.js';
import { combineMasks } from './masks.js';
import type { FeatureMap, SeparationKind, SimilarityKind } from './types.js';

/** The largest number of update steps any retrieval accepts (each step is a full association). */
export const MAX_UPDATE_STEPS = 1000;

/**
 * Checks `steps` (an integer in [1, MAX_UPDATE_STEPS]) and `eps` (a finite number >= 0);
 * errors name `where` and the caller's option names.
 */
export function checkUpdateSteps(steps: unknown, eps: unknown, where: string, names = { steps: 'steps', eps: 'eps' }, offset = 0): void {
  if (steps === null || steps === Infinity) {
    throw new Error(
      `${where}: ${names.steps} must be an integer, got ${String(steps)}: unbounded iteration is not offered (until convergence: it needs a data read-back per step); give a bound (at most ${MAX_UPDATE_STEPS - offset}) and ${names.eps} > 0 to stop rows early`,
    );
  }
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1 - offset) {
    throw new Error(`${where}: ${names.steps} must be an integer >= ${1 - offset}, got ${String(steps)}`);
  }
  if (steps > MAX_UPDATE_STEPS - offset) {
    throw new Error(
      `${where}: ${names.steps} must be at most ${MAX_UPDATE_STEPS - offset} (every step is a full association on the device), got ${steps}; with ${names.eps} > 0 rows stop early anyway`,
    );
  }
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) {
    throw new Error(`${where}: ${names.eps} must be a finite number >= 0, got ${String(eps)}`);
  }
}

/**
 * The freeze test as a constant for the gradient tape: [.., L, 1] bool, true where the row
 * is still active (it was active and its association moved by more than eps).
 */
function stillActive(next: tf.Tensor, prev: tf.Tensor, active: tf.Tensor | undefined, eps: number): tf.Tensor {
  const inputs = active ? [next, prev, tf.cast(active, 'float32')] : [next, prev];
  const op = tf.customGrad(((...args: tf.Tensor[]) => {
    const [a, b, act] = args;
    const moved = tf.greater(tf.norm(tf.sub(a, b), 'euclidean', -1, true), eps);
    return {
      value: active ? tf.logicalAnd(tf.cast(act, 'bool'), moved) : moved,
      gradFunc: () => inputs.map((t) => tf.zeros(t.shape, 'float32')),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(...inputs);
}

/**
 * Runs the update loop: returns the last association xi_T [.., L, S].
 *
 * @param queries the first state patterns [.., L, d]
 * @param associate x -> xi = sep(beta * sim(Phi(x), Phi(K))) (masks included)
 * @param toState xi -> xi K, the next state in key space
 * @param steps total number of associations T >= 1
 * @param eps the stopping rule's threshold (see the file header); 0 = run every step
 *
 * @example
 * ```ts
 * const K = tf.randomNormal([10, 4]);
 * const xi = iterateRetrieval(tf.randomNormal([3, 4]), (x) => tf.softmax(tf.matMul(x, K, false, true)), (a) => tf.matMul(a, K), 3, 1e-4);
 * ```
 */
export function iterateRetrieval(
  queries: tf.Tensor,
  associate: (x: tf.Tensor) => tf.Tensor,
  toState: (xi: tf.Tensor) => tf.Tensor,
  steps: number,
  eps: number,
): tf.Tensor {
  return tf.tidy(() => {
    let xi = associate(queries);
    let active: tf.Tensor | undefined; // [.., L, 1] bool; undefined = every row active
    for (let step = 1; step < steps; step++) {
      let next = associate(toState(xi));
      if (active) next = tf.where(tf.broadcastTo(active, next.shape), next, xi);
      if (eps > 0) active = stillActive(next, xi, active, eps);
      xi = next;
    }
    return xi;
  });
}

export interface MultiHeadRetrievalOptions {
  /** beta: a number (all heads) or one number per head; multiplies the scores before the separation. */
  beta: number | readonly number[];
  /** Default 'dot'. With a feature map it is computed between Phi(q) and Phi(k). */
  similarity?: SimilarityKind;
  /** Default 'softmax'. */
  separation?: SeparationKind;
  /** alpha of 'entmax' (a number or a scalar tensor, e.g. a trainable weight). */
  alpha?: number | tf.Tensor;
  /** k of 'topk'. */
  topK?: number;
  /**
   * Which memory each query may associate with, broadcastable to [B, H, L, S]
   * (e.g. [L, S], [B, 1, L, S], [B, H, L, S]); in the 'allowed' form (1/true = allowed).
   */
  associationMask?: tf.Tensor;
  /**
   * Padding mask of the stored patterns, [B, S] (or [B, H, S]); 1/true = a real memory.
   * Padded memories get zero weight, their keys and values are zeroed before any product
   * and they are left out of the feature-map fit.
   */
  memoryMask?: tf.Tensor;
  /**
   * Which memories the feature-map fit uses, [B or 1, S] or [B or 1, H, S]; 1 = fitted.
   * Default: memoryMask.
   */
  fitMask?: tf.Tensor;
  /** Total number of update steps (1..MAX_UPDATE_STEPS). Default 1. */
  steps?: number;
  /** The stopping rule's eps (L2 change of a row's association). Default 0. */
  stepsEps?: number;
  /** Dropout rate on the association matrix, applied only when `training`. Default 0. */
  dropout?: number;
  /** Seed of this call's dropout mask. Default: unseeded. */
  dropoutSeed?: number;
  training?: boolean;
  /**
   * U-Hop Stage I: fits Phi on the (broadcast, padding-zeroed) keys [B|1, H, S, dk] with the
   * fit mask [B|1, 1|H, S] (0/1 float) and returns it (params with leading dims [B|1, H] or [H]).
   */
  fit?: (keys: tf.Tensor, fitMask: tf.Tensor | undefined) => FeatureMap;
  /** Also return the association matrix of the last step (before dropout). Default false. */
  returnAssociation?: boolean;
}

export interface MultiHeadRetrievalResult {
  /** Retrieved patterns [B, H, L, dv]. */
  output: tf.Tensor;
  /** The association (separation output) of the last step [B, H, L, S], when asked for. */
  association?: tf.Tensor;
}

function betaTensor(beta: number | readonly number[], H: number, where: string): number | tf.Tensor {
  if (typeof beta === 'number') {
    if (!Number.isFinite(beta) || beta <= 0) throw new Error(`${where}: beta (scaling) must be a finite number > 0, got ${beta}`);
    return beta;
  }
  if (!Array.isArray(beta) || beta.length !== H || beta.some((b) => typeof b !== 'number' || !Number.isFinite(b) || b <= 0)) {
    throw new Error(`${where}: beta (scaling) per head must be ${H} finite numbers > 0, got ${JSON.stringify(beta)}`);
  }
  return tf.reshape(tf.tensor1d(beta as number[]), [1, H, 1, 1]);
}

/**
 * Multi-head Hopfield retrieval on projected patterns, through {@link iterateRetrieval}:
 * per sample b and head h, Phi fitted on k[b, h] when `fit` is given, then the update loop.
 * On the wasm backend the batched products run through `batchMatMul`.
 *
 * @param q state patterns (queries) [B, H, L, dk]
 * @param k stored patterns (keys) [B or 1, H, S, dk]
 * @param v pattern projections (values) [B or 1, H, S, dv]
 *
 * @example
 * ```ts
 * const q = tf.randomNormal([2, 4, 5, 8]), k = tf.randomNormal([2, 4, 10, 8]);
 * const { output } = multiHeadRetrieval(q, k, k, { beta: 1 / Math.sqrt(8), steps: 3, stepsEps: 1e-4 });
 * // output.shape == [2, 4, 5, 8]
 * ```
 */
export function multiHeadRetrieval(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: MultiHeadRetrievalOptions,
  where = 'hopfieldRetrieval',
): MultiHeadRetrievalResult {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new Error(`${where}: q, k, v must be [B, H, L|S, dim], got [${q.shape}], [${k.shape}], [${v.shape}]`);
  }
  const [B, H, , dk] = q.shape as number[];
  if (k.shape[1] !== H || v.shape[1] !== H || k.shape[3] !== dk || k.shape[2] !== v.shape[2]) {
    throw new Error(`${where}: shapes do not fit: q [${q.shape}] (B,H,L,dk), k [${k.shape}] (B,H,S,dk), v [${v.shape}] (B,H,S,dv)`);
  }
  for (const [t, name] of [
    [k, 'k'],
    [v, 'v'],
  ] as const) {
    if (t.shape[0] !== B && t.shape[0] !== 1) throw new Error(`${where}: ${name} batch must be ${B} or 1, got [${t.shape}]`);
  }
  const simKind = options.similarity ?? 'dot';
  const sepKind = options.separation ?? 'softmax';
  checkSimilarityKind(simKind, where);
  checkSeparationKind(sepKind, where);
  const steps = options.steps ?? 1;
  const eps = options.stepsEps ?? 0;
  checkUpdateSteps(steps, eps, where, { steps: 'steps', eps: 'stepsEps' });
  const rate = options.dropout ?? 0;
  if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw new Error(`${where}: dropout must be in [0, 1), got ${rate}`);
  const S = k.shape[2] as number;
  const dv = v.shape[3] as number;
  const L = q.shape[2] as number;
  const memoryMask = options.memoryMask;
  if (memoryMask && !((memoryMask.rank === 2 || memoryMask.rank === 3) && memoryMask.shape[memoryMask.rank - 1] === S)) {
    throw new Error(`${where}: memoryMask must be [B, S] or [B, H, S] with S=${S}, got [${memoryMask.shape}]`);
  }
  if (B === 0 || L === 0 || S === 0) {
    // Nothing to associate: an empty batch or no queries gives an empty output; no memories
    // (S = 0) gives zeros (an empty weighted sum), on every backend, without running kernels
    // on empty shapes (wasm's XNNPACK products and transposes mishandle them).
    return tf.tidy(() => {
      const output = tf.zeros([B, H, L, dv]);
      return options.returnAssociation ? { output, association: tf.zeros([B, H, L, S]) } : { output };
    });
  }

  return tf.tidy(() => {
    const beta = betaTensor(options.beta, H, where);
    // Padding mask as [B, 1|H, S] (for the fit) and [B, 1|H, 1, S] (for the scores).
    const mem3 = memoryMask ? (memoryMask.rank === 2 ? tf.expandDims(memoryMask, 1) : memoryMask) : undefined;
    const mask = combineMasks(options.associationMask, mem3 ? tf.expandDims(mem3, 2) : undefined);
    // tfjs' BatchMatMul gradient does not reduce broadcast batch dims: broadcast a shared
    // memory (batch 1) explicitly (broadcastTo's gradient sums).
    let kB = k.shape[0] === B ? k : tf.broadcastTo(k, [B, H, S, dk]);
    let vB = v.shape[0] === B ? v : tf.broadcastTo(v, [B, H, S, dv]);
    let kFit = k;
    if (mem3) {
      // Padded memories: zero before any product, so whatever they hold (NaN, Inf) cannot
      // reach a score, an output or a gradient.
      const keep = tf.broadcastTo(tf.expandDims(tf.notEqual(mem3, 0), 3), [B, H, S, 1]);
      kB = tf.where(tf.broadcastTo(keep, kB.shape), kB, tf.zerosLike(kB));
      vB = tf.where(tf.broadcastTo(keep, vB.shape), vB, tf.zerosLike(vB));
      kFit = kB;
    }

    let phi: FeatureMap | undefined;
    if (options.fit) {
      const fm = options.fitMask ?? mem3;
      const fm3 = fm && fm.rank === 2 ? tf.expandDims(fm, 1) : fm;
      phi = options.fit(kFit, fm3 ? tf.cast(tf.notEqual(fm3, 0), 'float32') : undefined);
    }
    // Linear Phi with dot scores: <W x, W k> = x (W^T W) k^T, through the Gram matrix M = W^T W
    // [.., dk, dk] when that is fewer multiply-adds than projecting the S memories (e.g. pooling,
    // L = 1). Otherwise x W^T as a batched product (fast on wasm); mlp through applyFeatureMap.
    const Wp = phi?.kind === 'linear' ? phi.params[0] : null;
    let M: tf.Tensor | null = null;
    if (Wp && simKind === 'dot') {
      const D = Wp.shape[Wp.rank - 2] as number;
      const perStep = (viaM: boolean) => (viaM ? L * dk * dk + L * S * dk : L * dk * D + L * S * D);
      if (D * dk * dk + perStep(true) * steps < S * dk * D + perStep(false) * steps) {
        const r = Wp.rank;
        const Wt = tf.transpose(Wp, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]); // [.., dk, D]
        const M0 = batchMatMul(Wt, Wt); // Wt Wt^T = W^T W, computed before the broadcast over samples
        M = tf.broadcastTo(r === 4 ? M0 : tf.reshape(M0, [1, H, dk, dk]), [B, H, dk, dk]);
      }
    }
    const W = Wp && !M ? tf.broadcastTo(Wp, [B, H, ...(Wp.shape.slice(-2) as number[])]) : null;
    const applyPhi = (x: tf.Tensor) => (!phi ? x : W ? batchMatMul(x, W) : applyFeatureMap(phi, x));
    const kPhi = M ? kB : applyPhi(kB);
    const associate = (x: tf.Tensor): tf.Tensor => {
      const sim = M
        ? batchMatMul(batchMatMul(x, M), kB) // x M^T k^T, M symmetric
        : simKind === 'dot'
          ? batchMatMul(applyPhi(x), kPhi)
          : similarity(applyPhi(x), kPhi, simKind);
      const scores = tf.mul(sim, beta);
      return separation(scores, sepKind, { mask, alpha: options.alpha, topK: options.topK });
    };
    const xi = iterateRetrieval(q, associate, (a) => batchMatMul(a, kB, false), steps, eps);
    const weights = options.training && rate > 0 ? tf.dropout(xi, rate, undefined, options.dropoutSeed) : xi;
    const output = batchMatMul(weights, vB, false);
    return options.returnAssociation ? { output, association: xi } : { output };
  }) as MultiHeadRetrievalResult;
}
