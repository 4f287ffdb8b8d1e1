import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { initBackend, describeBackend, wasmDirectory } from '../../src/node/backend.js';
import { loadErrorMessage } from '../../src/backend.js';

const ROOT = join(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
const resolves = (pkg: string) => {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
};
const haveTfjsNode = resolves('@tensorflow/tfjs-node') || resolves('@tensorflow/tfjs-node-gpu');

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
    // Without tfjs-node and a GPU adapter, wasm is the embedded default.
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
    if (haveTfjsNode) {
      // Another CI job runs the suite with tfjs-node installed: then 'tensorflow' must load.
      assert.equal((await initBackend('tensorflow')).backend, 'tensorflow');
    } else {
      await assert.rejects(
        initBackend('tensorflow'),
        /backend 'tensorflow' is not available \(@tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed\)\. Install it with: npm install @tensorflow\/tfjs-node/,
      );
    }
    await assert.rejects(initBackend('tpu'), /unknown backend 'tpu' \(from the argument\).*expected one of tensorflow, webgpu, wasm, cpu/);
    process.env.UHOP_BACKEND = 'gpu';
    await assert.rejects(initBackend(), /unknown backend 'gpu' \(from UHOP_BACKEND\)/);
    delete process.env.UHOP_BACKEND;
  });

  it('reports skipped backends in package names, never bundle file paths', async () => {
    delete process.env.UHOP_BACKEND;
    const line = describeBackend(await initBackend());
    assert.doesNotMatch(line, /chunk-|\/dist\/|imported from|node_modules/, line);
    if (!haveTfjsNode)
      assert.match(line, /tensorflow: @tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed/);
  });
});

describe('loadErrorMessage', () => {
  it('turns module-resolution errors into "<package> is not installed"', () => {
    const esm = Object.assign(new Error("Cannot find package 'webgpu' imported from /app/node_modules/uhop/dist/chunk-IZAVKFKE.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    assert.equal(loadErrorMessage('webgpu', esm), 'webgpu is not installed');
    const dep = Object.assign(new Error("Cannot find module 'bindings'\nRequire stack:\n- /x/y.js"), { code: 'MODULE_NOT_FOUND' });
    assert.equal(
      loadErrorMessage('@tensorflow/tfjs-node', dep),
      '@tensorflow/tfjs-node cannot load: its dependency bindings is not installed',
    );
    const other = new Error('libtensorflow.so.2: cannot open shared object file, from /app/node_modules/uhop/dist/chunk-AB12CD34.js');
    assert.doesNotMatch(loadErrorMessage('@tensorflow/tfjs-node', other), /chunk-|\/dist\//);
    assert.match(
      loadErrorMessage('@tensorflow/tfjs-node', other),
      /^@tensorflow\/tfjs-node: libtensorflow\.so\.2: cannot open shared object file/,
    );
  });
});

describe('quiet by default', () => {
  it(
    "probes Dawn for a GPU adapter in a child process, so Dawn's warnings never reach the user's stderr",
    { skip: !resolves('webgpu') && 'the webgpu package is not installed' },
    () => {
      // Creating Dawn's GPU object in-process on a machine without a usable Vulkan driver writes
      // "Warning: Couldn't load Vulkan" (or adapter warnings) straight to fd 2.
      const script = `
      import { createRequire } from 'node:module';
      import { probeAdapterQuietly } from './src/node/backend.ts';
      const why = probeAdapterQuietly(createRequire(import.meta.url).resolve('webgpu'));
      process.stdout.write(JSON.stringify({ why }));
    `;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', 'stderr');
      const { why } = JSON.parse(r.stdout) as { why: string | null };
      // null where a GPU adapter exists; otherwise the reason, in one line.
      if (why !== null) assert.match(why, /^(no GPU adapter found|the adapter probe failed .*)$/);
    },
  );

  it("importing uhop/node and running initBackend('cpu') and 'wasm' prints nothing", () => {
    // A fresh process: the cpu backend's "running TensorFlow.js in Node.js" notice comes once per process.
    const script = `
      import * as tf from '@tensorflow/tfjs-core';
      import { HopfieldPooling } from './src/index.ts';
      import { initBackend } from './src/node/index.ts';
      await initBackend('cpu');
      tf.add(tf.ones([2]), 1).dataSync();
      new HopfieldPooling({ hiddenSize: 4, seed: 7 }).apply(tf.ones([1, 3, 4]));
      await initBackend('wasm');
      tf.add(tf.ones([2]), 1).dataSync();
      delete process.env.UHOP_BACKEND;
      await initBackend();
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, UHOP_BACKEND: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '', 'stdout');
    // Where tfjs-node is installed the automatic choice loads libtensorflow, which writes absl's
    // pre-initialization lines ("WARNING: All log messages before absl::InitializeLog() ...",
    // then "I0000 ... port.cc:...] oneDNN custom operations are on ...") straight to fd 2 while
    // loading, before any setting is read: TF_CPP_MIN_LOG_LEVEL and ABSL_MIN_LOG_LEVEL do not
    // silence them (checked with the libtensorflow 2.21 that ../shared/tfjs-node builds). Only
    // those native lines are allowed; anything from JavaScript still fails.
    const stderr = haveTfjsNode
      ? r.stderr
          .split('\n')
          .filter(
            (l) =>
              l !== '' &&
              !/^WARNING: All log messages before absl::InitializeLog\(\) is called/.test(l) &&
              !/^[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] /.test(l),
          )
          .join('\n')
      : r.stderr;
    assert.equal(stderr, '', 'stderr');
  });
});
