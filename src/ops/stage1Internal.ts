/**
 * Internal machinery of Stage I (not part of the public API): seeded random numbers, shape
 * helpers, and the batched pair kernel that computes a separation loss and its analytic
 * gradient for many memory sets at once.
 *
 * The pair kernel has two memory layouts with the same maths:
 * - 'bsd': features [B, S, D], Gram matrices [B, S, S] by batched matMul. Used on every backend
 *   whose batched matMul is fast (cpu, webgpu, tensorflow).
 * - 'dbs': features [D, B, S] (feature-major), Gram matrices [S, B, S], computed by depthwise
 *   convolutions with the B memory sets as channels. tfjs-backend-wasm runs batched or
 *   transposed matMuls through a naive loop (about 1.5-2 GFLOP/s) but depthwise convolutions
 *   through XNNPACK, so on wasm this layout is about 5x faster for the S x S products.
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SeparationLossKind } from './types.js';
import { seededRandom } from '../data/random.js';

/** Added to ||Phi(k)||^2 before the inverse square root: u = F / sqrt(||F||^2 + NORM_EPS). */
export const NORM_EPS = 1e-12;
/** Logit given to excluded pairs (the diagonal and pairs with a masked memory). */
const EXCLUDED = -1e9;

export const SEPARATION_LOSS_KINDS: readonly SeparationLossKind[] = ['uniform', 'worst-pair', 'lse'];

// ---------------------------------------------------------------------------------------------
// Seeded random numbers (deterministic across backends: drawn in JS, uploaded once).

/**
 * Uniforms in [0, 1) from the package's mulberry32 stream ({@link seededRandom}); `seed` is
 * floored and reduced to 32 bits, undefined draws a seed from Math.random.
 */
export function makeRng(seed: number | undefined): () => number {
  return seededRandom((seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Math.floor(seed)) >>> 0).uniform;
}

/** n standard normal draws (Box-Muller). */
export function normals(rng: () => number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/**
 * A random rows x cols matrix (row-major) with orthonormal columns when rows >= cols and
 * orthonormal rows otherwise (modified Gram-Schmidt in float64, Haar-distributed).
 */
export function randomOrthonormal(rows: number, cols: number, rng: () => number): Float64Array {
  const tall = rows >= cols;
  const n = tall ? rows : cols; // length of each vector
  const k = tall ? cols : rows; // number of orthonormal vectors
  const v = normals(rng, n * k); // k vectors of length n, vector j at [j*n, (j+1)*n)
  for (let j = 0; j < k; j++) {
    for (let p = 0; p < j; p++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += v[j * n + i] * v[p * n + i];
      for (let i = 0; i < n; i++) v[j * n + i] -= dot * v[p * n + i];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[j * n + i] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) v[j * n + i] /= norm;
  }
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = tall ? v[c * n + r] : v[r * n + c];
  }
  return out;
}

/** a (rows x inner) times b (inner x cols), row-major float64. */
export function matmul64(a: Float64Array, b: Float64Array, rows: number, inner: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < inner; i++) {
      const x = a[r * inner + i];
      if (x === 0) continue;
      for (let c = 0; c < cols; c++) out[r * cols + c] += x * b[i * cols + c];
    }
  }
  return out;
}

/** Transpose of a row-major rows x cols float64 matrix. */
export function transpose64(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shapes.

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Numpy-style broadcast of two shapes (right-aligned), or null when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** True when `from` broadcasts to exactly `to`. */
export function broadcastsTo(from: readonly number[], to: readonly number[]): boolean {
  const b = broadcastShapes(from, to);
  return b !== null && b.length === to.length && b.every((x, i) => x === to[i]);
}

/**
 * tf.broadcastTo by a broadcasting multiply with a small ones tensor: same result, but
 * tfjs-backend-wasm's Tile kernel (behind broadcastTo) is about 20x slower than its Mul.
 * float32 only.
 */
export function broadcastToFast(x: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const offset = shape.length - x.rank;
  if (offset === 0 && x.shape.every((s, i) => s === shape[i])) return tf.clone(x);
  const ones = shape.map((s, i) => (i >= offset && x.shape[i - offset] === s ? 1 : s));
  return tf.tidy(() => tf.mul(x, tf.ones(ones)));
}

/** Sums `t` over the axes that broadcasting added or stretched, so that it gets `shape`. */
export function reduceToShape(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  return tf.tidy(() => {
    const extra = t.rank - shape.length;
    let out = t;
    if (extra > 0) out = tf.sum(out, Array.from({ length: extra }, (_, i) => i));
    const stretched: number[] = [];
    shape.forEach((s, i) => {
      if (s === 1 && out.shape[i] !== 1) stretched.push(i);
    });
    if (stretched.length > 0) out = tf.sum(out, stretched, true);
    return out === t ? tf.clone(t) : out;
  });
}

// ---------------------------------------------------------------------------------------------
// Batched matMul that is fast on wasm.

/**
 * c_b = op(a_b) op(b_b) for operands with one leading batch axis B ([B, ., .]), op = transpose
 * when asked. On wasm with B > 1 it is ONE depthwise convolution with the B sets as channels
 * (a as an [m, k] image per channel, b as n filters of 1 x k per channel), on wasm with B = 1
 * a plain 2-D matMul of explicitly transposed operands (both run in XNNPACK, where batched and
 * transposed matMuls run in a naive loop); tf.matMul elsewhere. NOT differentiable by the tape
 * on wasm (it has no backward kernels for depthwise convolutions): for analytic code.
 */
export function bmm(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB);
  const [B, a1, a2] = a.shape as number[];
  const [, b1, b2] = b.shape as number[];
  const m = transposeA ? a2 : a1;
  const k = transposeA ? a1 : a2;
  const n = transposeB ? b1 : b2;
  return tf.tidy(() => {
    if (B === 1) {
      const a2d = tf.reshape(a, [a1, a2]);
      const b2d = tf.reshape(b, [b1, b2]);
      return tf.reshape(tf.matMul(transposeA ? tf.transpose(a2d) : a2d, transposeB ? tf.transpose(b2d) : b2d), [1, m, n]);
    }
    const x = tf.transpose(a, transposeA ? [2, 1, 0] : [1, 2, 0]); // [m, k, B]
    const f = tf.transpose(b, transposeB ? [2, 0, 1] : [1, 0, 2]); // [k, B, n]
    const out = tf.depthwiseConv2d(tf.reshape(x, [1, m, k, B]) as tf.Tensor4D, tf.reshape(f, [1, k, B, n]) as tf.Tensor4D, 1, 'valid');
    return tf.transpose(tf.reshape(out, [m, B, n]), [1, 0, 2]);
  });
}

// ---------------------------------------------------------------------------------------------
// The pair kernel.

export type PairLayout = 'bsd' | 'dbs';

/** The layout that is fastest on the active backend (see the module comment). */
export function preferredLayout(): PairLayout {
  return tf.getBackend() === 'wasm' ? 'dbs' : 'bsd';
}

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
  layout: PairLayout;
  spec: PairSpec;
  B: number;
  S: number;
  /** Multiplier of the Gram matrix inside exp / max: 2t ('uniform', 'worst-pair') or 1/tau. */
  scale: number;
  /** EXCLUDED on the diagonal and on pairs with a masked memory, 0 elsewhere; bsd [B|1,S,S], dbs [S,B|1,S]. */
  bias: tf.Tensor;
  /** [B] 1 where the set has at least two unmasked memories, else 0. */
  valid: tf.Tensor1D;
  /** [B] log of the number of ordered pairs n(n-1) (n clamped to >= 2). */
  logPairs: tf.Tensor1D;
  /** [B] n clamped to >= 2 (the 1/S of 'lse'). */
  nSafe: tf.Tensor1D;
  /** [B] dL/dU = coef * P U, with P the pair weights (valid folded in). */
  coef: tf.Tensor1D;
  /**
   * 'uniform' / 'lse' only: row log-sum-exps from the diagonal entry of a row softmax (the
   * diagonal logit is set to -2*scale + scale*|u_i|^2 = about -scale, below every pair logit)
   * instead of from two max reductions. Exact while exp(-2*scale)/S stays a normal float32,
   * i.e. 2*scale + ln S < 80; otherwise false and the max path is used.
   */
  rowRef: boolean;
  /** rowRef: flat indices of the diagonal entries of z (bsd [B,S,S] in (b,i) order, dbs [S,B,S] in (i,b) order). */
  diagIdx?: tf.Tensor1D;
  /** rowRef: 1 for rows of unmasked memories; bsd [B,S,1], dbs [S,B,1]. */
  rowKeep?: tf.Tensor;
  /** dbs: the kept ones filter of the feature-axis sums (made on first use). */
  onesFilter?: tf.Tensor4D;
}

/**
 * Builds the constants of a pair kernel.
 * @param mask [B, S] float 1/0 or null (every memory takes part).
 */
export function makePairConsts(
  B: number,
  S: number,
  mask: tf.Tensor2D | null,
  spec: PairSpec,
  layout: PairLayout,
  rowRefAllowed = true,
): PairConsts {
  const scale = spec.kind === 'lse' ? 1 / spec.tau : 2 * spec.t;
  const rowRef = rowRefAllowed && spec.kind !== 'worst-pair' && 2 * scale + Math.log(S) < 80;
  const kept = tf.tidy(() => {
    const eye = tf.eye(S);
    const offDiag = tf.sub(1, eye);
    // The diagonal logit: excluded, or (rowRef) the reference value -2*scale (+ scale*|u_i|^2).
    const diagBias = rowRef ? -2 * scale : EXCLUDED;
    let bias: tf.Tensor;
    let n: tf.Tensor1D;
    let rowKeep: tf.Tensor | undefined;
    if (mask === null) {
      bias = tf.reshape(tf.mul(eye, diagBias), layout === 'bsd' ? [1, S, S] : [S, 1, S]);
      n = tf.fill([B], S) as tf.Tensor1D;
      if (rowRef) rowKeep = tf.ones(layout === 'bsd' ? [B, S, 1] : [S, B, 1]);
    } else {
      const mi = layout === 'bsd' ? tf.reshape(mask, [B, S, 1]) : tf.reshape(tf.transpose(mask), [S, B, 1]);
      const mj = layout === 'bsd' ? tf.reshape(mask, [B, 1, S]) : tf.reshape(mask, [1, B, S]);
      const eyeL = layout === 'bsd' ? eye : tf.reshape(eye, [S, 1, S]);
      const keep = tf.mul(tf.mul(mi, mj), layout === 'bsd' ? offDiag : tf.reshape(offDiag, [S, 1, S]));
      bias = tf.mul(tf.sub(1, keep), EXCLUDED);
      // unmasked memories get the reference value on their diagonal
      if (rowRef) {
        const onDiag = tf.mul(eyeL, mi);
        bias = tf.add(tf.mul(bias, tf.sub(1, onDiag)), tf.mul(onDiag, diagBias));
      }
      n = tf.sum(mask, 1);
      if (rowRef) rowKeep = mi;
    }
    let diagIdx: tf.Tensor1D | undefined;
    if (rowRef) {
      const idx = new Int32Array(B * S);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < S; i++) {
          if (layout === 'bsd') idx[b * S + i] = b * S * S + i * S + i;
          else idx[i * B + b] = i * B * S + b * S + i;
        }
      diagIdx = tf.tensor1d(idx, 'int32');
    }
    const valid = tf.cast(tf.greaterEqual(n, 2), 'float32') as tf.Tensor1D;
    const nSafe = tf.maximum(n, 2) as tf.Tensor1D;
    const logPairs = tf.log(tf.mul(nSafe, tf.sub(nSafe, 1))) as tf.Tensor1D;
    let coef: tf.Tensor1D;
    if (spec.kind === 'lse') coef = tf.mul(valid, tf.div(2 / spec.tau, nSafe));
    else coef = tf.mul(valid, 4 * spec.t);
    return { bias, valid, nSafe, logPairs, coef, diagIdx, rowKeep };
  });
  return { layout, spec, B, S, scale, rowRef, ...kept };
}

export function disposePairConsts(c: PairConsts): void {
  tf.dispose([c.bias, c.valid, c.nSafe, c.logPairs, c.coef]);
  if (c.diagIdx) c.diagIdx.dispose();
  if (c.rowKeep) c.rowKeep.dispose();
  if (c.onesFilter) c.onesFilter.dispose();
  c.onesFilter = undefined;
}

/** Index of the feature axis: bsd [B,S,D] -> 2, dbs [D,B,S] -> 0. */
function featureAxis(layout: PairLayout): number {
  return layout === 'bsd' ? 2 : 0;
}

/**
 * Sum over the feature axis, keeping it. dbs [D, B, S]: a one-channel convolution of X as a
 * [1, D, B*S, 1] image with a [D, 1] filter of ones (XNNPACK on wasm, about 4x faster there
 * than tf.sum over a leading axis, which transposes first).
 */
function sumFeatures(X: tf.Tensor, c: PairConsts): tf.Tensor {
  if (c.layout === 'bsd') return tf.sum(X, 2, true);
  const [D, B, S] = X.shape;
  return tf.tidy(() => tf.reshape(tf.conv2d(tf.reshape(X, [1, D, B * S, 1]) as tf.Tensor4D, onesFilter(c, D), 1, 'valid'), [1, B, S]));
}

/**
 * The [D, 1, 1, 1] filter of ones, made once per set of constants (that is, once per fit):
 * tfjs-backend-wasm caches its XNNPACK convolution operator on the filter tensor, and building
 * a new one for every call costs about as much as the convolution.
 */
function onesFilter(c: PairConsts, D: number): tf.Tensor4D {
  if (!c.onesFilter || c.onesFilter.shape[0] !== D) {
    c.onesFilter?.dispose();
    c.onesFilter = tf.keep(tf.ones([D, 1, 1, 1])) as tf.Tensor4D;
  }
  return c.onesFilter;
}

/** u = F / sqrt(||F||^2 + eps) along the layout's feature axis; r = 1 / sqrt(||F||^2 + eps). */
export function normalizeFeatures(F: tf.Tensor, c: PairConsts): { U: tf.Tensor; r: tf.Tensor } {
  return tf.tidy(() => {
    const r = tf.rsqrt(tf.add(sumFeatures(tf.square(F), c), NORM_EPS));
    return { U: tf.mul(F, r), r };
  });
}

/** Back through the normalization: dF = r (dU - u <u, dU>). */
export function normalizeBackward(U: tf.Tensor, r: tf.Tensor, dU: tf.Tensor, c: PairConsts): tf.Tensor {
  return tf.tidy(() => tf.mul(r, tf.sub(dU, tf.mul(U, sumFeatures(tf.mul(U, dU), c)))));
}

/** Batched depthwise convolution used as a batched matMul over the channel (set) axis. */
function dwConv(x: tf.Tensor, xShape: [number, number, number, number], filter: tf.Tensor, fShape: [number, number, number, number]): tf.Tensor4D {
  return tf.depthwiseConv2d(tf.reshape(x, xShape) as tf.Tensor4D, tf.reshape(filter, fShape) as tf.Tensor4D, 1, 'valid');
}

/**
 * Separation loss of each set from its unit features U, and (when `withGrad`) dL/dU.
 *
 * With G the Gram matrix of U and z = scale * G + bias (excluded pairs at -1e9):
 * - 'uniform':    L = log(sum_pairs exp z / n(n-1)) - 2t, since ||u_i-u_j||^2 = 2 - 2 G_ij;
 * - 'lse':        L = log(sum_pairs exp z / n(n-1)) / n;
 * - 'worst-pair': L = max_pairs z - 2t.
 * The sum over ordered pairs i != j equals twice the sum over i < j, so the means agree.
 * The log-sum-exp is taken row by row with a softmax (max-subtracted, and XNNPACK-vectorized on
 * wasm) and the row log-sums are combined with another max-subtracted log-sum-exp.
 * dL/dU = coef * P U with P the symmetric pair weights (softmax over pairs, or the arg-max pairs
 * averaged over ties for 'worst-pair').
 */
export function pairLossAndGradU(U: tf.Tensor, r: tf.Tensor, c: PairConsts, withGrad: boolean): { loss: tf.Tensor1D; dU?: tf.Tensor } {
  return tf.tidy(() => {
    const { layout, B, S } = c;
    const D = U.shape[featureAxis(layout)];
    const rowAxis = layout === 'bsd' ? 1 : 0;
    // Gram matrix, scaled, plus the exclusion bias.
    let z: tf.Tensor;
    let Ux: tf.Tensor | undefined; // dbs: U as [D, S, B] (channels last), shared by both convolutions
    if (layout === 'bsd') {
      z = tf.add(tf.matMul(tf.mul(U, c.scale), U, false, true), c.bias);
    } else {
      let G: tf.Tensor;
      if (B === 1) {
        // One set: plain 2-D matMuls, the fast path of every backend.
        const U2 = tf.reshape(U, [D, S]);
        G = tf.matMul(tf.mul(tf.transpose(U2), c.scale), U2);
      } else {
        Ux = tf.transpose(U, [0, 2, 1]);
        G = dwConv(tf.mul(Ux, c.scale), [1, D, S, B], U, [D, 1, B, S]); // [1, 1, S, B*S]
      }
      z = tf.add(tf.reshape(G, [S, B, S]), c.bias);
    }
    const setShape = layout === 'bsd' ? [B, 1, 1] : [1, B, 1];
    const rowShape = layout === 'bsd' ? [B, S, 1] : [S, B, 1];
    let loss: tf.Tensor1D;
    let rowWeight: tf.Tensor; // bsd [B,S,1], dbs [S,B,1]: row i of P is rowWeight_i * pairs_i
    let pairs: tf.Tensor; // row-normalized pair weights (softmax) or the arg-max indicator
    let diagWeight: tf.Tensor | undefined; // rowRef: the weight pairs has on the diagonal, to take back out
    if (c.rowRef) {
      // Row i of z holds the pair logits and, on the diagonal, z_ii = scale (|u_i|^2 - 2), at
      // most -scale + tiny and so below every pair logit (>= -scale). From the row softmax
      // p_i: log sum_j exp z_ij (all j) = z_ii - log p_ii, and the pairs alone give that plus
      // log(1 - p_ii), where p_ii <= 1/2 (no cancellation) and >= exp(-2 scale)/S (no underflow).
      const soft = tf.softmax(z);
      const pd = tf.reshape(tf.gather(tf.reshape(soft, [-1]), c.diagIdx!), rowShape);
      const rRow = layout === 'bsd' ? r : tf.reshape(tf.transpose(tf.reshape(r, [B, S])), rowShape);
      // |u_i|^2 = ||F_i||^2 / (||F_i||^2 + eps) = 1 - eps r_i^2
      const zd = tf.sub(-c.scale, tf.mul(tf.square(rRow), c.scale * NORM_EPS));
      const rowAll = tf.sub(zd, tf.log(pd));
      const keep = tf.greater(c.rowKeep!, 0);
      const rowPairs = tf.where(keep, tf.add(rowAll, tf.log(tf.maximum(tf.sub(1, pd), 1e-30))), tf.fill(rowShape, EXCLUDED));
      const setLse = tf.logSumExp(rowPairs, rowAxis, true);
      const mean = tf.sub(tf.reshape(setLse, [B]), c.logPairs);
      loss = (c.spec.kind === 'lse' ? tf.div(mean, c.nSafe) : tf.sub(mean, 2 * c.spec.t)) as tf.Tensor1D;
      if (withGrad) {
        pairs = soft;
        // rowAll - setLse <= log 2 in a set with a pair; the clip only keeps rows of masked
        // memories and of sets without pairs (weight 0 either way) away from Inf * 0.
        rowWeight = tf.mul(tf.exp(tf.minimum(tf.sub(rowAll, setLse), 30)), c.rowKeep!);
        diagWeight = pd;
      }
    } else if (c.spec.kind === 'worst-pair') {
      const zmax = tf.max(z, [rowAxis, 2], true);
      loss = tf.reshape(tf.sub(zmax, 2 * c.spec.t), [B]) as tf.Tensor1D;
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
      const mean = tf.sub(tf.reshape(setLse, [B]), c.logPairs);
      loss = (c.spec.kind === 'lse' ? tf.div(mean, c.nSafe) : tf.sub(mean, 2 * c.spec.t)) as tf.Tensor1D;
      if (withGrad) {
        pairs = soft;
        rowWeight = tf.exp(tf.sub(rowLse, setLse));
      }
    }
    loss = tf.where(tf.greater(c.valid, 0), loss, tf.zerosLike(loss)) as tf.Tensor1D;
    if (!withGrad) return { loss };
    let w = tf.mul(rowWeight!, tf.reshape(c.coef, setShape));
    if (w.shape[rowAxis] !== S) w = broadcastToFast(w, layout === 'bsd' ? [B, S, 1] : [S, B, 1]);
    // P is symmetric, so (P U)_j = sum_i P_ij u_i = sum_i w_i pairs_ij u_i.
    let dU: tf.Tensor;
    if (layout === 'bsd') {
      dU = tf.matMul(pairs!, tf.mul(U, w), true, false);
      if (diagWeight) dU = tf.sub(dU, tf.mul(U, tf.mul(w, diagWeight)));
    } else {
      if (B === 1) {
        dU = tf.reshape(tf.matMul(tf.mul(tf.reshape(U, [D, S]), tf.reshape(w, [1, S])), tf.reshape(pairs!, [S, S])), [D, 1, S]);
      } else {
        const x = tf.mul(Ux!, tf.reshape(w, [1, S, B]));
        dU = tf.reshape(dwConv(x, [1, D, S, B], pairs!, [1, S, B, S]), [D, B, S]);
      }
      if (diagWeight) {
        // [S, B, 1] (row i, set b) -> [1, B, S] (set b, memory i)
        const wd = tf.reshape(tf.transpose(tf.reshape(tf.mul(w, diagWeight), [S, B])), [1, B, S]);
        dU = tf.sub(dU, tf.mul(U, wd));
      }
    }
    return { loss, dU };
  });
}

/**
 * Loss [B] and dL/dF for raw (unnormalized) features F in the consts' layout.
 */
export function pairLossAndGradF(F: tf.Tensor, c: PairConsts, withGrad: boolean): { loss: tf.Tensor1D; dF?: tf.Tensor } {
  return tf.tidy(() => {
    const { U, r } = normalizeFeatures(F, c);
    const { loss, dU } = pairLossAndGradU(U, r, c, withGrad);
    if (!withGrad) return { loss };
    return { loss, dF: normalizeBackward(U, r, dU!, c) };
  });
}

// ---------------------------------------------------------------------------------------------
// Option checks shared by separationLoss and fitFeatureMap.

/** Checks the loss kind and temperatures; returns the resolved spec (t = 2, tau = 0.1 by default). */
export function resolveSpec(kind: unknown, t: unknown, tau: unknown, fn: string): PairSpec {
  if (!SEPARATION_LOSS_KINDS.includes(kind as SeparationLossKind)) {
    throw new Error(`${fn}: the separation loss must be one of ${SEPARATION_LOSS_KINDS.join(', ')}, got '${String(kind)}'`);
  }
  const tt = t ?? 2;
  const tauu = tau ?? 0.1;
  if (typeof tt !== 'number' || !Number.isFinite(tt) || tt <= 0) throw new Error(`${fn}: t must be a finite number > 0, got ${String(t)}`);
  if (typeof tauu !== 'number' || !Number.isFinite(tauu) || tauu <= 0) {
    throw new Error(`${fn}: tau must be a finite number > 0, got ${String(tau)}`);
  }
  return { kind: kind as SeparationLossKind, t: tt, tau: tauu };
}

/**
 * Checks that `mask` broadcasts to `setShape` ([..., S], the memory sets' shape without the
 * feature dim) and returns it as a float [B, S] tensor of 1/0 (a new tensor), or null.
 */
export function prepareMask(mask: tf.Tensor | undefined, setShape: readonly number[], fn: string): tf.Tensor2D | null {
  if (mask === undefined || mask === null) return null;
  if (!(mask instanceof tf.Tensor)) throw new Error(`${fn}: mask must be a tensor [..., S], got ${String(mask)}`);
  if (!broadcastsTo(mask.shape, setShape)) {
    throw new Error(`${fn}: mask must broadcast to ${shapeStr(setShape)} (the memory sets without the feature dim), got shape ${shapeStr(mask.shape)}`);
  }
  const S = setShape[setShape.length - 1];
  return tf.tidy(() => {
    const m = mask.dtype === 'bool' ? mask : tf.notEqual(mask, 0);
    return tf.reshape(broadcastToFast(tf.cast(m, 'float32'), setShape), [-1, S]) as tf.Tensor2D;
  });
}
