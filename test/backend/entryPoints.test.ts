/**
 * The root entry is browser-safe and has no side effect beyond registering layer classes;
 * 'uhop/node' and 'uhop/browser' change nothing until their initBackend is called.
 * (The same is checked on the built package in test/package/package.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

const ROOT = join(import.meta.dirname, '../..');

/** Each registered backend with its priority, and the active one. */
function backendState(): { registered: [string, number][]; active: string } {
  const registry = (tf.engine() as unknown as { registryFactory: Record<string, { priority: number }> }).registryFactory;
  return {
    registered: Object.entries(registry)
      .map(([name, r]) => [name, r.priority] as [string, number])
      .sort(),
    active: tf.getBackend(),
  };
}

describe('entry points', () => {
  it("importing 'uhop', 'uhop/node' and 'uhop/browser' registers no backend and changes no priority", async () => {
    tf.ones([1]).dispose(); // the user's own code has picked tfjs' default backend
    const before = backendState();
    assert.equal(before.active, 'cpu');
    const root = await import('../../src/index.js');
    await import('../../src/node/index.js');
    await import('../../src/browser/index.js');
    assert.deepEqual(backendState(), before);
    assert.ok(tf.serialization.SerializationMap.getMap().classNameMap['HopfieldPooling'], 'layer classes are registered');
    assert.equal(typeof root.HopfieldPooling, 'function');
    tf.tidy(() => assert.deepEqual(Array.from(tf.add(tf.ones([2]), 1).dataSync()), [2, 2]));
  });

  it('the root entry and uhop/browser bundle for browsers (esbuild --platform=browser) without any node builtin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uhop-bundle-'));
    try {
      for (const entry of ['src/index.ts', 'src/browser/index.ts']) {
        const meta = join(dir, 'meta.json');
        const r = spawnSync(
          join(ROOT, 'node_modules/esbuild/bin/esbuild'),
          [
            entry,
            '--bundle',
            '--platform=browser',
            '--format=esm',
            `--metafile=${meta}`,
            `--outfile=${join(dir, 'out.js')}`,
            '--log-level=error',
          ],
          { cwd: ROOT, encoding: 'utf8' },
        );
        // esbuild refuses node: imports and Node builtins when bundling for the browser.
        assert.equal(r.status, 0, `${entry}: ${r.stderr}`);
        const inputs = (JSON.parse(readFileSync(meta, 'utf8')) as { inputs: Record<string, { imports: { path: string }[] }> }).inputs;
        const ours = Object.keys(inputs).filter((p) => p.startsWith('src/'));
        assert.ok(ours.length >= (entry === 'src/index.ts' ? 20 : 3), `${entry} pulled ${ours.length} of our files`);
        assert.deepEqual(
          ours.filter((p) => /^src\/(node|experiments|cli)/.test(p)),
          [],
          `${entry} pulls Node-only files`,
        );
        const text = ours.map((p) => readFileSync(join(ROOT, p), 'utf8')).join('\n');
        assert.doesNotMatch(text, /\bprocess\.(env|argv|platform|stdout|stderr|exit)/, `${entry}: a file reads process`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("uhop/browser's initBackend (run here on what is registered: cpu only)", () => {
  it('takes the first registered backend of webgpu, webgl, wasm, cpu and says what to import for the others', async () => {
    const { initBackend, describeBackend } = await import('../../src/browser/index.js');
    const report = await initBackend();
    assert.equal(report.backend, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.deepEqual(report.skipped, {
      webgpu: 'this browser has no WebGPU (navigator.gpu)',
      webgl: '@tensorflow/tfjs-backend-webgl is not imported',
      wasm: '@tensorflow/tfjs-backend-wasm is not imported',
    });
    assert.match(describeBackend(report), /^backend: cpu \(skipped webgpu: .*; webgl: .*; wasm: .*\)$/);
    await assert.rejects(
      initBackend('webgl'),
      /initBackend: backend 'webgl' is not available \(@tensorflow\/tfjs-backend-webgl is not imported\)\. Import '@tensorflow\/tfjs-backend-webgl' \(or '@tensorflow\/tfjs'\) before initBackend/,
    );
    await assert.rejects(
      initBackend('tensorflow'),
      /unknown backend 'tensorflow' \(from the argument\); expected one of webgpu, webgl, wasm, cpu/,
    );
    assert.equal((await initBackend('cpu')).backend, 'cpu');
  });
});
