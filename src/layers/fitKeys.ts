/**
 * What a U-Hop layer's Stage-I fit sees in a call: its projected keys and its fit mask. The
 * layers (`UHopAttention`, `Hopfield`, `HopfieldPooling`, `HopfieldLayer`) give them by their
 * public `uhopKeys` method, which `AlternatingFitCallback` uses instead of rebuilding the
 * layers' projections.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The memory sets a U-Hop layer fits on in one call: keys [B|1, H, S, dk] and a 0/1 fit mask [B|1, 1|H, S]. */
// A type, not an interface, so that tf.tidy can return it (a TensorContainer needs an index signature).
export type UHopKeys = {
  keys: tf.Tensor;
  /** 1 = the memory takes part in the fit; absent when every memory does. */
  mask?: tf.Tensor;
};

/** A layer that tells which keys and fit mask its own U-Hop fit uses for a call's inputs. */
export interface UHopKeysHook {
  uhopKeys(inputs: tf.Tensor | tf.Tensor[], kwargs?: Record<string, unknown>): UHopKeys;
}

/**
 * The keys and fit mask exactly as the retrieval core (`multiHeadRetrieval`,
 * src/ops/retrievalCore.ts) hands them to the fit: with a memory (padding) mask the keys are
 * broadcast to the batch `B` and zeroed where the mask is 0; the fit mask is `fitMask` (else
 * the memory mask) as 0/1 floats [B|1, 1|H, S]. Tests compare both with what the layers' fit
 * receives (`fitPhi`), so the two cannot drift apart silently.
 */
export function fitSets(k: tf.Tensor, B: number, memoryMask?: tf.Tensor, fitMask?: tf.Tensor): UHopKeys {
  return tf.tidy(() => {
    const [, H, S, dk] = k.shape as number[];
    const mem3 = memoryMask ? (memoryMask.rank === 2 ? tf.expandDims(memoryMask, 1) : memoryMask) : undefined;
    let keys = k;
    if (mem3) {
      const kB = k.shape[0] === B ? k : tf.broadcastTo(k, [B, H, S, dk]);
      const keep = tf.broadcastTo(tf.expandDims(tf.notEqual(mem3, 0), 3), [B, H, S, 1]);
      keys = tf.where(tf.broadcastTo(keep, kB.shape), kB, tf.zerosLike(kB));
    }
    const fm = fitMask ?? mem3;
    const fm3 = fm && fm.rank === 2 ? tf.expandDims(fm, 1) : fm;
    // A copy, not the layer's own tensor: the caller owns (and disposes) what it gets.
    return fm3 ? { keys: tf.clone(keys), mask: tf.cast(tf.notEqual(fm3, 0), 'float32') } : { keys: tf.clone(keys) };
  });
}
