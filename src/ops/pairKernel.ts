/**
 * The pair kernel of Stage I (internal): the separation loss of B memory sets of S memories
 * each and its analytic gradient, all sets at once, written once against the layout interface
 * of src/ops/stage1Layout.ts. `makePairConsts` builds what does not depend on the features
 * (masks, pair counts, scalars) once per fit; `pairLossAndGradF` runs per step.
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SeparationLossKind } from './types.js';
import { broadcastToFast } from './shapes.js';
import { makeLayout, type PairLayout, type Stage1Layout } from './stage1Layout.js';

/** Added to ||Phi(k)||^2 before the inverse square root: u = F / sqrt(||F||^2 + NORM_EPS). */
export const NORM_EPS = 1e-12;
/** Logit given to excluded pairs (the diagonal and pairs with a masked memory). */
const EXCLUDED = -1e9;

export interface PairSpec {
  kind: SeparationLossKind;
  /** t of 'uniform' / 'worst-pair'. */
  t: number;
  /** tau of 'lse'. */
  tau: number;
}

/**
 * Per-fit constants of B memory sets of S memories each: the additive logit mask, the number of
 * unmasked memories n, which sets have a pair at all, the loss offset and the gradient factor.
 * Everything here is independent of the features, so a fit builds it once.
 */
export interface PairConsts {
  /** The layout every tensor of the kernel is in (chosen once, by the caller). */
  layout: Stage1Layout;
  spec: PairSpec;
  B: number;
  S: number;
  /** Multiplier of the Gram matrix inside exp / max: 2t ('uniform', 'worst-pair') or 1/tau. */
  scale: number;
  /**
   * EXCLUDED on pairs with a masked memory, 0 on the other pairs; on the diagonal EXCLUDED, or
   * (rowRef) the reference logit -2*scale for every memory. bsd [B|1,S,S], dbs [S,B|1,S].
   */
  bias: tf.Tensor;
  /** [B] 1 where the set has at least two unmasked memories, else 0. */
  valid: tf.Tensor1D;
  /** [B] valid as bool. */
  validMask: tf.Tensor1D;
  /** [B] zeros: the loss of a set without a pair. */
  zeros: tf.Tensor1D;
  /** [B] log of the number of ordered pairs n(n-1) (n clamped to >= 2). */
  logPairs: tf.Tensor1D;
  /** [B] n clamped to >= 2 (the 1/S of 'lse'). */
  nSafe: tf.Tensor1D;
  /** [B] dL/dU = coef * P U, with P the pair weights (valid folded in). */
  coef: tf.Tensor1D;
  /**
   * 'uniform' / 'lse' only: the pair sums of every row from the diagonal entry of a row softmax
   * (the diagonal logit is set to -2*scale + scale*|u_i|^2 = about -scale, below every pair
   * logit) instead of from two max reductions. Exact while exp(-2*scale)/S stays a normal
   * float32, i.e. 2*scale + ln S < 80; otherwise false and the max path is used.
   */
  rowRef: boolean;
  /** rowRef: flat indices of the diagonal entries of z in (set, memory) order (bsd [B,S,S], dbs [S,B,S]). */
  diagIdx?: tf.Tensor;
  /** rowRef with a mask: [B, S] 1 for the rows of unmasked memories (undefined: every row). */
  rowKeep?: tf.Tensor2D;
  /** Scalar operands used every step, uploaded once per set of constants. */
  scalars: Map<number, tf.Scalar>;
}

/** A pair sum of exp logits, clamped to this, keeps sets without pairs finite (a set with a pair has a sum >= exp(-40)). */
const TINY = 1e-37;

/**
 * Builds the constants of a pair kernel.
 * @param mask [B, S] float 1/0 or null (every memory takes part).
 * @param layoutOrName the layout (see src/ops/stage1Layout.ts), or its name
 */
export function makePairConsts(
  B: number,
  S: number,
  mask: tf.Tensor2D | null,
  spec: PairSpec,
  layoutOrName: Stage1Layout | PairLayout,
  rowRefAllowed = true,
): PairConsts {
  const layout = typeof layoutOrName === 'string' ? makeLayout(layoutOrName, B, S) : layoutOrName;
  const scale = spec.kind === 'lse' ? 1 / spec.tau : 2 * spec.t;
  const rowRef = rowRefAllowed && spec.kind !== 'worst-pair' && 2 * scale + Math.log(S) < 80;
  const kept = tf.tidy(() => {
    const eye = tf.eye(S);
    const offDiag = tf.sub(1, eye);
    const eyeL = layout.sharedPairs(eye);
    // The diagonal logit: excluded, or (rowRef) the reference value -2*scale (+ scale*|u_i|^2),
    // also for masked memories, whose rows then hold that one finite logit.
    const diagBias = rowRef ? -2 * scale : EXCLUDED;
    let bias: tf.Tensor;
    let n: tf.Tensor1D;
    let rowKeep: tf.Tensor2D | undefined;
    if (mask === null) {
      bias = layout.sharedPairs(tf.mul(eye, diagBias));
      n = tf.fill([B], S) as tf.Tensor1D;
    } else {
      const mi = layout.rowMask(mask);
      const mj = layout.colMask(mask);
      const offDiagL = layout.sharedPairs(offDiag);
      const keep = tf.mul(tf.mul(mi, mj), offDiagL);
      // EXCLUDED off the diagonal where a memory is masked, diagBias on it (a sum, not
      // EXCLUDED + (diagBias - EXCLUDED), which float32 would round to a multiple of 64)
      bias = tf.add(tf.mul(tf.mul(tf.sub(1, keep), EXCLUDED), offDiagL), tf.mul(eyeL, diagBias));
      n = tf.sum(mask, 1);
      if (rowRef) rowKeep = tf.clone(mask);
    }
    let diagIdx: tf.Tensor | undefined;
    if (rowRef) {
      const idx = new Int32Array(B * S);
      for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) idx[b * S + i] = layout.diagIndex(b, i);
      diagIdx = layout.diagIndices(idx);
    }
    const validMask = tf.greaterEqual(n, 2) as tf.Tensor1D;
    const valid = tf.cast(validMask, 'float32') as tf.Tensor1D;
    const nSafe = tf.maximum(n, 2) as tf.Tensor1D;
    const logPairs = tf.log(tf.mul(nSafe, tf.sub(nSafe, 1))) as tf.Tensor1D;
    let coef: tf.Tensor1D;
    if (spec.kind === 'lse') coef = tf.mul(valid, tf.div(2 / spec.tau, nSafe));
    else coef = tf.mul(valid, 4 * spec.t);
    const zeros = tf.zeros([B]) as tf.Tensor1D;
    return { bias, valid, validMask, zeros, nSafe, logPairs, coef, diagIdx, rowKeep };
  });
  return { layout, spec, B, S, scale, rowRef, scalars: new Map(), ...kept };
}

export function disposePairConsts(c: PairConsts): void {
  tf.dispose([c.bias, c.valid, c.validMask, c.zeros, c.nSafe, c.logPairs, c.coef]);
  if (c.diagIdx) c.diagIdx.dispose();
  if (c.rowKeep) c.rowKeep.dispose();
  tf.dispose([...c.scalars.values()]);
  c.scalars.clear();
}

/**
 * The scalar `v` as a tensor kept with the constants: a number operand (tf.mul(x, 2)) uploads a
 * new scalar tensor on every call, which costs about as much as a small kernel.
 */
export function pairScalar(c: PairConsts, v: number): tf.Scalar {
  let s = c.scalars.get(v);
  if (!s) {
    s = tf.keep(tf.scalar(v));
    c.scalars.set(v, s);
  }
  return s;
}

/** u = F / sqrt(||F||^2 + eps) along the layout's feature axis; r = 1 / sqrt(||F||^2 + eps); sq = ||F||^2. */
export function normalizeFeatures(F: tf.Tensor, c: PairConsts): { U: tf.Tensor; r: tf.Tensor; sq: tf.Tensor } {
  return tf.tidy(() => {
    const sq = sumFeatures(tf.square(F), c); // ||F_i||^2, r's shape
    const r = tf.rsqrt(tf.add(sq, pairScalar(c, NORM_EPS)));
    return { U: tf.mul(F, r), r, sq };
  });
}

/**
 * Back through the normalization: dF = r (dU - u <u, dU>). With `wd` (r's shape), dU is
 * Y - u wd (a term along u, as the pair kernel's diagonal correction): since
 * 1 - |u|^2 = eps r^2, dF = r (Y - u (<u, Y> + wd eps r^2)), with no full-size pass for the term.
 */
export function normalizeBackward(U: tf.Tensor, r: tf.Tensor, dU: tf.Tensor, c: PairConsts, wd?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let s = sumFeatures(tf.mul(U, dU), c);
    if (wd) s = tf.add(s, tf.mul(wd, tf.mul(tf.square(r), pairScalar(c, NORM_EPS))));
    return tf.mul(r, tf.sub(dU, tf.mul(U, s)));
  });
}

/** Sum over the layout's feature axis, keeping it. */
function sumFeatures(X: tf.Tensor, c: PairConsts): tf.Tensor {
  return c.layout.sumFeatures(X, (v) => pairScalar(c, v));
}

/**
 * The pair kernel on unit features U: the loss [B] (when `withLoss`) and, when `withGrad`,
 * dL/dU = Y - U wd (wd, shaped like r, is present on the rowRef path only: the diagonal's share
 * of the row softmax, taken back out).
 *
 * With G the Gram matrix of U and z = scale * G + bias (excluded pairs at -1e9):
 * - 'uniform':    L = log(sum_pairs exp z / n(n-1)) - 2t, since ||u_i-u_j||^2 = 2 - 2 G_ij;
 * - 'lse':        L = log(sum_pairs exp z / n(n-1)) / n;
 * - 'worst-pair': L = max_pairs z - 2t.
 * The sum over ordered pairs i != j equals twice the sum over i < j, so the means agree.
 * dL/dU = coef * P U with P the symmetric pair weights (softmax over pairs, or the arg-max pairs
 * averaged over ties for 'worst-pair').
 *
 * rowRef path ('uniform', 'lse'): row i of z holds the pair logits and, on the diagonal, the
 * reference logit z_ii = scale (|u_i|^2 - 2) = -scale (1 + eps r_i^2), at most -scale and so
 * below every pair logit (>= -scale). From the row softmax p (XNNPACK-vectorized on wasm, where
 * tf.exp is a scalar loop), a_i = exp(z_ii) / p_ii = sum_j exp z_ij over the whole row, and
 * the row's pairs alone sum to a_i (1 - p_ii), with p_ii <= 1/2 (no cancellation) and
 * >= exp(-2 scale)/S (no underflow). The set's pair sum s = sum_i a_i (1 - p_ii) <= S^2 exp(scale)
 * needs no max shift in that range; P_ij = exp(z_ij) / s = (a_i / s) p_ij off the diagonal.
 * Max path (otherwise): row log-sum-exps from the row max and the softmax's row max.
 */
function pairKernel(
  U: tf.Tensor,
  r: tf.Tensor,
  c: PairConsts,
  withGrad: boolean,
  withLoss: boolean,
): { loss?: tf.Tensor1D; Y?: tf.Tensor; wd?: tf.Tensor } {
  const { layout, B, S } = c;
  const rowAxis = layout.rowAxis;
  // Gram matrix, scaled, plus the exclusion bias.
  const gram = layout.gram(U, pairScalar(c, c.scale));
  const z = tf.add(gram.G, c.bias);
  const finish = (setLoss: tf.Tensor): tf.Tensor1D => {
    // setLoss [B]: log of the mean over pairs of exp z, or ('worst-pair') the largest pair logit
    const l = c.spec.kind === 'lse' ? tf.div(setLoss, c.nSafe) : tf.sub(setLoss, pairScalar(c, 2 * c.spec.t));
    // the Select kernel itself: tf.where would first copy all three [B] operands (broadcastTo)
    return tf.engine().runKernel('Select', { condition: c.validMask, t: l, e: c.zeros }) as tf.Tensor1D;
  };
  // P is symmetric, so (P U)_j = sum_i P_ij u_i = sum_i w_i pairs_ij u_i with w [B, S] (set, memory).
  const weightedProduct = (pairs: tf.Tensor, w: tf.Tensor): tf.Tensor => layout.weightedProduct(pairs, U, w, gram);
  if (c.rowRef) {
    const soft = tf.softmax(z);
    const pd = tf.reshape(layout.diagonal(soft, c.diagIdx!), [B, S]);
    const rr = tf.reshape(r, [B, S]);
    // exp(z_ii), z_ii = -scale - scale eps r_i^2 (|u_i|^2 = ||F_i||^2 / (||F_i||^2 + eps) = 1 - eps r_i^2)
    const ez = tf.exp(tf.sub(pairScalar(c, -c.scale), tf.mul(tf.square(rr), pairScalar(c, c.scale * NORM_EPS))));
    let a = tf.div(ez, pd); // sum_j exp z_ij over row i
    if (c.rowKeep) a = tf.mul(a, c.rowKeep);
    const s = tf.maximum(tf.sum(tf.mul(a, tf.sub(pairScalar(c, 1), pd)), 1), pairScalar(c, TINY)); // [B]
    const loss = withLoss ? finish(tf.sub(tf.log(s), c.logPairs)) : undefined;
    if (!withGrad) return { loss };
    const w = tf.mul(a, tf.reshape(tf.div(c.coef, s), [B, 1])); // [B, S]
    return { loss, Y: weightedProduct(soft, w), wd: tf.reshape(tf.mul(w, pd), r.shape) };
  }
  const { setShape, rowShape } = layout;
  let setLoss: tf.Tensor;
  let rowWeight: tf.Tensor | undefined; // row i of P is rowWeight_i * pairs_i
  let pairs: tf.Tensor | undefined; // row-normalized pair weights (softmax) or the arg-max indicator
  if (c.spec.kind === 'worst-pair') {
    const zmax = tf.max(z, [rowAxis, 2], true);
    setLoss = tf.reshape(zmax, [B]);
    if (withGrad) {
      const hit = tf.cast(tf.equal(z, zmax), 'float32');
      pairs = hit;
      rowWeight = tf.div(tf.onesLike(zmax), tf.sum(hit, [rowAxis, 2], true));
    }
  } else {
    const rowMax = tf.max(z, 2, true);
    const soft = tf.softmax(z);
    // log sum_j exp z_ij = rowMax - log(max_j softmax_ij); the max of a softmax row is >= 1/S.
    const rowLse = tf.sub(rowMax, tf.log(tf.max(soft, 2, true)));
    const setLse = tf.logSumExp(rowLse, rowAxis, true);
    setLoss = tf.sub(tf.reshape(setLse, [B]), c.logPairs);
    if (withGrad) {
      pairs = soft;
      rowWeight = tf.exp(tf.sub(rowLse, setLse));
    }
  }
  const loss = withLoss ? finish(setLoss) : undefined;
  if (!withGrad) return { loss };
  let w = tf.mul(rowWeight!, tf.reshape(c.coef, setShape));
  if (w.shape[rowAxis] !== S) w = broadcastToFast(w, rowShape);
  // to (set, memory) order
  const wBS = layout.rowsToSets(w);
  return { loss, Y: weightedProduct(pairs!, wBS) };
}

/**
 * Separation loss of each set from its unit features U, and (when `withGrad`) dL/dU (see
 * `pairKernel` for the maths).
 */
export function pairLossAndGradU(U: tf.Tensor, r: tf.Tensor, c: PairConsts, withGrad: boolean): { loss: tf.Tensor1D; dU?: tf.Tensor } {
  return tf.tidy(() => {
    const { loss, Y, wd } = pairKernel(U, r, c, withGrad, true);
    if (!withGrad) return { loss: loss! };
    return { loss: loss!, dU: wd ? tf.sub(Y!, tf.mul(U, wd)) : Y! };
  });
}

/**
 * Loss [B] and dL/dF for raw (unnormalized) features F in the consts' layout. With
 * `withLoss` false (gradient steps whose loss nobody reads) the loss is not formed. With
 * `withRowSq`, also ||F_i||^2 of every memory, [B, S] (from the normalization, at no cost).
 */
export function pairLossAndGradF(F: tf.Tensor, c: PairConsts, withGrad: boolean): { loss: tf.Tensor1D; dF?: tf.Tensor };
export function pairLossAndGradF(
  F: tf.Tensor,
  c: PairConsts,
  withGrad: boolean,
  withLoss: boolean,
  withRowSq?: boolean,
): { loss?: tf.Tensor1D; dF?: tf.Tensor; rowSq?: tf.Tensor2D };
export function pairLossAndGradF(
  F: tf.Tensor,
  c: PairConsts,
  withGrad: boolean,
  withLoss = true,
  withRowSq = false,
): { loss?: tf.Tensor1D; dF?: tf.Tensor; rowSq?: tf.Tensor2D } {
  return tf.tidy(() => {
    const { U, r, sq } = normalizeFeatures(F, c);
    const { loss, Y, wd } = pairKernel(U, r, c, withGrad, withLoss || !withGrad);
    // sq: bsd [B, S, 1], dbs [1, B, S], both in (set, memory) order
    const rowSq = withRowSq ? (tf.reshape(sq, [c.B, c.S]) as tf.Tensor2D) : undefined;
    if (!withGrad) return { loss, rowSq };
    return { loss, dF: normalizeBackward(U, r, Y!, c, wd), rowSq };
  });
}
