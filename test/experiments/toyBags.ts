/**
 * A small seeded MIL data set for the experiment tests: n bags of 2 to 1 + maxSize instances
 * with `features` normal features; a positive bag (every odd one) has `shift` added to every
 * feature of one random instance, so the label is learnable from a single instance.
 */
import { seededRandom } from '../../src/data/random.js';
import type { Bag, MilDataset } from '../../src/data/mil.js';

export function toyBags(n: number, seed: number, { features = 4, maxSize = 6, shift = 2 } = {}): MilDataset {
  const F = features;
  const rng = seededRandom(seed);
  const bags: Bag[] = Array.from({ length: n }, (_, i) => {
    const size = 2 + rng.int(maxSize - 1);
    const label = i % 2;
    const instances = new Float32Array(size * F);
    for (let k = 0; k < instances.length; k++) instances[k] = rng.normal();
    if (label) for (let f = 0; f < F; f++) instances[rng.int(size) * F + f] += shift;
    return { id: i + 1, label, size, instances };
  });
  return { name: 'toy', bags, numFeatures: F };
}
