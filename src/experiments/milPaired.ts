/**
 * Paired comparison of two MIL methods over the outer folds they share. Fold noise on these
 * data sets (10-20 test bags per fold) is far larger than the differences between poolings, so
 * a difference of means over separate folds says little; the per-fold difference over the same
 * folds (same training bags, same test bags) is the comparison that can resolve a few points.
 */
import type { MilFoldResult } from './mil.js';

/** Differences `a - b` of one metric over the folds both methods ran. */
export interface MilPairedDifference {
  a: string;
  b: string;
  metric: 'accuracy' | 'auc';
  /** Folds (repeat, fold) present for both methods. */
  n: number;
  /** Mean of a - b (fractions, as the fold rows). */
  mean: number;
  /** Standard error of that mean: sample std (n - 1) / sqrt(n); NaN for n < 2. */
  standardError: number;
  wins: number;
  ties: number;
  losses: number;
}

/**
 * Per-fold differences `a - b` of `metric` over the (repeat, fold) pairs both methods have.
 *
 * @example
 * ```ts
 * const d = milPairedDifference(result.results, 'uhop', 'uhop-nofit', 'auc');
 * console.log(`${(100 * d.mean).toFixed(1)} ± ${(100 * d.standardError).toFixed(1)} (s.e.), ${d.wins}/${d.ties}/${d.losses}`);
 * ```
 */
export function milPairedDifference(
  results: readonly MilFoldResult[],
  a: string,
  b: string,
  metric: 'accuracy' | 'auc',
): MilPairedDifference {
  const key = (r: MilFoldResult) => `${r.repeat}/${r.fold}`;
  const of = (method: string) => {
    const m = new Map<string, number>();
    for (const r of results) {
      if (r.method !== method) continue;
      if (m.has(key(r))) throw new Error(`milPairedDifference: method '${method}' has fold ${key(r)} (repeat/fold) twice`);
      m.set(key(r), r[metric]);
    }
    return m;
  };
  const [ra, rb] = [of(a), of(b)];
  const diffs = [...ra].filter(([k]) => rb.has(k)).map(([k, v]) => v - (rb.get(k) as number));
  const n = diffs.length;
  const mean = n ? diffs.reduce((s, d) => s + d, 0) / n : NaN;
  const variance = n > 1 ? diffs.reduce((s, d) => s + (d - mean) ** 2, 0) / (n - 1) : NaN;
  // A tie is an equal score up to float noise (scores are ratios of small counts).
  const eps = 1e-9;
  return {
    a,
    b,
    metric,
    n,
    mean,
    standardError: Math.sqrt(variance / n),
    wins: diffs.filter((d) => d > eps).length,
    ties: diffs.filter((d) => Math.abs(d) <= eps).length,
    losses: diffs.filter((d) => d < -eps).length,
  };
}

/** Every pair of the given methods (in that order, a before b), accuracy and AUC, one line each, in points. */
export function milPairedReport(results: readonly MilFoldResult[], methods: readonly string[], dataset: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < methods.length; i++) {
    for (let j = i + 1; j < methods.length; j++) {
      for (const metric of ['accuracy', 'auc'] as const) {
        const d = milPairedDifference(results, methods[i], methods[j], metric);
        if (d.n === 0) continue;
        const pts = (x: number) => (Number.isNaN(x) ? '-' : (100 * x).toFixed(1).replace(/^-(0\.0)$/, '$1'));
        const sign = Number(pts(d.mean)) >= 0 ? '+' : ''; // '+0.0', not '-0.0', for a tiny negative mean
        lines.push(
          `${dataset}: ${d.a} - ${d.b} (${d.n} folds) ${metric}: ${sign}${pts(d.mean)} ± ${pts(d.standardError)} (s.e.), wins/ties/losses ${d.wins}/${d.ties}/${d.losses}`,
        );
      }
    }
  }
  return lines;
}
