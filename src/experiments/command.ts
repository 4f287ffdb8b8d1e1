/**
 * What a `uhop` subcommand is, and the argument helpers the subcommands share. Each
 * subcommand lives in its own module (loaded only when it runs) and is listed in the
 * dispatch table of src/cli.ts.
 */
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
  { min = -Infinity, max = Infinity, integer = false, exclusiveMin = false }: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const ok = value.trim() !== '' && Number.isFinite(n) && (!integer || Number.isInteger(n)) && (exclusiveMin ? n > min : n >= min) && n <= max;
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

/** Parses a flag whose value must be one of `choices`. */
export function choiceFlag<T extends string>(command: string, flag: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) {
    throw new UsageError(`uhop ${command}: --${flag} must be one of ${choices.join(', ')}, got '${value}'`);
  }
  return value as T;
}
