/**
 * Backend selection: the fastest backend that actually loads on this machine.
 *
 * Order: 'tensorflow' (native libtensorflow through @tensorflow/tfjs-node-gpu or
 * @tensorflow/tfjs-node), 'webgpu' (Dawn's Node binding from the `webgpu` package, when a
 * GPU adapter exists), 'wasm' (the embedded default, SIMD), 'cpu' (pure JS, last resort).
 * `UHOP_BACKEND=cpu|wasm|webgpu|tensorflow` forces one.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; tfjs-layers registers all of them on load,
// so tf.grad and optimizers work for every op of the core even without a layer in sight.
import '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { applyBackendPatches } from './backendPatches.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

/** What `initBackend` chose and why the faster ones were skipped. */
export interface BackendReport {
  backend: BackendName;
  /** For every backend tried before the chosen one: why it was not used. */
  skipped: Partial<Record<BackendName, string>>;
}

const INSTALL_HINT: Record<BackendName, string> = {
  tensorflow: 'npm install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU)',
  webgpu: 'npm install webgpu @tensorflow/tfjs-backend-webgpu, on a machine with a GPU adapter',
  wasm: 'npm install @tensorflow/tfjs-backend-wasm',
  cpu: 'npm install @tensorflow/tfjs-backend-cpu',
};

const require = createRequire(import.meta.url);

/**
 * Directory holding the tfjs wasm binaries. Resolved through Node's module resolution so it
 * works from any working directory; `UHOP_WASM_DIR` overrides it (bundles ship the .wasm
 * files next to the bundle).
 */
export function wasmDirectory(): string {
  const fromEnv = process.env.UHOP_WASM_DIR;
  if (fromEnv) return fromEnv.endsWith('/') ? fromEnv : `${fromEnv}/`;
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return join(dirname(pkg), 'dist') + '/';
}

async function tryTensorflow(): Promise<void> {
  const errors: string[] = [];
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      // Native bindings register the 'tensorflow' backend as a side effect of loading.
      await import(/* @vite-ignore */ name);
      if (tf.findBackendFactory('tensorflow')) return;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(errors.join('; '));
}

/**
 * On Linux, Dawn reaches the GPU through the Vulkan loader; without it, creating the GPU
 * object only prints a warning and finds no adapter. Checking first keeps that warning out
 * of every CPU-only run.
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

async function tryWebgpu(): Promise<void> {
  const g = globalThis as unknown as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    if (!hasVulkanLoader()) throw new Error('no Vulkan loader (libvulkan.so.1) found, so no GPU adapter');
    const webgpu = (await import(/* @vite-ignore */ 'webgpu')) as {
      create: (flags: string[]) => unknown;
      globals: Record<string, unknown>;
    };
    Object.assign(globalThis, webgpu.globals);
    // navigator is a getter on Node >= 21; define rather than assign.
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...(g.navigator ?? {}), gpu: webgpu.create([]) },
      configurable: true,
      writable: true,
    });
  }
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } })
    .navigator.gpu;
  if (!(await gpu.requestAdapter())) throw new Error('no GPU adapter found');
  // The webgpu backend registers itself only if navigator.gpu exists when its module is
  // evaluated, so it must be loaded after the lines above.
  await import(/* @vite-ignore */ '@tensorflow/tfjs-backend-webgpu');
}

async function tryWasm(): Promise<void> {
  const dir = wasmDirectory();
  if (!existsSync(join(dir, 'tfjs-backend-wasm-simd.wasm')) && !existsSync(join(dir, 'tfjs-backend-wasm.wasm'))) {
    throw new Error(`no tfjs wasm binaries in ${dir}`);
  }
  setWasmPaths(dir);
}

const LOADERS: Record<BackendName, () => Promise<void>> = {
  tensorflow: tryTensorflow,
  webgpu: tryWebgpu,
  wasm: tryWasm,
  cpu: async () => {},
};

async function activate(name: BackendName): Promise<void> {
  await LOADERS[name]();
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

/**
 * Picks and activates a backend.
 *
 * @param preferred A backend to use; when omitted, `UHOP_BACKEND` or the first of
 *   tensorflow, webgpu, wasm, cpu that loads. A backend that is asked for by name and cannot
 *   load is an error that says what to install.
 * @returns which backend runs and why faster ones were skipped.
 *
 * @example
 * ```ts
 * import { initBackend } from 'uhop';
 * const { backend } = await initBackend();      // 'wasm' on a plain Node install
 * await initBackend('cpu');                      // force the pure-JS backend
 * ```
 */
export async function initBackend(preferred?: BackendName | string): Promise<BackendReport> {
  const forced = (preferred ?? process.env.UHOP_BACKEND)?.trim().toLowerCase();
  if (forced) {
    if (!BACKENDS.includes(forced as BackendName)) {
      throw new Error(
        `initBackend: unknown backend '${forced}' (from ${preferred ? 'the argument' : 'UHOP_BACKEND'}); expected one of ${BACKENDS.join(', ')}`,
      );
    }
    const name = forced as BackendName;
    if (tf.getBackend() === name) {
      applyBackendPatches(name);
      return { backend: name, skipped: {} };
    }
    try {
      await activate(name);
    } catch (e) {
      throw new Error(
        `initBackend: backend '${name}' is not available (${(e as Error).message}). Install it with: ${INSTALL_HINT[name]}`,
      );
    }
    applyBackendPatches(name);
    return { backend: name, skipped: {} };
  }
  const skipped: BackendReport['skipped'] = {};
  for (const name of BACKENDS) {
    try {
      await activate(name);
    } catch (e) {
      skipped[name] = (e as Error).message.split('\n')[0];
      continue;
    }
    // Kernel fixes for this backend (src/backendPatches.ts); idempotent.
    applyBackendPatches(name);
    return { backend: name, skipped };
  }
  throw new Error('initBackend: no tfjs backend could be loaded, not even cpu');
}

/** One line for logs: which backend runs, and why faster ones were skipped. */
export function describeBackend(report: BackendReport): string {
  const why = Object.entries(report.skipped)
    .map(([k, v]) => `${k}: ${v}`)
    .join('; ');
  return `backend: ${report.backend}${why ? ` (skipped ${why})` : ''}`;
}
