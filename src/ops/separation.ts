/**
 * Separation functions (the "separation" of Universal Hopfield Networks): maps from the
 * scores of a query against S memories to a probability vector over those memories, always
 * over the LAST axis of a scores tensor of any rank >= 1.
 *
 * - softmax: dense modern Hopfield.
 * - sparsemax (Martins & Astudillo 2016), entmax15 (exact sort-based 1.5-entmax) and
 *   entmaxBisect (alpha-entmax for any alpha in [1, 2], alpha possibly a trained tensor;
 *   Peters, Niculae & Martins 2019): sparse modern Hopfield.
 * - softmax1: softmax with an extra zero logit, lets a query attend to nothing.
 * - topkSoftmax: softmax over the k largest scores.
 * - hardmax: one-hot argmax, for analysis (zero gradient).
 *
 * Every map is a `tf.customGrad` with its exact backward pass (or built from differentiable
 * tfjs ops), uses only kernels that exist on the cpu, wasm and webgpu backends, downloads
 * nothing from the device, and leaks no tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients (Sum, Softmax, Select, ...); tfjs-layers registers
// them all as a side effect of loading, for its node bundle and its ESM entry alike.
import '@tensorflow/tfjs-layers';
import type { SeparationKind, SeparationOptions } from './types.js';
import { checkOptions } from './options.js';

const SEPARATION_OPTION_KEYS = ['mask', 'alpha', 'topK'];

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * A map whose backward pass needs only its output p: a `tf.customGrad` that saves p and runs
 * `backward(dy, p)` inside a tidy.
 */
function outputGradOp(
  forward: (x: tf.Tensor) => tf.Tensor,
  backward: (dy: tf.Tensor, p: tf.Tensor) => tf.Tensor,
): (x: tf.Tensor) => tf.Tensor {
  return tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const p = forward(x);
    save([p]);
    return {
      value: p,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => backward(dy, saved[0])),
    };
  }) as CustomGradFn) as (x: tf.Tensor) => tf.Tensor;
}

/** Every separation kind `separation` accepts. */
export const SEPARATION_KINDS: readonly SeparationKind[] = ['softmax', 'sparsemax', 'entmax15', 'entmax', 'softmax1', 'topk', 'max'];

/**
 * Value given to masked scores before a separation map. Large, finite and negative: no map
 * produces NaN from it (as -Infinity would, e.g. in -inf - -inf), and its exp is exactly 0.
 * Scores should stay well above it (|score| << 1e9).
 */
export const MASK_FILL = -1e9;

/**
 * Smallest alpha a TENSOR alpha is clipped to in `entmaxBisect`: the alpha gradient divides
 * by (alpha - 1), so a trained alpha is kept at least this far from 1.
 */
export const ENTMAX_ALPHA_MIN = 1 + 1e-3;

/** A NUMBER alpha with alpha - 1 below this gives plain softmax (the alpha -> 1 limit). */
export const ENTMAX_SOFTMAX_EPS = 1e-6;

/**
 * Default number of Newton steps of `entmaxBisect` for S memories:
 * max(8, ceil(log2(S) / 2) + 5), i.e. 8 up to S = 64, 9 at 128, 10 at 1024, 12 at 8192.
 * Newton converges quadratically, but for alpha near 2 it walks the active set, which takes
 * more steps as S grows. Measured against a float64 reference (random and adversarially
 * spaced scores, alpha in [1.01, 2]): float32 precision after at most 6 steps at S = 128, 8
 * at S = 1024, 10 at S = 8192, and 11 at S = 65536 (float64 simulation), so the default
 * leaves 2-3 steps of margin.
 */
export function entmaxDefaultIters(S: number): number {
  return Math.max(8, Math.ceil(Math.log2(Math.max(S, 1)) / 2) + 5);
}

/** Options of `entmaxBisect`. */
export interface EntmaxBisectOptions {
  /** Number of Newton steps on the threshold. Default entmaxDefaultIters(S): 9 at S = 128. */
  nIter?: number;
}

// ---------------------------------------------------------------------------------------
// validation

function describe(v: unknown): string {
  if (v instanceof tf.Tensor) return `a Tensor of shape [${v.shape.join(', ')}] and dtype ${v.dtype}`;
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number') return String(v);
  return v === null ? 'null' : v === undefined ? 'undefined' : typeof v;
}

/**
 * Throws a clear error unless `kind` is a known separation kind (one of SEPARATION_KINDS);
 * `where` names the caller in the message.
 *
 * @example
 * ```ts
 * import { checkSeparationKind } from 'uhop';
 * checkSeparationKind('sparsemax', 'Hopfield'); // ok
 * checkSeparationKind('gumbel', 'Hopfield');    // throws: Hopfield: unknown separation 'gumbel'; expected one of ...
 * ```
 */
export function checkSeparationKind(kind: unknown, where = 'separation'): asserts kind is SeparationKind {
  if (!SEPARATION_KINDS.includes(kind as SeparationKind)) {
    throw new Error(`${where}: unknown separation ${describe(kind)}; expected one of ${SEPARATION_KINDS.map((k) => `'${k}'`).join(', ')}`);
  }
}

/** Checks a scores tensor; returns the size of its last axis (the number of memories). */
function checkScores(fn: string, x: unknown, arg = 'scores'): number {
  if (!(x instanceof tf.Tensor)) throw new Error(`${fn}: ${arg} must be a tf.Tensor, got ${describe(x)}`);
  if (x.rank < 1) {
    throw new Error(`${fn}: ${arg} must have rank >= 1 (memories on the last axis), got a scalar (rank 0)`);
  }
  if (x.dtype !== 'float32') throw new Error(`${fn}: ${arg} must have dtype float32, got ${x.dtype}`);
  const n = x.shape[x.rank - 1];
  if (n < 1) {
    throw new Error(`${fn}: ${arg} must hold at least one memory on its last axis, got shape [${x.shape.join(', ')}]`);
  }
  return n;
}

function checkK(fn: string, k: unknown, name = 'k'): asserts k is number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) {
    throw new Error(`${fn}: ${name} must be a positive integer (memories kept per query), got ${describe(k)}`);
  }
}

function checkAlphaNumber(fn: string, alpha: number): void {
  if (!(alpha >= 1 && alpha <= 2)) {
    throw new Error(`${fn}: alpha must be in [1, 2] (1 = softmax, 1.5 = entmax15, 2 = sparsemax), got ${alpha}`);
  }
}

function checkAlphaTensor(fn: string, alpha: tf.Tensor, x: tf.Tensor): void {
  if (alpha.dtype !== 'float32') throw new Error(`${fn}: alpha must have dtype float32, got ${alpha.dtype}`);
  const ok =
    alpha.rank <= x.rank &&
    (alpha.rank === 0 || alpha.shape[alpha.rank - 1] === 1) &&
    alpha.shape.every((d, i) => {
      const xd = x.shape[x.rank - alpha.rank + i];
      return d === 1 || d === xd;
    });
  if (!ok) {
    throw new Error(
      `${fn}: alpha must be a number or a Tensor broadcastable to the scores' leading dims with a last dim of 1 ` +
        `(a scalar, or [..., 1] for scores [${x.shape.join(', ')}]), got shape [${alpha.shape.join(', ')}]`,
    );
  }
}

function checkAlpha(fn: string, alpha: unknown, x: tf.Tensor): asserts alpha is number | tf.Tensor {
  if (typeof alpha === 'number') checkAlphaNumber(fn, alpha);
  else if (alpha instanceof tf.Tensor) checkAlphaTensor(fn, alpha, x);
  else throw new Error(`${fn}: alpha must be a number in [1, 2] or a Tensor, got ${describe(alpha)}`);
}

function checkMask(fn: string, mask: unknown, scores: tf.Tensor): asserts mask is tf.Tensor {
  if (!(mask instanceof tf.Tensor)) throw new Error(`${fn}: mask must be a tf.Tensor, got ${describe(mask)}`);
  if (mask.dtype === 'string' || mask.dtype === 'complex64') {
    throw new Error(`${fn}: mask must be bool or numeric (1/true = keep, 0/false = masked), got dtype ${mask.dtype}`);
  }
  let shape: number[] | undefined;
  try {
    shape = tf.broadcast_util.assertAndGetBroadcastShape(scores.shape, mask.shape);
  } catch {
    shape = undefined;
  }
  if (!shape || shape.length !== scores.rank || shape.some((d, i) => d !== scores.shape[i])) {
    throw new Error(
      `${fn}: mask must be broadcastable to the scores' shape [${scores.shape.join(', ')}], got shape [${mask.shape.join(', ')}]`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// small helpers (called inside tidy scopes)

const lastAxis = (x: tf.Tensor): number => x.rank - 1;
const rowMax = (x: tf.Tensor): tf.Tensor => tf.max(x, -1, true);
const rowSum = (x: tf.Tensor): tf.Tensor => tf.sum(x, -1, true);

/** 1, 2, ..., n as float32. */
const ranks = (n: number): tf.Tensor => tf.range(1, n + 1, 1, 'float32');

/** Sums `t` over the axes along which `shape` was broadcast to t's shape; returns `shape`. */
function sumToShape(t: tf.Tensor, shape: number[]): tf.Tensor {
  const offset = t.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < t.rank; i++) {
    if (i < offset || (shape[i - offset] === 1 && t.shape[i] !== 1)) axes.push(i);
  }
  return tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, shape);
}

/**
 * log(1 + v) to float32 accuracy on every backend (webgpu computes log1p as log(1 + v)):
 * Kahan's trick log(u) * v / (u - 1) with u = 1 + v; requires v > -1.
 */
function log1pAccurate(v: tf.Tensor): tf.Tensor {
  const u = tf.add(1, v);
  const d = tf.sub(u, 1);
  const exact = tf.equal(d, 0);
  return tf.where(exact, v, tf.mul(tf.log(u), tf.div(v, tf.where(exact, tf.onesLike(d), d))));
}

/** The Jacobian of an entmax map is diag(g) - g g^T / sum(g); returns its product with dy. */
function entmaxBackwardX(dy: tf.Tensor, g: tf.Tensor): tf.Tensor {
  const gdy = tf.mul(g, dy);
  return tf.sub(gdy, tf.mul(g, tf.div(rowSum(gdy), rowSum(g))));
}

/**
 * 1 where t > 0, else 0 (float32). tf.step is used instead of a comparison + cast: on wasm,
 * comparisons and tf.maximum take a slow generic path (10-200x an arithmetic op).
 */
const positive = (t: tf.Tensor): tf.Tensor => tf.step(t);

/** Smallest positive value used to keep log() away from 0 (exp(log(1e-30) * e) <= 1e-30). */
const TINY = 1e-30;
const FLOAT32_MAX = 3.4e38;
/**
 * Lower clip for arguments of exp where the result only needs to be negligible: exp(-87) is
 * still a normal float32 (1.6e-38), and wasm's exp is several times slower on arguments
 * whose result underflows.
 */
const EXP_MIN = -87;
const expClipped = (t: tf.Tensor): tf.Tensor => tf.exp(tf.clipByValue(t, EXP_MIN, FLOAT32_MAX));

/**
 * g = p^(2 - alpha) on the support, 0 elsewhere, as exp((2 - alpha) log p): pow with a
 * broadcast tensor exponent is very slow on wasm, exp/log/mul are not.
 */
function entmaxG(p: tf.Tensor, exponent: number | tf.Tensor): tf.Tensor {
  return tf.mul(tf.exp(tf.mul(tf.log(tf.clipByValue(p, TINY, 1)), exponent)), positive(p));
}

// ---------------------------------------------------------------------------------------
// sparsemax

function sparsemaxForward(x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.rank - 1];
  // Shift the max to 0 (sparsemax is shift invariant). Entries below max - 1 are never in
  // the support (the threshold is >= max - 1), so clamping them to -2 changes nothing but
  // keeps the cumsum well conditioned whatever the scale of masked scores.
  const z = tf.clipByValue(tf.sub(x, rowMax(x)), -2, 0);
  const sorted = tf.topk(z, n).values;
  const cumsum = tf.cumsum(sorted, lastAxis(sorted));
  const inSupport = positive(tf.sub(tf.add(1, tf.mul(ranks(n), sorted)), cumsum));
  const size = tf.maximum(rowSum(inSupport), 1);
  const tau = tf.div(tf.sub(rowSum(tf.mul(sorted, inSupport)), 1), size);
  return tf.relu(tf.sub(z, tau));
}

function sparsemaxBackward(dy: tf.Tensor, p: tf.Tensor): tf.Tensor {
  const s = positive(p);
  const meanOnSupport = tf.div(rowSum(tf.mul(dy, s)), rowSum(s));
  return tf.mul(s, tf.sub(dy, meanOnSupport));
}

const sparsemaxOp = outputGradOp(sparsemaxForward, sparsemaxBackward);

/**
 * Sparsemax over the last axis (Martins & Astudillo 2016): the Euclidean projection of the
 * scores onto the probability simplex, p = max(x - tau, 0). Exact, sort-based (one TopK with
 * k = S, one cumsum). Backward: dx = s * (dy - mean of dy over the support s).
 *
 * @param x scores [..., S], float32, rank >= 1.
 * @returns weights [..., S], >= 0, summing to 1 over the last axis; typically sparse.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { sparsemax } from 'uhop';
 * sparsemax(tf.tensor1d([0.1, 0.5, 0.6])).print(); // [0.0333, 0.4333, 0.5333]
 * sparsemax(tf.tensor1d([1, 2, 3])).print();       // [0, 0, 1]
 * ```
 */
export function sparsemax(x: tf.Tensor): tf.Tensor {
  checkScores('sparsemax', x, 'x');
  return sparsemaxOp(x);
}

// ---------------------------------------------------------------------------------------
// 1.5-entmax (exact, sort-based)

function entmax15Forward(x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.rank - 1];
  // Standard 1.5-entmax: p = max(x/2 - tau, 0)^2. Work with y = (x - max)/2 <= 0. Entries
  // with y < -1 are never in the support (tau >= max(y) - 1), so x - max is clamped at -4.
  const y = tf.mul(tf.clipByValue(tf.sub(x, rowMax(x)), -4, 0), 0.5);
  const sorted = tf.topk(y, n).values;
  const axis = lastAxis(sorted);
  const rho = ranks(n);
  const sorted2 = tf.square(sorted);
  const mean = tf.div(tf.cumsum(sorted, axis), rho);
  const meanSq = tf.div(tf.cumsum(sorted2, axis), rho);
  const ss = tf.mul(rho, tf.sub(meanSq, tf.square(mean)));
  const delta = tf.div(tf.sub(1, ss), rho);
  const tau = tf.sub(mean, tf.sqrt(tf.relu(delta)));
  // Support: the k with tau_k <= sorted_k (a prefix of the sorted scores), of size K.
  const inSupport = tf.sub(1, positive(tf.sub(tau, sorted)));
  const size = tf.maximum(rowSum(inSupport), 1);
  // tau* = tau_K, recomputed from the sums over the support (no gather, no broadcast compare).
  const s1 = rowSum(tf.mul(sorted, inSupport));
  const s2 = rowSum(tf.mul(sorted2, inSupport));
  const meanK = tf.div(s1, size);
  const ssK = tf.sub(s2, tf.mul(s1, meanK));
  const tauStar = tf.sub(meanK, tf.sqrt(tf.relu(tf.div(tf.sub(1, ssK), size))));
  return tf.square(tf.relu(tf.sub(y, tauStar)));
}

const entmax15Op = outputGradOp(entmax15Forward, (dy, p) => entmaxBackwardX(dy, tf.sqrt(p)));

/**
 * 1.5-entmax over the last axis, exact and sort-based (Peters, Niculae & Martins 2019,
 * Algorithm 2): p = max(x/2 - tau, 0)^2 with tau such that p sums to 1. Between softmax and
 * sparsemax: sparse, but smoother than sparsemax. Backward: with g = sqrt(p),
 * dx = g*dy - g*sum(g*dy)/sum(g).
 *
 * @param x scores [..., S], float32, rank >= 1.
 * @returns weights [..., S], >= 0, summing to 1 over the last axis.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { entmax15 } from 'uhop';
 * entmax15(tf.tensor1d([0, 1, 2])).print(); // [0, 0.1693, 0.8307]: (x/2 - tau)^2, tau = 0.0886
 * ```
 */
export function entmax15(x: tf.Tensor): tf.Tensor {
  checkScores('entmax15', x, 'x');
  return entmax15Op(x);
}

// ---------------------------------------------------------------------------------------
// alpha-entmax for any alpha (the entmax package's entmax_bisect; solved by monotone Newton)

/**
 * (1 - P^(-am1)) / am1 for row sums P >= TINY ([..., 1], small tensors): log P in the
 * alpha -> 1 limit, computed without cancellation for small am1 * log P.
 */
function newtonScale(P: tf.Tensor, am1: number | tf.Tensor): tf.Tensor {
  const lp = tf.log(P);
  const t = tf.mul(lp, am1);
  const series = tf.mul(lp, tf.add(1, tf.mul(t, tf.add(-0.5, tf.div(t, 6)))));
  const direct = tf.div(tf.sub(1, tf.exp(tf.neg(t))), am1);
  return tf.where(tf.less(tf.abs(t), 1e-2), series, direct);
}

/**
 * alpha-entmax forward for alpha - 1 = am1 (a number, or a tensor broadcastable to
 * [..., 1]).
 *
 * Standard alpha-entmax, p_i = [(alpha-1) x_i - tau]_+^(1/(alpha-1)), written with
 * z = x - max(x) and a threshold theta in score units as
 * p_i = [1 + (alpha-1)(z_i - theta)]_+^(1/(alpha-1)), which tends to exp(z_i - theta)
 * (softmax) as alpha -> 1. theta solves sum_i p_i(theta) = 1 and lies in [0, log S].
 *
 * theta is found by Newton's method on psi(theta) = (sum_i p_i)^(alpha-1) - 1, which is
 * convex and decreasing in theta (a beta-norm, beta = 1/(alpha-1) >= 1, of the convex
 * [1 + (alpha-1)(z - theta)]_+), so Newton started at theta = 0 (psi >= 0) increases
 * monotonically to the root without overshooting, for every alpha in (1, 2]. The transform
 * makes psi exactly linear for softmax (alpha -> 1: one step) and piecewise linear for
 * sparsemax (alpha = 2: the active-set iteration). Convergence is quadratic; a fixed number
 * of steps keeps it one graph of tensor ops with no data download.
 */
function entmaxForward(x: tf.Tensor, am1: number | tf.Tensor, nIter: number): tf.Tensor {
  const z = tf.sub(x, rowMax(x));
  const inv = typeof am1 === 'number' ? 1 / am1 : tf.div(1, am1);
  // u = 1 + am1 (z - theta) = c - am1 theta.
  const c = tf.add(1, tf.mul(z, am1));
  let theta: tf.Tensor = tf.zerosLike(rowMax(z));
  for (let i = 0; i < nIter; i++) {
    const next = tf.tidy(() => {
      const u = tf.sub(c, tf.mul(theta, am1));
      const uc = tf.clipByValue(u, TINY, 1);
      const p = expClipped(tf.mul(tf.log(uc), inv)); // <= 1e-30 off the support
      const P = tf.clipByValue(rowSum(p), TINY, FLOAT32_MAX);
      // sum_i p_i^(2 - alpha) = sum_i p_i / u_i over the support: -d(sum p)/d theta.
      const G = tf.clipByValue(rowSum(tf.mul(tf.div(p, uc), positive(u))), TINY, FLOAT32_MAX);
      // Newton step on psi: theta += P (1 - P^(-am1)) / (am1 G).
      return tf.add(theta, tf.div(tf.mul(P, newtonScale(P, am1)), G));
    });
    theta.dispose();
    theta = next;
  }
  // Final weights: exact zeros off the support, accurate even for alpha close to 1.
  const v = tf.mul(tf.sub(z, theta), am1);
  const support = tf.greater(v, -1);
  const zeros = tf.zerosLike(v);
  const p = tf.where(support, expClipped(tf.mul(log1pAccurate(tf.where(support, v, zeros)), inv)), zeros);
  return tf.div(p, rowSum(p));
}

function entmaxBisectNumber(x: tf.Tensor, alpha: number, nIter: number): tf.Tensor {
  const op = outputGradOp(
    (xx) => entmaxForward(xx, alpha - 1, nIter),
    (dy, p) => entmaxBackwardX(dy, entmaxG(p, 2 - alpha)),
  );
  return op(x);
}

function entmaxBisectTensor(x: tf.Tensor, alpha: tf.Tensor, nIter: number): tf.Tensor {
  const alphaShape = alpha.shape.slice();
  const op = tf.customGrad(((xx: tf.Tensor, aa: tf.Tensor, save: tf.GradSaveFunc) => {
    const a = tf.clipByValue(aa, ENTMAX_ALPHA_MIN, 2);
    const p = entmaxForward(xx, tf.sub(a, 1), nIter);
    save([xx, a, p]);
    return {
      value: p,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, as, ps] = saved;
          const am1 = tf.sub(as, 1);
          const g = entmaxG(ps, tf.sub(2, as));
          const dx = entmaxBackwardX(dy, g);
          // dp_i/dalpha = [g_i (z_i - zhat) - (S_i - ghat_i H)] / (alpha - 1), with
          // ghat = g/sum(g), zhat = sum(ghat z), S_i = p_i log p_i, H = sum(S). This is the
          // entmax package's (p - ghat)/(alpha-1)^2 - (S - ghat H)/(alpha-1) with one power
          // of (alpha - 1) cancelled analytically (better conditioned near alpha = 1).
          const ghat = tf.div(g, rowSum(g));
          const z = tf.sub(xs, rowMax(xs));
          const zhat = rowSum(tf.mul(ghat, z));
          const s = tf.mul(ps, tf.log(tf.clipByValue(ps, TINY, 1)));
          const h = rowSum(s);
          const dpda = tf.div(tf.sub(tf.mul(g, tf.sub(z, zhat)), tf.sub(s, tf.mul(ghat, h))), am1);
          const da = sumToShape(rowSum(tf.mul(dy, dpda)), alphaShape);
          return [dx, da];
        }),
    };
  }) as CustomGradFn);
  return op(x, alpha);
}

/**
 * alpha-entmax over the last axis for any alpha in [1, 2] (Peters, Niculae & Martins 2019;
 * Correia, Niculae & Martins 2019 for the alpha gradient; the `entmax` package's
 * `entmax_bisect`): p_i = [(alpha-1) x_i - tau]_+^(1/(alpha-1)), tau such that p sums to 1.
 * alpha = 1 is softmax, 1.5 is entmax15, 2 is sparsemax.
 *
 * The threshold is found with a fixed number of Newton steps (default 9 at S = 128, see
 * entmaxDefaultIters) on a convex reformulation, (sum p)^(alpha-1) = 1, started at a lower
 * bound: the iterates increase monotonically to the root (no overshoot, no divergence), in
 * one step for alpha -> 1 and by the active-set iteration for alpha = 2; about 3x fewer
 * evaluations than the ~30 bisection steps that reach the same float32 precision. No data
 * download: one graph of tensor ops on any backend. Use entmax15/sparsemax (or `separation`,
 * which picks them) when alpha is a fixed 1.5 or 2: they are exact and faster.
 *
 * Backward w.r.t. x: with g = p^(2-alpha) on the support, dx = g*dy - g*sum(g*dy)/sum(g).
 * When alpha is a Tensor its gradient is returned too (summed to alpha's shape).
 *
 * @param x scores [..., S], float32, rank >= 1.
 * @param alpha A number in [1, 2] (validated; alpha - 1 < 1e-6 gives softmax), or a float32
 *   Tensor broadcastable to x's leading dims with a last dim of 1 (a scalar, [..., 1], or e.g.
 *   [H, 1, 1] per head for scores [B, H, L, S]). A Tensor alpha is meant to be trained, so it
 *   is clipped silently into [1.001, 2] (ENTMAX_ALPHA_MIN) instead of rejected, and its
 *   gradient is the one at the clipped value (straight through the clip), so an alpha that
 *   overshoots a bound can come back. Default 1.5.
 * @param options.nIter Newton steps, default entmaxDefaultIters(S) (9 at S = 128, 12 at
 *   S = 8192).
 * @returns weights [..., S], >= 0, summing to 1 over the last axis.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { entmaxBisect } from 'uhop';
 * const x = tf.tensor2d([[0, 1, 2], [0, 1, 2]]);
 * entmaxBisect(x, 1.5).print();                                // = entmax15(x)
 * const alpha = tf.variable(tf.tensor2d([[1.2], [1.8]]));     // one alpha per row, trained
 * const dAlpha = tf.grad((a: tf.Tensor) => tf.sum(tf.square(entmaxBisect(x, a))))(alpha);
 * ```
 */
export function entmaxBisect(x: tf.Tensor, alpha: number | tf.Tensor = 1.5, options: EntmaxBisectOptions = {}): tf.Tensor {
  const fn = 'entmaxBisect';
  checkScores(fn, x, 'x');
  checkAlpha(fn, alpha, x);
  const nIter = options.nIter ?? entmaxDefaultIters(x.shape[x.rank - 1]);
  if (!Number.isInteger(nIter) || nIter < 1) {
    throw new Error(`${fn}: options.nIter must be a positive integer, got ${describe(nIter)}`);
  }
  if (typeof alpha === 'number') {
    if (alpha - 1 < ENTMAX_SOFTMAX_EPS) return tf.softmax(x);
    return entmaxBisectNumber(x, alpha, nIter);
  }
  return entmaxBisectTensor(x, alpha, nIter);
}

// ---------------------------------------------------------------------------------------
// softmax1, top-k softmax, hardmax

const softmax1Op = outputGradOp(
  (x) => {
    // exp(x_i) / (1 + sum_j exp(x_j)) = exp(x_i - m) / (exp(-m) + sum_j exp(x_j - m)), m = max(0, max x).
    const m = tf.maximum(rowMax(x), 0);
    const e = tf.exp(tf.sub(x, m));
    return tf.div(e, tf.add(tf.exp(tf.neg(m)), rowSum(e)));
  },
  // Same Jacobian form as softmax: dp_i/dx_j = p_i (delta_ij - p_j).
  (dy, p) => tf.mul(p, tf.sub(dy, rowSum(tf.mul(p, dy)))),
);

/**
 * Softmax with an extra zero logit ("softmax1", quiet attention), over the last axis:
 * p_i = exp(x_i) / (1 + sum_j exp(x_j)), computed stably. The weights sum to less than 1, so
 * a query whose scores are all very negative attends to (almost) nothing.
 *
 * @param x scores [..., S], float32, rank >= 1.
 * @returns weights [..., S], >= 0, summing to 1 - 1/(1 + sum exp(x)) < 1.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { softmax1 } from 'uhop';
 * softmax1(tf.tensor1d([0, 0])).print();      // [1/3, 1/3]
 * softmax1(tf.tensor1d([-20, -20])).print();  // ~[2e-9, 2e-9]: attends to nothing
 * ```
 */
export function softmax1(x: tf.Tensor): tf.Tensor {
  checkScores('softmax1', x, 'x');
  return softmax1Op(x);
}

/** The k-th largest entry of each row, [..., 1], off the gradient tape (TopK has no gradient). */
function kthLargest(x: tf.Tensor, k: number): tf.Tensor {
  const op = tf.customGrad(((xx: tf.Tensor) => {
    const shape = xx.shape.slice();
    return {
      value: tf.min(tf.topk(xx, k).values, -1, true),
      gradFunc: () => tf.zeros(shape),
    };
  }) as CustomGradFn);
  return op(x);
}

/**
 * Softmax over the k largest scores of each row, zero elsewhere (last axis). Scores tied
 * with the k-th largest are all kept; k >= S is plain softmax. The top-k selection is
 * computed off the gradient tape, so `tf.grad` works through it (the gradient flows through
 * the softmax of the kept scores).
 *
 * @param x scores [..., S], float32, rank >= 1.
 * @param k memories kept per query, a positive integer.
 * @returns weights [..., S], >= 0, summing to 1, with at most k nonzero entries per row
 *   (absent ties).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { topkSoftmax } from 'uhop';
 * topkSoftmax(tf.tensor1d([3, 1, 2]), 2).print(); // [0.731, 0, 0.269]
 * ```
 */
export function topkSoftmax(x: tf.Tensor, k: number): tf.Tensor {
  const n = checkScores('topkSoftmax', x, 'x');
  checkK('topkSoftmax', k);
  if (k >= n) return tf.softmax(x);
  // Softmax over all scores, zeroed below the k-th largest and renormalized: the same
  // weights as a softmax over the kept scores (the kept set holds the row maximum, so the
  // sum is > 0). keep = 1 - step(threshold - x): arithmetic, fast on wasm, unlike a
  // broadcast comparison.
  return tf.tidy(() => {
    const keep = tf.sub(1, positive(tf.sub(kthLargest(x, k), x)));
    const w = tf.mul(tf.softmax(x), keep);
    return tf.div(w, rowSum(w));
  });
}

const hardmaxOp = tf.customGrad(((x: tf.Tensor) => {
  const shape = x.shape.slice();
  const isMax = tf.sub(1, positive(tf.sub(rowMax(x), x)));
  return { value: tf.div(isMax, rowSum(isMax)), gradFunc: () => tf.zeros(shape) };
}) as CustomGradFn);

/**
 * Hard max over the last axis: one-hot at the largest score, ties split evenly (the
 * beta -> infinity limit of softmax). Piecewise constant, so its gradient is zero: meant for
 * analysis (e.g. retrieval error of the nearest memory), not for training.
 *
 * @param x scores [..., S], float32, rank >= 1.
 * @returns weights [..., S] in {0, 1/m} where m is the number of tied maxima.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { hardmax } from 'uhop';
 * hardmax(tf.tensor1d([1, 3, 3])).print(); // [0, 0.5, 0.5]
 * ```
 */
export function hardmax(x: tf.Tensor): tf.Tensor {
  checkScores('hardmax', x, 'x');
  return hardmaxOp(x);
}

// ---------------------------------------------------------------------------------------
// masking and dispatch

/** 1 = keep, 0 = masked, float32, in the mask's own shape. */
const keepOf = (mask: tf.Tensor): tf.Tensor => tf.cast(tf.notEqual(mask, 0), 'float32');

/**
 * where(keep, scores, MASK_FILL) with the condition expanded to the scores' shape first:
 * tf.where broadcasts through Tile, which is very slow on wasm. A select (not arithmetic)
 * so that non-finite masked scores (-Infinity, NaN padding) are replaced too.
 */
function fillMasked(scores: tf.Tensor, keep: tf.Tensor): tf.Tensor {
  const sameShape = keep.rank === scores.rank && keep.shape.every((d, i) => d === scores.shape[i]);
  const cond = tf.cast(sameShape ? keep : tf.add(tf.zerosLike(scores), keep), 'bool');
  return tf.where(cond, scores, tf.fill(scores.shape, MASK_FILL));
}

/**
 * Replaces masked scores with MASK_FILL (-1e9), a large finite negative value, so that any
 * separation map gives them (numerically) zero weight without producing NaN. The gradient
 * w.r.t. the kept scores is the identity, zero for the masked ones.
 *
 * @param scores [..., S] float32.
 * @param mask broadcastable to scores' shape; 1/true = keep, 0/false = masked.
 * @returns a tensor of scores' shape.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { maskScores } from 'uhop';
 * maskScores(tf.tensor2d([[1, 2, 3]]), tf.tensor1d([1, 1, 0], 'bool')).print(); // [[1, 2, -1e9]]
 * ```
 */
export function maskScores(scores: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  checkScores('maskScores', scores);
  checkMask('maskScores', mask, scores);
  return tf.tidy(() => fillMasked(scores, keepOf(mask)));
}

/**
 * Applies the separation map `kind` over the last axis of `scores` (UHN's separation; beta
 * must already be in the scores).
 *
 * | kind        | map                                                        |
 * | ----------- | ---------------------------------------------------------- |
 * | 'softmax'   | tf.softmax (dense modern Hopfield)                         |
 * | 'sparsemax' | sparsemax (sparse modern Hopfield)                         |
 * | 'entmax15'  | entmax15                                                   |
 * | 'entmax'    | alpha-entmax, `options.alpha` (default 1.5; number or Tensor) |
 * | 'softmax1'  | softmax1 (extra zero logit)                                |
 * | 'topk'      | topkSoftmax with `options.topK` (default 1)                |
 * | 'max'       | hardmax (zero gradient)                                    |
 *
 * For 'entmax' with a number alpha, the exact closed forms are used where they exist
 * (alpha = 1 softmax, 1.5 entmax15, 2 sparsemax), entmaxBisect otherwise.
 *
 * With `options.mask`, masked memories get exactly zero weight (the scores are filled with
 * MASK_FILL before the map and the weights multiplied by the mask after it), and a row
 * whose memories are all masked gives all zeros; values and gradients stay free of NaN.
 *
 * @param scores [..., S] float32, rank >= 1.
 * @param kind one of SEPARATION_KINDS.
 * @param options mask (broadcastable to scores), alpha ('entmax'), topK ('topk').
 * @returns weights [..., S].
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { separation } from 'uhop';
 * const scores = tf.tensor2d([[0.1, 0.5, 0.6], [2, 1, 0]]);
 * separation(scores, 'sparsemax').print();
 * separation(scores, 'entmax', { alpha: 1.25 }).print();
 * separation(scores, 'topk', { topK: 2, mask: tf.tensor2d([[1, 1, 0], [1, 1, 1]]) }).print();
 * ```
 */
export function separation(scores: tf.Tensor, kind: SeparationKind, options: SeparationOptions = {}): tf.Tensor {
  const fn = 'separation';
  checkSeparationKind(kind, fn);
  checkScores(fn, scores);
  checkOptions(options, SEPARATION_OPTION_KEYS, fn, { renamed: { k: { to: 'topK', since: '0.2.0' } } });
  const { mask } = options;
  const alpha = options.alpha ?? 1.5;
  const k = options.topK ?? 1;
  if (kind === 'entmax') checkAlpha(fn, alpha, scores);
  if (kind === 'topk') checkK(fn, k, 'topK');
  if (mask !== undefined) checkMask(fn, mask, scores);

  const map = (x: tf.Tensor): tf.Tensor => {
    switch (kind) {
      case 'softmax':
        return tf.softmax(x);
      case 'sparsemax':
        return sparsemax(x);
      case 'entmax15':
        return entmax15(x);
      case 'entmax':
        if (typeof alpha === 'number') {
          if (alpha === 1.5) return entmax15(x);
          if (alpha === 2) return sparsemax(x);
        }
        return entmaxBisect(x, alpha);
      case 'softmax1':
        return softmax1(x);
      case 'topk':
        return topkSoftmax(x, k);
      case 'max':
        return hardmax(x);
    }
  };
  if (mask === undefined) return map(scores);
  return tf.tidy(() => {
    const keep = keepOf(mask);
    return tf.mul(map(fillMasked(scores, keep)), keep);
  });
}
