/**
 * Hand-written float64 references for the layer tests: plain nested-array maths, no tfjs, so a
 * bug in a shared tfjs helper cannot hide in both the layer and its reference.
 */
import * as tf from '@tensorflow/tfjs-core';

export type Mat = number[][];

export function toMat(t: tf.Tensor): Mat {
  return t.arraySync() as Mat;
}

export function matmul(a: Mat, b: Mat): Mat {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
}

export function transpose(a: Mat): Mat {
  return a[0].map((_, j) => a.map((row) => row[j]));
}

export function addRow(a: Mat, bias: number[] | null): Mat {
  return bias ? a.map((row) => row.map((x, j) => x + bias[j])) : a;
}

export function softmaxRows(a: Mat, mask?: number[][]): Mat {
  return a.map((row, i) => {
    const keep = row.map((_, j) => (mask ? mask[i][j] !== 0 : true));
    const m = Math.max(...row.filter((_, j) => keep[j]));
    const e = row.map((x, j) => (keep[j] ? Math.exp(x - m) : 0));
    const s = e.reduce((p, q) => p + q, 0);
    return e.map((x) => (s > 0 ? x / s : 0));
  });
}

export function layerNormRows(a: Mat, eps: number, gamma?: number[] | null, beta?: number[] | null): Mat {
  return a.map((row) => {
    const mean = row.reduce((s, x) => s + x, 0) / row.length;
    const v = row.reduce((s, x) => s + (x - mean) ** 2, 0) / row.length;
    return row.map((x, j) => ((x - mean) / Math.sqrt(v + eps)) * (gamma ? gamma[j] : 1) + (beta ? beta[j] : 0));
  });
}

/** Columns [from, to) of a matrix. */
export function cols(a: Mat, from: number, to: number): Mat {
  return a.map((row) => row.slice(from, to));
}

/**
 * Multi-head softmax attention of one sample, ml-jku's Hopfield with update_steps_max 0:
 * per head h, softmax(beta * Q_h K_h^T (masked)) V_h, heads concatenated.
 */
export function multiHeadSoftmax(Q: Mat, K: Mat, V: Mat, H: number, beta: number, mask?: number[][]): Mat {
  const dk = Q[0].length / H;
  const dv = V[0].length / H;
  const heads: Mat[] = [];
  for (let h = 0; h < H; h++) {
    const q = cols(Q, h * dk, (h + 1) * dk);
    const k = cols(K, h * dk, (h + 1) * dk);
    const v = cols(V, h * dv, (h + 1) * dv);
    const scores = matmul(q, transpose(k)).map((row) => row.map((x) => beta * x));
    heads.push(matmul(softmaxRows(scores, mask), v));
  }
  return Q.map((_, i) => heads.flatMap((hm) => hm[i]));
}
