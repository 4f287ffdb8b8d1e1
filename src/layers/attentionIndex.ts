/**
 * The attention part of src/layers: UHopAttention (a drop-in for MultiHeadAttention),
 * a MultiHeadAttention that runs in Node, replaceAttention, and folder save/load.
 */
export {
  UHopAttention,
  HOPFIELD_ATTENTION_KEYS,
  type MultiHeadAttentionArgs,
  type HopfieldAttentionOptions,
  type UHopAttentionArgs,
  type UHopAttentionOptions,
  type UHopAttentionCallArgs,
  type AttentionInputRole,
} from './uhopAttention.js';
export { MultiHeadAttention, registerMultiHeadAttention } from './multiHeadAttention.js';
export { replaceAttention, attentionProjectionWeights, type AttentionLayerFilter } from './replaceAttention.js';
export { rewriteKerasAttentionNodes } from './io.js';
