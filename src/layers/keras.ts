/**
 * Keras-style identifiers for initializers, regularizers and constraints.
 *
 * tfjs-layers resolves `'glorotUniform'`, `{className, config}` or an instance internally,
 * but does not export those resolvers from its public entry point, so the layers of this
 * package use these small equivalents. Accepted forms (as in Keras):
 * - a name: camelCase as in tfjs (`'glorotUniform'`, `'heNormal'`, `'l2'`, `'maxNorm'`),
 *   Keras snake_case (`'glorot_uniform'`) or a class name (`'GlorotUniform'`);
 * - a serialized object `{className, config}` (what `getConfig()` writes);
 * - an instance (`tf.initializers.glorotUniform({seed: 1})`, `tf.regularizers.l2()`).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkOptions } from '../ops/options.js';
import { anything, defineSchema, migrateConfig, parseOptions, type Renamed, type Resolved, type Schema } from '../ops/schema.js';

// tfjs-layers' own names for these types sit in files under its dist/ folder, which a
// consumer's TypeScript cannot always reach (package "exports", moduleResolution NodeNext):
// the public types here are derived from its root entry only.
/** A tfjs-layers initializer instance (`tf.initializers.glorotUniform(...)`). */
export type Initializer = ReturnType<typeof tfl.initializers.glorotUniform>;
/** A tfjs-layers regularizer instance (`tf.regularizers.l2()`). */
export type Regularizer = ReturnType<typeof tfl.regularizers.l2>;
/** A tfjs-layers constraint instance (`tf.constraints.maxNorm(...)`). */
export type Constraint = ReturnType<typeof tfl.constraints.maxNorm>;
/** The base options of every tfjs-layers layer (`name`, `inputShape`, `trainable`, `dtype`, ...). */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
/** Keyword arguments of `Layer.call` (masks, `training`, and each layer's own). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tfjs-layers' own Kwargs type is {[key: string]: any}
export type Kwargs = { [key: string]: any };

/** An initializer as a name, a serialized `{className, config}` or an instance. */
export type InitializerLike = string | Initializer | tf.serialization.ConfigDict;
/** A regularizer as a name (`'l1'`, `'l2'`, `'l1l2'`), a serialized object or an instance. */
export type RegularizerLike = string | Regularizer | tf.serialization.ConfigDict;
/** A constraint as a name (`'maxNorm'`, `'unitNorm'`, `'nonNeg'`, `'minMaxNorm'`), a serialized object or an instance. */
export type ConstraintLike = string | Constraint | tf.serialization.ConfigDict;

type Factory = (args?: never) => unknown;

function camel(name: string): string {
  const c = name.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
  return c.charAt(0).toLowerCase() + c.slice(1);
}

function isInstance(x: unknown): x is tf.serialization.Serializable {
  return (
    x != null &&
    typeof x === 'object' &&
    typeof (x as { getClassName?: unknown }).getClassName === 'function' &&
    typeof (x as { getConfig?: unknown }).getConfig === 'function'
  );
}

function fromRegistry(id: tf.serialization.ConfigDict, kind: string, where: string, arg: string): unknown {
  const className = id['className'];
  if (typeof className !== 'string') {
    throw new Error(
      `${where}: ${arg} must be a ${kind} name, a {className, config} object or a ${kind} instance, got ${JSON.stringify(id)}`,
    );
  }
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) {
    throw new Error(`${where}: ${arg}: unknown ${kind} class '${className}' (not registered with tf.serialization.registerClass)`);
  }
  const [cls, fromConfig] = entry;
  return fromConfig(cls, (id['config'] ?? {}) as tf.serialization.ConfigDict);
}

function resolve(
  id: unknown,
  factories: Record<string, Factory>,
  kind: string,
  where: string,
  arg: string,
  factoryArgs: object = {},
): unknown {
  if (id == null) return null;
  if (isInstance(id)) return id;
  if (typeof id === 'string') {
    const name = camel(id);
    const factory = factories[name];
    if (typeof factory !== 'function') {
      throw new Error(
        `${where}: ${arg}: unknown ${kind} '${id}'; expected one of ${Object.keys(factories).join(', ')}, a {className, config} object or an instance`,
      );
    }
    try {
      return factory(factoryArgs as never);
    } catch (e) {
      throw new Error(`${where}: ${arg}: ${kind} '${id}' needs arguments; pass an instance instead (${(e as Error).message})`, {
        cause: e,
      });
    }
  }
  if (typeof id === 'object') return fromRegistry(id as tf.serialization.ConfigDict, kind, where, arg);
  throw new Error(`${where}: ${arg} must be a ${kind} name, a {className, config} object or a ${kind} instance, got ${String(id)}`);
}

/**
 * Resolves an initializer identifier; `fallback` when `id` is null/undefined. `seed` seeds an
 * initializer given by name (objects and instances carry their own seed).
 */
export function getInitializer(
  id: InitializerLike | undefined | null,
  fallback: string,
  where: string,
  arg: string,
  seed?: number | null,
): Initializer {
  const factoryArgs = seed != null && !['zeros', 'ones'].includes(camel(String(id ?? fallback))) ? { seed } : {};
  return resolve(
    id ?? fallback,
    tfl.initializers as unknown as Record<string, Factory>,
    'initializer',
    where,
    arg,
    factoryArgs,
  ) as Initializer;
}

/** Resolves a regularizer identifier; null when none is given. */
export function getRegularizer(id: RegularizerLike | undefined | null, where: string, arg: string): Regularizer | null {
  return resolve(id, tfl.regularizers as unknown as Record<string, Factory>, 'regularizer', where, arg) as Regularizer | null;
}

/** Resolves a constraint identifier; null when none is given. */
export function getConstraint(id: ConstraintLike | undefined | null, where: string, arg: string): Constraint | null {
  return resolve(id, tfl.constraints as unknown as Record<string, Factory>, 'constraint', where, arg) as Constraint | null;
}

/** `{className, config}` of an initializer/regularizer/constraint (null for none), as Keras writes it. */
export function serializeKerasObject(x: tf.serialization.Serializable | null | undefined): tf.serialization.ConfigDict | null {
  if (x == null) return null;
  return { className: x.getClassName(), config: x.getConfig() };
}

/** The Keras options of a layer's projection kernels and biases (Keras names and defaults). */
export interface ProjectionWeightArgs {
  /** Initializer of the projection kernels. Default 'glorotUniform'. */
  kernelInitializer?: InitializerLike;
  /** Initializer of the projection biases. Default 'zeros'. */
  biasInitializer?: InitializerLike;
  /** Regularizer of the projection kernels. Default none. */
  kernelRegularizer?: RegularizerLike | null;
  /** Regularizer of the projection biases. Default none. */
  biasRegularizer?: RegularizerLike | null;
  /** Constraint of the projection kernels. Default none. */
  kernelConstraint?: ConstraintLike | null;
  /** Constraint of the projection biases. Default none. */
  biasConstraint?: ConstraintLike | null;
}

const INITIALIZER = anything<InitializerLike>('an initializer name, a {className, config} object or an initializer instance');
const REGULARIZER = anything<RegularizerLike>('a regularizer name, a {className, config} object or a regularizer instance');
const CONSTRAINT = anything<ConstraintLike>('a constraint name, a {className, config} object or a constraint instance');

/**
 * The declaration of {@link ProjectionWeightArgs} (src/ops/schema.ts). The values are resolved
 * (and checked) by `getInitializer`, `getRegularizer` and `getConstraint`, which name the layer.
 */
export const PROJECTION_WEIGHT_SCHEMA = defineSchema<ProjectionWeightArgs>()({
  kernelInitializer: { check: INITIALIZER, defaultText: "'glorotUniform'", doc: 'Initializer of the projection kernels.' },
  biasInitializer: { check: INITIALIZER, defaultText: "'zeros'", doc: 'Initializer of the projection biases.' },
  kernelRegularizer: { check: REGULARIZER, defaultText: 'none', doc: 'Regularizer of the projection kernels.' },
  biasRegularizer: { check: REGULARIZER, defaultText: 'none', doc: 'Regularizer of the projection biases.' },
  kernelConstraint: { check: CONSTRAINT, defaultText: 'none', doc: 'Constraint of the projection kernels.' },
  biasConstraint: { check: CONSTRAINT, defaultText: 'none', doc: 'Constraint of the projection biases.' },
});

/** The names of {@link ProjectionWeightArgs}. */
export const PROJECTION_WEIGHT_KEYS = Object.keys(PROJECTION_WEIGHT_SCHEMA) as (keyof ProjectionWeightArgs)[];

/** The keys every tfjs `LayerArgs` may carry (accepted by every layer of this package). */
export const LAYER_ARG_KEYS: readonly string[] = [
  'inputShape',
  'batchInputShape',
  'batchSize',
  'dtype',
  'name',
  'trainable',
  'weights',
  'inputDType',
  // tfjs' deserializer tacks these onto a layer config before calling the constructor.
  'customObjects',
  'fastWeightInit',
];

/**
 * Throws a clear error for an option the layer does not know (typos would otherwise be
 * ignored): the layer, the key and a "did you mean" (src/ops/options.ts). tfjs-layers' own
 * LayerArgs (name, inputShape, ...) are always accepted.
 */
export function checkKnownArgs(args: object, known: readonly string[], where: string): void {
  checkOptions(args, [...known, ...LAYER_ARG_KEYS], where);
}

/**
 * Parses a layer's args against its schema (src/ops/schema.ts): tfjs' own LayerArgs are
 * accepted as they are, an old option name is an error that names the new one.
 */
export function parseLayerArgs<T>(schema: Schema<T>, args: object, where: string, renamed: Renamed = {}): Resolved<T> {
  return parseOptions(schema, args, where, { renamed, extraKeys: LAYER_ARG_KEYS });
}

/**
 * The `fromConfig` of a layer whose options were renamed: a config saved by an earlier
 * version (old names) is brought to today's names (`renamed`, then `migrate` for a change of
 * meaning) before the constructor sees it.
 *
 * @example
 * ```ts
 * static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
 *   return new cls(migrateLayerConfig(config, LAYER_RENAMES));
 * }
 * ```
 */
export function migrateLayerConfig(
  config: tf.serialization.ConfigDict,
  renamed: Renamed,
  migrate?: (config: tf.serialization.ConfigDict) => tf.serialization.ConfigDict,
): tf.serialization.ConfigDict {
  const c = migrateConfig(config as Record<string, unknown>, renamed) as tf.serialization.ConfigDict;
  return migrate ? migrate(c) : c;
}
