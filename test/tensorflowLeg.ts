/**
 * The tensorflow leg of `npm test`: runs every backend-parametrized test file once more with
 * UHOP_TEST_BACKENDS=tensorflow, when @tensorflow/tfjs-node (the native libtensorflow backend)
 * loads on this machine.
 *
 * tfjs-node is an optional peer dependency: its install script downloads libtensorflow, which
 * not every machine can do, so the main leg (cpu, wasm) never needs it and this leg decides
 * for itself. `UHOP_TEST_TENSORFLOW` says what to do:
 * - `auto` (the default): run when tfjs-node loads; otherwise print one line and pass.
 * - `require`: run, and fail when tfjs-node does not load (CI sets this after it set tfjs-node up).
 * - `skip`: print one line and pass.
 *
 * A separate process per leg (rather than a third entry in the main leg's backend list) keeps
 * libtensorflow and its thread pools out of the cpu/wasm test processes.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const MODES = ['auto', 'require', 'skip'] as const;
type Mode = (typeof MODES)[number];

const raw = (process.env.UHOP_TEST_TENSORFLOW ?? 'auto').trim().toLowerCase();
if (!(MODES as readonly string[]).includes(raw)) {
  console.error(`tensorflow leg: UHOP_TEST_TENSORFLOW is '${raw}'; expected one of ${MODES.join(', ')}`);
  process.exit(2);
}
const mode = raw as Mode;

if (mode === 'skip') {
  console.log('tensorflow leg: skipped (UHOP_TEST_TENSORFLOW=skip)');
  process.exit(0);
}

/**
 * Loads tfjs-node in a child process, so that a broken native binding (or a crash while
 * loading libtensorflow) cannot take this runner down. Returns null when it loads and the
 * tensorflow backend is active, otherwise why not.
 */
function probeTfjsNode(): string | null {
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      "const tf = require('@tensorflow/tfjs-node'); if (tf.getBackend() !== 'tensorflow') { console.error('backend is ' + tf.getBackend()); process.exit(3); }",
    ],
    { encoding: 'utf8' },
  );
  if (probe.status === 0) return null;
  const lines = `${probe.stderr ?? ''}`.split('\n').filter((l) => l.trim() !== '');
  const notFound = lines.find((l) => l.includes("Cannot find module '@tensorflow/tfjs-node'"));
  if (notFound) return '@tensorflow/tfjs-node is not installed';
  const why = lines.find((l) => /Error|error/.test(l)) ?? lines[0] ?? `exit status ${probe.status}`;
  return `@tensorflow/tfjs-node is installed but does not load (${why.trim()})`;
}

const unavailable = probeTfjsNode();
if (unavailable) {
  if (mode === 'require') {
    console.error(`tensorflow leg: FAILED, UHOP_TEST_TENSORFLOW=require but ${unavailable}`);
    process.exit(1);
  }
  console.log(`tensorflow leg: skipped, ${unavailable} (npm install @tensorflow/tfjs-node to test the native backend too)`);
  process.exit(0);
}

// The files that run on every backend in UHOP_TEST_BACKENDS (test/helpers.ts).
const files = readdirSync('test', { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(join('test', d.name))
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => join('test', d.name, f)),
  )
  .filter((f) => /\b(forEachBackend|TEST_BACKENDS)\b/.test(readFileSync(f, 'utf8')))
  .sort();

console.log(`tensorflow leg: ${files.length} backend-parametrized test files with UHOP_TEST_BACKENDS=tensorflow`);
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, UHOP_TEST_BACKENDS: 'tensorflow' },
});
process.exit(run.status ?? 1);
