/**
 * The browser test's page script (bundled by esbuild for the browser): exposes the backend
 * switch, the op checks and the model run to the test, which calls them through
 * `page.evaluate`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBrowserBackend, type BrowserBackend, type BrowserBackendReport } from '../../examples/browser/backends.js';
import { runOpChecks, type OpResults } from './ops.js';
import { runModel, type ModelRun, type ModelWeights } from './model.js';

/** What the page reports for one backend. */
export interface PageResult {
  report: BrowserBackendReport;
  ops: OpResults;
  model: ModelRun;
  /** Tensors alive after the runs minus before (0: nothing leaked). */
  leakedTensors: number;
  /** Wall time of the op checks and of the model run, ms (reported, not asserted). */
  opsMs: number;
  modelMs: number;
}

async function runOnBackend(backend: BrowserBackend, weights: ModelWeights): Promise<PageResult> {
  const report = await useBrowserBackend(backend);
  const before = tf.memory().numTensors;
  let t0 = performance.now();
  const ops = await runOpChecks();
  const opsMs = performance.now() - t0;
  t0 = performance.now();
  const model = await runModel(weights);
  const modelMs = performance.now() - t0;
  return { report, ops, model, leakedTensors: tf.memory().numTensors - before, opsMs, modelMs };
}

(globalThis as unknown as { uhopBrowserTest: unknown }).uhopBrowserTest = { runOnBackend };
document.body.dataset.ready = 'true';
