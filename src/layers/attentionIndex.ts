/**
 * The attention part of src/layers: MultiHeadAttention (the base, runs in Node), UHopAttention
 * (its U-Hop subclass, a drop-in for MultiHeadAttention), replaceAttention, and folder save/load.
 */
export {
  UHopAttention,
  HOPFIELD_ATTENTION_KEYS,
  type HopfieldAttentionOptions,
  type UHopAttentionArgs,
  type UHopAttentionOptions,
  type UHopAttentionCallArgs,
  type AttentionInputRole,
} from './uhopAttention.js';
export {
  MultiHeadAttention,
  registerMultiHeadAttention,
  type MultiHeadAttentionArgs,
  type MultiHeadAttentionCallArgs,
  type AttentionMasks,
} from './multiHeadAttention.js';
export { replaceAttention, attentionProjectionWeights, type AttentionLayerFilter } from './replaceAttention.js';
export { rewriteKerasAttentionNodes } from './io.js';
