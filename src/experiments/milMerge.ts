/**
 * Merging MIL benchmark runs: one table from several `uhop mil` runs that together cover the
 * repeats of one protocol. A 10-fold x 5-repeat run on a large data set (MUSK2) takes hours on
 * one core; split by seed (`--seed 3 --repeats 1`) and by method, it runs in parallel
 * processes, and the merge gives exactly the table that `--seed 0 --repeats 5` would, because
 * repeat r of seed s is the same computation as repeat 0 of seed s + r.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { MIL_METHOD_NAMES, summarizeMil, type MilBenchmarkResult, type MilConfig, type MilFoldResult } from './mil.js';

/** One input of {@link mergeMilRuns}: the folds of one run and the seed of its repeat 0. */
export interface MilRunPart {
  /** Where it came from (for messages). */
  source: string;
  /** Seed of repeat 0: a row's repeat r ran with seed `seed + r`. */
  seed: number;
  results: MilFoldResult[];
  /** Present when the part is a finished run's JSON. */
  dataset?: string;
  folds?: number;
  numBags?: number;
  numFeatures?: number;
  config?: MilConfig;
  seconds?: number;
}

/**
 * Reads a finished run's `<name>.json` or a (possibly unfinished) run's `<name>.folds.jsonl`.
 * A folds file takes its seed, folds and configuration from the `<name>.json` beside it when
 * that exists (a run that finished), else its seed is 0.
 */
export function readMilRunPart(path: string): MilRunPart {
  const fn = 'readMilRunPart';
  if (!existsSync(path)) throw new Error(`${fn}: ${path}: file not found`);
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.folds.jsonl')) {
    const results = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l) as MilFoldResult;
        } catch {
          throw new Error(`${fn}: ${path}: line ${i + 1} is not JSON`);
        }
      });
    results.forEach((r, i) => checkRow(r, `${path}: line ${i + 1}`));
    const sibling = path.replace(/\.folds\.jsonl$/, '.json');
    const meta: Partial<MilRunPart> = existsSync(sibling) ? readMilRunPart(sibling) : {};
    return { ...meta, source: path, seed: meta.seed ?? 0, results };
  }
  let json: Partial<MilBenchmarkResult>;
  try {
    json = JSON.parse(text) as Partial<MilBenchmarkResult>;
  } catch {
    throw new Error(`${fn}: ${path} is not JSON`);
  }
  if (!Array.isArray(json.results) || typeof json.seed !== 'number') {
    throw new Error(`${fn}: ${path} is not a 'uhop mil' result (expected 'results' and 'seed' fields)`);
  }
  json.results.forEach((r, i) => checkRow(r, `${path}: results[${i}]`));
  return {
    source: path,
    seed: json.seed,
    results: json.results,
    dataset: json.dataset,
    folds: json.folds,
    numBags: json.numBags,
    numFeatures: json.numFeatures,
    config: json.config,
    seconds: json.seconds,
  };
}

function checkRow(r: MilFoldResult, where: string): void {
  for (const key of ['repeat', 'fold', 'accuracy'] as const) {
    if (typeof r[key] !== 'number') throw new Error(`readMilRunPart: ${where}: '${key}' must be a number, got ${JSON.stringify(r[key])}`);
  }
  if (typeof r.method !== 'string') throw new Error(`readMilRunPart: ${where}: 'method' must be a string`);
}

/** Result of {@link mergeMilRuns}. */
export interface MilMergeResult {
  /** `repeats` counts the distinct seeds; each row's `repeat` is its absolute seed. */
  result: MilBenchmarkResult;
  /** One line per (method, seed) group left out: some of its folds are missing, or a later part reran it. */
  dropped: string[];
}

/**
 * Merges runs of one data set and protocol. Every (method, seed) group must have all `folds`
 * outer folds, from one part or from parts that each ran some of them (`--only-folds`, disjoint
 * folds): incomplete groups (a run that was stopped) are left out and listed in `dropped`, and
 * when several parts hold a complete group, the part given last wins (a rerun supersedes).
 * Parts of different data sets, fold counts or shared settings are an error, and so are kept
 * rows of one method run with different settings (see `mergedConfig`).
 *
 * @example
 * ```ts
 * const parts = ['musk2-uhop-s0.json', 'musk2-uhop-s1.json'].map(readMilRunPart);
 * const { result, dropped } = mergeMilRuns(parts);   // result.summary: one row per method
 * ```
 */
export function mergeMilRuns(parts: MilRunPart[], options: { folds?: number } = {}): MilMergeResult {
  const fn = 'mergeMilRuns';
  if (parts.length === 0) throw new Error(`${fn}: parts must not be empty`);
  const same = <K extends 'dataset' | 'folds' | 'numBags' | 'numFeatures'>(key: K): MilRunPart[K] => {
    const values = [...new Set(parts.map((p) => p[key]).filter((v) => v !== undefined))];
    if (values.length > 1) {
      throw new Error(`${fn}: the parts disagree on '${key}': ${parts.map((p) => `${basename(p.source)}=${String(p[key])}`).join(', ')}`);
    }
    return values[0] as MilRunPart[K];
  };
  const dataset = same('dataset');
  const folds = options.folds ?? same('folds') ?? 1 + Math.max(...parts.flatMap((p) => p.results.map((r) => r.fold)));

  // (method, absolute seed) -> one entry per part that holds rows of it, in the parts' order.
  const groups = new Map<string, { part: MilRunPart; rows: MilFoldResult[] }[]>();
  for (const part of parts) {
    const bySeed = new Map<string, MilFoldResult[]>();
    for (const r of part.results) {
      const key = `${r.method}\u0000${part.seed + r.repeat}`;
      if (!bySeed.has(key)) bySeed.set(key, []);
      bySeed.get(key)!.push({ ...r, repeat: part.seed + r.repeat });
    }
    for (const [key, rows] of bySeed) {
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push({ part, rows });
    }
  }
  const results: MilFoldResult[] = [];
  const dropped: string[] = [];
  const used = new Map<string, Set<MilRunPart>>(); // method -> the parts its kept rows come from
  for (const [key, holders] of groups) {
    const [method, seed] = key.split('\u0000');
    const covers = (rows: MilFoldResult[]) => new Set(rows.map((r) => r.fold)).size === folds && rows.length === folds;
    const complete = holders.filter((h) => covers(h.rows));
    const partial = holders.filter((x) => !complete.includes(x));
    // Runs split by outer fold (--only-folds 0,1,2,3,4 and 5,6,7,8,9 of one seed) together make
    // a complete group when their folds are disjoint: used only where no part is complete alone.
    const union = partial.flatMap((h) => h.rows);
    if (complete.length === 0 && partial.length > 1 && covers(union)) {
      results.push(...union);
      for (const h of partial) used.set(method, (used.get(method) ?? new Set()).add(h.part));
      continue;
    }
    for (const h of partial) {
      dropped.push(`${method} seed ${seed} in ${basename(h.part.source)}: ${h.rows.length} of ${folds} folds`);
    }
    // A rerun of a seed supersedes the earlier one: the part given last wins.
    for (const h of complete.slice(0, -1)) {
      dropped.push(
        `${method} seed ${seed} in ${basename(h.part.source)}: superseded by ${basename(complete[complete.length - 1].part.source)}`,
      );
    }
    if (complete.length > 0) {
      const kept = complete[complete.length - 1];
      results.push(...kept.rows);
      used.set(method, (used.get(method) ?? new Set()).add(kept.part));
    }
  }
  if (results.length === 0) throw new Error(`${fn}: no (method, seed) group has all ${folds} folds`);
  const config = mergedConfig(parts, used);
  const order = (m: string) => MIL_METHOD_NAMES.indexOf(m as MilFoldResult['method']);
  results.sort((a, b) => order(a.method) - order(b.method) || a.repeat - b.repeat || a.fold - b.fold);
  const seeds = [...new Set(results.map((r) => r.repeat))].sort((a, b) => a - b);
  const name = dataset ?? basename(parts[0].source).replace(/(-[^-]*)?(\.folds\.jsonl|\.json)$/, '');
  return {
    result: {
      dataset: name,
      numBags: same('numBags') ?? NaN,
      numFeatures: same('numFeatures') ?? NaN,
      config,
      folds,
      repeats: seeds.length,
      seed: seeds[0],
      results,
      summary: summarizeMil(name, results),
      seconds: results.reduce((s, r) => s + r.seconds, 0),
    },
    dropped,
  };
}

/**
 * The configuration of the merged run. The shared settings must agree between parts, and so
 * must each method's own patch between the parts whose rows of that method are kept; a
 * superseded run of a method may have had other settings (a method rerun after its settings
 * changed merges with the other methods' runs).
 */
function mergedConfig(parts: MilRunPart[], used: Map<string, Set<MilRunPart>>): MilConfig {
  const withConfig = parts.filter((p) => p.config);
  if (withConfig.length === 0) return {} as MilConfig;
  const shared = (c: MilConfig) => JSON.stringify({ ...c, methods: undefined });
  if (new Set(withConfig.map((p) => shared(p.config!))).size > 1) {
    throw new Error(
      `mergeMilRuns: the parts were run with different configurations (${withConfig.map((p) => basename(p.source)).join(', ')}); merge only runs of one configuration`,
    );
  }
  const methods: NonNullable<MilConfig['methods']> = {};
  for (const [method, holders] of used) {
    const configured = [...holders].filter((p) => p.config);
    const patches = new Set(configured.map((p) => JSON.stringify(p.config!.methods?.[method as MilFoldResult['method']] ?? {})));
    if (patches.size > 1) {
      throw new Error(
        `mergeMilRuns: ${method} was run with different settings in ${configured.map((p) => basename(p.source)).join(', ')}; merge only runs of one configuration`,
      );
    }
    const patch = configured[0]?.config!.methods?.[method as MilFoldResult['method']];
    if (patch) methods[method as MilFoldResult['method']] = patch;
  }
  return { ...withConfig[0].config!, methods };
}
