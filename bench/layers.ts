/**
 * Training-step time of a model built around each layer, with and without U-Hop, at the
 * shapes of the SPEC's workloads: Hopfield, UHopAttention and HopfieldLayer at T1's shape
 * (B=32, S=128, d_model=128, 4 heads x 32), HopfieldPooling at T3's (B=16 bags of 64
 * instances, 230 features -> Dense 128). The U-Hop variant is T2's: linear Phi fitted per
 * (sample, head), 5 steps, lr 0.1, lse loss. One step = forward + backward + Adam (lr 1e-3),
 * finished (the loss is read back). Reports the median wall and process-CPU time per step.
 *
 *   npx tsx bench/layers.ts [--backend wasm] [--steps 10] [--warmup 2] [--json out.json]
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { Hopfield, HopfieldPooling, HopfieldLayer, UHopAttention } from '../src/layers/index.js';
import { ASSOCIATION_OPTIONS, UHOP_OPTIONS } from './workloads.js';

const { values: flags } = parseArgs({
  options: {
    backend: { type: 'string' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});

const NO_UHOP = {} as const;

interface Case {
  layer: string;
  shape: string;
  build(uhop: object): { model: tfl.LayersModel; x: tf.Tensor; y: tf.Tensor; loss: 'meanSquaredError' | 'binaryCrossentropy' };
}

const T1 = { B: 32, S: 128, d: 128 };
const T3 = { B: 16, S: 64, F: 230 };

function selfModel(layer: tfl.layers.Layer): tfl.LayersModel {
  const input = tfl.input({ shape: [T1.S, T1.d] });
  return tfl.model({ inputs: input, outputs: layer.apply(input) as tfl.SymbolicTensor });
}

const CASES: Case[] = [
  {
    layer: 'Hopfield',
    shape: 'T1',
    build: (uhop) => ({
      model: selfModel(new Hopfield({ ...ASSOCIATION_OPTIONS, ...uhop })),
      x: tf.randomNormal([T1.B, T1.S, T1.d], 0, 1, 'float32', 1),
      y: tf.randomNormal([T1.B, T1.S, T1.d], 0, 1, 'float32', 2),
      loss: 'meanSquaredError',
    }),
  },
  {
    layer: 'UHopAttention',
    shape: 'T1',
    build: (uhop) => ({
      model: selfModel(
        new UHopAttention({ numHeads: 4, keyDim: 32, ...(Object.keys(uhop).length ? { ...uhop, separation: 'softmax' } : {}) }),
      ),
      x: tf.randomNormal([T1.B, T1.S, T1.d], 0, 1, 'float32', 1),
      y: tf.randomNormal([T1.B, T1.S, T1.d], 0, 1, 'float32', 2),
      loss: 'meanSquaredError',
    }),
  },
  {
    layer: 'HopfieldLayer',
    shape: 'T1 (128 learned memories)',
    build: (uhop) => ({
      model: selfModel(new HopfieldLayer({ ...ASSOCIATION_OPTIONS, quantity: T1.S, ...uhop })),
      x: tf.randomNormal([T1.B, T1.S, T1.d], 0, 1, 'float32', 1),
      y: tf.randomNormal([T1.B, T1.S, T1.d], 0, 1, 'float32', 2),
      loss: 'meanSquaredError',
    }),
  },
  {
    layer: 'HopfieldPooling',
    shape: 'T3',
    build: (uhop) => {
      const input = tfl.input({ shape: [T3.S, T3.F] });
      const h = tfl.layers.dense({ units: 128, activation: 'relu' }).apply(input) as tfl.SymbolicTensor;
      const pooled = new HopfieldPooling({ ...ASSOCIATION_OPTIONS, ...uhop }).apply(h) as tfl.SymbolicTensor;
      const out = tfl.layers.dense({ units: 1, activation: 'sigmoid' }).apply(pooled) as tfl.SymbolicTensor;
      return {
        model: tfl.model({ inputs: input, outputs: out }),
        x: tf.randomNormal([T3.B, T3.S, T3.F], 0, 1, 'float32', 3),
        y: tf.cast(tf.greater(tf.randomUniform([T3.B, 1], 0, 1, 'float32', 4), 0.5), 'float32'),
        loss: 'binaryCrossentropy',
      };
    },
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeCase(c: Case, uhop: object, steps: number, warmup: number): Promise<{ wallMs: number; cpuMs: number }> {
  const { model, x, y, loss } = c.build(uhop);
  model.compile({ optimizer: tf.train.adam(1e-3), loss });
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await model.trainOnBatch(x, y);
    const dc = process.cpuUsage(c0);
    if (i >= warmup) {
      wall.push(performance.now() - t0);
      cpu.push((dc.user + dc.system) / 1000);
    }
  }
  model.dispose();
  tf.dispose([x, y]);
  return { wallMs: median(wall), cpuMs: median(cpu) };
}

async function main(): Promise<void> {
  const report = await initBackend(flags.backend);
  console.log(describeBackend(report));
  const steps = Number(flags.steps);
  const warmup = Number(flags.warmup);
  const rows: Record<string, string | number>[] = [];
  for (const c of CASES) {
    const plain = await timeCase(c, NO_UHOP, steps, warmup);
    const uhop = await timeCase(c, UHOP_OPTIONS, steps, warmup);
    const row = {
      layer: c.layer,
      shape: c.shape,
      plainCpuMs: +plain.cpuMs.toFixed(1),
      uhopCpuMs: +uhop.cpuMs.toFixed(1),
      overhead: +(uhop.cpuMs / plain.cpuMs).toFixed(2),
      plainWallMs: +plain.wallMs.toFixed(1),
      uhopWallMs: +uhop.wallMs.toFixed(1),
    };
    rows.push(row);
    console.log(
      `${row.layer.padEnd(16)} ${row.shape.padEnd(26)} plain ${String(row.plainCpuMs).padStart(7)} ms  U-Hop ${String(row.uhopCpuMs).padStart(7)} ms  overhead x${row.overhead}  (wall ${row.plainWallMs} / ${row.uhopWallMs} ms)`,
    );
  }
  if (flags.json)
    writeFileSync(flags.json, JSON.stringify({ backend: report.backend, date: new Date().toISOString(), steps, warmup, rows }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
