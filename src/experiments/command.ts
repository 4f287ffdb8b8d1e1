/**
 * What a `uhop` subcommand is, and the argument helpers the subcommands share. Each
 * subcommand lives in its own module (loaded only when it runs) and is listed in the
 * dispatch table of src/cli.ts.
 */
import { cpus } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Where a command writes. Tests pass string collectors; the CLI passes the process streams. */
export interface CliIO {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

/** A wrong command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Options every subcommand accepts (spread them into a command's option table). */
export const COMMON_OPTIONS = {
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** Help lines of {@link COMMON_OPTIONS}. */
export const COMMON_HELP = `  --backend NAME       tfjs backend: tensorflow, webgpu, wasm or cpu (default: the fastest that
                       loads; also UHOP_BACKEND)
  -h, --help           show this help`;

/** Values every parsed command line carries. */
export interface CommonArgs {
  backend?: string;
}

/** A subcommand: its help text, an argument parser and the run itself. */
export interface CommandModule<P extends CommonArgs = CommonArgs> {
  /** The full `--help` text. */
  help: string;
  /** Parses the arguments after the subcommand's name; throws {@link UsageError} on a bad line. */
  parse(args: string[]): P;
  /** Runs the command after the backend is up; resolves to the exit code. */
  run(parsed: P, io: CliIO): Promise<number>;
}

/**
 * node:util parseArgs in strict mode, with errors rewritten as {@link UsageError}s that name
 * the command and point at its --help.
 */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>['values'] {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const msg = (e as Error).message
      .replace(/\. To specify a positional argument.*$/s, '')
      .replace(/\s*\n\s*/g, ' ')
      .replace(/\.$/, '');
    throw new UsageError(`uhop ${command}: ${msg}. See 'uhop ${command} --help'.`);
  }
}

/** Parses a number flag, checking range and integrality. */
export function numberFlag(
  command: string,
  flag: string,
  value: string | undefined,
  {
    min = -Infinity,
    max = Infinity,
    integer = false,
    exclusiveMin = false,
  }: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const ok =
    value.trim() !== '' && Number.isFinite(n) && (!integer || Number.isInteger(n)) && (exclusiveMin ? n > min : n >= min) && n <= max;
  if (!ok) {
    const what = `${integer ? 'an integer' : 'a number'}${Number.isFinite(min) ? ` ${exclusiveMin ? '>' : '>='} ${min}` : ''}${Number.isFinite(max) ? ` and <= ${max}` : ''}`;
    throw new UsageError(`uhop ${command}: --${flag} must be ${what}, got '${value}'`);
  }
  return n;
}

/** Parses a comma-separated number list ('10,20,50'); 'none' or '' gives []. */
export function numberListFlag(
  command: string,
  flag: string,
  value: string | undefined,
  opts: NonNullable<Parameters<typeof numberFlag>[3]> = {},
): number[] | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || value.trim() === 'none') return [];
  return value.split(',').map((part) => numberFlag(command, flag, part.trim(), opts)!);
}

/**
 * Parses a comma-separated list of names ('softmax,uhop'), each checked by `check` (which
 * throws on a bad name; its message is kept). `what` names one item in the empty-list error.
 */
export function nameListFlag(
  command: string,
  flag: string,
  value: string | undefined,
  what: string,
  check: (name: string) => unknown,
): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError(`uhop ${command}: --${flag} needs at least one ${what}`);
  for (const name of names) {
    try {
      check(name);
    } catch (e) {
      throw new UsageError(`uhop ${command}: --${flag}: ${(e as Error).message}`);
    }
  }
  return names;
}

/** Parses a flag whose value must be one of `choices`. */
export function choiceFlag<T extends string>(
  command: string,
  flag: string,
  value: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) {
    throw new UsageError(`uhop ${command}: --${flag} must be one of ${choices.join(', ')}, got '${value}'`);
  }
  return value as T;
}

/** Whether an experiment draws its progress bar: 'force' (--progress), 'off' (-q) or when stderr is a terminal. */
export type ProgressMode = 'auto' | 'force' | 'off';

/** Output flags every experiment command accepts (spread them into a command's option table). */
export const OUTPUT_OPTIONS = {
  out: { type: 'string' },
  name: { type: 'string' },
  'no-save': { type: 'boolean' },
  progress: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** A parsed experiment command line: the experiment's options and where and how it reports. */
export interface ExperimentArgs<O> extends CommonArgs {
  options: O;
  out: string;
  name: string;
  save: boolean;
  progress: ProgressMode;
}

/** The output part of {@link ExperimentArgs} from parsed {@link OUTPUT_OPTIONS} values. */
export function outputArgs(
  v: { out?: string; name?: string; 'no-save'?: boolean; progress?: boolean; quiet?: boolean },
  defaults: { out: string; name: string },
): Pick<ExperimentArgs<unknown>, 'out' | 'name' | 'save' | 'progress'> {
  return {
    out: v.out ?? defaults.out,
    name: v.name ?? defaults.name,
    save: v['no-save'] !== true,
    progress: v.quiet ? 'off' : v.progress ? 'force' : 'auto',
  };
}

/** Deletes the keys whose value is undefined (so an experiment's defaults apply); returns `options`. */
export function dropUndefined<T extends object>(options: T): T {
  for (const k of Object.keys(options) as (keyof T)[]) if (options[k] === undefined) delete options[k];
  return options;
}

/** A reader of integer flags from parsed values: `int('epochs')`, `int('fit-steps', 0)` (the minimum, default 1). */
export function intFlags<V extends Record<string, unknown>>(
  command: string,
  values: V,
): (flag: keyof V & string, min?: number) => number | undefined {
  return (flag, min = 1) => numberFlag(command, flag, values[flag] as string | undefined, { min, integer: true });
}

/** The U-Hop fit flags of the transformer experiments (vision, recall, finetune). */
export const UHOP_FIT_OPTIONS = {
  'fit-steps': { type: 'string' },
  'fit-lr': { type: 'string' },
  'fit-loss': { type: 'string' },
  'fit-optimizer': { type: 'string' },
  'feature-dim': { type: 'string' },
  'fit-gradient': { type: 'string' },
  'fit-keep-norm': { type: 'boolean' },
  'fit-strength': { type: 'string' },
  'fit-strength-trainable': { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** The experiment options of {@link UHOP_FIT_OPTIONS} (undefined where a flag is not given). */
export function uhopFitFlags(
  command: string,
  v: {
    'fit-steps'?: string;
    'fit-lr'?: string;
    'fit-loss'?: string;
    'fit-optimizer'?: string;
    'feature-dim'?: string;
    'fit-gradient'?: string;
    'fit-keep-norm'?: boolean;
    'fit-strength'?: string;
    'fit-strength-trainable'?: boolean;
  },
): {
  fitSteps?: number;
  fitLr?: number;
  separationLoss?: 'lse' | 'uniform' | 'worst-pair';
  fitOptimizer?: 'normalized' | 'sgd' | 'adam';
  featureDim?: number;
  fitGradient?: 'straight-through' | 'unrolled';
  fitKeepNorm?: boolean;
  fitStrength?: number;
  fitStrengthTrainable?: boolean;
} {
  const int = intFlags(command, v);
  return {
    fitSteps: int('fit-steps', 0),
    fitLr: numberFlag(command, 'fit-lr', v['fit-lr'], { min: 0, exclusiveMin: true }),
    separationLoss: choiceFlag(command, 'fit-loss', v['fit-loss'], ['lse', 'uniform', 'worst-pair'] as const),
    fitOptimizer: choiceFlag(command, 'fit-optimizer', v['fit-optimizer'], ['normalized', 'sgd', 'adam'] as const),
    featureDim: int('feature-dim'),
    fitGradient: choiceFlag(command, 'fit-gradient', v['fit-gradient'], ['straight-through', 'unrolled'] as const),
    fitKeepNorm: v['fit-keep-norm'],
    fitStrength: numberFlag(command, 'fit-strength', v['fit-strength'], {}),
    fitStrengthTrainable: v['fit-strength-trainable'],
  };
}

/** Progress events of the experiments' `onProgress` option. */
export interface ProgressEvent {
  done: number;
  total: number;
  status: string;
}

/** The parts of an experiment command that {@link runExperimentCommand} puts together. */
export interface ExperimentSteps<R extends { backend: string }> {
  /** Runs the experiment, reporting progress through `onProgress`. */
  run(onProgress: (event: ProgressEvent) => void): Promise<R>;
  /** Prints the tables. */
  print(res: R, out: CliIO['stdout']): void;
  /** Writes the result files under `dir` with the stem `name`; resolves to their paths. */
  write(res: R, dir: string, name: string): Promise<string[]>;
}

/**
 * The run of an experiment command: the experiment under a progress bar on stderr, its report
 * on stdout, the result files (unless --no-save), then the wall time. Resolves to exit code 0.
 */
export async function runExperimentCommand<R extends { backend: string }>(
  label: string,
  p: ExperimentArgs<unknown>,
  io: CliIO,
  steps: ExperimentSteps<R>,
): Promise<number> {
  const t0 = performance.now();
  // report.js (cli-progress) loads with the command, not when the CLI starts.
  const { progress } = await import('./report.js');
  let bar: ReturnType<typeof progress> | undefined;
  const res = await steps.run(({ done, total, status }) => {
    bar ??= progress(total, label, {
      force: p.progress === 'force',
      silent: p.progress === 'off',
      stream: io.stderr as NodeJS.WritableStream,
    });
    bar.tick(1, status);
    if (done === total) bar.stop();
  });
  bar?.stop();
  steps.print(res, io.stdout);
  if (p.save) {
    const paths = await steps.write(res, p.out, p.name);
    io.stdout.write(`\nwrote ${paths.join(', ')}\n`);
  }
  io.stdout.write(`wall time ${((performance.now() - t0) / 1000).toFixed(1)} s on ${res.backend} (${cpus().length} CPU cores)\n`);
  return 0;
}

/** The fit-strength options of a run as a header suffix ('' when all are the defaults). */
export function fitVariantText(c: object): string {
  const o = c as { fitGradient?: unknown; fitKeepNorm?: unknown; fitStrength?: unknown; fitStrengthTrainable?: unknown };
  const parts: string[] = [];
  if (o.fitGradient && o.fitGradient !== 'straight-through') parts.push(`${String(o.fitGradient)} gradient`);
  if (o.fitKeepNorm) parts.push('W kept at ||Phi0||');
  if (o.fitStrengthTrainable) parts.push(`trainable fit strength from ${String(o.fitStrength ?? 1)}`);
  else if (o.fitStrength !== undefined && o.fitStrength !== 1) parts.push(`fit strength ${String(o.fitStrength)}`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}
