/**
 * The memory layouts of Stage I behind one small interface, {@link Stage1Layout}, chosen once
 * per fit (or per separation-loss call) by {@link chooseLayout}. The pair kernel
 * (src/ops/pairKernel.ts) and the fit's engines (src/ops/fitEngines.ts) are written once
 * against it; every backend- or shape-dependent product lives here.
 *
 * - 'bsd' ({@link BsdLayout}): features [B, S, D], Gram matrices [B, S, S], batched matMuls.
 *   The fastest form on every backend whose batched matMul is fast (cpu, webgpu, tensorflow).
 * - 'dbs' ({@link DbsLayout}): features [D, B, S] (feature-major), Gram matrices [S, B, S],
 *   computed by depthwise convolutions with the B memory sets as channels.
 *   tfjs-backend-wasm runs batched or transposed matMuls through a naive loop (about
 *   1.5-2 GFLOP/s) but depthwise convolutions through XNNPACK, so on wasm this layout is about
 *   5x faster for the S x S products. One memory set (B = 1, {@link DbsSingleLayout}): the same
 *   layout with plain 2-D matMuls, XNNPACK's fast path.
 *
 * A depthwise convolution of an image [1, H, W, B] with a filter [1, W, B, M] gives
 * [1, H, 1, B * M], i.e. [H, B, M]: B products [H, W] x [W, M] at once, the sets as channels.
 * @internal
 */
import * as tf from '@tensorflow/tfjs-core';
import { bmm } from './batchMatMul.js';

export type PairLayout = 'bsd' | 'dbs';

type Shape4 = [number, number, number, number];

/**
 * The products of a linear map W (one [D, d] per set) with the keys K [B, S, d], in a layout:
 * what `linearEngine` of the fit runs per step. W is kept in the layout's own form.
 */
export interface LinearProducts {
  /** W in the layout from W0 [B, D, d]. */
  init(W0: tf.Tensor): tf.Tensor;
  /** F = K W^T, the features in the layout's feature form. */
  fwd(W: tf.Tensor): tf.Tensor;
  /** dF^T K (W's form): the gradient of W from that of F. */
  bwd(dF: tf.Tensor): tf.Tensor;
  /** W back as [B, D, d]. */
  finish(W: tf.Tensor): tf.Tensor;
  /** Axis of the sets in W. */
  setAxis: number;
  dispose(): void;
}

/**
 * The span-of-the-memories form of a linear fit (W = W0 + M^T K, F = F0 + C M with the keys'
 * S x S Gram matrix C = K K^T), in a layout.
 */
export interface SpanProducts {
  /** F0 = K W0^T in the layout's feature form. */
  F0: tf.Tensor;
  /** C dF (the move of F that a gradient step on W makes), in the feature form. */
  step(dF: tf.Tensor): tf.Tensor;
  /** W = W0 + M^T K as [B, D, d], M in the feature form. */
  finish(M: tf.Tensor): tf.Tensor;
  dispose(): void;
}

/** Products of the Gram matrix that the weighted product of the same step may reuse. */
export interface GramResult {
  /** scale * U U^T per set: bsd [B, S, S], dbs [S, B, S]. */
  G: tf.Tensor;
  /** Whatever the layout formed for the Gram matrix that the weighted product reuses. */
  reuse?: tf.Tensor;
}

/** One memory layout of Stage I (see the file header). */
export interface Stage1Layout {
  readonly name: PairLayout;
  readonly B: number;
  readonly S: number;
  /** Axis of the sets in a feature tensor. */
  readonly setAxis: number;
  /** Axis of the features in a feature tensor. */
  readonly featureAxis: number;
  /** Axis of the rows i (memory i) in a pair matrix. */
  readonly rowAxis: number;
  /** Shape of a per-set value against a pair matrix: [B, 1, 1] / [1, B, 1]. */
  readonly setShape: number[];
  /** Shape of a per-row value against a pair matrix: [B, S, 1] / [S, B, 1]. */
  readonly rowShape: number[];
  /** Features [B, S, D] in the layout's feature form. */
  fromSetMajor(F: tf.Tensor): tf.Tensor;
  /** Features in the layout's form back to [B, S, D]. */
  toSetMajor(X: tf.Tensor): tf.Tensor;
  /** A per-memory value [B, S] shaped like the feature norms: [B, S, 1] / [1, B, S]. */
  perMemory(x: tf.Tensor): tf.Tensor;
  /** A pair matrix shared by every set, [S, S], as [1, S, S] / [S, 1, S]. */
  sharedPairs(x: tf.Tensor): tf.Tensor;
  /** The mask [B, S] of memory i (rows) and of memory j (columns) against a pair matrix. */
  rowMask(mask: tf.Tensor): tf.Tensor;
  colMask(mask: tf.Tensor): tf.Tensor;
  /** Flat index of the diagonal entry (set b, memory i) of a pair matrix. */
  diagIndex(b: number, i: number): number;
  /** Flat indices as the tensor `diagonal` takes (made once per fit). */
  diagIndices(idx: Int32Array): tf.Tensor;
  /** The entries of `x` at the flat indices `idx` (from `diagIndices`; the backend's faster gather). */
  diagonal(x: tf.Tensor, idx: tf.Tensor): tf.Tensor;
  /** Per-row weights of a pair matrix (rowShape) in (set, memory) order, [B, S]. */
  rowsToSets(w: tf.Tensor): tf.Tensor;
  /**
   * Sum over the feature axis, keeping it; `scalar(v)` gives a cached scalar tensor.
   */
  sumFeatures(X: tf.Tensor, scalar: (v: number) => tf.Scalar): tf.Tensor;
  /** scale * U U^T per set (see {@link GramResult}). */
  gram(U: tf.Tensor, scale: tf.Scalar): GramResult;
  /** (P U) with P = pairs scaled per row by w [B, S] (P symmetric): sum_i w_i pairs_ij u_i, in U's form. */
  weightedProduct(pairs: tf.Tensor, U: tf.Tensor, w: tf.Tensor, gram: GramResult): tf.Tensor;
  /** The products of a linear fit on keys K [B, S, d] with D features. */
  linear(K: tf.Tensor3D, D: number): LinearProducts;
  /** The span form of a linear fit on keys K [B, S, d] from W0 [B, D, d]. */
  span(K: tf.Tensor3D, W0: tf.Tensor): SpanProducts;
}

/**
 * Batched depthwise convolution used as a batched matMul over the channel (set) axis. An operand
 * already in its 4-D shape (a constant filter shaped once per fit) is not reshaped again: every
 * Reshape is a kernel dispatch.
 */
function dwConv(x: tf.Tensor, xShape: Shape4, filter: tf.Tensor, fShape: Shape4): tf.Tensor4D {
  return tf.depthwiseConv2d(as4d(x, xShape), as4d(filter, fShape), 1, 'valid');
}

function as4d(x: tf.Tensor, shape: Shape4): tf.Tensor4D {
  return (x.rank === 4 && x.shape.every((s, i) => s === shape[i]) ? x : tf.reshape(x, shape)) as tf.Tensor4D;
}

/** 'bsd': [B, S, D] features, batched matMuls (every backend but wasm). */
export class BsdLayout implements Stage1Layout {
  readonly name = 'bsd' as const;
  readonly setAxis = 0;
  readonly featureAxis = 2;
  readonly rowAxis = 1;
  readonly setShape: number[];
  readonly rowShape: number[];
  constructor(
    readonly B: number,
    readonly S: number,
  ) {
    this.setShape = [B, 1, 1];
    this.rowShape = [B, S, 1];
  }
  fromSetMajor(F: tf.Tensor): tf.Tensor {
    return F;
  }
  toSetMajor(X: tf.Tensor): tf.Tensor {
    return X;
  }
  perMemory(x: tf.Tensor): tf.Tensor {
    return tf.expandDims(x, 2);
  }
  sharedPairs(x: tf.Tensor): tf.Tensor {
    return tf.reshape(x, [1, this.S, this.S]);
  }
  rowMask(mask: tf.Tensor): tf.Tensor {
    return tf.reshape(mask, [this.B, this.S, 1]);
  }
  colMask(mask: tf.Tensor): tf.Tensor {
    return tf.reshape(mask, [this.B, 1, this.S]);
  }
  diagIndex(b: number, i: number): number {
    return b * this.S * this.S + i * this.S + i;
  }
  diagIndices(idx: Int32Array): tf.Tensor {
    return tf.tensor1d(idx, 'int32');
  }
  diagonal(x: tf.Tensor, idx: tf.Tensor): tf.Tensor {
    return tf.gather(tf.reshape(x, [-1]), idx);
  }
  rowsToSets(w: tf.Tensor): tf.Tensor {
    return tf.reshape(w, [this.B, this.S]);
  }
  sumFeatures(X: tf.Tensor): tf.Tensor {
    return tf.sum(X, 2, true);
  }
  gram(U: tf.Tensor, scale: tf.Scalar): GramResult {
    return { G: tf.matMul(tf.mul(U, scale), U, false, true) };
  }
  weightedProduct(pairs: tf.Tensor, U: tf.Tensor, w: tf.Tensor): tf.Tensor {
    return tf.matMul(pairs, tf.mul(U, tf.reshape(w, [this.B, this.S, 1])), true, false);
  }
  linear(K: tf.Tensor3D): LinearProducts {
    // W [B, D, d]; F = K W^T [B, S, D]; dW = dF^T K.
    return {
      init: (W0) => W0,
      fwd: (W) => tf.matMul(K, W, false, true),
      bwd: (dF) => tf.matMul(dF, K, true, false),
      finish: (W) => W.clone(),
      setAxis: 0,
      dispose: () => {},
    };
  }
  span(K: tf.Tensor3D, W0: tf.Tensor): SpanProducts {
    const C = tf.matMul(K, K, false, true); // [B, S, S]
    const F0 = tf.matMul(K, W0, false, true); // [B, S, D]
    return {
      F0,
      step: (dF) => tf.matMul(C, dF),
      finish: (M) => tf.tidy(() => tf.add(W0, tf.matMul(M, K, true, false))),
      dispose: () => tf.dispose([C, F0]),
    };
  }
}

/** Channels of one average pooling in `DbsLayout.sumFeatures` (see there). */
const POOL_CHANNELS = 1024;

/** The largest divisor of n that is <= POOL_CHANNELS, or 0 when that is below 16 (too narrow to pay). */
function poolChannels(n: number): number {
  for (let ch = Math.min(n, POOL_CHANNELS); ch >= 16; ch--) if (n % ch === 0) return ch;
  return 0;
}

/** 'dbs': [D, B, S] features, depthwise convolutions over the B sets (wasm, B > 1). */
export class DbsLayout implements Stage1Layout {
  readonly name = 'dbs' as const;
  readonly setAxis = 1;
  readonly featureAxis = 0;
  readonly rowAxis = 0;
  readonly setShape: number[];
  readonly rowShape: number[];
  constructor(
    readonly B: number,
    readonly S: number,
  ) {
    this.setShape = [1, B, 1];
    this.rowShape = [S, B, 1];
  }
  fromSetMajor(F: tf.Tensor): tf.Tensor {
    return tf.transpose(F, [2, 0, 1]);
  }
  toSetMajor(X: tf.Tensor): tf.Tensor {
    return tf.transpose(X, [1, 2, 0]);
  }
  perMemory(x: tf.Tensor): tf.Tensor {
    return tf.expandDims(x, 0);
  }
  sharedPairs(x: tf.Tensor): tf.Tensor {
    return tf.reshape(x, [this.S, 1, this.S]);
  }
  rowMask(mask: tf.Tensor): tf.Tensor {
    return tf.reshape(tf.transpose(mask), [this.S, this.B, 1]);
  }
  colMask(mask: tf.Tensor): tf.Tensor {
    return tf.reshape(mask, [1, this.B, this.S]);
  }
  diagIndex(b: number, i: number): number {
    return i * this.B * this.S + b * this.S + i;
  }
  /**
   * By GatherNd: tfjs-backend-wasm's GatherV2 checks every index in a JS loop with a closure
   * (about 250 us for 4096 indices, 7x its GatherNd); the cpu backend is the other way round,
   * but this layout is wasm's.
   */
  diagIndices(idx: Int32Array): tf.Tensor {
    return tf.tensor2d(idx, [idx.length, 1], 'int32');
  }
  diagonal(x: tf.Tensor, idx: tf.Tensor): tf.Tensor {
    return tf.gatherND(tf.reshape(x, [-1]), idx);
  }
  rowsToSets(w: tf.Tensor): tf.Tensor {
    return tf.transpose(tf.reshape(w, [this.S, this.B]));
  }
  /**
   * [D, B, S]: D times an average pooling of X over a D x 1 window, with X viewed as a
   * [1, D, n, c] image (n * c = B * S, no data moved). On wasm that is XNNPACK's
   * channel-vectorized pooling, about 4x faster than a one-channel convolution with a ones
   * filter, and far faster than tf.sum over a leading axis (which transposes first) or a
   * ones[1, D] X[D, B*S] matMul (which repacks X as XNNPACK weights on every call).
   * c <= POOL_CHANNELS: for windows over 9 taps XNNPACK keeps a c-float accumulator on the wasm
   * stack, and 16384 channels (64 KiB) overflow it into the heap.
   */
  sumFeatures(X: tf.Tensor, scalar: (v: number) => tf.Scalar): tf.Tensor {
    const [D, B, S] = X.shape;
    const ch = poolChannels(B * S);
    if (ch === 0) return tf.sum(X, 0, true);
    return tf.tidy(() => {
      // the AvgPool kernel itself: tf.avgPool adds a float32 -> float32 Cast kernel
      const x = tf.reshape(X, [1, D, (B * S) / ch, ch]);
      const mean = tf.engine().runKernel('AvgPool', { x }, { filterSize: [D, 1], strides: 1, pad: 'valid' }) as tf.Tensor;
      return tf.mul(tf.reshape(mean, [1, B, S]), scalar(D));
    });
  }
  gram(U: tf.Tensor, scale: tf.Scalar): GramResult {
    const [D, B, S] = U.shape;
    const Ux = tf.transpose(U, [0, 2, 1]); // [D, S, B] (channels last), shared with the weighted product
    const G = dwConv(tf.mul(Ux, scale), [1, D, S, B], U, [D, 1, B, S]); // [1, 1, S, B*S]
    return { G: tf.reshape(G, [S, B, S]), reuse: Ux };
  }
  weightedProduct(pairs: tf.Tensor, U: tf.Tensor, w: tf.Tensor, gram: GramResult): tf.Tensor {
    const [D, B, S] = U.shape;
    const x = tf.mul(gram.reuse!, tf.reshape(tf.transpose(w), [1, S, B]));
    return tf.reshape(dwConv(x, [1, D, S, B], pairs, [1, S, B, S]), [D, B, S]);
  }
  linear(K: tf.Tensor3D, D: number): LinearProducts {
    // W kept as [D, B, d]; features as [D, B, S]. Both products are depthwise convolutions
    // over the B sets (channels): F^T_b = W_b K_b^T and dW_b = dF^T_b K_b.
    const { B, S } = this;
    const d = K.shape[2];
    // the constant operands as the depthwise filters they are, shaped once
    const Kf = tf.tidy(() => tf.reshape(tf.transpose(K, [2, 0, 1]), [1, d, B, S])); // [d, B, S]
    const Kb = tf.tidy(() => tf.reshape(tf.transpose(K, [1, 0, 2]), [1, S, B, d])); // [S, B, d]
    return {
      init: (W0) => tf.transpose(W0, [1, 0, 2]),
      fwd: (W) => tf.reshape(dwConv(tf.transpose(W, [0, 2, 1]), [1, D, d, B], Kf, [1, d, B, S]), [D, B, S]),
      bwd: (dF) => tf.reshape(dwConv(tf.transpose(dF, [0, 2, 1]), [1, D, S, B], Kb, [1, S, B, d]), [D, B, d]),
      finish: (W) => tf.transpose(W, [1, 0, 2]),
      setAxis: 1,
      dispose: () => tf.dispose([Kf, Kb]),
    };
  }
  span(K: tf.Tensor3D, W0: tf.Tensor): SpanProducts {
    // F as [D, B, S]; (C dF)^T_b = dF^T_b C_b (C symmetric).
    const { B, S } = this;
    const [, D, d] = W0.shape;
    // the constant operands as the depthwise filters they are, shaped once
    const C = tf.tidy(() => tf.reshape(tf.transpose(bmm(K, K, false, true), [1, 0, 2]), [1, S, B, S])); // [S, B, S]
    const Kt = tf.tidy(() => tf.reshape(tf.transpose(K, [2, 0, 1]), [1, d, B, S])); // [d, B, S]
    const Kb = tf.tidy(() => tf.reshape(tf.transpose(K, [1, 0, 2]), [1, S, B, d])); // [S, B, d]
    const W0l = tf.transpose(W0, [1, 2, 0]); // [D, d, B]
    const F0 = tf.tidy(() => tf.reshape(dwConv(W0l, [1, D, d, B], Kt, [1, d, B, S]), [D, B, S]));
    return {
      F0,
      step: (dF) => tf.reshape(dwConv(tf.transpose(dF, [0, 2, 1]), [1, D, S, B], C, [1, S, B, S]), [D, B, S]),
      finish: (M) =>
        tf.tidy(() =>
          tf.add(W0, tf.transpose(tf.reshape(dwConv(tf.transpose(M, [0, 2, 1]), [1, D, S, B], Kb, [1, S, B, d]), [D, B, d]), [1, 0, 2])),
        ),
      dispose: () => tf.dispose([C, Kt, Kb, W0l, F0]),
    };
  }
}

/**
 * 'dbs' for one memory set (B = 1): the same layout, with plain 2-D matMuls instead of the
 * depthwise convolutions (the fast path of every backend; a right operand that never changes,
 * the keys, is packed by XNNPACK once for the whole fit).
 */
export class DbsSingleLayout extends DbsLayout {
  constructor(S: number) {
    super(1, S);
  }
  override gram(U: tf.Tensor, scale: tf.Scalar): GramResult {
    const [D, , S] = U.shape;
    const U2 = tf.reshape(U, [D, S]);
    const G = tf.matMul(tf.mul(tf.transpose(U2), scale), U2);
    return { G: tf.reshape(G, [S, 1, S]) };
  }
  override weightedProduct(pairs: tf.Tensor, U: tf.Tensor, w: tf.Tensor): tf.Tensor {
    const [D, , S] = U.shape;
    return tf.reshape(tf.matMul(tf.mul(tf.reshape(U, [D, S]), tf.reshape(w, [1, S])), tf.reshape(pairs, [S, S])), [D, 1, S]);
  }
  override linear(K: tf.Tensor3D, D: number): LinearProducts {
    const { S } = this;
    const d = K.shape[2];
    const Kf2 = tf.tidy(() => tf.reshape(tf.transpose(K, [2, 0, 1]), [d, S]));
    const Kb2 = tf.tidy(() => tf.reshape(tf.transpose(K, [1, 0, 2]), [S, d]));
    return {
      init: (W0) => tf.reshape(W0, [D, 1, d]),
      fwd: (W) => tf.reshape(tf.matMul(tf.reshape(W, [D, d]), Kf2), [D, 1, S]),
      bwd: (dF) => tf.reshape(tf.matMul(tf.reshape(dF, [D, S]), Kb2), [D, 1, d]),
      finish: (W) => tf.reshape(W, [1, D, d]),
      setAxis: 1,
      dispose: () => tf.dispose([Kf2, Kb2]),
    };
  }
  override span(K: tf.Tensor3D, W0: tf.Tensor): SpanProducts {
    const { S } = this;
    const [, D, d] = W0.shape;
    const K2 = tf.reshape(K, [S, d]);
    const C = tf.tidy(() => tf.matMul(K2, tf.transpose(K2))); // [S, S]
    const F0 = tf.tidy(() =>
      tf.reshape(tf.matMul(tf.reshape(tf.transpose(W0, [1, 2, 0]), [D, d]), tf.reshape(tf.transpose(K, [2, 0, 1]), [d, S])), [D, 1, S]),
    );
    return {
      F0,
      step: (dF) => tf.reshape(tf.matMul(tf.reshape(dF, [D, S]), C), [D, 1, S]),
      finish: (M) => tf.tidy(() => tf.add(W0, tf.reshape(tf.matMul(tf.reshape(M, [D, S]), K2), [1, D, d]))),
      dispose: () => tf.dispose([K2, C, F0]),
    };
  }
}

/** The layout `name` for B sets of S memories (a single set gets the 2-D-product form of 'dbs'). */
export function makeLayout(name: PairLayout, B: number, S: number): Stage1Layout {
  if (name === 'bsd') return new BsdLayout(B, S);
  return B === 1 ? new DbsSingleLayout(S) : new DbsLayout(B, S);
}

/** The layout name that is fastest on the active backend (see the file header). */
export function preferredLayout(): PairLayout {
  return tf.getBackend() === 'wasm' ? 'dbs' : 'bsd';
}

/** The fastest layout on the active backend for B sets of S memories: the one choice per fit. */
export function chooseLayout(B: number, S: number): Stage1Layout {
  return makeLayout(preferredLayout(), B, S);
}
