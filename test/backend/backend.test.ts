import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, describeBackend, wasmDirectory } from '../../src/node/backend.js';

describe('initBackend', () => {
  const saved = process.env.UHOP_BACKEND;
  after(() => {
    if (saved === undefined) delete process.env.UHOP_BACKEND;
    else process.env.UHOP_BACKEND = saved;
  });

  it('picks the fastest backend that loads, and says why it skipped the others', async () => {
    delete process.env.UHOP_BACKEND;
    const report = await initBackend();
    assert.equal(tf.getBackend(), report.backend);
    // Here neither tfjs-node nor a GPU adapter is present, so wasm is the embedded default.
    if (report.backend === 'wasm') {
      assert.ok(report.skipped.tensorflow, 'tensorflow must be reported as skipped');
      assert.ok(report.skipped.webgpu, 'webgpu must be reported as skipped');
    }
    assert.match(describeBackend(report), new RegExp(`^backend: ${report.backend}`));
  });

  it('honours an explicit choice and UHOP_BACKEND', async () => {
    assert.equal((await initBackend('cpu')).backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    process.env.UHOP_BACKEND = 'wasm';
    assert.equal((await initBackend()).backend, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
  });

  it('resolves the wasm binaries from node_modules, whatever the working directory', async () => {
    const dir = wasmDirectory();
    assert.match(dir, /tfjs-backend-wasm\/dist\/$/);
    const cwd = process.cwd();
    process.chdir('/');
    try {
      await initBackend('cpu');
      assert.equal((await initBackend('wasm')).backend, 'wasm');
      const y = tf.matMul(tf.ones([2, 2]), tf.ones([2, 2]));
      assert.deepEqual(Array.from(y.dataSync()), [2, 2, 2, 2]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('names what to install when a backend is unavailable, and rejects unknown names', async () => {
    await assert.rejects(initBackend('tensorflow'), /backend 'tensorflow' is not available .*npm install @tensorflow\/tfjs-node/);
    await assert.rejects(initBackend('tpu'), /unknown backend 'tpu'.*expected one of tensorflow, webgpu, wasm, cpu/);
  });
});
