/**
 * The call plumbing of `MultiHeadAttention` (and so of `UHopAttention`), apart from the
 * attention itself: how `(query, {value, key, attentionMask})` becomes a list of layer inputs
 * and back, the boolean mask over the scores (attention mask, Keras masks, causal mask), the
 * dense projections in and out, and the head split/merge over the attention axes.
 *
 * Why a module of its own: the layers only decide what happens between the head split and the
 * head merge (`computeAttention`), so this file holds everything Keras' MultiHeadAttention does
 * around `_compute_attention`, once.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Kwargs } from './keras.js';
import { allowedMask, type MaskType } from '../ops/masks.js';

type Shape = tfl.Shape;
export type AnyTensor = tf.Tensor | tfl.SymbolicTensor;

/** Which layer input is which, in the order they are passed to `Layer.apply`. */
export type AttentionInputRole = 'query' | 'value' | 'key' | 'attentionMask';

export const ROLES: readonly AttentionInputRole[] = ['query', 'value', 'key', 'attentionMask'];

/** How one node of an attention layer is called. */
export interface CallSpec {
  /**
   * The role(s) of each layer input, e.g. ['query', 'value', 'attentionMask']; one tensor
   * passed in several roles is one input ('query+value'): tfjs-layers' executor disposes a
   * tensor that a node lists twice before its other consumers run.
   */
  roles: string[];
  useCausalMask: boolean;
  returnAttentionScores: boolean;
}

/** Index of the input that plays `role` (-1 when none does). */
export function roleIndex(roles: readonly string[], role: AttentionInputRole): number {
  return roles.findIndex((group) => group.split('+').includes(role));
}

function validRoles(roles: unknown, n: number): roles is string[] {
  if (!Array.isArray(roles) || roles.length !== n || roles.some((r) => typeof r !== 'string')) return false;
  const all = (roles as string[]).flatMap((r) => r.split('+'));
  return (
    all.every((r) => ROLES.includes(r as AttentionInputRole)) &&
    new Set(all).size === all.length &&
    (roles[0] as string).split('+').includes('query')
  );
}

export function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

export function isSymbolic(x: unknown): x is tfl.SymbolicTensor {
  return x instanceof tfl.SymbolicTensor;
}

function describe(x: unknown): string {
  if (x instanceof tf.Tensor) return `a tensor [${x.shape}]`;
  if (isSymbolic(x)) return `a symbolic tensor [${x.shape}]`;
  if (Array.isArray(x)) return `an array of ${x.length}`;
  return x === null ? 'null' : typeof x;
}

/**
 * Flattens `(query, {value, key, attentionMask})` into the list of layer inputs, or reads a
 * list back (functional models hand the layer its inputs as a list, without the options;
 * `remembered` is the structure of the layer's node, used when no `inputRoles` come along).
 */
export function normalizeCall(
  where: string,
  inputs: unknown,
  kwargs: Kwargs,
  remembered: CallSpec | null,
): { list: AnyTensor[]; spec: CallSpec } {
  const hasNamed = kwargs.value != null || kwargs.key != null || kwargs.attentionMask != null;
  const flag = (name: 'useCausalMask' | 'returnAttentionScores', fallback: boolean): boolean => {
    const v = kwargs[name];
    if (v == null) return fallback;
    if (typeof v !== 'boolean') throw new Error(`${where}: ${name} must be a boolean, got ${String(v)}`);
    return v;
  };
  if (Array.isArray(inputs)) {
    if (hasNamed) {
      throw new Error(
        `${where}: pass the query alone as the first argument when value/key/attentionMask are given as options, got ${describe(inputs)} and options`,
      );
    }
    const list = inputs as AnyTensor[];
    let roles = kwargs.inputRoles as string[] | undefined;
    if (roles != null) {
      if (!validRoles(roles, list.length)) {
        throw new Error(
          `${where}: inputRoles must name the role(s) of each of the ${list.length} inputs ('query' first; one input in several roles as 'query+value'), from ${ROLES.join(', ')}; got ${JSON.stringify(roles)}`,
        );
      }
    } else if (remembered && remembered.roles.length === list.length) {
      roles = remembered.roles;
    } else {
      if (list.length < 1 || list.length > 4) {
        throw new Error(`${where}: a list of inputs must be [query, value?, key?, attentionMask?], got ${list.length} inputs`);
      }
      roles = ROLES.slice(0, list.length) as string[];
    }
    const fb = remembered ?? { useCausalMask: false, returnAttentionScores: false };
    return {
      list,
      spec: {
        roles: roles.slice(),
        useCausalMask: flag('useCausalMask', fb.useCausalMask),
        returnAttentionScores: flag('returnAttentionScores', fb.returnAttentionScores),
      },
    };
  }
  if (!(inputs instanceof tf.Tensor) && !isSymbolic(inputs)) {
    throw new Error(`${where}: query must be a tensor or a symbolic tensor, got ${describe(inputs)}`);
  }
  const list: AnyTensor[] = [inputs];
  const roles: string[] = ['query'];
  if (kwargs.key != null && kwargs.value == null) {
    throw new Error(`${where}: key was given without value; pass {value, key} (the value is required whenever the key is)`);
  }
  for (const role of ['value', 'key', 'attentionMask'] as const) {
    const t = kwargs[role];
    if (t == null) continue;
    if (!(t instanceof tf.Tensor) && !isSymbolic(t))
      throw new Error(`${where}: ${role} must be a tensor or a symbolic tensor, got ${describe(t)}`);
    const same = list.indexOf(t);
    if (same >= 0) {
      roles[same] += `+${role}`;
    } else {
      list.push(t);
      roles.push(role);
    }
  }
  return {
    list,
    spec: { roles, useCausalMask: flag('useCausalMask', false), returnAttentionScores: flag('returnAttentionScores', false) },
  };
}

/** The inputs of a call by role: value defaults to the query, key to the value. */
export function tensorsByRole(
  list: readonly tf.Tensor[],
  spec: CallSpec,
): { query: tf.Tensor; value: tf.Tensor; key: tf.Tensor; attentionMask?: tf.Tensor } {
  const get = (role: AttentionInputRole): tf.Tensor | undefined => {
    const i = roleIndex(spec.roles, role);
    return i < 0 ? undefined : list[i];
  };
  const query = get('query') as tf.Tensor;
  const value = get('value') ?? query;
  const key = get('key') ?? value;
  return { query, value, key, attentionMask: get('attentionMask') };
}

/** Throws when a layer called in a functional model is called again with another structure. */
export function checkSameSpec(where: string, before: CallSpec, spec: CallSpec): void {
  const same =
    before.roles.join() === spec.roles.join() &&
    before.useCausalMask === spec.useCausalMask &&
    before.returnAttentionScores === spec.returnAttentionScores;
  if (!same) {
    throw new Error(
      `${where}: called in a functional model with inputs [${spec.roles}] and useCausalMask=${spec.useCausalMask}, returnAttentionScores=${spec.returnAttentionScores}, ` +
        `but it was called before with [${before.roles}], useCausalMask=${before.useCausalMask}, returnAttentionScores=${before.returnAttentionScores}. ` +
        'tfjs-layers does not pass per-call options when it runs a model, so one layer must be called the same way each time; use a second layer (weights can be shared by copying).',
    );
  }
}

/** The input shapes by role (value defaults to the query's, key to the value's). */
export function shapesByRole(inputShape: Shape | Shape[], spec: CallSpec | null): { query: Shape; value: Shape; key: Shape; mask?: Shape } {
  const shapes: Shape[] = Array.isArray(inputShape[0]) || inputShape.length === 0 ? (inputShape as Shape[]) : [inputShape as Shape];
  const roles = spec && spec.roles.length === shapes.length ? spec.roles : (ROLES.slice(0, shapes.length) as string[]);
  const by = (r: AttentionInputRole) => {
    const i = roleIndex(roles, r);
    return i < 0 ? undefined : shapes[i];
  };
  const query = by('query') as Shape;
  const value = by('value') ?? query;
  const key = by('key') ?? value;
  return { query, value, key, mask: by('attentionMask') };
}

/** Projects x [B, ..., d] with kernel [d, ...out] and bias [...out] (Keras' EinsumDense as one matMul). */
export function project(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, inDims: number): tf.Tensor {
  const lead = x.shape.slice(0, x.rank - inDims);
  const outDims = kernel.shape.slice(inDims);
  const inSize = prod(kernel.shape.slice(0, inDims));
  const outSize = prod(outDims);
  // Not tf.fused.matMul with the bias: the wasm backend checks the rank of a reshaped
  // bias against its original shape ([heads, dim]) and refuses it.
  let y = tf.matMul(tf.reshape(x, [prod(lead), inSize]), tf.reshape(kernel, [inSize, outSize]));
  if (bias) y = tf.add(y, tf.reshape(bias, [outSize]));
  return tf.reshape(y, [...lead, ...outDims]);
}

/**
 * How the inputs' axes map to the attention core's layout [B*F, heads, L, dh]: the batch and
 * the free (non-attention) axes F fold into the first dim, the attention axes into L.
 */
export class HeadLayout {
  readonly rank: number;
  readonly free: number[];
  readonly B: number;
  readonly Fdims: number[];
  readonly Aq: number[];
  readonly Ak: number[];
  readonly BF: number;
  readonly Lq: number;
  readonly Sk: number;
  private readonly perm: number[];
  private readonly identityPerm: boolean;

  constructor(
    query: tf.Tensor,
    value: tf.Tensor,
    readonly axes: number[],
    readonly numHeads: number,
  ) {
    const rank = query.rank;
    this.rank = rank;
    const inner = Array.from({ length: rank - 2 }, (_, i) => i + 1);
    this.free = inner.filter((a) => !axes.includes(a));
    this.B = query.shape[0];
    this.Fdims = this.free.map((a) => query.shape[a]);
    this.Aq = axes.map((a) => query.shape[a]);
    this.Ak = axes.map((a) => value.shape[a]);
    this.BF = this.B * prod(this.Fdims);
    this.Lq = prod(this.Aq);
    this.Sk = prod(this.Ak);
    // Projected [B, d..., H, dh] -> [B, F..., H, A..., dh].
    this.perm = [0, ...this.free, rank - 1, ...axes, rank];
    this.identityPerm = this.perm.every((p, i) => p === i);
  }

  /** The scores' shape [B, F..., H, Aq..., Ak...] (what returnAttentionScores gives). */
  get scoresShape(): number[] {
    return [this.B, ...this.Fdims, this.numHeads, ...this.Aq, ...this.Ak];
  }

  /** Projected [B, d..., H, dh] -> [B*F, H, L, dh] (L = Lq for the query, Sk for key and value). */
  split(x: tf.Tensor, L: number): tf.Tensor {
    const t = this.identityPerm ? x : tf.transpose(x, this.perm);
    return tf.reshape(t, [this.BF, this.numHeads, L, x.shape[this.rank]]);
  }

  /** Heads [B*F, H, Lq, dv] -> [B, d..., H, dv] (ready for the output projection). */
  merge(heads: tf.Tensor): tf.Tensor {
    const dv = heads.shape[3] as number;
    const o = tf.reshape(heads, [this.B, ...this.Fdims, this.numHeads, ...this.Aq, dv]);
    if (this.identityPerm) return o;
    const inv = new Array<number>(this.perm.length);
    this.perm.forEach((p, i) => (inv[p] = i));
    return tf.transpose(o, inv);
  }

  /** A mask over the scores [B, F..., 1|H, Aq..., Ak...] in the core layout [B*F, 1|H, Lq, Sk]. */
  maskToCore(mask: tf.Tensor): tf.Tensor {
    return tf.reshape(mask, [this.BF, mask.shape[1 + this.free.length] as number, this.Lq, this.Sk]);
  }
}

/**
 * The boolean mask over the scores [B, F..., 1|H, Aq..., Ak...] from the attention mask (in
 * `maskType`'s form), the inputs' Keras masks (rank 3) and the causal mask, combined as Keras'
 * MultiHeadAttention does; undefined when there is none.
 */
export function buildAttentionMask(
  where: string,
  maskType: MaskType,
  query: tf.Tensor,
  value: tf.Tensor,
  attentionMask: tf.Tensor | undefined,
  useCausalMask: boolean,
  axes: number[],
  scoresShape: number[],
): tf.Tensor | undefined {
  let m: tf.Tensor | undefined = attentionMask ? tf.cast(allowedMask(attentionMask, maskType, where, 'attentionMask'), 'bool') : undefined;
  const and = (a: tf.Tensor | undefined, b: tf.Tensor) => (a ? tf.logicalAnd(a, b) : b);
  if (query.rank === 3) {
    const qm = (query as unknown as { kerasMask?: tf.Tensor | null }).kerasMask;
    const vm = (value as unknown as { kerasMask?: tf.Tensor | null }).kerasMask;
    if (qm) m = and(m, tf.expandDims(tf.cast(qm, 'bool'), 2));
    if (vm) m = and(m, tf.expandDims(tf.cast(vm, 'bool'), 1));
  }
  if (useCausalMask) {
    if (axes.length !== 1) {
      throw new Error(`${where}: useCausalMask needs exactly one attention axis, got attentionAxes [${axes}]`);
    }
    const T = query.shape[axes[0]];
    const S = value.shape[axes[0]];
    m = and(m, tf.cast(tf.linalg.bandPart(tf.ones([T, S]), -1, 0), 'bool'));
  }
  if (!m) return undefined;
  const rank = scoresShape.length;
  const nA = axes.length;
  if (m.rank > rank) {
    throw new Error(
      `${where}: attentionMask must be broadcastable to the scores [${scoresShape}] (without the heads axis, e.g. [B, T, S]), got [${attentionMask?.shape}]`,
    );
  }
  while (m.rank < rank) m = tf.expandDims(m, -(2 * nA) - 1);
  const headAxis = rank - 2 * nA - 1;
  for (let i = 0; i < rank; i++) {
    if (m.shape[i] !== 1 && m.shape[i] !== scoresShape[i]) {
      throw new Error(
        `${where}: the attention mask${attentionMask ? ` [${attentionMask.shape}]` : ''} does not broadcast to the scores [${scoresShape}] (batch, ..., heads, query positions, key positions); expected e.g. [B, T, S]`,
      );
    }
  }
  const target = scoresShape.slice();
  target[headAxis] = m.shape[headAxis];
  return tf.broadcastTo(m, target);
}
