/**
 * Multi-threaded wasm in Node: tfjs-backend-wasm's threaded SIMD build (XNNPACK with a pthread
 * pool of worker_threads) made to start under Node, where tfjs 4.22 turns it off.
 *
 * tfjs reports `WASM_HAS_MULTITHREAD_SUPPORT = false` under Node (tfjs issue 3830) because its
 * threaded loader is written for browsers. Three things stop it, each handled here:
 * 1. The pthread workers are created with `new Worker(blobUrl)`, and Node's worker_threads
 *    cannot start from a blob: URL. A `Worker` global is installed that starts such workers
 *    from a small bootstrap instead (the approach of the closed tfjs pull request 8059): it runs
 *    Emscripten's worker code, which tfjs ships as a string, and points the worker's
 *    `importScripts` of the main script (also a blob) at the package's own copy of it,
 *    `wasm-out/tfjs-backend-wasm-threaded-simd.js`.
 * 2. The flag is forced on before the backend is first created.
 * 3. The wasm side caps its thread pool at `os.cpus().length / 2`, read once when the module
 *    starts (it assumes two hyper-threads per core): 1 on a 2-core machine. While the backend
 *    is being created, `os.cpus()` reports twice the requested count so that the cap is the
 *    request; the real function is restored right after.
 *
 * The thread count can only be chosen before the wasm backend's first use in a process (its
 * module and pool are created once). Node-only: it imports `node:` modules.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import os from 'node:os';

// The threaded build pre-creates 8 workers: WASM_MAX_THREADS lives beside initBackend's check.
import { WASM_MAX_THREADS } from './backend.js';
export { WASM_MAX_THREADS };

const require = createRequire(import.meta.url);

/** Runs in each pthread worker: Emscripten's worker code, with blob: imports sent to the file. */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(0, eval)(workerData.workerCode);
const importFile = globalThis.importScripts;
globalThis.importScripts = (f) => importFile(String(f).startsWith('blob:') ? workerData.mainScript : f);
`;

interface ThreadedFiles {
  /** Emscripten's worker code, as tfjs ships it (a JS string exported by a CommonJS module). */
  workerCode: string;
  /** Path of the threaded build's main script (defines WasmBackendModuleThreadedSimd). */
  mainScript: string;
}

let files: ThreadedFiles | undefined;

function threadedFiles(): ThreadedFiles {
  if (!files) {
    const wasmOut = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
    const { wasmWorkerContents } = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
      wasmWorkerContents: string;
    };
    // The string holds '\n' escapes that became real newlines inside string literals (tfjs
    // escapes them again before making its blob, for the same reason).
    files = { workerCode: wasmWorkerContents.replace(/\n/g, '\\n'), mainScript: join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js') };
  }
  return files;
}

/**
 * worker_threads' Worker, except that tfjs' blob: worker URLs start the bootstrap above. Those
 * workers never keep the process alive: Emscripten refs a worker while it runs a pthread, and
 * XNNPACK's pool threads run (waiting for work) for the life of the process, so Node would
 * never exit. Work is only ever handed to them by a synchronous call on the main thread, which
 * waits for it, so an empty event loop means they are idle.
 */
class WasmThreadWorker extends NodeWorker {
  private readonly pool: boolean;

  constructor(url: string | URL, options?: WorkerOptions) {
    const pool = typeof url === 'string' && url.startsWith('blob:');
    if (pool) {
      super(BOOTSTRAP, { eval: true, workerData: threadedFiles() });
      this.unref();
    } else {
      super(url, options);
    }
    this.pool = pool;
  }

  override ref(): void {
    if (!this.pool) super.ref();
  }
}

const SHIM = Symbol.for('uhop.wasmThreads.workerShim');

/**
 * Emscripten's loader assigns `globalThis.Worker = worker_threads.Worker` right before it
 * creates its workers, so a plain assignment of ours would be overwritten: an accessor keeps
 * the shim and accepts any other value (another library's Worker) as before.
 */
function installWorkerShim(): void {
  const g = globalThis as Record<PropertyKey, unknown>;
  if (g[SHIM]) return;
  let other: unknown = g.Worker;
  Object.defineProperty(globalThis, 'Worker', {
    configurable: true,
    get: () => (other === undefined || other === NodeWorker ? WasmThreadWorker : other),
    set: (v: unknown) => {
      other = v;
    },
  });
  g[SHIM] = true;
}

/** The thread count the wasm backend runs with, or undefined before it is created. */
export function wasmThreadsInUse(): number | undefined {
  try {
    return getThreadsCount();
  } catch {
    return undefined;
  }
}

let requested = 1;
let factoryWrapped = false;

/**
 * Chooses how many threads the wasm backend's XNNPACK pool uses in this process. Call it before
 * the wasm backend is first activated (`initBackend('wasm', { threads })` does).
 *
 * @param threads 1 (the single-threaded SIMD build, tfjs' default in Node) to
 *   {@link WASM_MAX_THREADS}.
 * @throws when `threads` is out of range, or when the wasm backend already runs with another
 *   thread count in this process.
 *
 * @example
 * ```ts
 * import { setWasmThreads } from 'uhop/node';
 * setWasmThreads(2);
 * await tf.setBackend('wasm');
 * ```
 */
export function setWasmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > WASM_MAX_THREADS) {
    throw new Error(`setWasmThreads: threads must be an integer from 1 to ${WASM_MAX_THREADS}, got ${String(threads)}`);
  }
  const inUse = wasmThreadsInUse();
  if (inUse !== undefined) {
    if (inUse === threads) return;
    throw new Error(
      `setWasmThreads: the wasm backend already runs with ${inUse} thread(s) in this process, so threads ${threads} cannot take effect; choose the thread count before the wasm backend's first use`,
    );
  }
  requested = threads;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
  setThreadsCount(threads);
  if (threads === 1 || factoryWrapped) return;
  installWorkerShim();
  const factory = tf.findBackendFactory('wasm');
  if (!factory) throw new Error('setWasmThreads: the wasm backend is not registered (is @tensorflow/tfjs-backend-wasm installed?)');
  tf.removeBackend('wasm');
  // The same priority tfjs-backend-wasm registers with.
  tf.registerBackend(
    'wasm',
    async () => {
      const realCpus = os.cpus;
      if (requested > 1) {
        os.cpus = () => {
          const cpus = realCpus.call(os);
          return Array.from({ length: 2 * requested }, (_, i) => cpus[i % cpus.length]);
        };
      }
      try {
        return await factory();
      } finally {
        os.cpus = realCpus;
      }
    },
    2,
  );
  factoryWrapped = true;
}
