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
    if (extra > 0)
      out = tf.sum(
        out,
        Array.from({ length: extra }, (_, i) => i),
      );
    const stretched: number[] = [];
    shape.forEach((s, i) => {
      if (s === 1 && out.shape[i] !== 1) stretched.push(i);
    });
    if (stretched.length > 0) out = tf.sum(out, stretched, true);
    return out === t ? tf.clone(t) : out;
  });
}

// ---------------------------------------------------------------------------------------------
// Batched matMul that is fast on wasm (src/ops/batchMatMul.ts; re-exported for Stage I's users).

export { bmm } from './batchMatMul.js';

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
  /**
   * EXCLUDED on pairs with a masked memory, 0 on the other pairs; on the diagonal EXCLUDED, or
   * (rowRef) the reference logit -2*scale for every memory. bsd [B|1,S,S], dbs [S,B|1,S].
   */
  bias: tf.Tensor;
  /** [B] 1 where the set has at least two unmasked memories, else 0. */
  valid: tf.Tensor1D;
  /** [B] valid as bool. */
  validMask: tf.Tensor1D;
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
  diagIdx?: tf.Tensor1D;
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
    const eyeL = layout === 'bsd' ? eye : tf.reshape(eye, [S, 1, S]);
    // The diagonal logit: excluded, or (rowRef) the reference value -2*scale (+ scale*|u_i|^2),
    // also for masked memories, whose rows then hold that one finite logit.
    const diagBias = rowRef ? -2 * scale : EXCLUDED;
    let bias: tf.Tensor;
    let n: tf.Tensor1D;
    let rowKeep: tf.Tensor2D | undefined;
    if (mask === null) {
      bias = tf.reshape(tf.mul(eye, diagBias), layout === 'bsd' ? [1, S, S] : [S, 1, S]);
      n = tf.fill([B], S) as tf.Tensor1D;
    } else {
      const mi = layout === 'bsd' ? tf.reshape(mask, [B, S, 1]) : tf.reshape(tf.transpose(mask), [S, B, 1]);
      const mj = layout === 'bsd' ? tf.reshape(mask, [B, 1, S]) : tf.reshape(mask, [1, B, S]);
      const offDiagL = layout === 'bsd' ? offDiag : tf.reshape(offDiag, [S, 1, S]);
      const keep = tf.mul(tf.mul(mi, mj), offDiagL);
      // EXCLUDED off the diagonal where a memory is masked, diagBias on it (a sum, not
      // EXCLUDED + (diagBias - EXCLUDED), which float32 would round to a multiple of 64)
      bias = tf.add(tf.mul(tf.mul(tf.sub(1, keep), EXCLUDED), offDiagL), tf.mul(eyeL, diagBias));
      n = tf.sum(mask, 1);
      if (rowRef) rowKeep = tf.clone(mask);
    }
    let diagIdx: tf.Tensor1D | undefined;
    if (rowRef) {
      const idx = new Int32Array(B * S);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < S; i++) idx[b * S + i] = layout === 'bsd' ? b * S * S + i * S + i : i * B * S + b * S + i;
      diagIdx = tf.tensor1d(idx, 'int32');
    }
    const validMask = tf.greaterEqual(n, 2) as tf.Tensor1D;
    const valid = tf.cast(validMask, 'float32') as tf.Tensor1D;
    const nSafe = tf.maximum(n, 2) as tf.Tensor1D;
    const logPairs = tf.log(tf.mul(nSafe, tf.sub(nSafe, 1))) as tf.Tensor1D;
    let coef: tf.Tensor1D;
    if (spec.kind === 'lse') coef = tf.mul(valid, tf.div(2 / spec.tau, nSafe));
    else coef = tf.mul(valid, 4 * spec.t);
    return { bias, valid, validMask, nSafe, logPairs, coef, diagIdx, rowKeep };
  });
  return { layout, spec, B, S, scale, rowRef, scalars: new Map(), ...kept };
}

export function disposePairConsts(c: PairConsts): void {
  tf.dispose([c.bias, c.valid, c.validMask, c.nSafe, c.logPairs, c.coef]);
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

/** Index of the feature axis: bsd [B,S,D] -> 2, dbs [D,B,S] -> 0. */
function featureAxis(layout: PairLayout): number {
  return layout === 'bsd' ? 2 : 0;
}

/**
 * Sum over the feature axis, keeping it. dbs [D, B, S]: D times an average pooling of X over a
 * D x 1 window, with X viewed as a [1, D, n, c] image (n * c = B * S, no data moved). On wasm
 * that is XNNPACK's channel-vectorized pooling, about 4x faster than a one-channel convolution
 * with a ones filter, and far faster than tf.sum over a leading axis (which transposes first)
 * or a ones[1, D] X[D, B*S] matMul (which repacks X as XNNPACK weights on every call).
 * c <= POOL_CHANNELS: for windows over 9 taps XNNPACK keeps a c-float accumulator on the wasm
 * stack, and 16384 channels (64 KiB) overflow it into the heap.
 */
function sumFeatures(X: tf.Tensor, c: PairConsts): tf.Tensor {
  if (c.layout === 'bsd') return tf.sum(X, 2, true);
  const [D, B, S] = X.shape;
  const ch = poolChannels(B * S);
  if (ch === 0) return tf.sum(X, 0, true);
  return tf.tidy(() => {
    const mean = tf.avgPool(tf.reshape(X, [1, D, (B * S) / ch, ch]) as tf.Tensor4D, [D, 1], 1, 'valid');
    return tf.mul(tf.reshape(mean, [1, B, S]), pairScalar(c, D));
  });
}

const POOL_CHANNELS = 1024;

/** The largest divisor of n that is <= POOL_CHANNELS, or 0 when that is below 16 (too narrow to pay). */
function poolChannels(n: number): number {
  for (let ch = Math.min(n, POOL_CHANNELS); ch >= 16; ch--) if (n % ch === 0) return ch;
  return 0;
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

/** Batched depthwise convolution used as a batched matMul over the channel (set) axis. */
function dwConv(
  x: tf.Tensor,
  xShape: [number, number, number, number],
  filter: tf.Tensor,
  fShape: [number, number, number, number],
): tf.Tensor4D {
  return tf.depthwiseConv2d(tf.reshape(x, xShape) as tf.Tensor4D, tf.reshape(filter, fShape) as tf.Tensor4D, 1, 'valid');
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
  const D = U.shape[featureAxis(layout)];
  const rowAxis = layout === 'bsd' ? 1 : 0;
  // Gram matrix, scaled, plus the exclusion bias.
  let z: tf.Tensor;
  let Ux: tf.Tensor | undefined; // dbs: U as [D, S, B] (channels last), shared by both convolutions
  if (layout === 'bsd') {
    z = tf.add(tf.matMul(tf.mul(U, pairScalar(c, c.scale)), U, false, true), c.bias);
  } else {
    let G: tf.Tensor;
    if (B === 1) {
      // One set: plain 2-D matMuls, the fast path of every backend.
      const U2 = tf.reshape(U, [D, S]);
      G = tf.matMul(tf.mul(tf.transpose(U2), pairScalar(c, c.scale)), U2);
    } else {
      Ux = tf.transpose(U, [0, 2, 1]);
      G = dwConv(tf.mul(Ux, pairScalar(c, c.scale)), [1, D, S, B], U, [D, 1, B, S]); // [1, 1, S, B*S]
    }
    z = tf.add(tf.reshape(G, [S, B, S]), c.bias);
  }
  const finish = (setLoss: tf.Tensor): tf.Tensor1D => {
    // setLoss [B]: log of the mean over pairs of exp z, or ('worst-pair') the largest pair logit
    const l = c.spec.kind === 'lse' ? tf.div(setLoss, c.nSafe) : tf.sub(setLoss, pairScalar(c, 2 * c.spec.t));
    return tf.where(c.validMask, l, tf.zerosLike(l)) as tf.Tensor1D;
  };
  // P is symmetric, so (P U)_j = sum_i P_ij u_i = sum_i w_i pairs_ij u_i with w [B, S] (set, memory).
  const weightedProduct = (pairs: tf.Tensor, w: tf.Tensor): tf.Tensor => {
    if (layout === 'bsd') return tf.matMul(pairs, tf.mul(U, tf.reshape(w, [B, S, 1])), true, false);
    if (B === 1) return tf.reshape(tf.matMul(tf.mul(tf.reshape(U, [D, S]), tf.reshape(w, [1, S])), tf.reshape(pairs, [S, S])), [D, 1, S]);
    const x = tf.mul(Ux!, tf.reshape(tf.transpose(w), [1, S, B]));
    return tf.reshape(dwConv(x, [1, D, S, B], pairs, [1, S, B, S]), [D, B, S]);
  };
  if (c.rowRef) {
    const soft = tf.softmax(z);
    const pd = tf.reshape(diagonal(soft, c.diagIdx!), [B, S]);
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
  const setShape = layout === 'bsd' ? [B, 1, 1] : [1, B, 1];
  const rowShape = layout === 'bsd' ? [B, S, 1] : [S, B, 1];
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
  const wBS = layout === 'bsd' ? tf.reshape(w, [B, S]) : tf.transpose(tf.reshape(w, [S, B]));
  return { loss, Y: weightedProduct(pairs!, wBS) };
}

/**
 * The entries of `x` at the flat indices `idx`. On wasm by GatherNd: tfjs-backend-wasm's GatherV2
 * checks every index in a JS loop with a closure (about 250 us for 4096 indices, 7x its
 * GatherNd); the cpu backend is the other way round.
 */
function diagonal(x: tf.Tensor, idx: tf.Tensor1D): tf.Tensor {
  const flat = tf.reshape(x, [-1]);
  return tf.getBackend() === 'wasm' ? tf.gatherND(flat, tf.reshape(idx, [-1, 1])) : tf.gather(flat, idx);
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
    throw new Error(
      `${fn}: mask must broadcast to ${shapeStr(setShape)} (the memory sets without the feature dim), got shape ${shapeStr(mask.shape)}`,
    );
  }
  const S = setShape[setShape.length - 1];
  return tf.tidy(() => {
    const m = mask.dtype === 'bool' ? mask : tf.notEqual(mask, 0);
    return tf.reshape(broadcastToFast(tf.cast(m, 'float32'), setShape), [-1, S]) as tf.Tensor2D;
  });
}
