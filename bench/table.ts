/**
 * Prints the side-by-side table of uhop runs (bench/run.ts --json) and PyTorch runs
 * (bench/torch_reference.py --json) as Markdown, with the issue's targets checked. Any number
 * of files; each is sorted by its `impl` field and the results of each side are merged.
 *
 *     npx tsx bench/table.ts bench/results/*.json
 */
import { readFileSync } from 'node:fs';

interface Timing {
  median_ms: number;
  cpu_median_ms?: number;
  min_ms: number;
  max_ms: number;
  memory?: { peak_bytes: number; resident_bytes: number; transient_peak_bytes: number };
  growth?: { steps: number; tensor_growth: number; byte_growth: number };
}
interface Run {
  impl: string;
  backend?: string;
  threads?: number;
  torch?: string;
  results: Record<string, Timing>;
}

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error('usage: tsx bench/table.ts RESULT.json... (uhop and torch runs, any order)');
  process.exit(1);
}
const runs = paths.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Run);
function merge(impl: string): Run {
  const mine = runs.filter((r) => r.impl === impl);
  if (mine.length === 0) {
    console.error(`table: no ${impl} results among ${paths.join(', ')}`);
    process.exit(1);
  }
  const seen = new Set<string>();
  for (const r of mine) {
    for (const id of Object.keys(r.results)) {
      if (seen.has(id)) console.error(`table: ${impl} ${id} appears in more than one file; the last one is used`);
      seen.add(id);
    }
  }
  return { ...mine[0], results: Object.assign({}, ...mine.map((r) => r.results)) as Record<string, Timing> };
}
const uhop = merge('uhop');
const torch = merge('torch');

const ms = (t?: Timing) => (t ? `${t.median_ms.toFixed(1)} (${t.min_ms.toFixed(1)}-${t.max_ms.toFixed(1)})` : 'n/a');
const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);
const fmt = (r?: number) => (r === undefined ? 'n/a' : r.toFixed(2));
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED');

const uName = `uhop ${uhop.backend ?? ''}`.trim();
const tName = `PyTorch ${torch.torch ?? ''} (${torch.threads ?? '?'} thr)`;
const cpu = (t?: Timing) => t?.cpu_median_ms;
console.log(
  'Wall time: median (min-max) ms of one unit. CPU: median process CPU ms per unit (user + system, all threads). ' +
    'Targets are judged on the CPU-time ratio (robust to the load of a shared machine); the wall ratio is shown too.',
);
console.log();
console.log(`| workload | ${uName} wall | ${tName} wall | wall ratio | ${uName} CPU | ${tName} CPU | CPU ratio | target | |`);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const id of ['T1', 'T2', 'T3', 'T4', 'R1']) {
  const u = uhop.results[id];
  const t = torch.results[id];
  if (!u && !t) continue;
  const rw = ratio(u?.median_ms, t?.median_ms);
  const rc = ratio(cpu(u), cpu(t));
  const limit = id === 'R1' ? 1 : 2;
  const c = (x?: number) => (x === undefined ? 'n/a' : x.toFixed(1));
  console.log(
    `| ${id} | ${ms(u)} | ${ms(t)} | ${fmt(rw)} | ${c(cpu(u))} | ${c(cpu(t))} | ${fmt(rc)} | <= ${limit} | ${verdict(rc === undefined ? undefined : rc <= limit)} |`,
  );
}

console.log();
console.log('| ratio | uhop wall | PyTorch wall | uhop CPU | PyTorch CPU | target (uhop CPU) | |');
console.log('|---|---|---|---|---|---|---|');
for (const [a, b] of [
  ['T2', 'T1'],
  ['T4', 'T3'],
]) {
  const wu = ratio(uhop.results[a]?.median_ms, uhop.results[b]?.median_ms);
  const wt = ratio(torch.results[a]?.median_ms, torch.results[b]?.median_ms);
  const cu = ratio(cpu(uhop.results[a]), cpu(uhop.results[b]));
  const ct = ratio(cpu(torch.results[a]), cpu(torch.results[b]));
  console.log(`| ${a}/${b} | ${fmt(wu)} | ${fmt(wt)} | ${fmt(cu)} | ${fmt(ct)} | <= 2.0 | ${verdict(cu === undefined ? undefined : cu <= 2)} |`);
}

const mem = (id: string) => uhop.results[id]?.memory;
if (mem('T1') || mem('T3')) {
  console.log();
  console.log('| uhop tensor memory per step | resident MiB | peak MiB | transient peak MiB |');
  console.log('|---|---|---|---|');
  for (const id of ['T1', 'T2', 'T3', 'T4', 'R1']) {
    const m = mem(id);
    if (!m) continue;
    const mib = (x: number) => (x / 2 ** 20).toFixed(2);
    console.log(`| ${id} | ${mib(m.resident_bytes)} | ${mib(m.peak_bytes)} | ${mib(m.transient_peak_bytes)} |`);
  }
  for (const [a, b] of [
    ['T2', 'T1'],
    ['T4', 'T3'],
  ]) {
    const r = ratio(mem(a)?.peak_bytes, mem(b)?.peak_bytes);
    if (r !== undefined) console.log(`\npeak bytes ${a}/${b}: ${fmt(r)} (target <= 1.5: ${verdict(r <= 1.5)})`);
  }
}
for (const id of ['T1', 'T2', 'T3', 'T4']) {
  const g = uhop.results[id]?.growth;
  if (g) {
    console.log(
      `\ngrowth over ${g.steps} ${id} steps: ${g.tensor_growth} tensors, ${g.byte_growth} bytes (target 0: ${verdict(g.tensor_growth === 0 && g.byte_growth === 0)})`,
    );
  }
}
