/**
 * Backend selection in Node: the fastest backend that actually loads on this machine.
 *
 * Order: 'tensorflow' (native libtensorflow through @tensorflow/tfjs-node-gpu or
 * @tensorflow/tfjs-node), 'webgpu' (Dawn's Node binding from the `webgpu` package, when a
 * GPU adapter exists), 'wasm' (the embedded default, SIMD), 'cpu' (pure JS, last resort).
 * `UHOP_BACKEND=cpu|wasm|webgpu|tensorflow` forces one.
 *
 * Importing this module changes nothing: the backend packages are imported by `initBackend`,
 * so their registration (and tfjs' backend priorities) stay untouched until it is called.
 * Probing is quiet: Dawn's adapter warnings go to a throw-away child process, tfjs-backend-cpu's
 * "running TensorFlow.js in Node.js" notice is switched off, and reports name packages, not
 * bundle files.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadErrorMessage, selectBackend, silenceCpuBanner, type BackendReport as GenericReport } from '../backend.js';
import { applyBackendPatches } from '../backendPatches.js';
import { checkOptions, optionKeys } from '../ops/options.js';

export { describeBackend } from '../backend.js';

/** The backends `initBackend` knows in Node, fastest first. */
export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

/** What `initBackend` chose and why the faster ones were skipped. */
export type BackendReport = GenericReport<BackendName>;

const INSTALL_HINT: Record<BackendName, string> = {
  tensorflow: 'Install it with: npm install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU)',
  webgpu: 'Install it with: npm install webgpu @tensorflow/tfjs-backend-webgpu, on a machine with a GPU adapter',
  wasm: 'Install it with: npm install @tensorflow/tfjs-backend-wasm',
  cpu: 'Install it with: npm install @tensorflow/tfjs-backend-cpu',
};

const require = createRequire(import.meta.url);

/** Whether `pkg` resolves from here (without loading it). */
function resolvable(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Directory holding the tfjs wasm binaries. Resolved through Node's module resolution so it
 * works from any working directory; `UHOP_WASM_DIR` overrides it (bundles ship the .wasm
 * files next to the bundle).
 *
 * @example
 * ```ts
 * import { wasmDirectory } from 'uhop/node';
 * wasmDirectory(); // '/app/node_modules/@tensorflow/tfjs-backend-wasm/dist/'
 * ```
 */
export function wasmDirectory(): string {
  const fromEnv = process.env.UHOP_WASM_DIR;
  if (fromEnv) return fromEnv.endsWith('/') ? fromEnv : `${fromEnv}/`;
  let pkg: string;
  try {
    pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  } catch {
    throw new Error(
      'wasmDirectory: @tensorflow/tfjs-backend-wasm is not installed (npm install @tensorflow/tfjs-backend-wasm), and UHOP_WASM_DIR is not set',
    );
  }
  return join(dirname(pkg), 'dist') + '/';
}

async function tryTensorflow(): Promise<void> {
  const errors: string[] = [];
  // libtensorflow logs its CPU features and device placement at INFO level on load; keep
  // warnings and errors only, unless the user asked for something else.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (!resolvable(name)) {
      errors.push(`${name} is not installed`);
      continue;
    }
    try {
      // Native bindings register the 'tensorflow' backend as a side effect of loading.
      await import(/* @vite-ignore */ name);
      if (tf.findBackendFactory('tensorflow')) return;
      errors.push(`${name} loaded but registered no 'tensorflow' backend`);
    } catch (e) {
      errors.push(loadErrorMessage(name, e));
    }
  }
  throw new Error(errors.join('; '));
}

/**
 * On Linux, Dawn reaches the GPU through the Vulkan loader; without it, creating the GPU
 * object only prints a warning and finds no adapter.
 */
function hasVulkanLoader(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/lib/x86_64-linux-gnu',
  ];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/**
 * Asks Dawn for an adapter in a child process whose output is discarded: with a Vulkan driver
 * Dawn cannot use (software or broken ones), creating the GPU object prints adapter warnings
 * and "XDG_RUNTIME_DIR is invalid" straight to the process' stderr, out of JavaScript's reach.
 * Only when the child finds an adapter is the GPU opened in this process.
 */
export function probeAdapterQuietly(webgpuEntry: string): string | null {
  const script = `const m = await import(${JSON.stringify(pathToFileURL(webgpuEntry).href)});
const w = m.default ?? m; Object.assign(globalThis, w.globals);
const a = await w.create([]).requestAdapter(); process.exit(a ? 0 : 3);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe', timeout: 30_000, encoding: 'utf8' });
  if (r.status === 0) return null;
  if (r.status === 3) return 'no GPU adapter found';
  if (r.error) return `the adapter probe did not run (${r.error.message})`;
  const line = `${r.stderr ?? ''}`.split('\n').find((l) => /error/i.test(l));
  return `the adapter probe failed (exit ${r.status ?? r.signal}${line ? `: ${line.trim().slice(0, 200)}` : ''})`;
}

async function tryWebgpu(): Promise<void> {
  const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    if (!resolvable('webgpu')) throw new Error('webgpu (the Dawn binding package) is not installed');
    if (!resolvable('@tensorflow/tfjs-backend-webgpu')) throw new Error('@tensorflow/tfjs-backend-webgpu is not installed');
    if (!hasVulkanLoader()) throw new Error('no Vulkan loader (libvulkan.so.1) found, so no GPU adapter');
    const why = probeAdapterQuietly(require.resolve('webgpu'));
    if (why) throw new Error(why);
    let webgpu: { create: (flags: string[]) => unknown; globals: Record<string, unknown> };
    try {
      const m = (await import(/* @vite-ignore */ 'webgpu')) as typeof webgpu & { default?: typeof webgpu };
      webgpu = m.default ?? m;
    } catch (e) {
      throw new Error(loadErrorMessage('webgpu', e), { cause: e });
    }
    Object.assign(globalThis, webgpu.globals);
    // navigator is a getter on Node >= 21; define rather than assign.
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...(g.navigator ?? {}), gpu: webgpu.create([]) },
      configurable: true,
      writable: true,
    });
  }
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
  if (!(await gpu.requestAdapter())) throw new Error('no GPU adapter found');
  // The webgpu backend registers itself only if navigator.gpu exists when its module is
  // evaluated, so it must be loaded after the lines above.
  try {
    await import(/* @vite-ignore */ '@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(loadErrorMessage('@tensorflow/tfjs-backend-webgpu', e), { cause: e });
  }
}

async function tryWasm(): Promise<void> {
  const dir = wasmDirectory();
  if (!existsSync(join(dir, 'tfjs-backend-wasm-simd.wasm')) && !existsSync(join(dir, 'tfjs-backend-wasm.wasm'))) {
    throw new Error(`no tfjs wasm binaries in ${dir}`);
  }
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new Error(loadErrorMessage('@tensorflow/tfjs-backend-wasm', e), { cause: e });
  }
  wasm.setWasmPaths(dir);
}

async function tryCpu(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-backend-cpu');
  } catch (e) {
    throw new Error(loadErrorMessage('@tensorflow/tfjs-backend-cpu', e), { cause: e });
  }
}

const LOADERS: Record<BackendName, () => Promise<void>> = {
  tensorflow: tryTensorflow,
  webgpu: tryWebgpu,
  wasm: tryWasm,
  cpu: tryCpu,
};

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /**
   * Threads of the wasm backend's XNNPACK pool, 1 to {@link WASM_MAX_THREADS} (default:
   * `UHOP_WASM_THREADS`, else 1, tfjs' single-threaded SIMD build). Above 1 it loads tfjs'
   * threaded SIMD build on worker_threads (src/node/wasmThreads.ts). Chosen once per process,
   * before the wasm backend's first use. Only the wasm backend has this option: naming another
   * backend with it is an error, and with an automatic choice it takes effect if the choice is wasm.
   */
  threads?: number;
}

/** The most threads `initBackend('wasm', { threads })` accepts. */
export const WASM_MAX_THREADS = 8;

const INIT_OPTION_KEYS = optionKeys<InitBackendOptions>()(['threads']);

/** The wasm thread count asked for by `options` or `UHOP_WASM_THREADS`, checked. */
function wasmThreadsOption(options: InitBackendOptions): number | undefined {
  checkOptions(options, INIT_OPTION_KEYS, 'initBackend');
  const raw = options.threads ?? process.env.UHOP_WASM_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > WASM_MAX_THREADS) {
    throw new Error(
      `initBackend: threads must be an integer from 1 to ${WASM_MAX_THREADS}, got '${String(raw)}'${options.threads === undefined ? ' (from UHOP_WASM_THREADS)' : ''}`,
    );
  }
  return n;
}

/**
 * Picks and activates a backend. Nothing is printed: log `describeBackend(report)` if you
 * want the choice on record.
 *
 * @param preferred A backend to use; when omitted, `UHOP_BACKEND` or the first of
 *   tensorflow, webgpu, wasm, cpu that loads. A backend that is asked for by name and cannot
 *   load is an error that says what to install.
 * @param options `threads` for the wasm backend (see {@link InitBackendOptions}).
 * @returns which backend runs and why faster ones were skipped.
 *
 * @example
 * ```ts
 * import { initBackend, describeBackend } from 'uhop/node';
 * const report = await initBackend();            // 'wasm' on a plain Node install
 * console.log(describeBackend(report));
 * await initBackend('cpu');                      // force the pure-JS backend
 * await initBackend('wasm', { threads: 2 });     // wasm on a pool of 2 threads
 * ```
 */
export async function initBackend(preferred?: BackendName | string, options: InitBackendOptions = {}): Promise<BackendReport> {
  const fromEnv = preferred === undefined || preferred === '';
  const wanted = fromEnv ? process.env.UHOP_BACKEND : preferred;
  const threads = wasmThreadsOption(options);
  const forced = wanted?.trim().toLowerCase();
  if (options.threads !== undefined && forced && forced !== 'wasm') {
    throw new Error(
      `initBackend: option threads applies to the wasm backend only, got threads ${options.threads} with backend '${forced}'`,
    );
  }
  // Before any backend is tried, so that an automatic choice that lands on wasm uses it too.
  // Loaded only when asked for: the module imports the wasm backend, which registers itself.
  if (threads !== undefined && (forced === 'wasm' || !forced)) (await import('./wasmThreads.js')).setWasmThreads(threads);
  return selectBackend<BackendName>(
    {
      fn: 'initBackend',
      order: BACKENDS,
      load: (name) => LOADERS[name](),
      hint: (name) => INSTALL_HINT[name],
      after: (name) => {
        if (name === 'cpu') silenceCpuBanner();
        // Kernel fixes for this backend (src/backendPatches.ts); idempotent.
        applyBackendPatches(name, { wasmMatMul: process.env.UHOP_WASM_MATMUL, source: 'UHOP_WASM_MATMUL' });
      },
    },
    wanted,
    fromEnv ? 'UHOP_BACKEND' : 'the argument',
  );
}
