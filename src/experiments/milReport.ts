/**
 * Reporting for the MIL benchmark: the reference numbers from the literature, a comparison
 * table, and a bar chart with error bars (vega-lite rendered headless to SVG).
 */
import type { MilBenchmarkResult, MilSummaryRow } from './mil.js';
import { vegaLiteSvg } from './report.js';

/** Published numbers for one method on one data set (fractions, not percent). */
export interface MilReference {
  /** Which of our methods it corresponds to. */
  method: string;
  accuracy?: number;
  accuracyStd?: number;
  auc?: number;
  aucStd?: number;
  source: string;
}

/**
 * Reference numbers (DESIGN.md section 3): Ilse et al. 2018 (attention-based deep MIL,
 * accuracy) and Ramsauer et al. 2020 (HopfieldPooling with a hyper-parameter search, ROC AUC).
 */
export const MIL_REFERENCES: Record<string, MilReference[]> = {
  musk1: [
    { method: 'attention', accuracy: 0.892, source: 'Ilse et al. 2018' },
    { method: 'gated-attention', accuracy: 0.9, source: 'Ilse et al. 2018' },
  ],
  musk2: [
    { method: 'attention', accuracy: 0.858, source: 'Ilse et al. 2018' },
    { method: 'gated-attention', accuracy: 0.863, source: 'Ilse et al. 2018' },
  ],
  elephant: [
    { method: 'attention', accuracy: 0.868, source: 'Ilse et al. 2018' },
    { method: 'gated-attention', accuracy: 0.857, source: 'Ilse et al. 2018' },
    { method: 'hopfield', auc: 0.949, aucStd: 0.003, source: 'Ramsauer et al. 2020 (HopfieldPooling, searched)' },
  ],
};

/** Options of {@link barChartSvg}. */
export interface BarChartOptions {
  /** One object per bar. */
  data: readonly Record<string, unknown>[];
  /** Category field on the x axis (one group per value). */
  x: string;
  /** Quantitative field (bar height). */
  y: string;
  /** Field of the bars within a group (one colour each). Default: one bar per category. */
  color?: string;
  /** Field with the half-width of an error bar (y +/- field). Default: none. */
  error?: string;
  /** Separate panels (small multiples) per value of this field. Default: one panel. */
  column?: string;
  title: string;
  yTitle?: string;
  xTitle?: string;
  /** [min, max] of the y axis. Default: from zero to the data. */
  yDomain?: [number, number];
  /** Width of one panel / height in pixels. Defaults 360 x 260. */
  width?: number;
  height?: number;
}

/** The vega-lite spec of {@link barChartSvg}. */
export function barChartSpec(options: BarChartOptions): Record<string, unknown> {
  const fn = 'barChartSvg';
  const { data, x, y, color, error, column, title } = options;
  if (!Array.isArray(data) || data.length === 0) throw new Error(`${fn}: data must be a non-empty array of bars`);
  for (const [name, field] of [
    ['x', x],
    ['y', y],
    ['color', color],
    ['error', error],
    ['column', column],
  ] as const) {
    if (field !== undefined && !(field in data[0])) {
      throw new Error(`${fn}: ${name} must name a field of the data (${Object.keys(data[0]).join(', ')}), got ${String(field)}`);
    }
  }
  const values = data.map((d) => {
    const p: Record<string, unknown> = { ...d };
    if (error) {
      p.__lo = (d[y] as number) - ((d[error] as number) ?? 0);
      p.__hi = (d[y] as number) + ((d[error] as number) ?? 0);
    }
    return p;
  });
  const yScale = options.yDomain ? { domain: options.yDomain, clamp: true, zero: false } : { zero: true };
  const xEnc = { field: x, type: 'nominal', title: options.xTitle ?? x, axis: { labelAngle: -35 }, sort: null }; // data order
  const inner: Record<string, unknown> = {
    width: options.width ?? 360,
    height: options.height ?? 260,
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: xEnc,
          y: { field: y, type: 'quantitative', title: options.yTitle ?? y, scale: yScale },
          ...(color ? { color: { field: color, type: 'nominal', title: color }, xOffset: { field: color } } : {}),
        },
      },
      ...(error
        ? [
            {
              mark: { type: 'rule', color: 'black' },
              encoding: {
                x: xEnc,
                y: { field: '__lo', type: 'quantitative', scale: yScale },
                y2: { field: '__hi' },
                ...(color ? { xOffset: { field: color } } : {}),
              },
            },
          ]
        : []),
    ],
  };
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, background: 'white', data: { values } };
  if (column) return { ...base, facet: { column: { field: column, type: 'nominal', title: null } }, spec: inner };
  return { ...base, ...inner };
}

/**
 * Renders a (grouped, optionally faceted) bar chart with error bars to an SVG string.
 *
 * @example
 * ```ts
 * const svg = await barChartSvg({
 *   data: [{ method: 'uhop', metric: 'AUC', value: 0.93, std: 0.01 }],
 *   x: 'method', y: 'value', error: 'std', column: 'metric', title: 'MUSK1',
 * });
 * ```
 */
export async function barChartSvg(options: BarChartOptions): Promise<string> {
  return vegaLiteSvg(barChartSpec(options));
}

/** The bar chart of one benchmark result: accuracy and AUC per method, +/- std over repeats. */
export async function milChartSvg(result: MilBenchmarkResult): Promise<string> {
  const data = result.summary.flatMap((r: MilSummaryRow) => [
    { method: r.method, metric: 'accuracy', value: r.accuracy, std: r.accuracyStd },
    { method: r.method, metric: 'ROC AUC', value: r.auc, std: r.aucStd },
  ]);
  return barChartSvg({
    data,
    x: 'method',
    y: 'value',
    error: 'std',
    column: 'metric',
    title: `${result.dataset}: ${result.folds}-fold CV x ${result.repeats} repeat${result.repeats > 1 ? 's' : ''} (mean ± std over repeats)`,
    yTitle: 'test score',
    yDomain: [0.4, 1],
  });
}
