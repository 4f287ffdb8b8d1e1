/**
 * Prints the side-by-side tables of PyTorch runs (bench/torch_reference.py --json) and uhop runs
 * on any backends (bench/run.ts --json) as Markdown: one table per thread count, with every uhop
 * backend against PyTorch at the same thread count, U-Hop's overheads (T2/T1, T4/T3) for every
 * side, and the issue's targets checked on the one-thread CPU-time ratios.
 *
 *     npx tsx bench/table.ts bench/results/side-by-side/*.json
 *
 * Targets (issue 14, CPU time, one thread each): tensorflow <= 1.0x PyTorch on T1, T2, T4 and
 * <= 1.5x on T3; wasm <= 2.5x on T1-T4; R1 <= 1.0x on both; T2/T1 and T4/T3 <= 1.5 everywhere.
 */
import { readFileSync } from 'node:fs';

interface Timing {
  median_ms: number;
  cpu_median_ms?: number;
  min_ms: number;
  max_ms: number;
}
interface Run {
  impl: 'uhop' | 'torch';
  backend?: string;
  /** uhop: --threads as asked (null: backend default); torch: torch.get_num_threads(). */
  threads?: number | null;
  wasm_threads?: number | null;
  torch?: string;
  blas?: string;
  node?: string;
  tfjs_core?: string;
  tfjs_backend?: string;
  date: string;
  git?: string;
  loadavg_start?: number[];
  loadavg_end?: number[];
  results: Record<string, Timing>;
}

const IDS = ['T1', 'T2', 'T3', 'T4', 'R1'];
const TARGETS: Record<string, Record<string, number>> = {
  tensorflow: { T1: 1.0, T2: 1.0, T3: 1.5, T4: 1.0, R1: 1.0 },
  wasm: { T1: 2.5, T2: 2.5, T3: 2.5, T4: 2.5, R1: 1.0 },
};
const OVERHEAD_TARGET = 1.5;

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error('usage: tsx bench/table.ts RESULT.json... (uhop and torch runs, any order)');
  process.exit(1);
}
const runs = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Run);

/** Thread count of a run: uhop's wasm pool as measured, else as asked; torch's as reported. */
function threadsOf(r: Run): number {
  if (r.impl === 'torch') return r.threads ?? 0;
  if (r.backend === 'wasm') return r.wasm_threads ?? r.threads ?? 1;
  return r.threads ?? 0; // 0: the backend's default
}

/** One side: its results merged over files (one file per workload is the usual layout). */
interface Side {
  name: string;
  results: Record<string, Timing>;
}
function side(name: string, list: Run[]): Side {
  const results: Record<string, Timing> = {};
  for (const r of list) {
    for (const [id, t] of Object.entries(r.results)) {
      if (results[id]) console.error(`table: ${name} ${id} appears in more than one file; the last one is used`);
      results[id] = t;
    }
  }
  return { name, results };
}

const cpu = (t?: Timing) => t?.cpu_median_ms;
const f1 = (x?: number) => (x === undefined ? 'n/a' : x.toFixed(1));
const f2 = (x?: number) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);

const threadCounts = [...new Set(runs.map(threadsOf))].sort((a, b) => a - b);
const backends = [...new Set(runs.filter((r) => r.impl === 'uhop').map((r) => r.backend ?? '?'))].sort((a, b) =>
  a === 'wasm' ? -1 : b === 'wasm' ? 1 : a.localeCompare(b),
);

// Where and when: dates, commits, versions, load.
const dates = runs.map((r) => r.date).sort();
const loads = runs.flatMap((r) => [r.loadavg_start?.[0], r.loadavg_end?.[0]]).filter((x): x is number => x !== undefined);
const u0 = runs.find((r) => r.impl === 'uhop');
const t0 = runs.find((r) => r.impl === 'torch');
const versions = new Set(runs.filter((r) => r.impl === 'uhop').map((r) => `${r.backend} ${r.tfjs_backend}`));
console.log(
  `Runs ${dates[0]} to ${dates[dates.length - 1]}; uhop commit ${[...new Set(runs.map((r) => r.git).filter(Boolean))].join(', ')}; ` +
    `1-minute load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} (start and end of each run). ` +
    `Node ${u0?.node ?? '?'}, tfjs-core ${u0?.tfjs_core ?? '?'}, ${[...versions].join(', ')}; PyTorch ${t0?.torch ?? '?'} (${t0?.blas ?? '?'}).`,
);
console.log(
  'Each cell: median process CPU ms per unit (user + system, all threads), wall ms in brackets. Ratios: uhop / PyTorch, CPU (wall).',
);

const verdicts: string[] = [];
for (const n of threadCounts) {
  const torch = side(
    'PyTorch',
    runs.filter((r) => r.impl === 'torch' && threadsOf(r) === n),
  );
  const sides = backends
    .map((b) =>
      side(
        b,
        runs.filter((r) => r.impl === 'uhop' && r.backend === b && threadsOf(r) === n),
      ),
    )
    .filter((s) => Object.keys(s.results).length > 0);
  if (Object.keys(torch.results).length === 0 && sides.length === 0) continue;
  console.log();
  console.log(`### ${n === 0 ? 'default threads' : `${n} thread${n > 1 ? 's' : ''} each`}`);
  console.log();
  console.log(`| workload | PyTorch | ${sides.map((s) => `uhop ${s.name} | ${s.name} / PyTorch`).join(' | ')} |`);
  console.log(`|---|---|${sides.map(() => '---|---|').join('')}`);
  const cell = (t?: Timing) => (t ? `${f1(cpu(t))} (${f1(t.median_ms)})` : 'n/a');
  for (const id of IDS) {
    const t = torch.results[id];
    if (!t && sides.every((s) => !s.results[id])) continue;
    const cols = sides.map((s) => {
      const u = s.results[id];
      return `${cell(u)} | ${f2(ratio(cpu(u), cpu(t)))} (${f2(ratio(u?.median_ms, t?.median_ms))})`;
    });
    console.log(`| ${id} | ${cell(t)} | ${cols.join(' | ')} |`);
    if (n === 1) {
      for (const s of sides) {
        const limit = TARGETS[s.name]?.[id];
        const r = ratio(cpu(s.results[id]), cpu(t));
        if (limit !== undefined && r !== undefined) {
          verdicts.push(`| ${s.name} ${id} / PyTorch | ${f2(r)} | <= ${limit.toFixed(1)} | ${r <= limit ? 'met' : 'MISSED'} |`);
        }
      }
    }
  }
  for (const [a, b] of [
    ['T2', 'T1'],
    ['T4', 'T3'],
  ]) {
    const ov = (s: Side) => ratio(cpu(s.results[a]), cpu(s.results[b]));
    const ovWall = (s: Side) => ratio(s.results[a]?.median_ms, s.results[b]?.median_ms);
    const cells = [
      `${a}/${b}`,
      `${f2(ov(torch))} (${f2(ovWall(torch))})`,
      ...sides.flatMap((s) => [`${f2(ov(s))} (${f2(ovWall(s))})`, '']),
    ];
    console.log(`| ${cells.join(' | ')} |`);
    if (n === 1) {
      for (const s of sides) {
        const r = ov(s);
        if (r !== undefined)
          verdicts.push(
            `| ${s.name} ${a}/${b} | ${f2(r)} | <= ${OVERHEAD_TARGET.toFixed(1)} | ${r <= OVERHEAD_TARGET ? 'met' : 'MISSED'} |`,
          );
      }
    }
  }
}

if (verdicts.length) {
  console.log();
  console.log('### Targets (one thread each, CPU time)');
  console.log();
  console.log('| target | measured | limit | |');
  console.log('|---|---|---|---|');
  for (const v of verdicts) console.log(v);
}
