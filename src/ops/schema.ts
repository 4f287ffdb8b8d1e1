/**
 * Declarative option schemas: each option of a layer, op or builder is declared ONCE, with
 * its check (type and range), its default, a one-line doc and, where it applies only to some
 * settings of another option, that condition. The declaration drives:
 * - validation: one set of checkers, one message form
 *   ("<Layer or fn>: <option> must be <expected>, got <value>");
 * - unknown keys: an error with a "did you mean" (./options.ts), and a renamed option given
 *   under its old name is an error that names the new one ("'scaling' was renamed 'beta' in 0.2.0");
 * - defaults: `parseOptions` returns every option with its default filled in;
 * - getConfig: `configOf` writes the options that rebuild the layer;
 * - fromConfig: `migrateConfig` turns a config saved by an earlier version into today's names.
 *
 * The TypeScript interfaces stay the public documentation (TSDoc per field); `defineSchema<T>()`
 * makes the compiler check that a schema declares exactly the keys of its interface, with a
 * check whose type matches the field's.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { checkOptions, type Renamed } from './options.js';

export type { Renamed };

/** A value check: a type guard and the words for what it accepts (used after "must be"). */
export interface Check<T> {
  /** e.g. 'an integer >= 1', "one of 'dot', 'cosine'". */
  readonly expected: string;
  readonly test: (value: unknown) => value is T;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value) || (value !== null && typeof value === 'object' && value.constructor === Object)) {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/** An integer >= min (and <= max when given); any integer without bounds. */
export function int(min = -Infinity, max?: number): Check<number> {
  return {
    expected: max == null ? (min === -Infinity ? 'an integer' : `an integer >= ${min}`) : `an integer in [${min}, ${max}]`,
    test: (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && (max == null || v <= max),
  };
}

/** Bounds of a number: `gt`/`ge` below, `lt`/`le` above (finite unless `finite: false`). */
export interface NumberRange {
  gt?: number;
  ge?: number;
  lt?: number;
  le?: number;
}

/** A finite number within `range` (e.g. `{ gt: 0 }` is "a finite number > 0"). */
export function number(range: NumberRange = {}): Check<number> {
  const { gt, ge, lt, le } = range;
  const lo = gt != null ? `> ${gt}` : ge != null ? `>= ${ge}` : '';
  const hi = lt != null ? `< ${lt}` : le != null ? `<= ${le}` : '';
  const expected =
    lo && hi
      ? `a number in ${gt != null ? '(' : '['}${gt ?? ge}, ${lt ?? le}${lt != null ? ')' : ']'}`
      : `a finite number${lo ? ` ${lo}` : ''}${hi ? ` ${hi}` : ''}`;
  return {
    expected,
    test: (v): v is number =>
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (gt == null || v > gt) &&
      (ge == null || v >= ge) &&
      (lt == null || v < lt) &&
      (le == null || v <= le),
  };
}

/** true or false. */
export const bool: Check<boolean> = { expected: 'a boolean', test: (v): v is boolean => typeof v === 'boolean' };

/** One of the given strings. */
export function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return {
    expected: `one of ${values.map((v) => `'${v}'`).join(', ')}`,
    test: (v): v is T => typeof v === 'string' && (values as readonly string[]).includes(v),
  };
}

/** A check written by hand (`expected` says what it accepts). */
export function custom<T>(expected: string, test: (value: unknown) => boolean): Check<T> {
  return { expected, test: test as (value: unknown) => value is T };
}

/** Anything (checked elsewhere, e.g. a Keras initializer that is resolved by name). */
export function anything<T>(expected = 'any value'): Check<T> {
  return { expected, test: (_v): _v is T => true };
}

/** One option's declaration. */
export interface OptionSpec<T> {
  /** One line: what the option does (the README tables and the TSDoc say the same). */
  readonly doc: string;
  readonly check: Check<T>;
  /** The value when the option is absent (undefined: none, or computed where `defaultText` says). */
  readonly default?: T;
  /** The default in words where it is computed (e.g. '1/sqrt(hiddenSize)'); else the default's value. */
  readonly defaultText?: string;
  /**
   * The option means something only when `option` is one of `is`: given otherwise it is an
   * error (`strict`, the default) or ignored; getConfig writes it only then.
   */
  readonly appliesIf?: { readonly option: string; readonly is: readonly unknown[]; readonly strict?: boolean };
  /** The option must be given (an absent one is an error). Default false. */
  readonly required?: boolean;
  /** null is a value to check (an error unless the check accepts it), not "absent". Default false. */
  readonly nullIsValue?: boolean;
  /** Not written by getConfig (e.g. an option that only affects construction). Default false. */
  readonly noConfig?: boolean;
}

/** A schema: one declaration per option of `T`. */
export type Schema<T> = { readonly [K in keyof T & string]-?: OptionSpec<Exclude<T[K], undefined | null>> };

/**
 * Declares the schema of the options interface `T` (checked by the compiler in both
 * directions: every key of `T` is declared, nothing else is, and each check's type fits).
 *
 * @example
 * ```ts
 * interface PadOptions { maxSize?: number; truncate?: boolean }
 * const PAD_SCHEMA = defineSchema<PadOptions>()({
 *   maxSize: { check: int(1), doc: 'Largest bag kept.' },
 *   truncate: { check: bool, default: false, doc: 'Cut longer bags instead of throwing.' },
 * });
 * ```
 */
export function defineSchema<T>() {
  return <S extends Schema<T>>(schema: S & Record<Exclude<keyof S, keyof T>, never>): S => schema;
}

/** Options with their defaults filled in (a computed default stays undefined). */
export type Resolved<T> = { -readonly [K in keyof T]-?: Exclude<T[K], null> | (undefined extends T[K] ? undefined : never) };

/** Throws "<where>: <name> must be <expected>, got <value>" unless `check` accepts `value`. */
export function checkValue<T>(value: unknown, check: Check<T>, name: string, where: string): T {
  if (!check.test(value)) throw new Error(`${where}: ${name} must be ${check.expected}, got ${describe(value)}`);
  return value;
}

/**
 * Checks `options` against `schema` and fills in the defaults: unknown keys are errors with a
 * "did you mean" (`extraKeys` are accepted without a check: e.g. tfjs' own LayerArgs), a key in
 * `renamed` is an error that names its new name, each given value is checked, and an option
 * given where `appliesIf` says it means nothing is an error.
 *
 * @example
 * ```ts
 * const o = parseOptions(PAD_SCHEMA, { maxSize: 3 }, 'padBags'); // { maxSize: 3, truncate: false }
 * parseOptions(PAD_SCHEMA, { maxSize: 0 }, 'padBags');           // Error: padBags: maxSize must be an integer >= 1, got 0
 * ```
 */
export function parseOptions<T>(
  schema: Schema<T>,
  options: unknown,
  where: string,
  { renamed = {}, extraKeys = [] }: { renamed?: Renamed; extraKeys?: readonly string[] } = {},
): Resolved<T> {
  const given = (options ?? {}) as Record<string, unknown>;
  const keys = Object.keys(schema);
  for (const [old, r] of Object.entries(renamed)) {
    if (given[old] !== undefined && !keys.includes(old)) {
      throw new Error(
        `${where}: '${old}' was renamed '${r.to}' in ${r.since}${r.note ? ` (${r.note})` : ''}; got ${old}: ${describe(given[old])}`,
      );
    }
  }
  checkOptions(options, [...keys, ...extraKeys], where);
  const out: Record<string, unknown> = {};
  const specs = schema as Record<string, OptionSpec<unknown>>;
  for (const key of keys) {
    const spec = specs[key];
    const v = given[key];
    const absent = v === undefined || (v === null && !spec.nullIsValue);
    if (absent && spec.required) checkValue(v, spec.check, key, where);
    out[key] = absent ? spec.default : checkValue(v, spec.check, key, where);
  }
  for (const key of keys) {
    const cond = specs[key].appliesIf;
    const v = given[key];
    if (!cond || (cond.strict ?? true) === false || v == null) continue;
    if (!cond.is.includes(out[cond.option])) {
      throw new Error(
        `${where}: ${key} applies to ${cond.option} ${cond.is.map(describe).join(' or ')} only, got ${cond.option} ${describe(out[cond.option])}`,
      );
    }
  }
  return out as Resolved<T>;
}

/**
 * The config of resolved options (what getConfig writes): every option but those marked
 * `noConfig`, those that do not apply (`appliesIf`) and those without a value.
 */
export function configOf<T>(schema: Schema<T>, values: object): tf.serialization.ConfigDict {
  const out: tf.serialization.ConfigDict = {};
  const specs = schema as Record<string, OptionSpec<unknown>>;
  const vals = values as Record<string, unknown>;
  for (const key of Object.keys(schema)) {
    const spec = specs[key];
    const v = vals[key];
    if (spec.noConfig || v == null) continue;
    if (spec.appliesIf && !spec.appliesIf.is.includes(vals[spec.appliesIf.option])) continue;
    out[key] = v as tf.serialization.ConfigDictValue;
  }
  return out;
}

/**
 * A config saved by an earlier version, in today's names: each key of `renamed` present in
 * `config` moves to its new name (unless the new name is set too). Returns a new object.
 */
export function migrateConfig<C extends Record<string, unknown>>(config: C, renamed: Renamed): C {
  const out: Record<string, unknown> = { ...config };
  for (const [old, r] of Object.entries(renamed)) {
    if (!(old in out)) continue;
    if (out[r.to] == null) out[r.to] = out[old];
    delete out[old];
  }
  return out as C;
}

/** The defaults of a schema in words, for docs and the README check: option -> text. */
export function defaultsText<T>(schema: Schema<T>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, spec] of Object.entries(schema as Record<string, OptionSpec<unknown>>)) {
    out[key] = spec.defaultText ?? (spec.default === undefined ? undefined : describe(spec.default));
  }
  return out;
}
