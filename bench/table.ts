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
  return { ...mine[0], results: Object.assign({}, ...mine.map((r) => r.results)) as Record<string, Timing> };
}
const uhop = merge('uhop');
const torch = merge('torch');

const ms = (t?: Timing) => (t ? `${t.median_ms.toFixed(1)} (${t.min_ms.toFixed(1)}-${t.max_ms.toFixed(1)})` : 'n/a');
const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);
const fmt = (r?: number) => (r === undefined ? 'n/a' : r.toFixed(2));
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED');

const uName = `uhop ${uhop.backend ?? ''} ms`.replace('  ', ' ');
const tName = `PyTorch ${torch.torch ?? ''} (${torch.threads ?? '?'} thr) ms`;
console.log(`| workload | ${uName} median (min-max) | ${tName} median (min-max) | uhop / PyTorch | target | |`);
console.log('|---|---|---|---|---|---|');
for (const id of ['T1', 'T2', 'T3', 'T4', 'R1']) {
  const u = uhop.results[id];
  const t = torch.results[id];
  if (!u && !t) continue;
  const r = ratio(u?.median_ms, t?.median_ms);
  const limit = id === 'R1' ? 1 : 2;
  console.log(`| ${id} | ${ms(u)} | ${ms(t)} | ${fmt(r)} | <= ${limit} | ${verdict(r === undefined ? undefined : r <= limit)} |`);
}

console.log();
console.log('| ratio | uhop | PyTorch | target (uhop) | |');
console.log('|---|---|---|---|---|');
for (const [a, b] of [
  ['T2', 'T1'],
  ['T4', 'T3'],
]) {
  const ru = ratio(uhop.results[a]?.median_ms, uhop.results[b]?.median_ms);
  const rt = ratio(torch.results[a]?.median_ms, torch.results[b]?.median_ms);
  console.log(`| ${a}/${b} | ${fmt(ru)} | ${fmt(rt)} | <= 2.0 | ${verdict(ru === undefined ? undefined : ru <= 2)} |`);
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
