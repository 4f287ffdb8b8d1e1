/**
 * The README against the code: every option its layer tables name is one the layers accept,
 * every function its op and layer tables name is exported by the root entry, and every
 * relative link in README.md and docs/ points at a file that exists. Docs drift silently
 * otherwise: a renamed option keeps its old name in a table nobody re-reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as uhop from '../../src/index.js';
import { HOPFIELD_BASE_SCHEMA } from '../../src/layers/hopfieldBase.js';
import type { OptionSpec } from '../../src/ops/schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The text of the README section headed `## title`, up to the next `## ` heading. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README.md has no '## ${title}' section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The Markdown tables in `text` whose header's first cell is `header`: one list of rows (cell lists) per table. */
function tables(text: string, header: string): string[][][] {
  const found: string[][][] = [];
  let current: string[][] | null = null;
  let inTable = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    // Split on pipes that are not escaped (`\|` stays inside a cell).
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    if (/^-+$/.test(cells[0])) continue;
    if (!inTable) {
      inTable = true;
      current = cells[0] === header ? [] : null;
      if (current) found.push(current);
      continue;
    }
    current?.push(cells);
  }
  return found;
}

/** The identifiers in backticks in a cell: `scaling` (alias `beta`) -> ['scaling', 'beta']. */
function codeNames(cell: string): string[] {
  return [...cell.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((m) => m[1]);
}

/** The function names in backticks in a cell: `fitFeatureMap(memorySets, ...)` -> ['fitFeatureMap']. */
function calledNames(cell: string): string[] {
  return [...cell.matchAll(/`([A-Za-z_$][\w$]*)[(`]/g)].map((m) => m[1]);
}

const api = uhop as unknown as Record<string, unknown>;

/** True when `make(option)` does not reject the option as unknown (a bad value may still be rejected, by name). */
function accepts(make: (args: Record<string, unknown>) => unknown, option: string): boolean {
  // A value of no option's type: the layer either rejects it for that option or takes it;
  // only an unknown key produces the 'unknown option' error.
  try {
    make({ [option]: { notAValue: true } });
    return true;
  } catch (e) {
    return !/unknown option/i.test((e as Error).message);
  }
}

const HOPFIELD_LAYERS: Array<[string, (args: Record<string, unknown>) => unknown]> = [
  ['Hopfield', (a) => new uhop.Hopfield(a)],
  ['HopfieldPooling', (a) => new uhop.HopfieldPooling(a)],
  ['HopfieldLayer', (a) => new uhop.HopfieldLayer(a)],
];
const ATTENTION: [string, (args: Record<string, unknown>) => unknown] = [
  'UHopAttention',
  (a) => new uhop.UHopAttention({ numHeads: 2, keyDim: 4, ...a }),
];

test('README: the probe tells a known option from an unknown one', () => {
  for (const [, make] of [...HOPFIELD_LAYERS, ATTENTION]) {
    assert.equal(accepts(make, 'noSuchOption'), false);
    assert.equal(accepts(make, 'fitSteps'), true);
  }
});

test('README: every option in the layer option tables is accepted by the layers it is listed for', () => {
  const [hopfieldTable, uhopTable] = tables(section('Layers'), 'option');
  const names = [...hopfieldTable, ...uhopTable].flatMap((r) => codeNames(r[0]));
  const uhopNames = uhopTable.flatMap((r) => codeNames(r[0]));
  assert.ok(names.includes('numHeads') && uhopNames.includes('fitSteps'), `options parsed from the README: ${names.join(', ')}`);
  for (const [layer, make] of HOPFIELD_LAYERS) {
    const unknown = names.filter((n) => !accepts(make, n));
    assert.deepEqual(unknown, [], `${layer} rejects options the README lists`);
  }
  const unknown = uhopNames.filter((n) => !accepts(ATTENTION[1], n));
  assert.deepEqual(unknown, [], 'UHopAttention rejects U-Hop options the README lists');
});

/**
 * A README default cell's value in the schema's terms: `'softmax'` -> 'softmax', true -> true,
 * 1e-4 -> 0.0001; undefined for a default in words ("stateDim / numHeads", "unseeded").
 */
function cellValue(cell: string): unknown {
  const c = cell
    .replace(/\(.*\)/, '')
    .replace(/`/g, '')
    .trim();
  if (/^'[^']*'$/.test(c)) return c.slice(1, -1);
  if (c === 'true' || c === 'false') return c === 'true';
  if (/^-?[\d.]+(e-?\d+)?$/.test(c)) return Number(c);
  return undefined;
}

test("README: the layer tables' defaults are the schema's (src/layers/hopfieldBase.ts, src/layers/hopfieldCore.ts)", () => {
  const specs = HOPFIELD_BASE_SCHEMA as unknown as Record<string, OptionSpec<unknown>>;
  const [hopfieldTable, uhopTable] = tables(section('Layers'), 'option');
  let compared = 0;
  for (const row of [...hopfieldTable, ...uhopTable]) {
    const names = codeNames(row[0]);
    const defaults = row[1].split(/,\s*/);
    if (defaults.length !== names.length && defaults.length !== 1) continue;
    names.forEach((name, i) => {
      const spec = specs[name];
      assert.ok(spec, `the README lists '${name}', which the trio's schema does not declare`);
      const given = cellValue(defaults.length === 1 ? defaults[0] : defaults[i]);
      const declared = spec.default !== undefined ? spec.default : spec.defaultText != null ? cellValue(spec.defaultText) : undefined;
      if (given === undefined || declared === undefined) return;
      assert.deepEqual(given, declared, `README default of ${name}`);
      compared++;
    });
  }
  // numHeads, separation, similarity, updateStepsMax/Eps, normalize*, dropout ... featureMap, separationLoss(T/Tau), fitSteps ...
  assert.ok(compared >= 20, `only ${compared} defaults compared: has the table format changed?`);
});

test('README: every layer, builder and op the tables name is exported by the root entry', () => {
  const layerNames = tables(section('Layers'), 'layer')
    .flat()
    .flatMap((r) => codeNames(r[0]).concat(calledNames(r[0])));
  const opRows = tables(section('Ops'), 'function').flat();
  const opNames = opRows.flatMap((r) => calledNames(r[0]).concat(codeNames(r[1]).filter((n) => /^[a-z]/.test(n) && /also/.test(r[1]))));
  assert.ok(layerNames.includes('HopfieldPooling') && opNames.includes('fitFeatureMap'), `parsed: ${layerNames} / ${opNames}`);
  const missing = [...new Set([...layerNames, ...opNames])].filter((n) => typeof api[n] !== 'function');
  assert.deepEqual(missing, [], 'named in the README tables but not exported as a function or class');
});

/**
 * Files other branches of the 0.2 work add; listed so that this branch's suite passes before
 * they are merged. The merge removes an entry as its file arrives (the test fails on an entry
 * whose file exists, so the list cannot go stale).
 */
const ADDED_BY_OTHER_BRANCHES = new Set<string>([]);

function markdownFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return p === join('docs', 'api') ? [] : markdownFiles(p);
    return e.name.endsWith('.md') ? [p] : [];
  });
}

test('README and docs/: every relative link points at a file that exists', () => {
  const broken: string[] = [];
  const targets = new Set<string>();
  for (const file of ['README.md', 'CHANGELOG.md', ...markdownFiles('docs')]) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = m[1];
      if (/^[a-z]+:/i.test(href) || href.startsWith('#')) continue;
      const target = relative(root, normalize(join(root, dirname(file), href.split('#')[0])));
      targets.add(target);
      if (!existsSync(join(root, target)) && !ADDED_BY_OTHER_BRANCHES.has(target)) broken.push(`${file} -> ${href}`);
    }
  }
  assert.deepEqual(broken, []);
  const arrived = [...ADDED_BY_OTHER_BRANCHES].filter((p) => existsSync(join(root, p)));
  assert.deepEqual(arrived, [], 'these files exist now: remove them from ADDED_BY_OTHER_BRANCHES');
  assert.ok(targets.has('docs/guide/layers.md'));
});

test('README stays a short user page (at most 300 lines; the details live in docs/)', () => {
  const lines = readme.split('\n').length;
  assert.ok(lines <= 300, `README.md has ${lines} lines`);
});
