/**
 * The browser demo: U-Hop associative memory you can look at (`npm run demo`).
 *
 * Stores the first M digits of an MNIST test sample, corrupts every one of them (a masked
 * fraction of the pixels and Gaussian noise, seeded) and retrieves each with one update step of
 * dense modern Hopfield, a UHN distance similarity and U-Hop, then shows one query with what
 * each method retrieves and the truth, the errors, and the Stage-I loss curve. Drawing on the
 * query re-runs the retrieval of that query alone.
 *
 * The page's state for scripts (the browser test reads it): `body[data-state]` is 'done' after
 * each retrieval, `body[data-backend]` names the backend, `body[data-mean-error-<method>]`
 * holds the mean errors shown, `body[data-loss-first]` / `[data-loss-last]` the Stage-I loss
 * before and after the fit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBrowserBackend, BROWSER_BACKENDS, type BrowserBackend } from './backends.js';
// The package's root entry, bundled for the browser; in a project of your own: from 'uhop'.
import { UHopMemory, retrieve, maskQueries, noisyQueries, retrievalError, nearestMemory } from '../../src/index.js';

const D = 784;
const SIDE = 28;
const BETA = 1;
const SEED = 1;
const METHODS = ['dense', 'euclidean', 'uhop'] as const;
type Method = (typeof METHODS)[number];
const LABELS: Record<Method, string> = { dense: 'dense Hopfield', euclidean: 'UHN euclidean', uhop: 'U-Hop' };

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: no element #${id} in the page`);
  return el as T;
};
const slider = (id: string) => $<HTMLInputElement>(id);

interface Sample {
  n: number;
  pixels: Float32Array;
  labels: Uint8Array;
}

async function loadSample(): Promise<Sample> {
  const response = await fetch('/mnist-sample.bin');
  if (!response.ok) throw new Error(`demo: /mnist-sample.bin answered ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const n = bytes.length / (D + 1);
  if (!Number.isInteger(n)) throw new Error(`demo: /mnist-sample.bin has ${bytes.length} bytes, not a multiple of ${D + 1}`);
  const pixels = new Float32Array(n * D);
  for (let i = 0; i < n * D; i++) pixels[i] = bytes[i] / 255;
  return { n, pixels, labels: bytes.subarray(n * D) };
}

/** Everything computed for the current M, mask, noise and Stage-I steps. */
interface State {
  memories: tf.Tensor2D;
  /** The stored digits' pixels, [M * 784]. */
  pixels: Float32Array;
  memory: UHopMemory;
  queries: Float32Array;
  retrieved: Record<Method, Float32Array>;
  errors: Record<Method, Float32Array>;
  exact: Record<Method, number>;
  lossTrace: Float32Array;
  fitMs: number;
  retrieveMs: number;
}

let state: State | undefined;
/** The shown query when it was drawn on (replaces the corrupted digit), else undefined. */
let drawn: Float32Array | undefined;
type DrawnResult = Record<Method, { states: Float32Array; error: number }>;
/** What each method retrieves from the drawing. */
let drawnResult: DrawnResult | undefined;

function drawImage(id: string, data: Float32Array, offset = 0): void {
  const ctx = $<HTMLCanvasElement>(id).getContext('2d')!;
  const img = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < D; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, data[offset + i])));
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

function drawLossCurve(trace: Float32Array): void {
  const canvas = $<HTMLCanvasElement>('loss');
  const ctx = canvas.getContext('2d')!;
  const { width: w, height: h } = canvas;
  const pad = { left: 44, right: 8, top: 8, bottom: 24 };
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#333';
  ctx.strokeStyle = '#999';
  ctx.strokeRect(pad.left, pad.top, w - pad.left - pad.right, h - pad.top - pad.bottom);
  const lo = Math.min(...trace);
  const hi = Math.max(...trace);
  const span = hi - lo || 1;
  const x = (i: number) => pad.left + ((w - pad.left - pad.right) * i) / Math.max(1, trace.length - 1);
  const y = (v: number) => pad.top + ((h - pad.top - pad.bottom) * (hi - v)) / span;
  ctx.fillText(hi.toFixed(2), 2, pad.top + 8);
  ctx.fillText(lo.toFixed(2), 2, h - pad.bottom);
  ctx.fillText('0', pad.left - 3, h - 8);
  ctx.fillText(`step ${trace.length - 1}`, w - pad.right - 48, h - 8);
  ctx.strokeStyle = '#c0392b';
  ctx.lineWidth = 2;
  ctx.beginPath();
  trace.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
  ctx.stroke();
}

/** Retrieves queries [L, d] with each method; returns the states as arrays. */
function retrieveAll(queries: tf.Tensor2D, memories: tf.Tensor2D, memory: UHopMemory): Record<Method, tf.Tensor> {
  return {
    dense: retrieve(queries, memories, { beta: BETA, similarity: 'dot', separation: 'softmax' }).states,
    euclidean: retrieve(queries, memories, { beta: BETA, similarity: 'euclidean', separation: 'softmax' }).states,
    uhop: memory.retrieve(queries).states,
  };
}

async function compute(sample: Sample): Promise<void> {
  document.body.dataset.state = 'running';
  const m = Number(slider('m').value);
  const fraction = Number(slider('mask').value);
  const std = Number(slider('noise').value);
  const steps = Number(slider('steps').value);
  state?.memory.dispose();
  state?.memories.dispose();
  const memories = tf.tensor2d(sample.pixels.subarray(0, m * D), [m, D]);

  // Stage I: fit Phi on the stored digits. Reading the loss trace waits for the GPU, so the
  // time is real. Reads are async (data()): a synchronous read loses the webgpu device in
  // headless Chromium, and blocks the page elsewhere.
  let t0 = performance.now();
  // The library's Stage-I defaults (the 'normalized' step rule) with the U-Hop paper's loss.
  const memory = new UHopMemory({ fitSteps: steps, separationLoss: 'uniform', beta: BETA });
  memory.store(memories);
  const lossTrace = (await memory.lossTrace.data()) as Float32Array;
  const fitMs = performance.now() - t0;

  t0 = performance.now();
  const tensors = tf.tidy(() => {
    let q: tf.Tensor = maskQueries(memories, { fraction, seed: SEED });
    if (std > 0) q = noisyQueries(q, { std, seed: SEED + 1 });
    const states = retrieveAll(q as tf.Tensor2D, memories, memory);
    const out: Record<string, tf.Tensor> = { queries: q };
    for (const k of METHODS) {
      out[k] = states[k];
      out[`${k} error`] = retrievalError(states[k], memories).perPattern;
      const nearest = nearestMemory(states[k], memories);
      out[`${k} exact`] = tf.sum(tf.cast(tf.equal(nearest, tf.range(0, m, 1, 'int32')), 'int32'));
    }
    return out;
  });
  const results: Record<string, Float32Array | Int32Array> = {};
  for (const [name, t] of Object.entries(tensors)) results[name] = (await t.data()) as Float32Array | Int32Array;
  tf.dispose(Object.values(tensors));
  const retrieveMs = performance.now() - t0;
  const pick = <T>(f: (k: Method) => T) => Object.fromEntries(METHODS.map((k) => [k, f(k)])) as Record<Method, T>;
  state = {
    memories,
    memory,
    pixels: sample.pixels.subarray(0, m * D),
    queries: results.queries as Float32Array,
    retrieved: pick((k) => results[k] as Float32Array),
    errors: pick((k) => results[`${k} error`] as Float32Array),
    exact: pick((k) => results[`${k} exact`][0]),
    lossTrace,
    fitMs,
    retrieveMs,
  };

  // Show the query dense Hopfield gets most wrong first; the slider picks any other.
  const q = slider('query');
  q.max = String(m - 1);
  const dense = state.errors.dense;
  let worst = 0;
  for (let i = 1; i < m; i++) if (dense[i] > dense[worst]) worst = i;
  q.value = String(worst);
  drawn = undefined;
  drawnResult = undefined;
  render();
}

/** Retrieves the drawn query alone (Stage II only: Phi stays as fitted on the memories), then renders. */
async function retrieveDrawn(): Promise<void> {
  if (!state || !drawn) return;
  const s = state;
  const i = Number(slider('query').value);
  const query = drawn;
  const tensors = tf.tidy(() => {
    const states = retrieveAll(tf.tensor2d(query, [1, D]), s.memories, s.memory);
    const truth = tf.slice(s.memories, [i, 0], [1, D]);
    return METHODS.flatMap((k) => [states[k], retrievalError(states[k], truth).mean]);
  });
  const values = await Promise.all(tensors.map((t) => t.data()));
  tf.dispose(tensors);
  // A newer stroke or a new query may have replaced the drawing meanwhile: show only the latest.
  if (drawn !== query || state !== s) return;
  drawnResult = Object.fromEntries(
    METHODS.map((k, j) => [k, { states: values[2 * j] as Float32Array, error: values[2 * j + 1][0] }]),
  ) as DrawnResult;
  render();
}

function render(): void {
  if (!state) return;
  const s = state;
  const i = Number(slider('query').value);
  const m = s.errors.dense.length;
  const single = drawn ? drawnResult : undefined;
  drawImage('c-query', drawn ?? s.queries, drawn ? 0 : i * D);
  drawImage('c-truth', s.pixels, i * D);
  const rows: string[] = [];
  for (const k of METHODS) {
    const error = single ? single[k].error : s.errors[k][i];
    if (single) drawImage(`c-${k}`, single[k].states);
    else drawImage(`c-${k}`, s.retrieved[k], i * D);
    const mean = s.errors[k].reduce((a, b) => a + b, 0) / m;
    $(`e-${k}`).textContent = `error ${error.toFixed(2)}`;
    document.body.dataset[`meanError${k[0].toUpperCase()}${k.slice(1)}`] = String(mean);
    rows.push(`<tr><td>${LABELS[k]}</td><td>${error.toFixed(2)}</td><td>${mean.toFixed(2)}</td><td>${s.exact[k]} / ${m}</td></tr>`);
  }
  $('table').innerHTML = rows.join('');
  drawLossCurve(s.lossTrace);
  document.body.dataset.lossFirst = String(s.lossTrace[0]);
  document.body.dataset.lossLast = String(s.lossTrace[s.lossTrace.length - 1]);
  for (const id of ['m', 'mask', 'noise', 'query', 'steps']) $(`${id}Out`).textContent = slider(id).value;
  $('note').textContent =
    `Stage I: ${s.lossTrace.length - 1} steps in ${s.fitMs.toFixed(0)} ms; retrieval of all ${m} queries: ${s.retrieveMs.toFixed(0)} ms.` +
    (drawn
      ? ' Showing your drawing (errors against the digit it replaced).'
      : ` Showing query ${i}, digit ${i} of the sample; the first one shown is the query dense Hopfield gets most wrong.`);
  document.body.dataset.state = 'done';
}

function enableDrawing(): void {
  const canvas = $<HTMLCanvasElement>('c-query');
  let down = false;
  const paint = (e: PointerEvent) => {
    if (!down || !state) return;
    const rect = canvas.getBoundingClientRect();
    const cx = ((e.clientX - rect.left) / rect.width) * SIDE;
    const cy = ((e.clientY - rect.top) / rect.height) * SIDE;
    const i = Number(slider('query').value);
    drawn ??= state.queries.slice(i * D, (i + 1) * D);
    // A soft round brush of radius ~1.5 pixels, as MNIST strokes are.
    for (let r = Math.floor(cy - 2); r <= Math.ceil(cy + 2); r++) {
      for (let c = Math.floor(cx - 2); c <= Math.ceil(cx + 2); c++) {
        if (r < 0 || c < 0 || r >= SIDE || c >= SIDE) continue;
        const ink = Math.max(0, 1 - Math.hypot(r + 0.5 - cy, c + 0.5 - cx) / 1.8);
        drawn[r * SIDE + c] = Math.min(1, drawn[r * SIDE + c] + ink);
      }
    }
    // A new array per stroke step, so that a pending retrieval of an older drawing is dropped.
    drawn = drawn.slice();
    drawImage('c-query', drawn);
    void retrieveDrawn().catch(fail);
  };
  canvas.addEventListener('pointerdown', (e) => {
    down = true;
    paint(e);
  });
  canvas.addEventListener('pointermove', paint);
  window.addEventListener('pointerup', () => (down = false));
  $('clear').addEventListener('click', () => {
    drawn = undefined;
    drawnResult = undefined;
    render();
  });
}

async function main(): Promise<void> {
  const asked = new URLSearchParams(location.search).get('backend') ?? '';
  if (asked && !BROWSER_BACKENDS.includes(asked as BrowserBackend)) {
    throw new Error(`demo: unknown backend '${asked}' in the address; expected one of ${BROWSER_BACKENDS.join(', ')}`);
  }
  const report = await useBrowserBackend((asked || undefined) as BrowserBackend | undefined);
  const skipped = Object.entries(report.skipped).map(([k, v]) => `${k}: ${v}`);
  $('backend').textContent = `backend: ${report.backend} (${report.detail})${skipped.length ? `; skipped ${skipped.join('; ')}` : ''}`;
  document.body.dataset.backend = report.backend;
  $<HTMLSelectElement>('backendSelect').value = asked;
  $<HTMLSelectElement>('backendSelect').addEventListener('change', (e) => {
    const url = new URL(location.href);
    url.searchParams.set('backend', (e.target as HTMLSelectElement).value);
    location.href = url.toString();
  });
  const sample = await loadSample();
  slider('m').max = String(sample.n);
  const rerun = () => void compute(sample).catch(fail);
  for (const id of ['m', 'mask', 'noise', 'steps']) slider(id).addEventListener('change', rerun);
  for (const id of ['m', 'mask', 'noise', 'steps'])
    slider(id).addEventListener('input', () => ($(`${id}Out`).textContent = slider(id).value));
  slider('query').addEventListener('input', () => {
    drawn = undefined;
    drawnResult = undefined;
    render();
  });
  enableDrawing();
  await compute(sample);
}

function fail(e: unknown): void {
  document.body.dataset.state = 'error';
  $('note').textContent = `error: ${(e as Error).message}`;
  console.error(e);
}

main().catch(fail);
