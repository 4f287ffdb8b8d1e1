/**
 * Seeding helpers shared by the model builders: the seed of each part of a seeded model, its
 * dropout layers and its kernel initializers. (The {@link SeededDropout} layer itself lives in
 * src/layers/seededDropout.ts.)
 */
import * as tfl from '@tensorflow/tfjs-layers';

import { SeededDropout } from '../layers/seededDropout.js';

/**
 * The seed of part `k` of a model built from `seed` (undefined when the model is unseeded).
 * @internal shared by the model builders
 */
export function partSeed(seed: number | undefined, k: number): number | undefined {
  return seed === undefined ? undefined : seed + k;
}

/**
 * A dropout layer for a builder: a {@link SeededDropout} when the builder has a seed, else
 * tfjs's own Dropout (unseeded, as before seeds existed, so unseeded models draw as they did).
 * @internal shared by the model builders
 */
export function builderDropout(rate: number, seed: number | undefined, name: string | undefined): tfl.layers.Layer {
  return seed === undefined ? tfl.layers.dropout({ rate, name }) : new SeededDropout({ rate, seed, name });
}

/** `{ kernelInitializer: glorotUniform({seed}) }` for a seeded builder, else `{}` (tfjs's default). @internal */
export function seededKernel(seed: number | undefined): { kernelInitializer?: ReturnType<typeof tfl.initializers.glorotUniform> } {
  return seed === undefined ? {} : { kernelInitializer: tfl.initializers.glorotUniform({ seed }) };
}
