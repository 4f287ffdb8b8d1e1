/**
 * The goal check of issue 15, item 1: is a U-Hop variant at or below every baseline in every
 * cell of the retrieval sweep? A cell is one memory size of the capacity sweep (masked queries)
 * or one (memory size, noise std) of the noise sweep. Results of several runs of
 * `uhop retrieval` can be pooled (the memory sets are drawn per seed and M, so runs of the same
 * data, seeds and sizes share them).
 */
import type { RetrievalRow } from './retrieval.js';

/** The baselines every variant is held against: no fitted Phi. */
export const GOAL_BASELINES = ['dense', 'sparse', 'entmax15', 'uhn-euclidean', 'uhn-manhattan'] as const;

/** One variant's tally. */
export interface GoalCheckRow {
  method: string;
  maskedWon: number;
  maskedCells: number;
  noiseWon: number;
  noiseCells: number;
  /** The cell where the variant is furthest above the best baseline, by (error + 0.01) ratio. */
  worst: { cell: string; error: number; best: number; bestMethod: string } | null;
}

/** 'masked' names the capacity sweep's cells: its queries are masked unless the run chose another `query`. */
function cellKey(row: Pick<RetrievalRow, 'sweep' | 'M' | 'noise'>): string {
  return row.sweep === 'noise' ? `M=${row.M} noise ${row.noise}` : `masked M=${row.M}`;
}

/** Rounds to the 2 decimals the tables print, so a win is what a reader of the table sees. */
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * Tallies, for each variant, the cells where its mean error (rounded to 2 decimals) is at or
 * below the lowest baseline mean (rounded likewise). Cells without every baseline are skipped;
 * a variant's cell count is the cells where it ran.
 *
 * @param rows capacity and noise rows of one or more results files (beta rows are ignored)
 * @param variants the methods to check (default: every non-baseline method in `rows`)
 * @example
 * ```ts
 * const rows = [...a.capacity, ...a.noise, ...b.capacity, ...b.noise];
 * for (const r of retrievalGoalCheck(rows)) console.log(r.method, r.noiseWon, '/', r.noiseCells);
 * ```
 */
export function retrievalGoalCheck(rows: readonly RetrievalRow[], variants?: readonly string[]): GoalCheckRow[] {
  const baselines = new Set<string>(GOAL_BASELINES);
  const cells = new Map<string, Map<string, number>>();
  for (const row of rows) {
    if (row.sweep !== 'capacity' && row.sweep !== 'noise') continue;
    const key = cellKey(row);
    const cell = cells.get(key) ?? new Map<string, number>();
    if (cell.has(row.method)) throw new Error(`retrievalGoalCheck: method '${row.method}' appears twice in cell ${key}`);
    cell.set(row.method, row.error.mean);
    cells.set(key, cell);
  }
  const methods = variants ?? [...new Set(rows.map((r) => r.method as string))].filter((m) => !baselines.has(m));
  return methods.map((method) => {
    const out: GoalCheckRow = { method, maskedWon: 0, maskedCells: 0, noiseWon: 0, noiseCells: 0, worst: null };
    let worstRatio = -Infinity;
    for (const [key, cell] of cells) {
      const error = cell.get(method);
      if (error === undefined || !GOAL_BASELINES.every((b) => cell.has(b))) continue;
      let best = Infinity;
      let bestMethod = '';
      for (const b of GOAL_BASELINES) {
        const e = cell.get(b) as number;
        if (e < best) [best, bestMethod] = [e, b];
      }
      const won = round2(error) <= round2(best);
      if (key.startsWith('masked')) {
        out.maskedCells++;
        if (won) out.maskedWon++;
      } else {
        out.noiseCells++;
        if (won) out.noiseWon++;
      }
      const ratio = (error + 0.01) / (best + 0.01);
      if (ratio > worstRatio) {
        worstRatio = ratio;
        out.worst = { cell: key, error, best, bestMethod };
      }
    }
    return out;
  });
}

/** The goal-check table in Markdown, one line per variant. */
export function goalCheckMarkdown(check: readonly GoalCheckRow[]): string {
  const lines = ['| variant | masked cells won | noise cells won | worst cell (variant / best baseline) |', '|---|---|---|---|'];
  for (const r of check) {
    const w = r.worst ? `${r.worst.cell}: ${r.worst.error.toFixed(2)} / ${r.worst.bestMethod} ${r.worst.best.toFixed(2)}` : '-';
    lines.push(`| ${r.method} | ${r.maskedWon}/${r.maskedCells} | ${r.noiseWon}/${r.noiseCells} | ${w} |`);
  }
  return lines.join('\n');
}
