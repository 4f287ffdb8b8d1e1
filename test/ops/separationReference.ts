/**
 * float64 references of the separation maps, written independently of src/ops/separation.ts
 * (plain JS, bisection for entmax), shared by the op tests and the retrieval-core tests.
 */
import type { SeparationKind } from '../../src/ops/types.js';

/** tau of alpha-entmax, p_i = max((alpha-1) x_i - tau, 0)^(1/(alpha-1)), by 200 float64 bisection steps. */
export function refTau(x: number[], alpha: number): number {
  const am1 = alpha - 1;
  const m = Math.max(...x) * am1;
  let lo = m - 1;
  let hi = m - Math.pow(1 / x.length, am1);
  const f = (tau: number) => x.reduce((s, xi) => s + Math.pow(Math.max(am1 * xi - tau, 0), 1 / am1), 0) - 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) >= 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** alpha-entmax of one row in float64; alpha = 1 is softmax. */
export function refEntmax(x: number[], alpha: number): number[] {
  if (alpha === 1) {
    const m = Math.max(...x);
    const e = x.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }
  const tau = refTau(x, alpha);
  const p = x.map((xi) => Math.pow(Math.max((alpha - 1) * xi - tau, 0), 1 / (alpha - 1)));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

/** Row-wise reference over a flat [rows, n] array; `alpha` may differ per row. */
export function refRows(flat: number[], n: number, alpha: number | number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < flat.length / n; r++)
    out.push(...refEntmax(flat.slice(r * n, (r + 1) * n), typeof alpha === 'number' ? alpha : alpha[r]));
  return out;
}

/** softmax with an extra zero logit, one row, float64. */
export function refSoftmax1(x: number[]): number[] {
  const m = Math.max(0, ...x);
  const e = x.map((v) => Math.exp(v - m));
  const den = Math.exp(-m) + e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / den);
}

/** softmax over the k largest scores of one row (zeros elsewhere), float64. */
export function refTopk(x: number[], k: number): number[] {
  const keep = new Set(
    x
      .map((v, i) => [v, i])
      .sort((a, b) => b[0] - a[0])
      .slice(0, k)
      .map(([, i]) => i),
  );
  const kept = refEntmax(
    x.filter((_, i) => keep.has(i)),
    1,
  );
  let j = 0;
  return x.map((_, i) => (keep.has(i) ? kept[j++] : 0));
}

/** The float64 reference of `separation(kind, options)` on one row. */
export function refSeparation(x: number[], kind: SeparationKind, options: { alpha?: number; topK?: number }): number[] {
  switch (kind) {
    case 'softmax':
      return refEntmax(x, 1);
    case 'sparsemax':
      return refEntmax(x, 2);
    case 'entmax15':
      return refEntmax(x, 1.5);
    case 'entmax':
      return refEntmax(x, options.alpha ?? 1.5);
    case 'softmax1':
      return refSoftmax1(x);
    case 'topk':
      return refTopk(x, options.topK ?? 1);
    case 'max':
      return refHardmax(x);
    default:
      throw new Error(`no float64 reference for ${kind}`);
  }
}

/** A row-wise float64 reference over a flat [rows, n] array, with an optional 0/1 mask per row (masked memories get 0; the rest get the map of the kept scores alone). */
export function rowwise(n: number, row: (x: number[]) => number[], mask?: number[][]): (flat: number[]) => number[] {
  return (flat) => {
    const out: number[] = [];
    for (let r = 0; r < flat.length / n; r++) {
      const x = flat.slice(r * n, (r + 1) * n);
      if (!mask) {
        out.push(...row(x));
        continue;
      }
      const kept = row(x.filter((_, j) => mask[r][j] !== 0));
      let k = 0;
      out.push(...x.map((_, j) => (mask[r][j] !== 0 ? kept[k++] : 0)));
    }
    return out;
  };
}

/** hardmax of one row: one-hot at the maximum, ties split evenly. */
export function refHardmax(x: number[]): number[] {
  const m = Math.max(...x);
  const n = x.filter((v) => v === m).length;
  return x.map((v) => (v === m ? 1 / n : 0));
}
