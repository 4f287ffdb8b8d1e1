/**
 * Before/after of src/backendPatches.ts on wasm: transposed products and a tf.layers.dense
 * training step, with tfjs' own kernels ("native") and the patched ones ("xnnpack"),
 * interleaved round by round so that both see the same machine load. One-thread CPU time
 * (process.cpuUsage), median over rounds.
 *
 *     npx tsx bench/wasmMatMul.ts [--rounds 15] [--reps 5]
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { parseArgs } from 'node:util';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { patchWasmMatMul, unpatchWasmMatMul } from '../src/backendPatches.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '15' }, reps: { type: 'string', default: '5' }, only: { type: 'string' } },
});
console.log(describeBackend(await initBackend('wasm')));
const rounds = Number(values.rounds);
const reps = Number(values.reps);

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Mean CPU ms of one call over `reps` calls, each read back. */
function cpuMs(f: () => tf.Tensor | void): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) {
    const y = f();
    if (y) {
      y.dataSync();
      y.dispose();
    }
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / reps;
}

interface Case {
  name: string;
  flops?: number;
  run: () => tf.Tensor | void;
}

const cases: Case[] = [];
const mm = (name: string, as: number[], bs: number[], ta: boolean, tb: boolean) => {
  const a = tf.randomNormal(as, 0, 1, 'float32', 1);
  const b = tf.randomNormal(bs, 0, 1, 'float32', 2);
  const m = ta ? as[as.length - 1] : as[as.length - 2];
  const k = ta ? as[as.length - 2] : as[as.length - 1];
  const n = tb ? bs[bs.length - 2] : bs[bs.length - 1];
  cases.push({ name, flops: 2 * m * k * n, run: () => tf.matMul(a, b, ta, tb) });
};
mm('[4096,128]^T x [4096,128]', [4096, 128], [4096, 128], true, false);
mm('[4096,128] x [128,128]^T', [4096, 128], [128, 128], false, true);
mm('[4096,128] x [128,128] (already XNNPACK)', [4096, 128], [128, 128], false, false);
mm('[1024,230]^T x [1024,128] (T3 dense dW)', [1024, 230], [1024, 128], true, false);
mm('[1024,128] x [230,128]^T (T3 dense dx)', [1024, 128], [230, 128], false, true);
mm('[64,32]^T x [64,32]', [64, 32], [64, 32], true, false);
mm('[16,32] x [32,32]^T', [16, 32], [32, 32], false, true);
mm('[4,8] x [8,8]^T', [4, 8], [8, 8], false, true);

// A tf.layers.dense(230 -> 128, relu) training step on a T3-sized batch, Adam.
{
  const dense = tfl.layers.dense({ units: 128, activation: 'relu', inputShape: [230] });
  const x = tf.randomNormal([1024, 230], 0, 1, 'float32', 3);
  const target = tf.randomNormal([1024, 128], 0, 1, 'float32', 4);
  dense.apply(x); // build
  const opt = tf.train.adam(1e-3);
  const vars = dense.trainableWeights.map((w) => w.read() as tf.Variable);
  cases.push({
    name: 'tfl.dense(230->128) step, [1024,230], Adam',
    run: () => {
      const cost = opt.minimize(() => tf.losses.meanSquaredError(target, dense.apply(x) as tf.Tensor) as tf.Scalar, true, vars);
      return cost ?? undefined;
    },
  });
}

const selected = values.only ? cases.filter((c) => c.name.includes(values.only!)) : cases;
for (const c of selected) {
  const native: number[] = [];
  const patched: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    for (const mode of r % 2 ? ['native', 'xnnpack'] : ['xnnpack', 'native']) {
      if (mode === 'native') unpatchWasmMatMul();
      else patchWasmMatMul();
      const ms = cpuMs(c.run);
      if (r > 0) (mode === 'native' ? native : patched).push(ms); // round 0 warms up
    }
  }
  patchWasmMatMul();
  const [n, p] = [median(native), median(patched)];
  const gf = (ms: number) => (c.flops ? ` ${(c.flops / ms / 1e6).toFixed(1).padStart(5)} GFLOP/s` : '');
  console.log(
    `${c.name.padEnd(46)} native ${n.toFixed(3).padStart(8)} ms${gf(n)}   patched ${p.toFixed(3).padStart(8)} ms${gf(p)}   x${(n / p).toFixed(2)}`,
  );
}
console.log(`numTensors ${tf.memory().numTensors}, wasm dataIds ${tf.backend().numDataIds()}`);
