/**
 * A U-Hop association built by hand for the layer tests, from the layer's projected keys:
 * Phi fitted by `fitFeatureMap` (the public Stage-I op) on each memory set, then
 * scores = beta sim(Phi(q), Phi(k)) and the masked softmax in float64 JS. It checks the layers'
 * forward pass (a layer that skipped the fit in its call, or fitted on other keys, fails it);
 * `fitLossTrace` runs a different code path and cannot.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fitFeatureMap } from '../../src/ops/fit.js';
import { applyFeatureMap } from '../../src/ops/featureMap.js';
import type { FeatureMapKind, SimilarityKind } from '../../src/ops/types.js';
import type { UHopConfig } from '../../src/layers/hopfieldCore.js';
import { softmaxRows } from './reference.js';

type A4 = number[][][][];

/** Similarity of two feature vectors, float64, as DESIGN.md defines it (distances negative). */
export function sim64(a: number[], b: number[], kind: SimilarityKind): number {
  switch (kind) {
    case 'dot':
      return a.reduce((s, x, i) => s + x * b[i], 0);
    case 'euclidean':
      return -a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0);
    case 'manhattan':
      return -a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0);
    case 'cosine': {
      const n = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
      return sim64(a, b, 'dot') / (n(a) * n(b));
    }
  }
}

/**
 * The association [B, H, L, S] of U-Hop retrieval (one step, softmax).
 *
 * @param q projected queries [B][H][L][dk]
 * @param k projected keys [Bk][H][S][dk], Bk = B (one memory set per sample) or 1 (shared)
 * @param phi0 the layer's Phi0 parameters (leading dim H)
 * @param cfg the layer's resolved U-Hop options (`layer.uhop`)
 * @param mask [Bk][S] 1 = a real memory, or undefined
 */
export function uhopAssociation(
  q: A4,
  k: A4,
  phi0: tf.Tensor[],
  cfg: UHopConfig,
  beta: number,
  kind: SimilarityKind,
  mask?: number[][],
): A4 {
  return tf.tidy(() => {
    const H = k[0].length;
    const S = k[0][0].length;
    const keys = tf.tensor(k);
    const maskT = mask ? tf.tensor(mask.map((row) => Array.from({ length: H }, () => row))) : undefined;
    const { featureMap, lossTrace } = fitFeatureMap(
      keys,
      { kind: cfg.featureMap as FeatureMapKind, params: phi0 },
      {
        steps: cfg.fitSteps,
        lr: cfg.fitLr,
        loss: cfg.separationLoss,
        optimizer: cfg.fitOptimizer,
        rowNormalize: cfg.fitRowNormalize,
        mask: maskT,
        ...(cfg.separationLossT != null ? { t: cfg.separationLossT } : {}),
        ...(cfg.separationLossTau != null ? { tau: cfg.separationLossTau } : {}),
      },
    );
    lossTrace.dispose();
    const fq = applyFeatureMap(featureMap, tf.tensor(q)).arraySync() as A4;
    const fk = applyFeatureMap(featureMap, keys).arraySync() as A4;
    return fq.map((perHead, b) =>
      perHead.map((rows, h) => {
        const kb = fk[k.length === 1 ? 0 : b][h];
        const scores = rows.map((x) => kb.map((y) => beta * sim64(x, y, kind)));
        const m = mask ? rows.map(() => mask[k.length === 1 ? 0 : b]) : undefined;
        return softmaxRows(scores, m).map((r) => r.slice(0, S));
      }),
    );
  });
}

/** [L][H*d] -> [H][L][d]. */
export function splitHeads64(x: number[][], H: number): number[][][] {
  const d = x[0].length / H;
  return Array.from({ length: H }, (_, h) => x.map((row) => row.slice(h * d, (h + 1) * d)));
}

/** Max |a - b| over two nested arrays of the same shape. */
export function maxAbsDiff(a: unknown, b: unknown): number {
  const fa = (a as number[]).flat(4) as number[];
  const fb = (b as number[]).flat(4) as number[];
  if (fa.length !== fb.length) throw new Error(`maxAbsDiff: ${fa.length} vs ${fb.length} elements`);
  return fa.reduce((m, x, i) => Math.max(m, Math.abs(x - fb[i])), 0);
}
