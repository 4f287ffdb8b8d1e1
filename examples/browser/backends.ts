/**
 * Backend choice in the browser, for the demo and the browser test: imports the four tfjs
 * backends (importing one registers it), then lets uhop's browser `initBackend` pick webgpu,
 * webgl, wasm or cpu, and describes what the chosen one runs on.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
// The webgpu backend registers itself only if navigator.gpu exists when the module is
// evaluated; in a browser it does (in a secure context such as http://127.0.0.1).
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend, BROWSER_BACKENDS, type BrowserBackendName } from '../../src/browser/index.js';

export { BROWSER_BACKENDS };
export type BrowserBackend = BrowserBackendName;

/** Which backend runs, what it runs on, and why faster ones were skipped. */
export interface BrowserBackendReport {
  backend: BrowserBackend;
  /** The device or build, e.g. "google swiftshader" (webgpu), the WebGL renderer, "wasm simd, 2 threads". */
  detail: string;
  skipped: Partial<Record<BrowserBackend, string>>;
}

/**
 * The adapter the webgpu backend runs on, from the backend itself: asking navigator.gpu for a
 * second adapter here can end the backend's device (Chromium 156 reports "A valid external
 * Instance reference no longer exists" once that adapter is collected).
 */
function gpuAdapterName(): string {
  const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
  return [info?.vendor, info?.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
}

function webglRenderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return 'no WebGL2 context';
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
}

async function describe(name: BrowserBackend): Promise<string> {
  if (name === 'webgpu') return gpuAdapterName();
  if (name === 'webgl') return `${webglRenderer()}, float32 textures: ${String(tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED'))}`;
  if (name === 'wasm') {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threaded = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    const threads = getThreadsCount();
    return `${simd ? 'simd' : 'no simd'}, ${threaded ? 'threaded build' : 'single-threaded build'}, ${threads} thread${threads === 1 ? '' : 's'} (cross-origin isolated: ${String(crossOriginIsolated)})`;
  }
  return 'pure JavaScript';
}

/**
 * True when a GPU backend runs on SwiftShader, Chromium's software rasterizer: a CPU
 * emulating a GPU, several times slower than the wasm backend on the same CPU.
 */
function onSoftwareGpu(name: BrowserBackend, detail: string): boolean {
  return (name === 'webgpu' || name === 'webgl') && /swiftshader/i.test(detail);
}

/**
 * Activates a tfjs backend in the browser with uhop's `initBackend` (from 'uhop/browser'),
 * which applies the same kernel patches as in Node.
 *
 * @param preferred One backend to use (an error if it cannot start), or undefined for the
 *   first of webgpu, webgl, wasm, cpu that starts; in that automatic choice a GPU backend
 *   that runs on SwiftShader (a software GPU, when the machine has no usable GPU) is skipped.
 * @param wasmPath URL prefix of the tfjs `.wasm` binaries. Default '/wasm/'.
 * @example
 * ```ts
 * const report = await useBrowserBackend();            // webgpu where the browser offers a GPU
 * console.log(report.backend, report.detail, report.skipped);
 * await useBrowserBackend('wasm');
 * ```
 */
export async function useBrowserBackend(preferred?: BrowserBackend, wasmPath = '/wasm/'): Promise<BrowserBackendReport> {
  setWasmPaths(wasmPath);
  if (preferred !== undefined) {
    const { backend, skipped } = await initBackend(preferred);
    return { backend, detail: await describe(backend), skipped };
  }
  const skipped: Partial<Record<BrowserBackend, string>> = {};
  for (const name of BROWSER_BACKENDS) {
    try {
      await initBackend(name);
    } catch (e) {
      skipped[name] = (e as Error).message;
      continue;
    }
    const detail = await describe(name);
    if (onSoftwareGpu(name, detail)) {
      skipped[name] = `software GPU (${detail}), slower than wasm`;
      continue;
    }
    return { backend: name, detail, skipped };
  }
  throw new Error(
    `useBrowserBackend: no backend started: ${Object.entries(skipped)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}`,
  );
}
