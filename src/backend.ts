/**
 * Backend selection shared by `uhop/node` and `uhop/browser`: try backends in a fixed order,
 * keep the first that activates, and report why the faster ones were skipped, in the user's
 * terms (package names, not file paths). Browser-safe: no `node:` module, no `process`.
 * Nothing here runs on import; only an explicit `initBackend` call changes tfjs' backend.
 */
import * as tf from '@tensorflow/tfjs-core';

/** What `initBackend` chose and why the faster ones were skipped. */
export interface BackendReport<Name extends string = string> {
  /** The backend now active (`tf.getBackend()`). */
  backend: Name;
  /** For every backend tried before the chosen one: why it was not used. */
  skipped: Partial<Record<Name, string>>;
}

/** How one platform's `initBackend` loads and names its backends. */
export interface BackendCandidates<Name extends string> {
  /** The function name used in errors ('initBackend'). */
  fn: string;
  /** Fastest first. */
  order: readonly Name[];
  /** Makes the backend registrable (imports its package, checks the hardware); throws why not. */
  load(name: Name): Promise<void>;
  /** What to install or do when `name` is asked for and cannot load. */
  hint(name: Name): string;
  /** Runs after activation (kernel patches, quieting); optional. */
  after?(name: Name): void;
}

/**
 * The error message of a failed import, in the user's terms: "<package> is not installed"
 * rather than "Cannot find package '<package>' imported from /abs/dist/chunk-XXXX.js".
 */
export function loadErrorMessage(pkg: string, e: unknown): string {
  const err = e as { code?: string; message?: string };
  const msg = String(err?.message ?? e);
  if (
    err?.code === 'ERR_MODULE_NOT_FOUND' ||
    err?.code === 'MODULE_NOT_FOUND' ||
    /Cannot find (package|module) '[^']*'|Failed to resolve module specifier|Failed to fetch dynamically imported module/.test(msg)
  ) {
    // The package itself missing is the usual case; a missing dependency of it is named too.
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec(msg)?.[1];
    if (missing && missing !== pkg && !missing.startsWith('/') && !missing.startsWith('.')) {
      return `${pkg} cannot load: its dependency ${missing} is not installed`;
    }
    return `${pkg} is not installed`;
  }
  const first = msg.split('\n')[0];
  // Internal bundle paths mean nothing to the user; keep the package name.
  return `${pkg}: ${first.replace(/\s*\(?(?:imported )?from (?:file:\/\/)?\/\S+\)?/g, '').replace(/\/\S*\/dist\/\S+\.(?:c?js|mjs)/g, '<package file>')}`;
}

async function activate<Name extends string>(c: BackendCandidates<Name>, name: Name): Promise<void> {
  await c.load(name);
  if (!tf.findBackendFactory(name)) throw new Error(`the '${name}' backend did not register`);
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

/**
 * Activates `preferred` (an error that says what to install when it cannot load), or else the
 * first of `c.order` that loads. The shared core of both platforms' `initBackend`.
 */
export async function selectBackend<Name extends string>(
  c: BackendCandidates<Name>,
  preferred: string | undefined,
  preferredFrom = 'the argument',
): Promise<BackendReport<Name>> {
  const forced = preferred?.trim().toLowerCase();
  if (forced) {
    if (!(c.order as readonly string[]).includes(forced)) {
      throw new Error(`${c.fn}: unknown backend '${preferred}' (from ${preferredFrom}); expected one of ${c.order.join(', ')}`);
    }
    const name = forced as Name;
    if (tf.getBackend() !== name) {
      try {
        await activate(c, name);
      } catch (e) {
        throw new Error(`${c.fn}: backend '${name}' is not available (${(e as Error).message}). ${c.hint(name)}`, { cause: e });
      }
    }
    c.after?.(name);
    return { backend: name, skipped: {} };
  }
  const skipped: Partial<Record<Name, string>> = {};
  for (const name of c.order) {
    try {
      await activate(c, name);
    } catch (e) {
      skipped[name] = (e as Error).message.split('\n')[0];
      continue;
    }
    c.after?.(name);
    return { backend: name, skipped };
  }
  throw new Error(`${c.fn}: no tfjs backend could be loaded (${c.order.map((n) => `${n}: ${skipped[n]}`).join('; ')})`);
}

/**
 * One line for logs: which backend runs, and why faster ones were skipped.
 *
 * @example
 * ```ts
 * import { initBackend, describeBackend } from 'uhop/node';
 * console.log(describeBackend(await initBackend()));
 * // backend: wasm (skipped tensorflow: @tensorflow/tfjs-node-gpu is not installed; ...)
 * ```
 */
export function describeBackend(report: BackendReport): string {
  const why = Object.entries(report.skipped)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ');
  return `backend: ${report.backend}${why ? ` (skipped ${why})` : ''}`;
}

/**
 * tfjs-backend-cpu prints "Hi, looks like you are running TensorFlow.js in Node.js..." on its
 * first tensor when it detects Node. A library prints nothing unless asked: the backend keeps
 * that notice behind its `firstUse` flag, which this clears.
 */
export function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
}
