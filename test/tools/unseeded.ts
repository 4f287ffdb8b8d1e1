/**
 * Lists what the tests draw without a seed: constructions of the layers that draw weights or
 * masks (the Hopfield family, the attention layers, UHopMemory, the MIL layers and dropouts)
 * without `seed`, tf.layers.dense without `kernelInitializer`, TokenEmbedding without
 * `embeddingsInitializer`, and tf.randomNormal / randomUniform / truncatedNormal calls without
 * their seed argument. Constructions inside an `assert.throws(...)` or in a `[() => new ...`
 * case list are skipped (the test checks the error, not a value), and so are options passed as
 * a variable (checked where they are built). test/tools/unseeded.test.ts runs it in npm test;
 * from the command line it exits 1 when it finds any:
 *
 *     npx tsx test/tools/unseeded.ts            # scans test/
 *     npx tsx test/tools/unseeded.ts test/layers/io.test.ts
 *
 * A deliberately unseeded draw (the withSeed test, which checks that withSeed seeds it) is
 * marked on its line with the comment `unseeded on purpose`.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Classes whose construction draws weights or masks at random unless given a seed. */
const SEEDED_CLASSES = [
  'Hopfield',
  'HopfieldPooling',
  'HopfieldLayer',
  'UHopAttention',
  'MultiHeadAttention',
  'UHopMemory',
  'InstanceDense',
  'AttentionMilPooling',
  'GatedAttentionMilPooling',
  'BagDropout',
  'SeededDropout',
];

/** The unseeded draws in the files under `targets` (files or folders), as `file:line: code`. */
export function findUnseeded(targets: string[]): string[] {
  const found: string[] = [];
  for (const file of targets.flatMap(files)) {
    if (/unseeded(\.test)?\.ts$/.test(file)) continue;
    scan(file, found);
  }
  return found;
}

function scan(file: string, found: string[]): void {
  const s = readFileSync(file, 'utf8');
  const where = (i: number) => `${file}:${s.slice(0, i).split('\n').length}`;
  const lineOf = (i: number) => s.slice(s.lastIndexOf('\n', i) + 1, s.indexOf('\n', i));
  // [start, end) of every assert.throws(...) call: what is built there only has to throw.
  const throwsRanges = [...s.matchAll(/assert\.throws\(/g)].map((m) => {
    const open = m.index! + m[0].length - 1;
    return [open, open + callText(s, open).text.length] as const;
  });
  const inThrows = (i: number) => throwsRanges.some(([a, b]) => i > a && i < b);
  // A mention in a comment draws nothing.
  const inComment = (i: number) => /^\s*(\/\/|\/\*|\*)/.test(lineOf(i));
  const classes = new RegExp(`new (${SEEDED_CLASSES.join('|')})\\(`, 'g');
  for (const m of s.matchAll(classes)) {
    const { text } = callText(s, m.index! + m[0].length - 1);
    if (/\bseed\s*[:,}]/.test(text) || inThrows(m.index!) || inComment(m.index!) || /\[\(\) => (\w+\()?new /.test(lineOf(m.index!)))
      continue;
    // Options passed as a variable (or spread from one): seeded where they are built. A variable
    // built in this file as an object literal must hold the seed; one built elsewhere (a
    // parameter, a case list) cannot be checked here.
    const variable = /^\((\w+)[^{]*\)$/.exec(text) ?? /^\(\{ \.\.\.\(?(\w+)/.exec(text);
    if (variable) {
      const decl = new RegExp(`(?:const|let) ${variable[1]}\\b[^=;]*= \\{`).exec(s);
      if (!decl || /\bseed\s*[:,}]/.test(callText(s, decl.index + decl[0].length - 1).text)) continue;
    }
    found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
  for (const m of s.matchAll(/tfl?\.layers\.dense\(/g)) {
    const { text } = callText(s, m.index! + m[0].length - 1);
    if (!/kernelInitializer/.test(text) && !inComment(m.index!)) found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
  for (const m of s.matchAll(/new TokenEmbedding\(/g)) {
    const { text } = callText(s, m.index! + m[0].length - 1);
    if (!/embeddingsInitializer/.test(text) && !inThrows(m.index!)) found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
  for (const m of s.matchAll(/tf\.(randomNormal|randomUniform|truncatedNormal)\(/g)) {
    const { text, args } = callText(s, m.index! + m[0].length - 1);
    if (args < 5 && !/unseeded on purpose/.test(lineOf(m.index!))) found.push(`${where(m.index!)}: ${m[0]}${text.slice(1, 70)}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const found = findUnseeded(process.argv.length > 2 ? process.argv.slice(2) : ['test']);
  for (const f of found) console.log(f);
  console.log(found.length === 0 ? 'unseeded: none found' : `unseeded: ${found.length} found`);
  process.exitCode = found.length === 0 ? 0 : 1;
}
