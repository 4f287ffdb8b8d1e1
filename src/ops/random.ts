/**
 * Seeded random numbers for Stage I and the feature maps' initializers: drawn in JS from the
 * package's mulberry32 stream, in float64, and uploaded once, so that a seed gives the same
 * values on every backend. Also the two float64 matrix helpers the initializers compose with.
 * @internal
 */
import { seededRandom } from '../data/random.js';

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
