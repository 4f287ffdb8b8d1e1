/**
 * Keras-format topology fixes shared by every model loader (browser-safe: JSON in, JSON out).
 * `uhop/node`'s `loadModel` applies them to files; in a browser, apply
 * `rewriteKerasAttentionNodes` to `modelTopology` in a custom `tf.io` handler before
 * `tf.loadLayersModel`.
 */

type Json = Record<string, unknown>;
const ATTENTION_CLASSES = ['MultiHeadAttention', 'UHopAttention'];
const TENSOR_ARGS: [string, string][] = [
  ['value', 'value'],
  ['key', 'key'],
  ['attention_mask', 'attentionMask'],
  ['attentionMask', 'attentionMask'],
];

function isTensorRef(x: unknown): x is [string, number, number] {
  return Array.isArray(x) && x.length === 3 && typeof x[0] === 'string' && Number.isInteger(x[1]) && Number.isInteger(x[2]);
}

/**
 * Keras 2 writes `mha(query, value, attention_mask=m)` as ONE inbound entry (the query) whose
 * kwargs hold the other tensors as `[layer, node, tensor]` references; tfjs-layers would pass
 * those references on as plain arrays. This rewrites such nodes of attention layers into one
 * entry per distinct tensor plus `input_roles`, the form `UHopAttention` writes itself.
 * Works in place on the Keras-format (snake_case) topology, nested models included.
 *
 * @example
 * ```ts
 * import { rewriteKerasAttentionNodes } from 'uhop';
 * const json = await (await fetch('/model/model.json')).json();
 * rewriteKerasAttentionNodes(json.modelTopology); // then load with a tf.io handler
 * ```
 */
export function rewriteKerasAttentionNodes(topology: unknown): void {
  if (topology == null || typeof topology !== 'object') return;
  const t = topology as Json;
  const root = (t['model_config'] ?? t) as Json;
  const config = root['config'] as Json | undefined;
  const layers = config?.['layers'];
  if (!Array.isArray(layers)) return;
  for (const layer of layers as Json[]) {
    if (layer == null || typeof layer !== 'object') continue;
    rewriteKerasAttentionNodes(layer); // nested models
    if (!ATTENTION_CLASSES.includes(layer['class_name'] as string)) continue;
    const nodes = layer['inbound_nodes'];
    if (!Array.isArray(nodes)) continue;
    layer['inbound_nodes'] = nodes.map((node: unknown) => {
      if (!Array.isArray(node) || node.length !== 1 || !Array.isArray(node[0]) || node[0].length < 4) return node;
      const [name, nodeIndex, tensorIndex, kwargs] = node[0] as [string, number, number, Json | null];
      if (kwargs == null || typeof kwargs !== 'object' || !TENSOR_ARGS.some(([k]) => isTensorRef(kwargs[k]))) return node;
      const refs: [string, number, number][] = [[name, nodeIndex, tensorIndex]];
      const roles = ['query'];
      const rest: Json = {};
      for (const [k, v] of Object.entries(kwargs)) {
        const role = TENSOR_ARGS.find(([key]) => key === k)?.[1];
        if (!role) {
          rest[k] = v;
          continue;
        }
        if (v == null) continue;
        if (!isTensorRef(v))
          throw new Error(
            `loadModel: layer '${String(layer['name'])}' has a ${k} that is neither a tensor reference nor null: ${JSON.stringify(v)}`,
          );
        const same = refs.findIndex((r) => r[0] === v[0] && r[1] === v[1] && r[2] === v[2]);
        if (same >= 0) roles[same] += `+${role}`;
        else {
          refs.push(v);
          roles.push(role);
        }
      }
      const newKwargs = { ...rest, input_roles: roles };
      return refs.map((r) => [...r, newKwargs]);
    });
  }
}
