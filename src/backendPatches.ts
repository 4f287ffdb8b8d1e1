/**
 * Backend-specific kernel patches, applied by `initBackend` once a backend is active.
 *
 * wasm: tfjs-backend-wasm 4.22 sends `BatchMatMul` and `_FusedMatMul` to XNNPACK only when
 * neither operand is transposed and both have batch 1; a transposed operand falls back to a
 * plain blocked loop that runs about 10x slower. Every dense layer's backward pass
 * (dW = x^T dy, dx = dy W^T) hits that loop. The patch wraps both wasm kernels: when the batch
 * dimensions are all 1 and an operand is transposed, it materializes the transpose with the
 * backend's own `Transpose` kernel, calls the original kernel with the transposes off (the
 * XNNPACK path), and frees the intermediate. Everything else (non-transposed or batched
 * products, products under `WASM_MATMUL_MIN_MACS`) goes to the original kernel unchanged. Only
 * the wasm kernel registry is touched: other backends never see the patch.
 *
 * Measured on one core (bench/wasmMatMul.ts): [4096,128]^T x [4096,128] 64 -> 8.4 ms CPU, a
 * tf.layers.dense(230->128) training step on [1024,230] 33 -> 11 ms. The loop also gets
 * transposed `_FusedMatMul` wrong when the shared dimension exceeds 48 (it adds the bias and
 * clamps once per 48-wide block); the patched products are right. Batched fused products with a
 * bias or activation still go to that loop.
 *
 * `UHOP_WASM_MATMUL=native` (read by `uhop/node`'s `initBackend`) keeps tfjs' own kernels (for
 * comparisons, or as an escape hatch).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The wasm kernels the patch wraps. */
export const WASM_MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;

/**
 * Marks a wrapped kernelFunc and holds the original config. A registry-wide symbol, so that two
 * copies of this module (say, a bundle and node_modules) still see each other's patch.
 */
const ORIGINAL = Symbol.for('uhop.wasmMatMulPatch.original');

type PatchedFunc = KernelFunc & { [ORIGINAL]?: KernelConfig };

interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

/**
 * Products smaller than this many multiply-adds (M*K*N) stay on the original kernel: below it
 * the extra Transpose dispatch and XNNPACK's operator setup (weight packing) cost more than
 * the plain loop saves. Measured crossover on wasm (SIMD, one thread): about 8K-16K.
 */
export const WASM_MATMUL_MIN_MACS = 16384;

function batchDimsAllOne(shape: number[]): boolean {
  for (let i = 0; i < shape.length - 2; i++) if (shape[i] !== 1) return false;
  return true;
}

function macs(as: number[], bs: number[], transposeA: boolean, transposeB: boolean): number {
  const ra = as.length;
  const m = transposeA ? as[ra - 1] : as[ra - 2];
  const k = transposeA ? as[ra - 2] : as[ra - 1];
  const n = transposeB ? bs[bs.length - 2] : bs[bs.length - 1];
  return m * k * n;
}

function wrapMatMul(original: KernelConfig, transpose: KernelFunc): PatchedFunc {
  const originalFunc = original.kernelFunc;
  const patched: PatchedFunc = (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs;
    const a = inputs.a;
    const b = inputs.b;
    const transposeA = attrs?.transposeA === true;
    const transposeB = attrs?.transposeB === true;
    if (
      (!transposeA && !transposeB) ||
      a == null ||
      b == null ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      a.shape.length < 2 ||
      b.shape.length < 2 ||
      !batchDimsAllOne(a.shape) ||
      !batchDimsAllOne(b.shape) ||
      macs(a.shape, b.shape, transposeA, transposeB) < WASM_MATMUL_MIN_MACS
    ) {
      return originalFunc(args);
    }
    const temps: TensorInfo[] = [];
    const lastTwoSwapped = (x: TensorInfo): TensorInfo => {
      const r = x.shape.length;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      const t = transpose({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
      temps.push(t);
      return t;
    };
    try {
      const a2 = transposeA ? lastTwoSwapped(a) : a;
      const b2 = transposeB ? lastTwoSwapped(b) : b;
      return originalFunc({
        inputs: { ...inputs, a: a2, b: b2 },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      // Kernel-internal intermediates are unknown to the engine: free them here. Disposing the
      // transposed operand also releases the XNNPACK operator the original cached on its id.
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  patched[ORIGINAL] = original;
  return patched;
}

function registered(kernelName: string): KernelConfig | undefined {
  return tf.getKernel(kernelName, 'wasm') as KernelConfig | undefined;
}

/** Whether the wasm matMul kernels currently run through the patch. */
export function isWasmMatMulPatched(): boolean {
  return WASM_MATMUL_KERNELS.every((k) => (registered(k)?.kernelFunc as PatchedFunc | undefined)?.[ORIGINAL] != null);
}

/**
 * Wraps the wasm `BatchMatMul` and `_FusedMatMul` kernels so that transposed products with
 * batch 1 run on XNNPACK (see the module comment). Idempotent; `initBackend('wasm')` calls it.
 * Call it yourself only if you activate the wasm backend with `tf.setBackend('wasm')` directly.
 *
 * @returns the kernels wrapped by this call (empty when they already were).
 * @throws if the wasm backend's kernels are not registered (tfjs-backend-wasm not loaded).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { patchWasmMatMul } from 'uhop';
 * await tf.setBackend('wasm');
 * patchWasmMatMul();
 * tf.matMul(tf.ones([4096, 128]), tf.ones([4096, 128]), true, false); // XNNPACK, not the loop
 * ```
 */
export function patchWasmMatMul(): string[] {
  const transpose = registered('Transpose');
  if (!transpose) {
    throw new Error(
      "patchWasmMatMul: no 'Transpose' kernel is registered for the wasm backend; import '@tensorflow/tfjs-backend-wasm' first",
    );
  }
  const done: string[] = [];
  for (const name of WASM_MATMUL_KERNELS) {
    const config = registered(name);
    if (!config) {
      throw new Error(
        `patchWasmMatMul: no '${name}' kernel is registered for the wasm backend; import '@tensorflow/tfjs-backend-wasm' first`,
      );
    }
    if ((config.kernelFunc as PatchedFunc)[ORIGINAL] != null) continue;
    tf.unregisterKernel(name, 'wasm');
    // setupFunc/disposeFunc stay: they (re)bind the original's wasm exports when the backend is
    // (re)initialized, which the wrapped function still calls.
    tf.registerKernel({ ...config, kernelFunc: wrapMatMul(config, transpose.kernelFunc) });
    done.push(name);
  }
  return done;
}

/**
 * Restores tfjs' own wasm `BatchMatMul` and `_FusedMatMul` kernels. Idempotent.
 *
 * @returns the kernels restored by this call.
 *
 * @example
 * ```ts
 * import { unpatchWasmMatMul } from 'uhop';
 * unpatchWasmMatMul(); // e.g. to time tfjs-backend-wasm as shipped
 * ```
 */
export function unpatchWasmMatMul(): string[] {
  const done: string[] = [];
  for (const name of WASM_MATMUL_KERNELS) {
    const original = (registered(name)?.kernelFunc as PatchedFunc | undefined)?.[ORIGINAL];
    if (original == null) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(original);
    done.push(name);
  }
  return done;
}

/** Options of {@link applyBackendPatches}. */
export interface BackendPatchOptions {
  /**
   * 'xnnpack' (default: the matMul patch) or 'native' (tfjs' own kernels, restored if patched).
   * `uhop/node`'s `initBackend` passes the environment variable UHOP_WASM_MATMUL.
   */
  wasmMatMul?: string;
  /** Where `wasmMatMul` came from, for the error message. Default 'wasmMatMul'. */
  source?: string;
}

/**
 * The patches for `backend`, called by `initBackend` after activation: on 'wasm' the matMul
 * patch (unless `wasmMatMul` is 'native', which restores tfjs' kernels); nothing elsewhere.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { applyBackendPatches } from 'uhop';
 * await tf.setBackend('wasm');
 * applyBackendPatches(tf.getBackend());
 * ```
 */
export function applyBackendPatches(backend: string, options: BackendPatchOptions = {}): void {
  if (backend !== 'wasm') return;
  const mode = options.wasmMatMul?.trim().toLowerCase();
  if (mode === 'native') unpatchWasmMatMul();
  else if (mode === undefined || mode === '' || mode === 'xnnpack') patchWasmMatMul();
  else {
    throw new Error(`initBackend: unknown ${options.source ?? 'wasmMatMul'} '${mode}'; expected 'xnnpack' (the default) or 'native'`);
  }
}
