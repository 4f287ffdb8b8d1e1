/**
 * Backend selection in a browser, by the same rules and report as `uhop/node`'s: the first of
 * webgpu, webgl, wasm, cpu that activates. Bundler-friendly: this module imports no backend
 * package (an import of an uninstalled optional package would break the user's build); a
 * backend is a candidate when its package has been imported, which registers it with tfjs
 * (`@tensorflow/tfjs` registers webgl and cpu; `import '@tensorflow/tfjs-backend-webgpu'` or
 * `'@tensorflow/tfjs-backend-wasm'` add the others).
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendReport as GenericReport } from '../backend.js';
import { applyBackendPatches } from '../backendPatches.js';

/** The backends `initBackend` knows in a browser, fastest first. */
export type BrowserBackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export const BROWSER_BACKENDS: readonly BrowserBackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

/** What the browser `initBackend` chose and why the faster ones were skipped. */
export type BrowserBackendReport = GenericReport<BrowserBackendName>;

const PACKAGE: Record<BrowserBackendName, string> = {
  webgpu: '@tensorflow/tfjs-backend-webgpu',
  webgl: '@tensorflow/tfjs-backend-webgl',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const HINT: Record<BrowserBackendName, string> = {
  webgpu: "Import '@tensorflow/tfjs-backend-webgpu' before initBackend, in a browser with WebGPU (navigator.gpu)",
  webgl: "Import '@tensorflow/tfjs-backend-webgl' (or '@tensorflow/tfjs') before initBackend, in a browser with WebGL",
  wasm: "Import '@tensorflow/tfjs-backend-wasm' before initBackend and call its setWasmPaths() with the folder serving its .wasm files",
  cpu: "Import '@tensorflow/tfjs-backend-cpu' (or '@tensorflow/tfjs') before initBackend",
};

async function check(name: BrowserBackendName): Promise<void> {
  if (!tf.findBackendFactory(name)) {
    if (name === 'webgpu' && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
      throw new Error('this browser has no WebGPU (navigator.gpu)');
    }
    throw new Error(`${PACKAGE[name]} is not imported`);
  }
}

/**
 * Picks and activates a tfjs backend in a browser: `preferred`, or else the first of webgpu,
 * webgl, wasm, cpu that is registered and initializes here. A backend asked for by name that
 * cannot start is an error that says what to import. Prints nothing.
 *
 * @example
 * ```ts
 * import '@tensorflow/tfjs';                       // registers webgl and cpu
 * import '@tensorflow/tfjs-backend-webgpu';        // optional: WebGPU first where it exists
 * import { initBackend, describeBackend } from 'uhop/browser';
 * const report = await initBackend();              // e.g. { backend: 'webgl', skipped: { webgpu: '...' } }
 * console.log(describeBackend(report));
 * ```
 */
export async function initBackend(preferred?: BrowserBackendName | string): Promise<BrowserBackendReport> {
  return selectBackend<BrowserBackendName>(
    {
      fn: 'initBackend',
      order: BROWSER_BACKENDS,
      load: check,
      hint: (name) => HINT[name],
      after: (name) => applyBackendPatches(name),
    },
    preferred === '' ? undefined : preferred,
  );
}
