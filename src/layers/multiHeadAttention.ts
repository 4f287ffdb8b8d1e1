/**
 * `MultiHeadAttention` that runs in Node and inside functional models.
 *
 * tfjs-layers 4.22 has a MultiHeadAttention class, but its Node bundle (what
 * `import '@tensorflow/tfjs-layers'` loads in Node) does not contain it, so it is neither
 * importable nor registered there, and a model.json holding one fails with "Unknown layer".
 * This class is `UHopAttention` with the Hopfield options locked to plain softmax attention:
 * the same arguments, config keys, call signature and weight shapes as tfjs/Keras
 * MultiHeadAttention. It registers itself under the class name 'MultiHeadAttention' when no
 * other class holds that name, so such model.json files load; `replaceAttention` turns its
 * instances (or tfjs' own) into `UHopAttention`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UHopAttention, type MultiHeadAttentionArgs } from './uhopAttention.js';

/**
 * Standard multi-head dot-product attention (Vaswani et al. 2017), as tfjs-layers and Keras
 * define `MultiHeadAttention`, with its weights tracked on the layer (so `getWeights`, `fit`
 * and `save` see them) and value/key/attentionMask passed as layer inputs (so it runs inside
 * functional models).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { MultiHeadAttention } from 'uhop';
 *
 * const target = tfl.input({ shape: [8, 16] });
 * const source = tfl.input({ shape: [4, 16] });
 * const mha = new MultiHeadAttention({ numHeads: 2, keyDim: 2 });
 * const out = mha.apply(target, { value: source }) as tfl.SymbolicTensor; // [null, 8, 16]
 * const model = tfl.model({ inputs: [target, source], outputs: out });
 * ```
 */
export class MultiHeadAttention extends UHopAttention {
  static override className = 'MultiHeadAttention';

  constructor(args: MultiHeadAttentionArgs) {
    super(args, false);
  }

  /** Nothing to add: the Hopfield options are fixed to plain attention. */
  protected override hopfieldConfig(): tf.serialization.ConfigDict {
    return {};
  }
}

/**
 * Registers `MultiHeadAttention` for deserialization unless a class of that name is
 * registered already (e.g. tfjs-layers' own, when a bundler loaded it first).
 * Returns true when this package's class now holds the name.
 */
export function registerMultiHeadAttention(force = false): boolean {
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  const existing = map['MultiHeadAttention'];
  if (existing && !force) return existing[0] === MultiHeadAttention;
  tf.serialization.registerClass(MultiHeadAttention);
  return true;
}
registerMultiHeadAttention();
