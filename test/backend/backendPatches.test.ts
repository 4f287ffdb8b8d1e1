import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/node/backend.js';
import { isWasmMatMulPatched, patchWasmMatMul, unpatchWasmMatMul, WASM_MATMUL_KERNELS } from '../../src/backendPatches.js';
import { assertClose } from '../helpers.js';

const ORIGINAL = Symbol.for('uhop.wasmMatMulPatch.original');
const marker = (backend: string, kernel: string) =>
  (tf.getKernel(kernel, backend).kernelFunc as unknown as Record<symbol, unknown>)[ORIGINAL];

/** Deterministic inputs, identical on every backend. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
const size = (shape: number[]) => shape.reduce((p, q) => p * q, 1);

interface Product {
  name: string;
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
  fused?: { bias: number; activation: 'relu' | 'linear' | 'elu' };
}

const PRODUCTS: Product[] = [
  { name: 'A^T B', a: [300, 40], b: [300, 24], ta: true, tb: false },
  { name: 'A B^T', a: [40, 300], b: [24, 300], ta: false, tb: true },
  { name: 'A^T B^T', a: [300, 40], b: [24, 300], ta: true, tb: true },
  { name: 'A B (untouched)', a: [40, 300], b: [300, 24], ta: false, tb: false },
  { name: 'batch dims of 1', a: [1, 1, 300, 40], b: [1, 1, 300, 24], ta: true, tb: false },
  { name: 'batch 1, rank 3 x rank 2', a: [1, 40, 300], b: [24, 300], ta: false, tb: true },
  { name: 'batched (falls back)', a: [3, 300, 40], b: [3, 24, 300], ta: true, tb: true },
  { name: 'vector-like operand', a: [300, 1], b: [300, 64], ta: true, tb: false },
  { name: 'small (under the threshold)', a: [8, 4], b: [8, 8], ta: true, tb: false },
  // K = 300 > 48: tfjs-backend-wasm 4.22's own loop (the unpatched transposed path) adds the
  // bias and clamps once per 48-wide block of the shared dimension, so these two differ from
  // the cpu backend without the patch; with it they run on XNNPACK and agree.
  { name: 'fused A^T B + bias, relu', a: [300, 40], b: [300, 24], ta: true, tb: false, fused: { bias: 24, activation: 'relu' } },
  { name: 'fused A B^T + bias, elu', a: [40, 300], b: [24, 300], ta: false, tb: true, fused: { bias: 24, activation: 'elu' } },
  { name: 'fused A^T B^T, linear', a: [300, 40], b: [24, 300], ta: true, tb: true, fused: { bias: 0, activation: 'linear' } },
];

function runProduct(p: Product, seed: number): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.tensor(values(size(p.a), seed), p.a);
    const b = tf.tensor(values(size(p.b), seed + 1), p.b);
    if (!p.fused) return tf.matMul(a, b, p.ta, p.tb);
    const bias = p.fused.bias ? tf.tensor(values(p.fused.bias, seed + 2), [p.fused.bias]) : undefined;
    return tf.fused.matMul({ a, b, transposeA: p.ta, transposeB: p.tb, bias, activation: p.fused.activation });
  });
}

/** Gradients of a tf.layers.dense(230 -> 128, relu) loss w.r.t. kernel, bias and input. */
function denseGrads(): Float32Array[] {
  return tf.tidy(() => {
    const dense = tfl.layers.dense({
      units: 128,
      activation: 'relu',
      inputShape: [230],
      kernelInitializer: tfl.initializers.glorotUniform({ seed: 201 }),
    });
    const x = tf.tensor(values(256 * 230, 11), [256, 230]);
    const target = tf.tensor(values(256 * 128, 12), [256, 128]);
    dense.apply(x);
    dense.setWeights([tf.mul(tf.tensor(values(230 * 128, 13), [230, 128]), 0.1), tf.mul(tf.tensor(values(128, 14), [128]), 0.1)]);
    const [kernel, bias] = dense.trainableWeights.map((w) => w.read());
    const f = (xx: tf.Tensor, k: tf.Tensor, bb: tf.Tensor) => tf.losses.meanSquaredError(target, tf.relu(tf.add(tf.matMul(xx, k), bb)));
    // The layer's own gradient path (fused matMul forward, BatchMatMul backward) ...
    const viaLayer = tf.variableGrads(() => tf.losses.meanSquaredError(target, dense.apply(x) as tf.Tensor) as tf.Scalar);
    // ... and the input gradient, which the optimizer never asks for.
    const dx = tf.grad((xx: tf.Tensor) => tf.losses.meanSquaredError(target, dense.apply(xx) as tf.Tensor))(x);
    const plain = tf.grads(f)([x, kernel, bias]);
    const grads = Object.values(viaLayer.grads);
    const out = [...grads, dx, ...plain].map((g) => g.dataSync() as Float32Array);
    dense.dispose();
    return out;
  });
}

function memory(): [number, number, number] {
  const m = tf.memory();
  return [m.numTensors, m.numBytes, tf.backend().numDataIds()];
}

describe('wasm matMul patch', () => {
  const cpuProducts: Float32Array[] = [];
  let cpuGrads: Float32Array[] = [];
  let cpuKernelBefore: unknown;
  const savedEnv = process.env.UHOP_WASM_MATMUL;

  before(async () => {
    delete process.env.UHOP_WASM_MATMUL;
    await initBackend('cpu');
    cpuKernelBefore = tf.getKernel('BatchMatMul', 'cpu').kernelFunc;
    for (const [i, p] of PRODUCTS.entries()) {
      const y = runProduct(p, 100 + 3 * i);
      cpuProducts.push(y.dataSync() as Float32Array);
      y.dispose();
    }
    cpuGrads = denseGrads();
    await initBackend('wasm');
  });
  after(async () => {
    if (savedEnv === undefined) delete process.env.UHOP_WASM_MATMUL;
    else process.env.UHOP_WASM_MATMUL = savedEnv;
    await initBackend('wasm');
  });

  it('is applied by initBackend on wasm, to both matMul kernels and nothing else', () => {
    assert.equal(tf.getBackend(), 'wasm');
    assert.ok(isWasmMatMulPatched());
    for (const k of WASM_MATMUL_KERNELS) {
      assert.ok(marker('wasm', k), `${k} on wasm must be wrapped`);
      assert.equal(marker('cpu', k), undefined, `${k} on cpu must be untouched`);
    }
    assert.equal(tf.getKernel('BatchMatMul', 'cpu').kernelFunc, cpuKernelBefore);
    assert.equal(marker('wasm', 'Transpose'), undefined);
  });

  it("gives the cpu backend's products (transposed, batched, fused) to 1e-4", () => {
    for (const [i, p] of PRODUCTS.entries()) {
      const y = runProduct(p, 100 + 3 * i);
      assertClose(y, cpuProducts[i], 1e-4, p.name);
      y.dispose();
    }
  });

  it("gives the same products as tfjs' own wasm kernels, where those are right", () => {
    const patched = PRODUCTS.map((p, i) => tf.keep(runProduct(p, 100 + 3 * i)));
    unpatchWasmMatMul();
    try {
      assert.ok(!isWasmMatMulPatched());
      for (const [i, p] of PRODUCTS.entries()) {
        if (p.fused && (p.fused.bias || p.fused.activation !== 'linear')) continue; // see PRODUCTS
        const y = runProduct(p, 100 + 3 * i);
        assert.deepEqual(y.shape, patched[i].shape, p.name);
        assertClose(patched[i], y, 1e-5, p.name);
        y.dispose();
      }
    } finally {
      patchWasmMatMul();
      tf.dispose(patched);
    }
  });

  it("gives tf.layers.dense the cpu backend's gradients", () => {
    const wasmGrads = denseGrads();
    assert.equal(wasmGrads.length, cpuGrads.length);
    for (const [i, g] of wasmGrads.entries()) assertClose(g, cpuGrads[i], 1e-4, `gradient ${i}`);
  });

  it('leaks no tensor, byte or wasm buffer', () => {
    const once = () => {
      for (const [i, p] of PRODUCTS.entries()) runProduct(p, 100 + 3 * i).dispose();
      denseGrads();
    };
    once(); // lazily created constants are allowed once
    const before = memory();
    for (let r = 0; r < 3; r++) once();
    assert.deepEqual(memory(), before, '[numTensors, numBytes, wasm dataIds]');
  });

  // Speed is measured in bench/wasmMatMul.ts (tests hold no timed assertions); that the
  // patched path runs is shown above by the transposed fused products tfjs' loop gets wrong.

  it('is idempotent across re-initialization and backend switches', async () => {
    const wrapped = tf.getKernel('BatchMatMul', 'wasm').kernelFunc;
    const original = marker('wasm', 'BatchMatMul') as { kernelFunc: unknown };
    await initBackend('wasm');
    await initBackend('wasm');
    assert.deepEqual(patchWasmMatMul(), [], 'a second patch wraps nothing');
    await initBackend('cpu');
    assert.equal(tf.getKernel('BatchMatMul', 'cpu').kernelFunc, cpuKernelBefore);
    const yCpu = runProduct(PRODUCTS[0], 100);
    assertClose(yCpu, cpuProducts[0], 0, 'cpu after switching');
    yCpu.dispose();
    await initBackend('wasm');
    await initBackend('cpu');
    await initBackend('wasm');
    assert.equal(tf.getKernel('BatchMatMul', 'wasm').kernelFunc, wrapped, 'the same wrapper, not a wrapper of a wrapper');
    assert.equal((original.kernelFunc as Record<symbol, unknown>)[ORIGINAL], undefined, "the wrapped kernel is tfjs' own");
    const y = runProduct(PRODUCTS[0], 100);
    assertClose(y, cpuProducts[0], 1e-4, 'wasm after switching');
    y.dispose();
    assert.deepEqual(unpatchWasmMatMul(), [...WASM_MATMUL_KERNELS]);
    assert.deepEqual(unpatchWasmMatMul(), []);
    assert.equal(tf.getKernel('BatchMatMul', 'wasm').kernelFunc, original.kernelFunc);
    assert.deepEqual(patchWasmMatMul(), [...WASM_MATMUL_KERNELS]);
  });

  it("UHOP_WASM_MATMUL=native keeps tfjs' kernels; an unknown value is an error", async () => {
    process.env.UHOP_WASM_MATMUL = 'native';
    await initBackend('wasm');
    assert.ok(!isWasmMatMulPatched());
    process.env.UHOP_WASM_MATMUL = 'fast';
    await assert.rejects(initBackend('wasm'), /UHOP_WASM_MATMUL 'fast'; expected 'xnnpack' \(the default\) or 'native'/);
    delete process.env.UHOP_WASM_MATMUL;
    await initBackend('wasm');
    assert.ok(isWasmMatMulPatched());
  });
});
