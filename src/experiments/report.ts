/**
 * Reporting helpers shared by the experiments: a plain-text table, a JSON writer, SVG line
 * charts (vega-lite compiled to vega, rendered headless) and a progress bar on stderr.
 *
 * vega and vega-lite are ESM-only and heavy, so they are loaded on the first chart, not when
 * this module is imported.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { importOptional, requireOptional } from './optionalDependency.js';

type CliProgress = typeof import('cli-progress');

// ---------------------------------------------------------------------------------------
// Tables

/** One column of {@link formatTable}. */
export interface TableColumn<R> {
  /** Property of the row to show (also the default header). */
  key: keyof R & string;
  /** Header text. Default: `key`. */
  header?: string;
  /** Turns the cell value into text. Default: numbers with 4 significant digits, others String(). */
  format?: (value: R[keyof R], row: R) => string;
  /** Default: 'right' for numbers, 'left' otherwise (decided from the first row). */
  align?: 'left' | 'right';
}

/**
 * Columns for every key of the first row, `labelKey` (the row label) left-aligned and the
 * others right-aligned: the layout of the experiments' text tables.
 */
export function labelledColumns<R extends object>(rows: readonly R[], labelKey: keyof R & string): TableColumn<R>[] {
  return Object.keys(rows[0] ?? {}).map((k) => ({
    key: k as keyof R & string,
    align: k === labelKey ? ('left' as const) : ('right' as const),
  }));
}

/** Default cell text: compact numbers (4 significant digits), '-' for null/undefined/NaN. */
export function formatCell(value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return '-';
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(2);
    return Number(value.toPrecision(4)).toString();
  }
  return String(value);
}

/**
 * Lays rows out as an aligned plain-text table (header, rule, one line per row).
 *
 * @example
 * ```ts
 * formatTable([{ method: 'dense', error: 12.5 }], [{ key: 'method' }, { key: 'error', header: 'error' }]);
 * // method  error
 * // ------  -----
 * // dense    12.5
 * ```
 */
export function formatTable<R extends object>(rows: readonly R[], columns: readonly TableColumn<R>[]): string {
  if (!Array.isArray(columns) || columns.length === 0) {
    throw new Error('formatTable: columns must be a non-empty array of { key, header?, format?, align? }');
  }
  const headers = columns.map((c) => c.header ?? c.key);
  const cells = rows.map((row) =>
    columns.map((c) => {
      const v = (row as Record<string, unknown>)[c.key] as R[keyof R];
      return c.format ? c.format(v, row) : formatCell(v);
    }),
  );
  const widths = headers.map((h, j) => Math.max(h.length, ...cells.map((r) => r[j].length)));
  const aligns = columns.map((c) => {
    if (c.align) return c.align;
    const first = rows.length ? (rows[0] as Record<string, unknown>)[c.key] : undefined;
    return typeof first === 'number' ? 'right' : 'left';
  });
  const pad = (text: string, j: number) => (aligns[j] === 'right' ? text.padStart(widths[j]) : text.padEnd(widths[j]));
  const line = (parts: string[]) => parts.map(pad).join('  ').trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/**
 * Prints {@link formatTable} to a stream (default stdout).
 *
 * @example
 * ```ts
 * printTable(rows, [{ key: 'method' }, { key: 'M' }, { key: 'errorMean', header: 'error' }]);
 * ```
 */
export function printTable<R extends object>(
  rows: readonly R[],
  columns: readonly TableColumn<R>[],
  stream: { write(text: string): unknown } = process.stdout,
): void {
  stream.write(formatTable(rows, columns));
}

// ---------------------------------------------------------------------------------------
// Files

/**
 * Writes `json` as pretty-printed `<dir>/<name>.json` (the folder is created; `name` may end
 * in `.json` already). Non-finite numbers become null, typed arrays become plain arrays.
 *
 * @returns the absolute path written.
 * @example
 * ```ts
 * const path = writeResults('results/retrieval', 'mnist', { rows });
 * ```
 */
export function writeResults(dir: string, name: string, json: unknown): string {
  checkName('writeResults', name);
  const file = name.endsWith('.json') ? name : `${name}.json`;
  const text = JSON.stringify(
    json,
    (_k, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) return null;
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
      return v;
    },
    2,
  );
  return writeTextFile(dir, file, `${text}\n`);
}

/** Writes a text file `<dir>/<file>`, creating the folder; returns the absolute path. */
export function writeTextFile(dir: string, file: string, text: string): string {
  checkName('writeTextFile', file);
  mkdirSync(dir, { recursive: true });
  const path = resolve(join(dir, file));
  writeFileSync(path, text);
  return path;
}

function checkName(fn: string, name: string): void {
  if (typeof name !== 'string' || name.length === 0 || /[/\\]/.test(name)) {
    throw new Error(`${fn}: name must be a non-empty file name without path separators, got ${JSON.stringify(name)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Charts

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  /** One object per point. */
  data: readonly Record<string, unknown>[];
  /** Field on the x axis (quantitative). */
  x: string;
  /** Field on the y axis (quantitative). */
  y: string;
  /** Field naming the series (one line and colour per distinct value). Default: one series. */
  color?: string;
  /**
   * A shaded band around each line: a field holding the half-width (y +/- field, e.g. a std),
   * or explicit lower/upper fields. Default: none.
   */
  errorBand?: string | { lower: string; upper: string };
  title: string;
  /** Default 'linear'. */
  xScale?: 'log' | 'linear';
  /** Default 'linear'. On 'log', band edges below 1e-6 are clipped there. */
  yScale?: 'log' | 'linear';
  /** Axis titles. Default: the field names. */
  xTitle?: string;
  yTitle?: string;
  /** Plot area size in pixels. Defaults 480 x 320. */
  width?: number;
  height?: number;
}

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');
let vegaModules: Promise<[Vega, VegaLite]> | undefined;

/** The vega-lite spec that {@link lineChartSvg} renders (exported for tests and for reuse). */
export function lineChartSpec(options: LineChartOptions): Record<string, unknown> {
  const fn = 'lineChartSvg';
  const { data, x, y, color, errorBand, title, xScale = 'linear', yScale = 'linear' } = options;
  if (!Array.isArray(data) || data.length === 0)
    throw new Error(`${fn}: data must be a non-empty array of points, got ${Array.isArray(data) ? 'an empty array' : typeof data}`);
  for (const [name, field] of [
    ['x', x],
    ['y', y],
  ] as const) {
    if (typeof field !== 'string' || !(field in data[0])) {
      throw new Error(`${fn}: ${name} must name a field of the data points (${Object.keys(data[0]).join(', ')}), got ${String(field)}`);
    }
  }
  if (xScale !== 'log' && xScale !== 'linear') throw new Error(`${fn}: xScale must be 'log' or 'linear', got ${String(xScale)}`);
  if (yScale !== 'log' && yScale !== 'linear') throw new Error(`${fn}: yScale must be 'log' or 'linear', got ${String(yScale)}`);
  if (xScale === 'log' && data.some((d) => !((d[x] as number) > 0))) {
    throw new Error(`${fn}: a log x axis needs every '${x}' > 0`);
  }
  const floor = 1e-6;
  // A band around non-negative quantities (errors, rates) stops at 0 rather than below it.
  const nonNegative = data.every((d) => (d[y] as number) >= 0);
  const points = data.map((d) => {
    const p: Record<string, unknown> = { ...d };
    if (errorBand) {
      const v = d[y] as number;
      let lo: number;
      let hi: number;
      if (typeof errorBand === 'string') {
        const h = (d[errorBand] as number) ?? 0;
        lo = v - h;
        hi = v + h;
      } else {
        lo = d[errorBand.lower] as number;
        hi = d[errorBand.upper] as number;
      }
      p.__lower = yScale === 'log' ? Math.max(lo, floor) : nonNegative ? Math.max(lo, 0) : lo;
      p.__upper = yScale === 'log' ? Math.max(hi, floor) : hi;
    }
    return p;
  });
  // Few distinct x values (memory sizes, noise levels): tick exactly at them, no rounded domain.
  const xs = [...new Set(data.map((d) => d[x] as number))].sort((a, b) => a - b);
  const xAxis = xs.length <= 12 ? { axis: { values: xs } } : {};
  const xEnc = {
    field: x,
    type: 'quantitative',
    scale: { type: xScale, nice: false, ...(xScale === 'log' ? {} : { zero: false }) },
    title: options.xTitle ?? x,
    ...xAxis,
  };
  const yEnc = {
    field: y,
    type: 'quantitative',
    scale: { type: yScale, ...(yScale === 'log' ? {} : { zero: true }) },
    title: options.yTitle ?? y,
  };
  const colorEnc = color ? { color: { field: color, type: 'nominal', title: color } } : {};
  const layers: Record<string, unknown>[] = [];
  if (errorBand) {
    layers.push({
      mark: { type: 'errorband', opacity: 0.18 },
      encoding: {
        x: xEnc,
        y: { field: '__lower', type: 'quantitative', title: yEnc.title },
        y2: { field: '__upper' },
        ...colorEnc,
      },
    });
  }
  layers.push({
    mark: { type: 'line', point: true, strokeWidth: 1.75 },
    encoding: { x: xEnc, y: yEnc, ...colorEnc },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: options.width ?? 480,
    height: options.height ?? 320,
    background: 'white',
    data: { values: points },
    layer: layers,
  };
}

/**
 * Renders a line chart to an SVG string, headless (vega-lite compiled to vega, renderer
 * 'none'), one line per value of `color`, with an optional shaded error band.
 *
 * @example
 * ```ts
 * const svg = await lineChartSvg({
 *   data: [{ M: 10, error: 3, std: 1, method: 'dense' }, { M: 100, error: 9, std: 2, method: 'dense' }],
 *   x: 'M', y: 'error', color: 'method', errorBand: 'std', title: 'Retrieval error', xScale: 'log',
 * });
 * writeTextFile('results', 'error.svg', svg);
 * ```
 */
export async function lineChartSvg(options: LineChartOptions): Promise<string> {
  return vegaLiteSvg(lineChartSpec(options));
}

/**
 * Renders a vega-lite spec to an SVG string, headless (compiled to vega, renderer 'none');
 * vega and vega-lite load on the first call. The renderer behind {@link lineChartSvg}, for
 * other chart kinds.
 *
 * @example
 * ```ts
 * const svg = await vegaLiteSvg({ data: { values: [{ a: 1, b: 2 }] }, mark: 'point', encoding: { x: { field: 'a' }, y: { field: 'b' } } });
 * ```
 */
export async function vegaLiteSvg(spec: object): Promise<string> {
  vegaModules ??= Promise.all([
    importOptional<Vega>('vega', 'vegaLiteSvg (SVG charts)'),
    importOptional<VegaLite>('vega-lite', 'vegaLiteSvg (SVG charts)'),
  ]);
  const [vega, vegaLite] = await vegaModules;
  const compiled = vegaLite.compile(spec as unknown as Parameters<VegaLite['compile']>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

// ---------------------------------------------------------------------------------------
// Progress

/** A progress bar handle; every method is a no-op when the bar is silent. */
export interface Progress {
  /** Advances by `n` steps (default 1) and optionally changes the status text. */
  tick(n?: number, status?: string): void;
  /** Changes the status text shown after the bar. */
  status(text: string): void;
  /** Ends the bar (leaves the last frame on screen). */
  stop(): void;
  /** Whether anything is drawn. */
  readonly active: boolean;
}

export interface ProgressOptions {
  /** Draw even when the stream is not a TTY (one line every few seconds). Default false. */
  force?: boolean;
  /** Never draw. Default false. */
  silent?: boolean;
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * A progress bar on stderr (cli-progress): `label [=====     ] 12/40 | eta 8s | status`.
 * Silent when stderr is not a terminal unless `force` is set, so logs and pipes stay clean.
 *
 * @example
 * ```ts
 * const bar = progress(sizes.length * seeds, 'retrieval');
 * for (const M of sizes) { work(M); bar.tick(1, `M=${M}`); }
 * bar.stop();
 * ```
 */
export function progress(total: number, label: string, options: ProgressOptions = {}): Progress {
  if (!Number.isInteger(total) || total < 0) throw new Error(`progress: total must be an integer >= 0, got ${String(total)}`);
  const stream = options.stream ?? process.stderr;
  const draw = !options.silent && (options.force || stream.isTTY === true);
  if (!draw) {
    return { tick() {}, status() {}, stop() {}, active: false };
  }
  const cliProgress = requireOptional<CliProgress>('cli-progress', 'progress (the progress bar)');
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} | {duration_formatted} elapsed | eta {eta_formatted} | {status}`,
      barsize: 30,
      hideCursor: false,
      clearOnComplete: false,
      noTTYOutput: stream.isTTY !== true,
      notTTYSchedule: 5000,
      etaBuffer: 20,
    },
    cliProgress.Presets.legacy,
  );
  let value = 0;
  let text = '';
  bar.start(total, 0, { status: text });
  let stopped = false;
  return {
    active: true,
    tick(n = 1, status?: string) {
      if (stopped) return;
      value = Math.min(total, value + n);
      if (status !== undefined) text = status;
      bar.update(value, { status: text });
    },
    status(s: string) {
      if (stopped) return;
      text = s;
      bar.update(value, { status: text });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/** Mean and (sample, n-1) standard deviation; std is 0 for a single value. */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0 };
  const v = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(v) };
}
