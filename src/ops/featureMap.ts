/**
 * U-Hop's feature map Phi: construction, application to [..., n, d] patterns, analytic backward.
 *
 * - linear: Phi(x) = W x, W in R^{D x d} (U-Hop: D = d; U-Hop+: D >= d).
 * - mlp:    Phi(x) = W2 relu(W1 x + b1), W1 in R^{H x d}, b1 in R^H, W2 in R^{D x H}.
 *
 * Parameters may carry leading dims (one map per memory set, as `fitFeatureMap` returns them) or
 * none (one shared map). Leading dims of the parameters and of x broadcast numpy-style.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureMap, FeatureMapKind } from './types.js';
import { bmm } from './batchMatMul.js';
import { makeRng, matmul64, normals, randomOrthonormal, transpose64 } from './random.js';
import { broadcastShapes, broadcastToFast, reduceToShape, shapeStr } from './shapes.js';

/** Initial W of a linear map. */
export type LinearInit = 'identity' | 'orthogonal' | 'normal';

export interface LinearFeatureMapOptions {
  /**
   * 'identity' (default): W_ij = 1 if i == j else 0, i.e. the first d columns of I_D when D >= d
   * (Phi embeds x unchanged; with no fit U-Hop equals the plain network) and the first D rows of
   * I_d when D < d (a coordinate projection).
   * 'orthogonal': a random isometry (orthonormal columns; orthonormal rows when D < d).
   * 'normal': i.i.d. N(0, 1/d) entries, so ||W x|| is about sqrt(D/d) ||x||. (The authors'
   * scripts use unscaled N(0, 1), which multiplies the logits by about d; see DESIGN.md.)
   */
  init?: LinearInit;
  /** Seed of the random inits. Default: a fresh random seed. */
  seed?: number;
}

export interface MlpFeatureMapOptions {
  /**
   * Hidden width H. Default 2 * D, the smallest width at which the init below is an exact
   * isometry for every d and D.
   */
  hidden?: number;
  /** Seed of the init. Default: a fresh random seed. */
  seed?: number;
}

/** What `featureMapInfo` reads off a feature map's parameters. */
export interface FeatureMapInfo {
  kind: FeatureMapKind;
  /** Input dim d. */
  inputDim: number;
  /** Feature dim D. */
  featureDim: number;
  /** Hidden width H (mlp only). */
  hidden?: number;
  /** Leading (per-set) dims of the parameters; [] for one shared map. */
  leadingShape: number[];
}

const INITS: readonly LinearInit[] = ['identity', 'orthogonal', 'normal'];

function checkDim(v: unknown, name: string, fn: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new Error(`${fn}: ${name} must be an integer >= 1, got ${String(v)}`);
  }
}

function checkSeed(seed: unknown, fn: string): void {
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isFinite(seed))) {
    throw new Error(`${fn}: seed must be a finite number, got ${String(seed)}`);
  }
}

/**
 * A linear feature map Phi(x) = W x with W [D, d].
 *
 * @example
 * ```ts
 * const phi = linearFeatureMap(32, 64, { init: 'orthogonal', seed: 1 }); // U-Hop+: D = 2d
 * const features = applyFeatureMap(phi, keys);                           // [..., S, 64]
 * disposeFeatureMap(phi);
 * ```
 */
export function linearFeatureMap(d: number, D: number = d, options: LinearFeatureMapOptions = {}): FeatureMap {
  const fn = 'linearFeatureMap';
  checkDim(d, 'd', fn);
  checkDim(D, 'D', fn);
  const { init = 'identity', seed } = options;
  if (!INITS.includes(init)) throw new Error(`${fn}: init must be one of ${INITS.join(', ')}, got '${String(init)}'`);
  checkSeed(seed, fn);
  let w: Float64Array;
  if (init === 'identity') {
    w = new Float64Array(D * d);
    for (let i = 0; i < Math.min(D, d); i++) w[i * d + i] = 1;
  } else if (init === 'orthogonal') {
    w = randomOrthonormal(D, d, makeRng(seed));
  } else {
    w = normals(makeRng(seed), D * d).map((x) => x / Math.sqrt(d));
  }
  return { kind: 'linear', params: [tf.tensor2d(Float32Array.from(w), [D, d])] };
}

/**
 * A two-layer feature map Phi(x) = W2 relu(W1 x + b1) with W1 [H, d], b1 [H], W2 [D, H].
 *
 * Init: with P = floor(H/2) and a random isometry Q [D, d] factored as Q = B A
 * (A [P, d], B [D, P]), W1 = [A; -A], b1 = 0, W2 = [B, -B], so that
 * Phi(x) = B (relu(A x) - relu(-A x)) = B A x = Q x: the map starts exactly at a well-conditioned
 * linear map, and the fit bends it. This needs P >= min(d, D), i.e. H >= 2 min(d, D); a smaller H
 * starts at a rank-P partial isometry. An odd H gets one extra unit with a small random input row
 * and a zero output column.
 *
 * @example
 * ```ts
 * const phi = mlpFeatureMap(32, 32, { seed: 3 });       // hidden = 64
 * const { featureMap } = fitFeatureMap(keys, phi, { steps: 20 });
 * ```
 */
export function mlpFeatureMap(d: number, D: number = d, options: MlpFeatureMapOptions = {}): FeatureMap {
  const fn = 'mlpFeatureMap';
  checkDim(d, 'd', fn);
  checkDim(D, 'D', fn);
  const { hidden = 2 * D, seed } = options;
  checkDim(hidden, 'hidden', fn);
  checkSeed(seed, fn);
  const rng = makeRng(seed);
  const H = hidden;
  const P = Math.floor(H / 2);
  const W1 = new Float64Array(H * d);
  const W2 = new Float64Array(D * H);
  if (P > 0) {
    const Q = randomOrthonormal(D, d, rng); // [D, d]
    let A: Float64Array; // [P, d]
    let Bm: Float64Array; // [D, P]
    if (P >= d) {
      A = randomOrthonormal(P, d, rng); // orthonormal columns: A^T A = I_d
      Bm = matmul64(Q, transpose64(A, P, d), D, d, P); // Q A^T, so B A = Q
    } else if (P >= D) {
      Bm = randomOrthonormal(D, P, rng); // orthonormal rows: B B^T = I_D
      A = matmul64(transpose64(Bm, D, P), Q, P, D, d); // B^T Q, so B A = Q
    } else {
      A = randomOrthonormal(P, d, rng);
      Bm = randomOrthonormal(D, P, rng);
    }
    for (let p = 0; p < P; p++) {
      for (let j = 0; j < d; j++) {
        W1[p * d + j] = A[p * d + j];
        W1[(P + p) * d + j] = -A[p * d + j];
      }
      for (let i = 0; i < D; i++) {
        W2[i * H + p] = Bm[i * P + p];
        W2[i * H + P + p] = -Bm[i * P + p];
      }
    }
  }
  if (H % 2 === 1) {
    const row = normals(rng, d);
    for (let j = 0; j < d; j++) W1[(H - 1) * d + j] = row[j] / (10 * Math.sqrt(d));
  }
  return {
    kind: 'mlp',
    params: [tf.tensor2d(Float32Array.from(W1), [H, d]), tf.zeros([H]), tf.tensor2d(Float32Array.from(W2), [D, H])],
  };
}

/**
 * Reads d, D, H and the leading (per-set) dims off a feature map, checking that its parameters
 * are consistent.
 *
 * @example
 * ```ts
 * featureMapInfo(fitted);  // { kind: 'linear', inputDim: 32, featureDim: 32, leadingShape: [8, 4] }
 * ```
 */
export function featureMapInfo(phi: FeatureMap, fn = 'featureMapInfo'): FeatureMapInfo {
  if (!phi || typeof phi !== 'object' || !Array.isArray(phi.params)) {
    throw new Error(`${fn}: featureMap must be {kind, params}, got ${String(phi)}`);
  }
  const p = phi.params;
  if (phi.kind === 'linear') {
    if (p.length !== 1 || !(p[0] instanceof tf.Tensor) || p[0].rank < 2) {
      throw new Error(
        `${fn}: a linear feature map has params [W] with W [..., D, d], got ${p.length} param(s)${p[0] instanceof tf.Tensor ? ` (first of shape ${shapeStr(p[0].shape)})` : ''}`,
      );
    }
    const s = p[0].shape;
    return { kind: 'linear', inputDim: s[s.length - 1], featureDim: s[s.length - 2], leadingShape: s.slice(0, -2) };
  }
  if (phi.kind === 'mlp') {
    if (p.length !== 3 || !p.every((t) => t instanceof tf.Tensor)) {
      throw new Error(`${fn}: an mlp feature map has params [W1, b1, W2], got ${p.length} param(s)`);
    }
    const [w1, b1, w2] = p.map((t) => t.shape);
    const lead = w1.slice(0, -2);
    const H = w1[w1.length - 2];
    const ok =
      w1.length >= 2 &&
      b1.length === lead.length + 1 &&
      w2.length === lead.length + 2 &&
      b1[b1.length - 1] === H &&
      w2[w2.length - 1] === H &&
      lead.every((x, i) => b1[i] === x && w2[i] === x);
    if (!ok) {
      throw new Error(
        `${fn}: an mlp feature map needs W1 [..., H, d], b1 [..., H], W2 [..., D, H] with the same leading dims, got ${shapeStr(w1)}, ${shapeStr(b1)}, ${shapeStr(w2)}`,
      );
    }
    return { kind: 'mlp', inputDim: w1[w1.length - 1], featureDim: w2[w2.length - 2], hidden: H, leadingShape: lead };
  }
  throw new Error(`${fn}: featureMap.kind must be 'linear' or 'mlp', got '${String((phi as FeatureMap).kind)}'`);
}

/** Checks x against the map; returns the broadcast leading dims of the output. */
function checkInput(info: FeatureMapInfo, x: tf.Tensor, fn: string, what = 'x'): number[] {
  if (!(x instanceof tf.Tensor) || x.rank < 2 || x.shape[x.rank - 1] !== info.inputDim) {
    throw new Error(
      `${fn}: ${what} must be [..., n, d] with d = ${info.inputDim} (the feature map's input dim), got ${x instanceof tf.Tensor ? `shape ${shapeStr(x.shape)}` : String(x)}`,
    );
  }
  const xLead = x.shape.slice(0, -2);
  const lead = broadcastShapes(xLead, info.leadingShape);
  if (lead === null) {
    throw new Error(
      `${fn}: the leading dims of ${what} ${shapeStr(xLead)} and of the feature map's params ${shapeStr(info.leadingShape)} do not broadcast`,
    );
  }
  return lead;
}

/** Intermediate values of a forward pass that the backward pass reuses. */
export interface FeatureMapCache {
  /** Output [B, n, D] (or [N, D] when shared). */
  F: tf.Tensor;
  /** mlp: pre-activation x W1^T + b1. */
  pre?: tf.Tensor;
  /** mlp: relu(pre). */
  act?: tf.Tensor;
}

/**
 * Forward pass on matched shapes: either `shared` (params without leading dims, x [N, d]) or
 * batched (params [B, ...], x [B, n, d]).
 * @internal
 */
export function featureMapForward(kind: FeatureMapKind, params: tf.Tensor[], x: tf.Tensor, shared: boolean): FeatureMapCache {
  return tf.tidy(() => {
    // Shared params: x [N, d] times a transposed copy of the (small) weight: a plain 2-D matMul,
    // which every backend runs at full speed (wasm sends transposed or batched matMuls to a slow
    // loop). Per set: `bmm` (depthwise convolutions on wasm).
    const lin = (a: tf.Tensor, w: tf.Tensor) => (shared ? tf.matMul(a, tf.transpose(w)) : bmm(a, w, false, true));
    if (kind === 'linear') return { F: lin(x, params[0]) };
    const [W1, b1, W2] = params;
    const pre = tf.add(lin(x, W1), shared ? b1 : tf.expandDims(b1, 1));
    const act = tf.relu(pre);
    return { F: lin(act, W2), pre, act };
  });
}

/**
 * Backward pass on matched shapes (see `featureMapForward`): parameter gradients, summed over
 * all rows (and nothing else: the caller reduces broadcast dims); with `withInputGrad`, dL/dx is
 * appended as the last element.
 * @internal
 */
export function featureMapBackwardCached(
  kind: FeatureMapKind,
  params: tf.Tensor[],
  x: tf.Tensor,
  cache: FeatureMapCache,
  dF: tf.Tensor,
  shared: boolean,
  withInputGrad = false,
): tf.Tensor[] {
  return tf.tidy(() => {
    // dW = dF^T x. Shared: transpose the tall operand once and use a plain 2-D matMul.
    const outer = (g: tf.Tensor, a: tf.Tensor) => (shared ? tf.matMul(tf.transpose(g), a) : bmm(g, a, true, false));
    const back = (g: tf.Tensor, w: tf.Tensor) => (shared ? tf.matMul(g, w) : bmm(g, w));
    if (kind === 'linear') return withInputGrad ? [outer(dF, x), back(dF, params[0])] : [outer(dF, x)];
    const [W1, , W2] = params;
    const dW2 = outer(dF, cache.act!);
    const dPre = tf.mul(back(dF, W2), tf.step(cache.pre!));
    const db1 = shared ? tf.sum(dPre, 0) : tf.sum(dPre, 1);
    const dW1 = outer(dPre, x);
    return withInputGrad ? [dW1, db1, dW2, back(dPre, W1)] : [dW1, db1, dW2];
  });
}

/**
 * Per-set forward pass (params [B, ...], x [B, n, d]) that tf.grad can differentiate on every
 * backend: on wasm the products are depthwise convolutions, which have no backward kernels
 * there, so the pass is a tf.customGrad with the analytic backward above.
 */
function perSetForward(kind: FeatureMapKind, params: tf.Tensor[], x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return featureMapForward(kind, params, x, false).F;
  const np = params.length;
  const f = tf.customGrad((...args: unknown[]) => {
    const xs = args[0] as tf.Tensor;
    const ps = args.slice(1, 1 + np) as tf.Tensor[];
    const save = args[1 + np] as (t: tf.Tensor[]) => void;
    const cache = featureMapForward(kind, ps, xs, false);
    save([xs, ...ps, ...(cache.pre ? [cache.pre, cache.act!] : [])]);
    return {
      value: cache.F,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const sx = saved[0];
        const sp = saved.slice(1, 1 + np);
        const c: FeatureMapCache = { F: dy, pre: saved[1 + np], act: saved[2 + np] };
        const g = featureMapBackwardCached(kind, sp, sx, c, dy, false, true);
        return [g[g.length - 1], ...g.slice(0, -1)];
      },
    };
  });
  return f(x, ...params);
}

/** Parameters broadcast to leading dims `lead` and flattened to one batch axis [B, ...]. */
function batchParams(params: tf.Tensor[], info: FeatureMapInfo, lead: number[]): tf.Tensor[] {
  const B = lead.reduce((a, b) => a * b, 1);
  return params.map((p) => {
    const inner = p.shape.slice(info.leadingShape.length);
    return tf.reshape(broadcastToFast(p, [...lead, ...inner]), [B, ...inner]);
  });
}

/**
 * Applies Phi to patterns x [..., n, d] -> [..., n, D]. The parameters' leading dims (none for
 * one shared map, or one map per set) broadcast against x's leading dims. Differentiable.
 *
 * @example
 * ```ts
 * const phi = linearFeatureMap(4, 8, { init: 'identity' });
 * const f = applyFeatureMap(phi, tf.ones([2, 5, 4]));   // [2, 5, 8]
 * ```
 */
export function applyFeatureMap(phi: FeatureMap, x: tf.Tensor): tf.Tensor {
  const fn = 'applyFeatureMap';
  const info = featureMapInfo(phi, fn);
  const lead = checkInput(info, x, fn);
  const n = x.shape[x.rank - 2];
  return tf.tidy(() => {
    if (info.leadingShape.length === 0) {
      const F = featureMapForward(info.kind, phi.params, tf.reshape(x, [-1, info.inputDim]), true).F;
      return tf.reshape(F, [...lead, n, info.featureDim]);
    }
    const B = lead.reduce((a, b) => a * b, 1);
    const xb = tf.reshape(broadcastToFast(x, [...lead, n, info.inputDim]), [B, n, info.inputDim]);
    const F = perSetForward(info.kind, batchParams(phi.params, info, lead), xb);
    return tf.reshape(F, [...lead, n, info.featureDim]);
  });
}

/**
 * Analytic gradient of sum(dF * Phi(x)) with respect to Phi's parameters: the backward pass of
 * `applyFeatureMap`, without tf.grad. Returns one tensor per parameter, each of the parameter's
 * shape (gradients are summed over the dims the parameters were broadcast along).
 *
 * @example
 * ```ts
 * const [dW] = featureMapBackward(phi, keys, dF);   // dF [..., S, D] -> dW like W
 * ```
 */
export function featureMapBackward(phi: FeatureMap, x: tf.Tensor, dF: tf.Tensor): tf.Tensor[] {
  const fn = 'featureMapBackward';
  const info = featureMapInfo(phi, fn);
  const lead = checkInput(info, x, fn);
  const n = x.shape[x.rank - 2];
  const outShape = [...lead, n, info.featureDim];
  if (!(dF instanceof tf.Tensor) || dF.rank !== outShape.length || dF.shape.some((s, i) => s !== outShape[i])) {
    throw new Error(
      `${fn}: dF must have the shape of Phi(x), ${shapeStr(outShape)}, got ${dF instanceof tf.Tensor ? shapeStr(dF.shape) : String(dF)}`,
    );
  }
  return tf.tidy(() => {
    if (info.leadingShape.length === 0) {
      const x2 = tf.reshape(x, [-1, info.inputDim]);
      const dF2 = tf.reshape(dF, [-1, info.featureDim]);
      const cache = featureMapForward(info.kind, phi.params, x2, true);
      return featureMapBackwardCached(info.kind, phi.params, x2, cache, dF2, true);
    }
    const B = lead.reduce((a, b) => a * b, 1);
    const xb = tf.reshape(broadcastToFast(x, [...lead, n, info.inputDim]), [B, n, info.inputDim]);
    const dFb = tf.reshape(dF, [B, n, info.featureDim]);
    const params = batchParams(phi.params, info, lead);
    const cache = featureMapForward(info.kind, params, xb, false);
    const grads = featureMapBackwardCached(info.kind, params, xb, cache, dFb, false);
    return grads.map((g, i) => {
      const full = tf.reshape(g, [...lead, ...g.shape.slice(1)]);
      return reduceToShape(full, phi.params[i].shape);
    });
  });
}

/**
 * Row-normalized copy of a linear map: every row of W scaled to unit length (the U-Hop paper's
 * step after Stage I). The input map is left as it is.
 *
 * @example
 * ```ts
 * const unit = rowNormalize(phi);   // ||W_i,:|| = 1 for every feature i (and every set)
 * ```
 */
export function rowNormalize(phi: FeatureMap): FeatureMap {
  const info = featureMapInfo(phi, 'rowNormalize');
  if (info.kind !== 'linear') {
    throw new Error(`rowNormalize: only a linear feature map has rows to normalize, got kind '${info.kind}'`);
  }
  const W = phi.params[0];
  const out = tf.tidy(() => tf.mul(W, tf.rsqrt(tf.maximum(tf.sum(tf.square(W), -1, true), 1e-24))));
  return { kind: 'linear', params: [out] };
}

/**
 * Frees the parameters of a feature map.
 *
 * @example
 * ```ts
 * const { featureMap, lossTrace } = fitFeatureMap(keys, phi0);
 * disposeFeatureMap(featureMap); lossTrace.dispose();
 * ```
 */
export function disposeFeatureMap(phi: FeatureMap): void {
  tf.dispose(phi.params);
}
