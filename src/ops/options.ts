/**
 * Unknown-option checks, written once: every public options object of the package is
 * checked against its declared keys, and a typo is an error that names the function or
 * layer, the key, the closest known key ("did you mean") and the known keys. A key whose
 * value is `undefined` counts as absent (spreading partial options is common).
 */

/** Edit distance between two strings (insertions, deletions, substitutions; case-insensitive). */
function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (s[i - 1] === t[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[t.length];
}

/**
 * The known keys closest to `key` (at most two, tied for the smallest edit distance) among
 * those within an edit distance of max(2, a third of its length), or of which it is a prefix
 * (or that are a prefix of it).
 *
 * @example
 * ```ts
 * suggestKeys('epoch', ['epochs', 'batchSize']); // ['epochs']
 * ```
 */
export function suggestKeys(key: string, known: readonly string[]): string[] {
  const limit = Math.max(2, Math.floor(key.length / 3));
  const k = key.toLowerCase();
  const close = known
    .map((c) => ({ c, d: editDistance(key, c), prefix: c.toLowerCase().startsWith(k) || k.startsWith(c.toLowerCase()) }))
    .filter(({ d, prefix }) => d <= limit || (prefix && key.length >= 3))
    .sort((x, y) => x.d - y.d);
  // The closest ones only (a tie gives two).
  return close
    .filter(({ d }) => d === close[0]?.d)
    .slice(0, 2)
    .map(({ c }) => c);
}

/** Option names renamed in a release: old name -> new name, the version, and a note on a change of meaning. */
export interface Renamed {
  readonly [oldName: string]: { readonly to: string; readonly since: string; readonly note?: string };
}

/**
 * Throws for an option of `options` given under a name `renamed` lists: the error names the
 * new name and the version ("separation: 'k' was renamed 'topK' in 0.2.0").
 *
 * @example
 * ```ts
 * rejectRenamed({ k: 2 }, { k: { to: 'topK', since: '0.2.0' } }, 'separation'); // throws
 * ```
 */
export function rejectRenamed(options: unknown, renamed: Renamed, where: string): void {
  if (options == null || typeof options !== 'object') return;
  const given = options as Record<string, unknown>;
  for (const [old, r] of Object.entries(renamed)) {
    if (given[old] !== undefined) {
      const v = given[old];
      throw new Error(
        `${where}: '${old}' was renamed '${r.to}' in ${r.since}${r.note ? ` (${r.note})` : ''}; got ${old}: ${typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v))}`,
      );
    }
  }
}

/**
 * Throws for a key of `options` that is not in `known` (keys with the value undefined are
 * skipped). Also rejects a non-object `options`.
 *
 * @param options the options object as the caller gave it (undefined/null = none)
 * @param known the keys the function or layer accepts
 * @param where the function or layer, for the message (e.g. 'trainMilModel')
 * @param renamed options renamed in a release: given under the old name, the error names the new one
 *
 * @example
 * ```ts
 * checkOptions({ epoch: 1 }, ['epochs', 'batchSize'], 'trainMilModel');
 * // Error: trainMilModel: unknown option 'epoch' (did you mean 'epochs'?); known options: epochs, batchSize
 * ```
 */
export function checkOptions(options: unknown, known: readonly string[], where: string, { renamed }: { renamed?: Renamed } = {}): void {
  if (options == null) return;
  if (renamed) rejectRenamed(options, renamed, where);
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new Error(`${where}: options must be an object, got ${Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || known.includes(key)) continue;
    const close = suggestKeys(key, known);
    throw new Error(
      `${where}: unknown option '${key}'${close.length ? ` (did you mean ${close.map((c) => `'${c}'`).join(' or ')}?)` : ''}; known options: ${known.join(', ')}`,
    );
  }
}

/**
 * Declares the key list of an options interface, checked by the compiler in both directions:
 * every listed key exists in `T`, and every key of `T` is listed (a key added to the
 * interface but not to the list is a type error, not a silently rejected option).
 *
 * @example
 * ```ts
 * interface PadOptions { maxSize?: number; truncate?: boolean }
 * const PAD_KEYS = optionKeys<PadOptions>()(['maxSize', 'truncate']);
 * ```
 */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missingKeys: Exclude<keyof T, K[number]> }),
  ): K => keys;
}
