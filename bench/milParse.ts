/**
 * Parse time of the staged MIL benchmarks by `readMilCsv` (moved here from a test that asserted
 * MUSK2 parses in under 3 s: speed belongs in bench/, not in tests). Wall ms per data set, the
 * median of `--rounds` reads, and the bag / instance counts read.
 *
 *     npx tsx bench/milParse.ts [--dir ../shared/data/mil] [--rounds 5]
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { readMilCsv } from '../src/node/data.js';

const { values } = parseArgs({
  options: { dir: { type: 'string', default: process.env.UHOP_MIL_DIR ?? '../shared/data/mil' }, rounds: { type: 'string', default: '5' } },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`bench/milParse: --rounds must be an integer >= 1, got ${values.rounds}`);

for (const name of ['musk1', 'musk2', 'elephant']) {
  const ms: number[] = [];
  let summary = '';
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const ds = readMilCsv(join(values.dir!, `${name}.csv`));
    ms.push(performance.now() - t0);
    summary = `${ds.bags.length} bags, ${ds.bags.reduce((s, b) => s + b.size, 0)} instances, ${ds.numFeatures} features`;
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(9)} ${ms[ms.length >> 1].toFixed(0).padStart(6)} ms (median of ${rounds}; min ${ms[0].toFixed(0)}, max ${ms[ms.length - 1].toFixed(0)})  ${summary}`,
  );
}
