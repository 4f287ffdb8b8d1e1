/**
 * Lists what the tests draw without a seed: constructions of the Hopfield family and of
 * tf.layers.dense without `seed` / `kernelInitializer` (constructions inside
 * `assert.throws(() => new ...` or a `[() => new ...` case list are skipped: they throw before
 * drawing anything; options passed as a variable are checked where they are built), and
 * tf.randomNormal / randomUniform / truncatedNormal calls without their seed argument. Exits 1
 * when it finds any, so that it can guard a merge:
 *
 *     npx tsx test/tools/unseeded.ts            # scans test/
 *     npx tsx test/tools/unseeded.ts test/layers/io.test.ts
 *
 * A deliberately unseeded draw (the withSeed test, which checks that withSeed seeds it) is
 * marked on its line with the comment `unseeded on purpose`.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function files(path: string): string[] {
  if (statSync(path).isFile()) return path.endsWith('.ts') ? [path] : [];
  return readdirSync(path).flatMap((name) => (name === 'node_modules' ? [] : files(join(path, name))));
}

/** The text of the call whose '(' is at `open`, up to its matching ')'. */
function callText(s: string, open: number): { text: string; args: number } {
  let depth = 0;
  let args = 1;
  let i = open;
  for (; i < s.length; i++) {
    const c = s[i];
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      depth--;
      if (depth === 0) break;
    } else if (c === ',' && depth === 1) args++;
  }
  return { text: s.slice(open, i + 1), args: s.slice(open + 1, i).trim() === '' ? 0 : args };
}

const found: string[] = [];
const targets = process.argv.length > 2 ? process.argv.slice(2) : ['test'];
for (const file of targets.flatMap(files)) {
  if (file.endsWith('unseeded.ts')) continue;
  const s = readFileSync(file, 'utf8');
  const where = (i: number) => `${file}:${s.slice(0, i).split('\n').length}`;
  const lineOf = (i: number) => s.slice(s.lastIndexOf('\n', i) + 1, s.indexOf('\n', i));
  for (const m of s.matchAll(/new (Hopfield|HopfieldPooling|HopfieldLayer|UHopAttention|MultiHeadAttention)\(/g)) {
    const { text } = callText(s, m.index! + m[0].length - 1);
    if (/\bseed\s*[:,}]/.test(text) || /(assert\.throws\(|\[)\(\) => (\w+\()?new /.test(lineOf(m.index!))) continue;
    // Options passed as a variable (or spread from one): seeded where they are built.
    if (/^\(\w+[^{]*\)$/.test(text) || /^\(\{ \.\.\.\(?\w+/.test(text)) continue;
    found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
  for (const m of s.matchAll(/tfl\.layers\.dense\(/g)) {
    const { text } = callText(s, m.index! + m[0].length - 1);
    if (!/kernelInitializer/.test(text)) found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
  for (const m of s.matchAll(/tf\.(randomNormal|randomUniform|truncatedNormal)\(/g)) {
    const { text, args } = callText(s, m.index! + m[0].length - 1);
    if (args < 5 && !/unseeded on purpose/.test(lineOf(m.index!))) found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
}
for (const f of found) console.log(f);
console.log(found.length === 0 ? 'unseeded: none found' : `unseeded: ${found.length} found`);
process.exitCode = found.length === 0 ? 0 : 1;
