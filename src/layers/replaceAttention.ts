/**
 * `replaceAttention(model, options)`: a copy of a tfjs-layers model whose MultiHeadAttention
 * layers are `UHopAttention` layers with the same configuration and projection weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { UHopAttention, HOPFIELD_ATTENTION_KEYS, type UHopAttentionArgs, type UHopAttentionOptions } from './uhopAttention.js';
import { MultiHeadAttention, MHA_PROJECTION_KEYS } from './multiHeadAttention.js';
import { checkKnownArgs } from './keras.js';
import { suggestKeys } from '../ops/options.js';

type Layer = tfl.layers.Layer;

/** What `replaceAttention` needs from a graph node (tfjs-layers' `Node`, duck-typed). */
interface GraphNode {
  outboundLayer: Layer;
  inputTensors: tfl.SymbolicTensor[];
  outputTensors: tfl.SymbolicTensor[];
  callArgs?: Kwargs;
}

/** tfjs-layers' own MultiHeadAttention keeps its projections in these sublayers. */
interface TfjsMultiHeadAttention {
  _queryDense?: Layer;
  _keyDense?: Layer;
  _valueDense?: Layer;
  _outputDense?: Layer;
}

const PROJECTION_CONFIG_KEYS = [...MHA_PROJECTION_KEYS, 'name', 'trainable', 'dtype'];

function isMultiHeadAttention(layer: Layer): boolean {
  return layer.getClassName() === 'MultiHeadAttention';
}

/** Which MultiHeadAttention layers `replaceAttention` replaces: their names, or a predicate. */
export type AttentionLayerFilter = readonly string[] | ((layer: tfl.layers.Layer) => boolean);

function isContainer(layer: Layer): layer is tfl.LayersModel {
  return layer instanceof tfl.LayersModel;
}

/**
 * The projection weights of a MultiHeadAttention-like layer, in UHopAttention's order
 * (query, key, value, output; kernel then bias each). Reads tfjs-layers'
 * MultiHeadAttention from its sublayers (its own `getWeights()` is empty) and UHopAttention /
 * this package's MultiHeadAttention from its weights (without Phi0). Empty when the layer has
 * not created its weights yet (tfjs' MultiHeadAttention creates them at its first eager call).
 *
 * @example
 * ```ts
 * const weights = attentionProjectionWeights(mha);   // 8 tensors (4 without bias)
 * uhop.setWeights([...weights, ...uhop.getWeights().slice(weights.length)]);
 * ```
 */
export function attentionProjectionWeights(layer: Layer): tf.Tensor[] {
  if (layer instanceof MultiHeadAttention) {
    const n = layer.useBias ? 8 : 4;
    return layer.built ? layer.getWeights().slice(0, n) : [];
  }
  const t = layer as unknown as TfjsMultiHeadAttention;
  if (t._queryDense !== undefined || t._outputDense !== undefined) {
    const subs = [t._queryDense, t._keyDense, t._valueDense, t._outputDense];
    if (subs.some((s) => s == null)) return [];
    return subs.flatMap((s) => (s as Layer).getWeights());
  }
  return layer.getWeights();
}

/** UHopAttention arguments from a MultiHeadAttention config plus the Hopfield options. */
function uhopArgsFrom(layer: Layer, options: UHopAttentionOptions): UHopAttentionArgs {
  const config = layer.getConfig();
  const args: Record<string, unknown> = {};
  for (const k of PROJECTION_CONFIG_KEYS) {
    if (config[k] !== undefined && config[k] !== null) args[k] = structuredClone(config[k]);
  }
  // tfjs' MultiHeadAttention writes the attention axes it resolved at build time; keep them.
  return { ...(args as unknown as UHopAttentionArgs), ...options };
}

function cloneLayer(layer: Layer): Layer {
  const cls = layer.constructor as unknown as tf.serialization.SerializableConstructor<Layer> & {
    fromConfig: (c: tf.serialization.SerializableConstructor<Layer>, cfg: tf.serialization.ConfigDict) => Layer;
  };
  if (typeof cls.fromConfig !== 'function') {
    throw new Error(`replaceAttention: layer '${layer.name}' (${layer.getClassName()}) has no static fromConfig, so it cannot be copied`);
  }
  return cls.fromConfig(cls, structuredClone(layer.getConfig()));
}

function copyWeights(from: Layer, to: Layer): void {
  const w = from.getWeights();
  const target = to.getWeights();
  if (w.length !== target.length) {
    throw new Error(
      `replaceAttention: layer '${from.name}' (${from.getClassName()}) has ${w.length} weights but its copy has ${target.length}`,
    );
  }
  if (w.length) to.setWeights(w);
}

/** Copies a MultiHeadAttention's projections into a built UHopAttention (Phi0 keeps its init). */
function copyProjections(from: Layer, to: UHopAttention): void {
  const proj = attentionProjectionWeights(from);
  if (proj.length === 0) return; // nothing created yet: the copy keeps its fresh initialization
  const current = to.getWeights();
  const n = to.useBias ? 8 : 4;
  if (proj.length !== n) {
    throw new Error(
      `replaceAttention: '${from.name}' holds ${proj.length} projection weights, expected ${n} (query, key, value, output ${to.useBias ? 'kernels and biases' : 'kernels'})`,
    );
  }
  proj.forEach((p, i) => {
    if (!tf.util.arraysEqual(p.shape, current[i].shape)) {
      throw new Error(
        `replaceAttention: '${from.name}' projection weight ${i} has shape [${p.shape}], the UHopAttention copy expects [${current[i].shape}]`,
      );
    }
  });
  to.setWeights([...proj, ...current.slice(n)]);
}

function mapKwargs(callArgs: Kwargs | undefined, tensors: Map<number, tfl.SymbolicTensor>, layerName: string): Kwargs {
  const out: Kwargs = {};
  for (const [k, v] of Object.entries(callArgs ?? {})) {
    if (v instanceof tfl.SymbolicTensor) {
      const mapped = tensors.get(v.id);
      if (!mapped)
        throw new Error(`replaceAttention: layer '${layerName}' takes ${k} = '${v.name}', which is not computed from the model's inputs`);
      out[k] = mapped;
    } else {
      out[k] = v;
    }
  }
  return out;
}

/**
 * Returns a new model equal to `model` except that every MultiHeadAttention layer (tfjs-layers'
 * or this package's) becomes a `UHopAttention` with the same configuration, the same
 * projection weights and the given Hopfield/U-Hop options. Every other layer is copied with
 * its weights (the original model is left untouched; nested models are handled recursively).
 * The copy is not compiled.
 *
 * With the default options (softmax, dot product, no feature map) the new model computes the
 * same outputs as the original. With U-Hop on, it starts from the same projections (and, with
 * the default 'isometry' Phi0 and fitSteps 0, still from the same outputs).
 *
 * A U-Hop fit (featureMap with fitSteps > 0) reads every key, so it is refused in causal
 * self-attention; replace only the other layers there with `only`.
 *
 * @param model a functional `tf.LayersModel` (or Sequential) holding MultiHeadAttention layers.
 * @param options Hopfield options added to each replaced layer, e.g. `{featureMap: 'linear'}`.
 * @param only which MultiHeadAttention layers to replace (names or a predicate); default all.
 *   The others are copied unchanged. Names are looked up in nested models too.
 *
 * @example
 * ```ts
 * import { replaceAttention } from 'uhop';
 * import { loadModel } from 'uhop/node';
 * const base = await loadModel('./transformer');              // holds MultiHeadAttention layers
 * const uhop = replaceAttention(base, { featureMap: 'linear', fitSteps: 5 }, ['cross_attention']);
 * uhop.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
 * ```
 */
/** Depth of replaceAttention's recursion into nested models (names are checked at depth 0). */
let nesting = 0;

export function replaceAttention(model: tfl.LayersModel, options: UHopAttentionOptions = {}, only?: AttentionLayerFilter): tfl.LayersModel {
  if (!(model instanceof tfl.LayersModel)) {
    throw new Error(
      `replaceAttention: model must be a tf.LayersModel (tfl.model / tfl.sequential / loadModel), got ${model === null ? 'null' : typeof model === 'object' ? (model as object).constructor?.name : typeof model}`,
    );
  }
  if (options == null || typeof options !== 'object')
    throw new Error(`replaceAttention: options must be an object, got ${String(options)}`);
  checkKnownArgs(options, HOPFIELD_ATTENTION_KEYS, 'replaceAttention');
  // Validate the options once, with a clear message, before touching the model.
  new UHopAttention({
    numHeads: Array.isArray(options.beta) ? Math.max(1, options.beta.length) : 1,
    keyDim: 1,
    ...options,
    name: undefined,
  });
  if (only != null && typeof only !== 'function' && !(Array.isArray(only) && only.every((n) => typeof n === 'string'))) {
    throw new Error(`replaceAttention: only must be an array of layer names or a function (layer) => boolean, got ${String(only)}`);
  }
  if (Array.isArray(only) && nesting === 0) {
    // A name that matches no MultiHeadAttention layer is a typo: say so rather than replace nothing.
    const names: string[] = [];
    const collect = (m: tfl.LayersModel): void => {
      for (const l of m.layers) {
        if (isContainer(l)) collect(l);
        else if (isMultiHeadAttention(l)) names.push(l.name);
      }
    };
    collect(model);
    for (const name of only as readonly string[]) {
      if (!names.includes(name)) {
        const close = suggestKeys(name, names);
        throw new Error(
          `replaceAttention: only names '${name}', which is no MultiHeadAttention layer of the model${close.length ? ` (did you mean ${close.map((c) => `'${c}'`).join(' or ')}?)` : ''}; its MultiHeadAttention layers: ${names.length ? names.join(', ') : 'none'}`,
        );
      }
    }
  }
  const selected = (layer: Layer): boolean =>
    isMultiHeadAttention(layer) && (only == null || (typeof only === 'function' ? only(layer) : only.includes(layer.name)));

  const replace = (layer: Layer): Layer => {
    if (!isContainer(layer)) return selected(layer) ? new UHopAttention(uhopArgsFrom(layer, options)) : cloneLayer(layer);
    nesting++; // nested models: the names were checked against the whole model already
    try {
      return replaceAttention(layer, options, only);
    } finally {
      nesting--;
    }
  };
  const fill = (from: Layer, to: Layer): void => {
    if (isContainer(from)) return; // weights copied by the recursive call
    if (to instanceof UHopAttention && !(from instanceof MultiHeadAttention && from.getClassName() === to.getClassName()))
      copyProjections(from, to);
    else copyWeights(from, to);
  };

  if (model instanceof tfl.Sequential) {
    const copy = tfl.sequential({ name: model.name });
    const pairs: [Layer, Layer][] = [];
    for (const layer of model.layers) {
      const n = replace(layer);
      copy.add(n);
      pairs.push([layer, n]);
    }
    for (const [a, b] of pairs) fill(a, b);
    return copy;
  }

  const tensors = new Map<number, tfl.SymbolicTensor>();
  const layers = new Map<Layer, Layer>();
  const newInputs = model.inputs.map((t, i) => {
    const inputLayer = model.inputLayers[i] as Layer & { batchInputShape: tfl.Shape; dtype: tf.DataType };
    const x = tfl.input({ batchShape: inputLayer.batchInputShape, dtype: inputLayer.dtype, name: inputLayer.name });
    tensors.set(t.id, x);
    return x;
  });
  const depths = Object.keys(model.nodesByDepth)
    .map(Number)
    .sort((a, b) => b - a);
  for (const depth of depths) {
    for (const node of model.nodesByDepth[depth] as unknown as GraphNode[]) {
      const layer = node.outboundLayer;
      if (layer.getClassName() === 'InputLayer') continue;
      const inputs = node.inputTensors.map((t) => {
        const mapped = tensors.get(t.id);
        if (!mapped)
          throw new Error(`replaceAttention: input '${t.name}' of layer '${layer.name}' is not computed from the model's inputs`);
        return mapped;
      });
      let copy = layers.get(layer);
      if (!copy) {
        copy = replace(layer);
        layers.set(layer, copy);
      }
      const kwargs = mapKwargs(node.callArgs, tensors, layer.name);
      let outputs: tfl.SymbolicTensor | tfl.SymbolicTensor[];
      if (isMultiHeadAttention(layer) && kwargs.value != null) {
        // tfjs' MultiHeadAttention node: inputs [query, value, key?], tensors also in kwargs.
        outputs = copy.apply(inputs[0], kwargs) as tfl.SymbolicTensor | tfl.SymbolicTensor[];
      } else {
        outputs = copy.apply(inputs.length === 1 ? inputs[0] : inputs, kwargs) as tfl.SymbolicTensor | tfl.SymbolicTensor[];
      }
      const outList = Array.isArray(outputs) ? outputs : [outputs];
      if (outList.length !== node.outputTensors.length) {
        throw new Error(
          `replaceAttention: the copy of layer '${layer.name}' gave ${outList.length} outputs, the original ${node.outputTensors.length}`,
        );
      }
      node.outputTensors.forEach((t, i) => tensors.set(t.id, outList[i]));
    }
  }
  for (const [from, to] of layers) fill(from, to);
  const outputs = model.outputs.map((t) => {
    const mapped = tensors.get(t.id);
    if (!mapped) throw new Error(`replaceAttention: model output '${t.name}' was not reached while copying the graph`);
    return mapped;
  });
  return tfl.model({ inputs: newInputs, outputs, name: model.name });
}
