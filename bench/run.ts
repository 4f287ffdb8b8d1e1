/**
 * uhop benchmark: workloads T1-T4 and R1 on the current tfjs backend.
 *
 *     npm run bench -- --backend wasm --json bench/results/uhop-wasm.json
 *     npm run bench -- --workload T2 --steps 5 --warmup 1
 *     npm run bench -- --workload T1,T2,T3,T4 --memory            # peak tensor bytes per step
 *     npm run bench -- --workload T2 --growth 1000                # tensors/bytes over 1000 steps
 *     npm run bench -- --workload T2 --profile                    # per-kernel ms and phases
 *
 * Timing: the median (with min and max) of --steps units after --warmup untimed ones; a unit is
 * one training step (T1-T4) or one Stage I + Stage II run (R1), finished on the device.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import os from 'node:os';
import { execSync } from 'node:child_process';
import { initBackend, describeBackend } from '../src/node/backend.js';
import { wasmThreadsInUse } from '../src/node/wasmThreads.js';
import type { FitOptimizer } from '../src/ops/fit.js';
import { createWorkload, WORKLOAD_IDS, DESCRIPTIONS, type MilEncoder, type Workload, type WorkloadId } from './workloads.js';

const require = createRequire(import.meta.url);

const USAGE = `usage: npm run bench -- [options]
  --backend cpu|wasm|webgpu|tensorflow   backend (default: initBackend's choice)
  --threads N     threads of the backend: wasm's XNNPACK pool (initBackend's threads option),
                  tensorflow's intra- and inter-op pools (TF_NUM_INTRAOP_THREADS and
                  TF_NUM_INTEROP_THREADS); default: the backend's own (wasm 1, tensorflow: all cores)
  --workload T1,T2,...|all               which workloads (default all: ${WORKLOAD_IDS.join(',')})
  --steps N       timed units per workload (default 20)
  --warmup N      untimed units first (default 3)
  --r1-steps N    timed units of R1 (default: --steps)
  --seed N        input seed (default 0)
  --mil-encoder tfl|uhop   T3/T4 instance encoder: tf.layers.dense (default, the SPEC's)
                  or uhop's InstanceDense (wasm-fast backward)
  --fit-optimizer sgd|normalized|adam  Stage-I step rule of T2/T4/R1 (default sgd, the SPEC's plain steps)
  --memory        also measure peak tensor bytes of one unit (tf.profile peakBytes)
  --growth N      also run N training steps of each chosen training workload and report
                  numTensors/numBytes growth (slow; the target check uses 1000 on T2)
  --profile       also profile one unit: per-kernel ms (tf.profile) and phase timings
  --top N         kernels listed per workload with --profile (default 12)
  --json PATH     write all results as JSON
  --help`;

export interface TimingStats {
  median_ms: number;
  min_ms: number;
  max_ms: number;
  times_ms: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function stats(times: number[]): TimingStats {
  return { median_ms: median(times), min_ms: Math.min(...times), max_ms: Math.max(...times), times_ms: times };
}

/**
 * Wall-clock stats plus the process CPU time per unit (user + system, all threads:
 * process.cpuUsage). On a shared machine the CPU time of a single-threaded run is far less
 * sensitive to other processes than the wall time; PyTorch's side records the same
 * (time.process_time) so the two can be compared either way.
 */
async function timeUnits(
  w: Workload,
  steps: number,
  warmup: number,
): Promise<TimingStats & { cpu_median_ms: number; cpu_ms: number[]; check: number }> {
  for (let i = 0; i < warmup; i++) await w.run();
  const times: number[] = [];
  const cpu: number[] = [];
  let check = NaN;
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    check = await w.run();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { ...stats(times), cpu_median_ms: median(cpu), cpu_ms: cpu, check };
}

interface MemoryStats {
  /** Bytes held by live tensors before the unit (weights, optimizer state, inputs). */
  resident_bytes: number;
  /** tf.profile peakBytes: the largest engine-wide tensor bytes during the unit. */
  peak_bytes: number;
  /** peak - resident: what the unit allocates at its high-water mark. */
  transient_peak_bytes: number;
  /** Tensors/bytes left over after the unit (should be 0). */
  new_tensors: number;
  new_bytes: number;
}

async function measureMemory(w: Workload): Promise<MemoryStats> {
  await w.run(); // optimizer slots and lazily built weights exist from here on
  const before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    const out = w.runSync();
    tf.dispose(out);
    return [] as tf.Tensor[];
  });
  return {
    resident_bytes: before,
    peak_bytes: info.peakBytes,
    transient_peak_bytes: info.peakBytes - before,
    new_tensors: info.newTensors,
    new_bytes: info.newBytes,
  };
}

interface GrowthStats {
  steps: number;
  /** [step, numTensors, numBytes] every `every` steps, starting after one warm-up step. */
  trace: [number, number, number][];
  tensor_growth: number;
  byte_growth: number;
  rss_start_mb: number;
  rss_end_mb: number;
  seconds: number;
}

async function measureGrowth(w: Workload, steps: number): Promise<GrowthStats> {
  await w.run();
  const every = Math.max(1, Math.round(steps / 10));
  const t0 = performance.now();
  const m0 = tf.memory();
  const rss0 = process.memoryUsage().rss;
  const trace: [number, number, number][] = [[0, m0.numTensors, m0.numBytes]];
  for (let i = 1; i <= steps; i++) {
    await w.run();
    if (i % every === 0 || i === steps) {
      const m = tf.memory();
      trace.push([i, m.numTensors, m.numBytes]);
      process.stderr.write(`  growth ${w.id}: step ${i}/${steps} tensors ${m.numTensors} bytes ${m.numBytes}\n`);
    }
  }
  const m1 = tf.memory();
  return {
    steps,
    trace,
    tensor_growth: m1.numTensors - m0.numTensors,
    byte_growth: m1.numBytes - m0.numBytes,
    rss_start_mb: rss0 / 2 ** 20,
    rss_end_mb: process.memoryUsage().rss / 2 ** 20,
    seconds: (performance.now() - t0) / 1000,
  };
}

interface KernelRow {
  kernel: string;
  /** Input shapes of the calls summed in this row. */
  inputs: string;
  ms: number;
  calls: number;
}

interface ProfileStats {
  /** Wall time of the profiled unit (profiling adds a read per kernel on cpu/wasm). */
  wall_ms: number;
  /** Sum over kernels, scopes excluded (their kernels are counted themselves). */
  kernel_ms: number;
  /** ms per kernel name, largest first. */
  by_kernel: { kernel: string; ms: number; calls: number }[];
  /** ms per kernel name and input shapes, largest first (--top rows). */
  kernels: KernelRow[];
  /**
   * Gradient scopes (tf.customGrad ops such as fusedMatMul__op or the in-layer U-Hop fit,
   * which tfjs reports as 'unnamed scope'): their ms include the kernels they ran.
   */
  scopes: KernelRow[];
  /** Median wall and CPU ms of forward only, forward + backward, and the full step (training workloads). */
  phases?: Record<'forward' | 'forward_backward' | 'step', { median_ms: number; cpu_median_ms: number }>;
}

const isScope = (name: string) => name.endsWith('__op') || name === 'unnamed scope';

function groupRows(rows: { name: string; ms: number; inputs: string }[], byInputs: boolean): KernelRow[] {
  const m = new Map<string, KernelRow>();
  for (const r of rows) {
    const key = byInputs ? `${r.name} ${r.inputs}` : r.name;
    const row = m.get(key) ?? { kernel: r.name, inputs: byInputs ? r.inputs : '', ms: 0, calls: 0 };
    row.ms += r.ms;
    row.calls += 1;
    m.set(key, row);
  }
  return [...m.values()].sort((a, b) => b.ms - a.ms).map((r) => ({ ...r, ms: +r.ms.toFixed(3) }));
}

async function profileUnit(w: Workload, top: number, repeats: number): Promise<ProfileStats> {
  await w.run();
  const t0 = performance.now();
  const info = await tf.profile(() => {
    tf.dispose(w.runSync());
    return [] as tf.Tensor[];
  });
  const wall = performance.now() - t0;
  const rows = info.kernels.map((k) => ({
    name: k.name,
    ms: typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0,
    inputs: k.inputShapes.map((s) => `[${s}]`).join(' '),
  }));
  const plain = rows.filter((r) => !isScope(r.name));
  const out: ProfileStats = {
    wall_ms: wall,
    kernel_ms: plain.reduce((a, r) => a + r.ms, 0),
    by_kernel: groupRows(plain, false).map(({ kernel, ms, calls }) => ({ kernel, ms, calls })),
    kernels: groupRows(plain, true).slice(0, top),
    scopes: groupRows(
      rows.filter((r) => isScope(r.name)),
      true,
    ),
  };
  if (w.forward && w.forwardBackward) {
    const timeSync = async (f: () => tf.TensorContainer) => {
      const times: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < repeats + 1; i++) {
        const c0 = process.cpuUsage();
        const t = performance.now();
        const r = f();
        await Promise.all(flatTensors(r).map((x) => x.data()));
        times.push(performance.now() - t);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1000);
        tf.dispose(r);
      }
      return { median_ms: median(times.slice(1)), cpu_median_ms: median(cpu.slice(1)) };
    };
    out.phases = {
      forward: await timeSync(() => w.forward!()),
      forward_backward: await timeSync(() => w.forwardBackward!()),
      step: await timeSync(() => w.runSync()),
    };
  }
  return out;
}

function flatTensors(c: tf.TensorContainer): tf.Tensor[] {
  if (c instanceof tf.Tensor) return [c];
  if (Array.isArray(c)) return c.flatMap((x) => flatTensors(x as tf.TensorContainer));
  if (c && typeof c === 'object') return Object.values(c).flatMap((x) => flatTensors(x as tf.TensorContainer));
  return [];
}

function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** The commit the run measured (with '+dirty' when bench or src differ from it). */
function gitRevision(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execSync('git status --porcelain -- src bench', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

function positiveInt(v: string | undefined, name: string, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`bench: --${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      threads: { type: 'string' },
      workload: { type: 'string', default: 'all' },
      steps: { type: 'string' },
      warmup: { type: 'string' },
      'r1-steps': { type: 'string' },
      seed: { type: 'string' },
      'mil-encoder': { type: 'string', default: 'tfl' },
      'fit-optimizer': { type: 'string', default: 'sgd' },
      memory: { type: 'boolean', default: false },
      growth: { type: 'string' },
      profile: { type: 'boolean', default: false },
      top: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const steps = positiveInt(values.steps, 'steps', 20);
  const warmup = positiveInt(values.warmup, 'warmup', 3, 0);
  const r1Steps = positiveInt(values['r1-steps'], 'r1-steps', steps);
  const seed = positiveInt(values.seed, 'seed', 0, 0);
  const top = positiveInt(values.top, 'top', 12);
  const growth = values.growth === undefined ? 0 : positiveInt(values.growth, 'growth', 1000);
  const chosen: WorkloadId[] =
    values.workload === 'all'
      ? [...WORKLOAD_IDS]
      : values.workload!.split(',').map((s) => {
          const id = s.trim().toUpperCase();
          if (!WORKLOAD_IDS.includes(id as WorkloadId)) {
            throw new Error(`bench: --workload must be a comma list of ${WORKLOAD_IDS.join(', ')} or 'all', got '${s}'`);
          }
          return id as WorkloadId;
        });

  const threads = values.threads === undefined ? undefined : positiveInt(values.threads, 'threads', 1);
  if (threads !== undefined && values.backend !== 'wasm' && values.backend !== 'tensorflow') {
    throw new Error(`bench: --threads needs --backend wasm or tensorflow, got --backend ${values.backend ?? '(automatic)'}`);
  }
  if (threads !== undefined && values.backend === 'tensorflow') {
    // libtensorflow reads these when tfjs-node creates its eager context, on first load.
    process.env.TF_NUM_INTRAOP_THREADS = String(threads);
    process.env.TF_NUM_INTEROP_THREADS = String(threads);
  }
  const report = await initBackend(values.backend, values.backend === 'wasm' && threads !== undefined ? { threads } : {});
  console.log(describeBackend(report));
  const cpus = os.cpus();
  const meta = {
    impl: 'uhop',
    backend: report.backend,
    node: process.version,
    tfjs_core: versionOf('@tensorflow/tfjs-core'),
    tfjs_layers: versionOf('@tensorflow/tfjs-layers'),
    tfjs_backend: versionOf(report.backend === 'tensorflow' ? '@tensorflow/tfjs-node' : `@tensorflow/tfjs-backend-${report.backend}`),
    /** --threads as asked (undefined: the backend's default) and, on wasm, the pool's actual size. */
    threads: threads ?? null,
    wasm_threads: report.backend === 'wasm' ? (wasmThreadsInUse() ?? null) : null,
    cpu: cpus[0]?.model ?? 'unknown',
    nproc: os.availableParallelism?.() ?? cpus.length,
    date: new Date().toISOString(),
    git: gitRevision(),
    /** 1/5/15-minute load averages when the run started (the machine is shared). */
    loadavg_start: os.loadavg(),
    steps,
    warmup,
    r1_steps: r1Steps,
    seed,
    mil_encoder: values['mil-encoder'],
    fit_optimizer: values['fit-optimizer'],
  };
  const results: Record<string, Record<string, unknown>> = {};
  for (const id of chosen) {
    console.log(`${id}: ${DESCRIPTIONS[id]}`);
    const w = createWorkload(id, {
      seed,
      milEncoder: values['mil-encoder'] as MilEncoder,
      fitOptimizer: values['fit-optimizer'] as FitOptimizer,
    });
    const entry: Record<string, unknown> = {};
    try {
      const t = await timeUnits(w, id === 'R1' ? r1Steps : steps, warmup);
      Object.assign(entry, t);
      console.log(
        `uhop ${id}: median ${t.median_ms.toFixed(2)} ms  (min ${t.min_ms.toFixed(2)}, max ${t.max_ms.toFixed(2)}), cpu ${t.cpu_median_ms.toFixed(2)} ms  check ${t.check.toPrecision(4)}`,
      );
      if (values.memory) {
        const m = await measureMemory(w);
        entry.memory = m;
        console.log(
          `  memory: resident ${(m.resident_bytes / 2 ** 20).toFixed(2)} MiB, peak ${(m.peak_bytes / 2 ** 20).toFixed(2)} MiB ` +
            `(transient ${(m.transient_peak_bytes / 2 ** 20).toFixed(2)} MiB), left over ${m.new_tensors} tensors / ${m.new_bytes} bytes`,
        );
      }
      if (values.profile) {
        const p = await profileUnit(w, top, 3);
        entry.profile = p;
        console.log(`  profile: wall ${p.wall_ms.toFixed(1)} ms, sum of kernels ${p.kernel_ms.toFixed(1)} ms`);
        if (p.phases) {
          const f = (x: { median_ms: number; cpu_median_ms: number }) => `${x.median_ms.toFixed(1)} / ${x.cpu_median_ms.toFixed(1)} ms`;
          console.log(
            `  phases (wall / cpu): forward ${f(p.phases.forward)}, forward+backward ${f(p.phases.forward_backward)}, step ${f(p.phases.step)}`,
          );
        }
        console.log(
          `  by kernel: ${p.by_kernel
            .slice(0, 8)
            .map((k) => `${k.kernel} ${k.ms.toFixed(0)} ms/${k.calls}`)
            .join(', ')}`,
        );
        for (const k of p.kernels) {
          console.log(`    ${k.kernel.padEnd(22)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(4)}x  ${k.inputs}`);
        }
        for (const k of p.scopes.slice(0, 4)) {
          console.log(`    scope ${k.kernel.padEnd(16)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.calls).padStart(4)}x  ${k.inputs}`);
        }
      }
      if (growth > 0 && id !== 'R1') {
        const g = await measureGrowth(w, growth);
        entry.growth = g;
        console.log(
          `  growth over ${g.steps} steps: ${g.tensor_growth} tensors, ${g.byte_growth} bytes (rss ${g.rss_start_mb.toFixed(0)} -> ${g.rss_end_mb.toFixed(0)} MiB, ${g.seconds.toFixed(0)} s)`,
        );
      }
    } finally {
      w.dispose();
    }
    results[id] = entry;
  }
  if (values.json) {
    mkdirSync(dirname(values.json), { recursive: true });
    writeFileSync(values.json, JSON.stringify({ ...meta, loadavg_end: os.loadavg(), results }, null, 1));
    console.log(`wrote ${values.json}`);
  }
}

main().catch((e: unknown) => {
  console.error((e as Error).message ?? e);
  process.exit(1);
});
