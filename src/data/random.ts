/**
 * A small seeded pseudo-random generator (mulberry32 + Box-Muller) for the data utilities.
 *
 * Everything random in src/data draws from this generator in JavaScript rather than from
 * tf.random*, so a given seed produces the same numbers on every backend (cpu, wasm, webgpu,
 * tensorflow) and on every machine.
 */

/** A seeded stream of random numbers. Not cryptographic. */
export interface SeededRandom {
  /** The seed the stream started from (an unsigned 32-bit integer). */
  readonly seed: number;
  /** Uniform on [0, 1). */
  uniform(): number;
  /** Standard normal N(0, 1) (Box-Muller; the second value of each pair is cached). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[];
  /** Fisher-Yates shuffle in place of a typed array; returns the same array. */
  shuffleTyped<A extends Int32Array | Uint32Array | Float32Array | Float64Array>(items: A): A;
}

function checkSeed(fn: string, seed: number): number {
  if (typeof seed !== 'number' || !Number.isFinite(seed) || !Number.isInteger(seed)) {
    throw new Error(`${fn}: seed must be a finite integer, got ${String(seed)}`);
  }
  return seed >>> 0;
}

/**
 * Creates a seeded random stream (mulberry32 for uniforms, Box-Muller for normals).
 *
 * @param seed any finite integer; it is reduced to an unsigned 32-bit integer.
 * @example
 * ```ts
 * import { seededRandom } from 'uhop';
 * const rng = seededRandom(42);
 * const u = rng.uniform();   // in [0, 1)
 * const z = rng.normal();    // N(0, 1)
 * const i = rng.int(10);     // 0..9
 * ```
 */
export function seededRandom(seed: number): SeededRandom {
  const start = checkSeed('seededRandom', seed);
  let state = start;
  let spare: number | null = null;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (): number => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    let u1 = uniform();
    while (u1 === 0) u1 = uniform();
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  const int = (n: number): number => {
    if (!Number.isInteger(n) || n < 1) throw new Error(`seededRandom.int: n must be a positive integer, got ${n}`);
    return Math.floor(uniform() * n);
  };
  function shuffleAny<T extends { length: number; [i: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(uniform() * (i + 1));
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }
  return {
    seed: start,
    uniform,
    normal,
    int,
    shuffle: <T>(items: T[]) => shuffleAny(items),
    shuffleTyped: <A extends Int32Array | Uint32Array | Float32Array | Float64Array>(items: A) => shuffleAny(items),
  };
}

/** Checks an optional seed argument of a public data function and returns it (default 0). */
export function seedOption(fn: string, seed: number | undefined, fallback = 0): number {
  if (seed === undefined) return fallback;
  if (typeof seed !== 'number' || !Number.isFinite(seed) || !Number.isInteger(seed)) {
    throw new Error(`${fn}: seed must be a finite integer, got ${String(seed)}`);
  }
  return seed;
}
