/**
 * `uhop mil`: the MIL benchmark (MUSK1, MUSK2, Elephant or any MIL CSV) from the command line:
 * repeated stratified k-fold CV, one table with the literature's numbers beside ours, a JSON
 * file with every fold and an SVG bar chart under results/mil/.
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  UsageError,
  choiceFlag,
  numberFlag,
  numberListFlag,
  parseCommandArgs,
  type CliIO,
  type CommandModule,
  type CommonArgs,
} from './command.js';
import {
  MIL_DEFAULT_METHODS,
  MIL_METHODS,
  MIL_METHOD_NAMES,
  MIL_TUNE_FAMILIES,
  runMilBenchmark,
  tuneMil,
  type MilBenchmarkResult,
  type MilConfig,
  type MilConfigPatch,
  type MilMethodName,
} from './mil.js';
import { MIL_REFERENCES, milChartSvg } from './milReport.js';
import { MIL_PRESETS, MIL_PRESET_NAMES, milPresetConfig, type MilPresetName } from './milPresets.js';
import { mergeMilRuns, readMilRunPart } from './milMerge.js';
import { milPairedReport } from './milPaired.js';
import { progress, printTable, writeResults, writeTextFile } from './report.js';
import type { MilDataset } from '../data/mil.js';
import { readMilCsv } from '../node/data.js';

const NAME = 'mil';
const BUILTIN = ['musk1', 'musk2', 'elephant'] as const;

const OPTIONS = {
  ...COMMON_OPTIONS,
  dataset: { type: 'string' },
  preset: { type: 'string' },
  optimizer: { type: 'string' },
  'data-dir': { type: 'string' },
  folds: { type: 'string' },
  repeats: { type: 'string' },
  seed: { type: 'string' },
  'only-folds': { type: 'string' },
  methods: { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  'lr-decay': { type: 'string' },
  'batch-size': { type: 'string' },
  patience: { type: 'string' },
  'val-fraction': { type: 'string' },
  hidden: { type: 'string' },
  dropout: { type: 'string' },
  'bag-dropout': { type: 'string' },
  'weight-decay': { type: 'string' },
  'attention-units': { type: 'string' },
  heads: { type: 'string' },
  'hidden-size': { type: 'string' },
  quantity: { type: 'string' },
  beta: { type: 'string' },
  'fit-steps': { type: 'string' },
  'fit-lr': { type: 'string' },
  'fit-loss': { type: 'string' },
  'fit-optimizer': { type: 'string' },
  'feature-dim': { type: 'string' },
  'no-standardize': { type: 'boolean' },
  refit: { type: 'boolean' },
  tune: { type: 'boolean' },
  'tune-families': { type: 'string' },
  'tune-candidates': { type: 'string' },
  merge: { type: 'string' },
  out: { type: 'string' },
  name: { type: 'string' },
  'no-save': { type: 'boolean' },
  progress: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

const METHOD_LINES = MIL_METHOD_NAMES.map((m) => `                       ${m.padEnd(19)}${MIL_METHODS[m].description}`).join('\n');

const PRESET_LINES = MIL_PRESET_NAMES.map((m) => `                       ${m.padEnd(19)}${MIL_PRESETS[m].description}`).join('\n');

const HELP = `Usage: uhop mil [options]

Multiple-instance learning benchmark: bag-level stratified k-fold cross-validation, repeated
with seeds seed, seed+1, ...; per fold, features are standardized on the training folds, and
model selection (best validation loss, early stopping) uses an inner stratified validation
split of the training folds only: the test fold is used once, for the reported scores.
Reported: accuracy (threshold 0.5) and ROC AUC, mean over all folds, ± std over repeats.

Data:
  --dataset NAME|PATH  musk1 (default), musk2, elephant, or the path of any MIL CSV
                       (bag_id,bag_label,f0,f1,... one row per instance)
  --data-dir DIR       folder of musk1.csv, musk2.csv, elephant.csv (default: UHOP_MIL_DIR,
                       else ../shared/data/mil or data/mil if present)

Recipe:
  --preset NAME        the training recipe of every method (default uhop-default); flags below
                       override it. With a preset, --methods defaults to the preset's
                       reference model and U-Hop's arms, and --tune searches the preset's grid:
${PRESET_LINES}

Protocol:
  --folds K            outer folds (default 10)
  --repeats R          repeats of the K-fold CV (default 5)
  --seed S             base seed (default 0)
  --only-folds LIST    run only these outer folds, e.g. 0,1 (quick timing runs)
  --methods LIST       some of (default: ${MIL_DEFAULT_METHODS.join(',')}):
${METHOD_LINES}
  --no-standardize     keep the features as in the file
  --refit              after choosing the epoch on the inner split, retrain a fresh model on
                       all training folds for that many epochs and evaluate it

Choosing a configuration (no test fold is used):
  --tune               instead of the benchmark, score the built-in candidates by the mean
                       inner-validation loss on the TRAINING parts of the outer folds of seed
                       --seed (default here 1000): the Hopfield poolings (scored with uhop)
                       over learning rate x input LayerNorms on/off x regularization, the
                       other poolings (scored with attention) over learning rate x
                       regularization; prints the rankings and writes <name>-tune.json
  --tune-families LIST some of hopfield, attention, hopfield-arch (heads, association
                       dropout, state patterns, beta; after hopfield), uhop (U-Hop fit
                       settings; after hopfield-arch); default all, in this order
  --tune-candidates L  only these candidates of the searched families, by name, separated by
                       ';' (e.g. 'fitLr=0.1 (as hopfield);fitLr=10'): a cheap follow-up on a
                       large data set

Merging runs (no training):
  --merge LIST         comma-separated <name>.json or <name>.folds.jsonl files of runs of one
                       data set and configuration, e.g. split by seed (--seed 3 --repeats 1)
                       or by --methods to run in parallel processes; writes the table, JSON
                       and SVG of the union under --name (repeat r of seed s = seed s + r,
                       so the merge equals one run over all those seeds; runs of disjoint
                       --only-folds of one seed join); (method, seed) groups with missing
                       folds are left out and listed. Also prints, for
                       every pair of methods, the per-fold differences over the folds both
                       ran (mean ± standard error, wins/ties/losses)

Training (defaults: the data set's fixed configuration, see the README):
  --epochs N  --lr LR  --lr-decay D  --batch-size B  --patience P  --val-fraction F
  --optimizer adam|adamw  adam: --weight-decay is an L2 term on the kernels (PyTorch Adam's
                       weight_decay); adamw: decoupled decay of every weight (PyTorch AdamW)
  --hidden LIST        instance encoder widths, e.g. 128,64 ('none' for no encoder)
  --dropout P  --bag-dropout P  --weight-decay W  --attention-units L
Hopfield pooling:
  --heads H  --hidden-size D  --quantity Q  --beta B
  --fit-steps N  --fit-lr LR  --fit-loss uniform|worst-pair|lse  --feature-dim D   (U-Hop)
  --fit-optimizer normalized|sgd|adam   (U-Hop's step rule; the runs before the 'normalized'
                       rule are '--fit-optimizer sgd --fit-lr 0.1', MUSK1 '--fit-lr 10',
                       Elephant also '--fit-loss uniform')

Output:
  --out DIR            folder of the JSON and SVG (default results/mil); every finished fold
                       is also appended to <name>.folds.jsonl as it completes
  --name NAME          file stem (default: the data set name)
  --no-save            print the table only
  --progress           draw the progress bar even when stderr is not a terminal
  -q, --quiet          no progress bar
${COMMON_HELP}

Examples:
  uhop mil --dataset musk1 --folds 10 --repeats 5
  uhop mil --dataset elephant --preset ramsauer-hopfield --repeats 1
  uhop mil --dataset elephant --methods uhop,hopfield-softmax,attention --repeats 1
  uhop mil --dataset ./my_bags.csv --folds 5 --repeats 2
`;

export interface MilArgs extends CommonArgs {
  dataset: string;
  /** The recipe (--preset; default 'uhop-default'). */
  preset: MilPresetName;
  dataDir?: string;
  folds: number;
  repeats: number;
  seed: number;
  onlyFolds?: number[];
  methods: MilMethodName[];
  overrides: MilConfigPatch;
  out: string;
  name?: string;
  save: boolean;
  tune: boolean;
  /** Families --tune searches (default all). */
  tuneFamilies?: string[];
  /** Candidate names --tune keeps (default all). */
  tuneCandidates?: string[];
  /** Result files to merge instead of running (--merge). */
  merge?: string[];
  progress: 'auto' | 'force' | 'off';
}

function parse(args: string[]): MilArgs {
  const v = parseCommandArgs(NAME, args, OPTIONS);
  const methodList = (flag: string, value: string | undefined, fallback: MilMethodName[]): MilMethodName[] => {
    if (value === undefined) return fallback;
    const list = value.split(',').map((m) => m.trim()) as MilMethodName[];
    const bad = list.filter((m) => !Object.hasOwn(MIL_METHODS, m));
    if (bad.length || list.length === 0) {
      throw new UsageError(
        `uhop ${NAME}: --${flag}: unknown method ${bad.map((b) => `'${b}'`).join(', ') || "''"}; expected some of ${MIL_METHOD_NAMES.join(', ')}`,
      );
    }
    return list;
  };
  const preset = (choiceFlag(NAME, 'preset', v.preset, MIL_PRESET_NAMES) ?? 'uhop-default') as MilPresetName;
  const methods = methodList('methods', v.methods, preset === 'uhop-default' ? MIL_DEFAULT_METHODS : MIL_PRESETS[preset].methods);
  const tune = v.tune === true;
  const tuneFamilies = v['tune-families']?.split(',').map((f) => f.trim());
  const familyNames = presetFamilies(preset).map((f) => f.name);
  const badFamily = tuneFamilies?.filter((f) => !familyNames.includes(f)) ?? [];
  if (badFamily.length || tuneFamilies?.length === 0) {
    throw new UsageError(
      `uhop ${NAME}: --tune-families: unknown family ${badFamily.map((b) => `'${b}'`).join(', ') || "''"}; expected some of ${familyNames.join(', ')}`,
    );
  }
  const tuneCandidates = v['tune-candidates']
    ?.split(';')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  if (tuneCandidates) checkTuneCandidates(preset, tuneCandidates, tuneFamilies);
  const folds = numberFlag(NAME, 'folds', v.folds, { min: 2, integer: true }) ?? 10;
  const onlyFolds = numberListFlag(NAME, 'only-folds', v['only-folds'], { min: 0, integer: true });
  if (onlyFolds?.some((f) => f >= folds))
    throw new UsageError(`uhop ${NAME}: --only-folds entries must be < --folds (${folds}), got ${v['only-folds']}`);
  if (onlyFolds && onlyFolds.length === 0) throw new UsageError(`uhop ${NAME}: --only-folds is empty`);
  const hidden = numberListFlag(NAME, 'hidden', v.hidden, { min: 1, integer: true });
  const rate = (flag: string, value: string | undefined) => {
    const r = numberFlag(NAME, flag, value, { min: 0 });
    if (r !== undefined && r >= 1) throw new UsageError(`uhop ${NAME}: --${flag} must be in [0, 1), got '${value}'`);
    return r;
  };
  const valFraction = numberFlag(NAME, 'val-fraction', v['val-fraction'], { min: 0, exclusiveMin: true, max: 0.5 });
  const hopfield = {
    numHeads: numberFlag(NAME, 'heads', v.heads, { min: 1, integer: true }),
    hiddenSize: numberFlag(NAME, 'hidden-size', v['hidden-size'], { min: 1, integer: true }),
    quantity: numberFlag(NAME, 'quantity', v.quantity, { min: 1, integer: true }),
    beta: numberFlag(NAME, 'beta', v.beta, { min: 0, exclusiveMin: true }),
    fitSteps: numberFlag(NAME, 'fit-steps', v['fit-steps'], { min: 0, integer: true }),
    fitLr: numberFlag(NAME, 'fit-lr', v['fit-lr'], { min: 0, exclusiveMin: true }),
    separationLoss: choiceFlag(NAME, 'fit-loss', v['fit-loss'], ['uniform', 'worst-pair', 'lse'] as const),
    fitOptimizer: choiceFlag(NAME, 'fit-optimizer', v['fit-optimizer'], ['normalized', 'sgd', 'adam'] as const),
    featureDim: numberFlag(NAME, 'feature-dim', v['feature-dim'], { min: 1, integer: true }),
  };
  const overrides: MilConfigPatch = {
    hidden,
    epochs: numberFlag(NAME, 'epochs', v.epochs, { min: 1, integer: true }),
    learningRate: numberFlag(NAME, 'lr', v.lr, { min: 0, exclusiveMin: true }),
    lrDecay: numberFlag(NAME, 'lr-decay', v['lr-decay'], { min: 0, exclusiveMin: true, max: 1 }),
    batchSize: numberFlag(NAME, 'batch-size', v['batch-size'], { min: 1, integer: true }),
    patience: numberFlag(NAME, 'patience', v.patience, { min: 1, integer: true }),
    valFraction,
    dropout: rate('dropout', v.dropout),
    bagDropout: rate('bag-dropout', v['bag-dropout']),
    weightDecay: numberFlag(NAME, 'weight-decay', v['weight-decay'], { min: 0 }),
    optimizer: choiceFlag(NAME, 'optimizer', v.optimizer, ['adam', 'adamw'] as const),
    attentionUnits: numberFlag(NAME, 'attention-units', v['attention-units'], { min: 1, integer: true }),
    standardize: v['no-standardize'] ? false : undefined,
    refit: v.refit ? true : undefined,
    hopfield,
  };
  return {
    backend: v.backend,
    dataset: v.dataset ?? 'musk1',
    preset,
    dataDir: v['data-dir'],
    folds,
    repeats: numberFlag(NAME, 'repeats', v.repeats, { min: 1, integer: true }) ?? 5,
    seed: numberFlag(NAME, 'seed', v.seed, { integer: true }) ?? (tune ? 1000 : 0),
    onlyFolds,
    methods,
    overrides,
    out: v.out ?? 'results/mil',
    name: v.name,
    save: v['no-save'] !== true,
    tune,
    tuneFamilies,
    tuneCandidates,
    merge: v.merge
      ?.split(',')
      .map((f) => f.trim())
      .filter((f) => f !== ''),
    progress: v.quiet ? 'off' : v.progress ? 'force' : 'auto',
  };
}

/** The search families of a preset (the harness's staged search for 'uhop-default'). */
function presetFamilies(preset: MilPresetName) {
  return preset === 'uhop-default' ? MIL_TUNE_FAMILIES : MIL_PRESETS[preset].tuneFamilies;
}

/** The --tune families, in search order (all when none are named). */
function searchedFamilies(preset: MilPresetName, names: string[] | undefined) {
  return presetFamilies(preset).filter((f) => !names || names.includes(f.name));
}

/** Every --tune-candidates name must exist, and every searched family must keep one. */
function checkTuneCandidates(preset: MilPresetName, keep: string[], familyNames: string[] | undefined): void {
  const families = searchedFamilies(preset, familyNames);
  const known = families.flatMap((f) => f.candidates.map((c) => c.name));
  const unknown = keep.filter((c) => !known.includes(c));
  if (unknown.length) {
    throw new UsageError(
      `uhop ${NAME}: --tune-candidates: unknown candidate ${unknown.map((c) => `'${c}'`).join(', ')}; the searched families have ${known.map((c) => `'${c}'`).join(', ')}`,
    );
  }
  const empty = families.filter((f) => !f.candidates.some((c) => keep.includes(c.name))).map((f) => f.name);
  if (empty.length)
    throw new UsageError(`uhop ${NAME}: --tune-candidates keeps no candidate of ${empty.join(', ')}; pass --tune-families too`);
}

/** Resolves --dataset / --data-dir to a CSV path. */
export function resolveMilDatasetPath(dataset: string, dataDir?: string): string {
  const isPath = dataset.includes('/') || dataset.includes('\\') || extname(dataset).toLowerCase() === '.csv';
  if (isPath) {
    if (!existsSync(dataset)) throw new UsageError(`uhop ${NAME}: --dataset ${dataset}: file not found`);
    return dataset;
  }
  const name = dataset.toLowerCase();
  if (!(BUILTIN as readonly string[]).includes(name)) {
    throw new UsageError(`uhop ${NAME}: --dataset must be one of ${BUILTIN.join(', ')} or the path of a MIL CSV file, got '${dataset}'`);
  }
  const candidates = dataDir ? [dataDir] : [process.env.UHOP_MIL_DIR, '../shared/data/mil', 'data/mil'].filter((d): d is string => !!d);
  for (const dir of candidates) {
    const p = join(dir, `${name}.csv`);
    if (existsSync(p)) return p;
  }
  throw new UsageError(
    `uhop ${NAME}: ${name}.csv not found in ${candidates.map((d) => resolve(d)).join(', ')}; pass --data-dir DIR (or set UHOP_MIL_DIR) or give the CSV's path to --dataset`,
  );
}

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : '-');
const pm = (m: number, s: number) => (Number.isFinite(m) ? `${pct(m)} ± ${pct(s)}` : '-');

/** Prints the summary table, with the literature's numbers for the built-in data sets. */
export function printMilReport(res: MilBenchmarkResult, out: CliIO['stdout']): void {
  const c = res.config;
  const head = `\n${res.dataset}: ${res.numBags} bags, ${res.numFeatures} features; ${res.folds}-fold CV x ${res.repeats} repeat(s), seed ${res.seed}\n`;
  if (c.hidden === undefined) {
    out.write(`${head}config: not recorded (merged from fold files only)\n\n`);
  } else
    out.write(
      head +
        `config: hidden [${c.hidden}], dropout ${c.dropout}, bag dropout ${c.bagDropout}, weight decay ${c.weightDecay}, ` +
        `${c.optimizer === 'adamw' ? 'AdamW' : 'Adam'} lr ${c.learningRate} x ${c.lrDecay}^epoch, <= ${c.epochs} epochs (patience ${c.patience}), batch ${c.batchSize}, ` +
        `inner validation ${c.valFraction}${c.refit ? ' then refit on all training folds' : ''}, standardize ${c.standardize}\n` +
        `hopfield: ${JSON.stringify(c.hopfield)}; attention units ${c.attentionUnits}\n` +
        (c.methods && Object.keys(c.methods).length ? `per-method patches: ${JSON.stringify(c.methods)}\n` : '') +
        '\n',
    );
  const refs = MIL_REFERENCES[res.dataset.toLowerCase()] ?? [];
  const rows = res.summary.map((r) => {
    const ref = refs.find((x) => x.method === r.method || (x.method === 'hopfield' && r.method.startsWith('hopfield')));
    return {
      method: r.method,
      'accuracy %': pm(r.accuracy, r.accuracyStd),
      'AUC %': pm(r.auc, r.aucStd),
      'ref acc %': ref?.accuracy !== undefined ? pct(ref.accuracy) : '',
      'ref AUC %': ref?.auc !== undefined ? pm(ref.auc, ref.aucStd ?? NaN) : '',
      'val AUC %': pct(r.valAuc),
      folds: r.folds,
      's/fold': (r.seconds / r.folds).toFixed(1),
    };
  });
  printTable(
    rows,
    [
      { key: 'method', align: 'left' },
      { key: 'accuracy %', align: 'right' },
      { key: 'AUC %', align: 'right' },
      { key: 'ref acc %', align: 'right' },
      { key: 'ref AUC %', align: 'right' },
      { key: 'val AUC %', align: 'right' },
      { key: 'folds', align: 'right' },
      { key: 's/fold', align: 'right' },
    ],
    out,
  );
  if (refs.length) {
    out.write(
      `references: ${[...new Set(refs.map((r) => r.source))].join('; ')} (ref acc: attention / gated-attention; ref AUC: HopfieldPooling)\n`,
    );
  }
}

async function runTune(p: MilArgs, io: CliIO, dataset: MilDataset, config: MilConfig, path: string, t0: number): Promise<number> {
  const keep = p.tuneCandidates;
  const families = searchedFamilies(p.preset, p.tuneFamilies).map((f) =>
    keep ? { ...f, candidates: f.candidates.filter((c) => keep.includes(c.name)) } : f,
  );
  const total = families.reduce((n, f) => n + f.candidates.length * f.representatives.length, 0) * (p.onlyFolds?.length ?? p.folds);
  const bar = progress(total, `mil tune ${dataset.name}`, {
    force: p.progress === 'force',
    silent: p.progress === 'off',
    stream: io.stderr as NodeJS.WritableStream,
  });
  const res = await tuneMil({
    dataset,
    base: config,
    families,
    folds: p.folds,
    onlyFolds: p.onlyFolds,
    seed: p.seed,
    onProgress: (done, _total, status) => {
      bar.tick(1, status);
      if (!bar.active && p.progress !== 'off') io.stderr.write(`[${done}/${total}] ${status}\n`);
    },
  });
  bar.stop();
  io.stdout.write(
    `\n${dataset.name}: configuration search on inner validation splits of the training folds only ` +
      `(${p.folds}-fold split, seed ${p.seed}, outer folds ${(p.onlyFolds ?? []).join(',') || 'all'})\n`,
  );
  for (const fam of families) {
    io.stdout.write(
      `\n${fam.name} family (scored with ${fam.representatives.join(', ')}; applies to ${fam.members.join(', ')}), best first:\n`,
    );
    printTable(
      res.rankings[fam.name].map((r, i) => {
        const row = res.rows.find((x) => x.family === fam.name && x.candidate === r.candidate)!;
        return {
          rank: i + 1,
          candidate: r.candidate,
          'val loss': r.valLoss.toFixed(4),
          'val AUC %': pct(r.valAuc),
          'best epoch': row.bestEpoch.toFixed(1),
          's/fold': (row.seconds / row.folds).toFixed(1),
        };
      }),
      [
        { key: 'rank' },
        { key: 'candidate' },
        { key: 'val loss', align: 'right' },
        { key: 'val AUC %', align: 'right' },
        { key: 'best epoch', align: 'right' },
        { key: 's/fold', align: 'right' },
      ],
      io.stdout,
    );
  }
  io.stdout.write(`\nchosen per-method patches: ${JSON.stringify(res.best.methods)}\n`);
  const seconds = (performance.now() - t0) / 1000;
  if (p.save) {
    const name = `${p.name ?? dataset.name}-tune`;
    const json = writeResults(p.out, name, {
      dataset: dataset.name,
      source: path,
      seed: p.seed,
      folds: p.folds,
      onlyFolds: p.onlyFolds,
      base: config,
      ...res,
      backend: tf.getBackend(),
      wallSeconds: seconds,
    });
    io.stdout.write(`\nwrote ${json}\n`);
  }
  io.stdout.write(`wall time ${seconds.toFixed(1)} s on ${tf.getBackend()} (${cpus().length} CPU cores)\n`);
  return 0;
}

async function runMerge(p: MilArgs, io: CliIO): Promise<number> {
  if (!p.merge?.length) throw new UsageError(`uhop ${NAME}: --merge needs at least one file`);
  if (!p.name && p.save) throw new UsageError(`uhop ${NAME}: --merge needs --name (the stem of the merged files)`);
  const parts = p.merge.map((f) => {
    try {
      return readMilRunPart(f);
    } catch (e) {
      throw new UsageError(`uhop ${NAME}: --merge: ${(e as Error).message}`);
    }
  });
  const { result, dropped } = mergeMilRuns(parts);
  if (!Number.isFinite(result.numBags)) {
    // A folds file of an unfinished run has no header: count the bags from the data set.
    const dataset = readMilCsv(resolveMilDatasetPath(result.dataset, p.dataDir));
    result.numBags = dataset.bags.length;
    result.numFeatures = dataset.numFeatures;
  }
  for (const d of dropped) io.stderr.write(`left out: ${d}\n`);
  printMilReport(result, io.stdout);
  const methods = result.summary.map((r) => r.method);
  if (methods.length > 1)
    io.stdout.write(
      `\npaired over the same folds (a - b, points):\n${milPairedReport(result.results, methods, result.dataset).join('\n')}\n\n`,
    );
  io.stdout.write(`merged ${parts.length} file(s): ${p.merge.join(', ')}\n`);
  if (p.save) {
    const json = writeResults(p.out, p.name!, { ...result, mergedFrom: p.merge, droppedIncomplete: dropped });
    const svg = writeTextFile(p.out, `${p.name!}.svg`, await milChartSvg(result));
    io.stdout.write(`wrote ${json}, ${svg}\n`);
  }
  return 0;
}

async function run(p: MilArgs, io: CliIO): Promise<number> {
  if (p.merge) return runMerge(p, io);
  const t0 = performance.now();
  const path = resolveMilDatasetPath(p.dataset, p.dataDir);
  const dataset = readMilCsv(path);
  const config = milPresetConfig(p.preset, dataset.name, p.overrides);
  if (p.tune) return runTune(p, io, dataset, config, path, t0);
  const foldsPerRepeat = p.onlyFolds?.length ?? p.folds;
  const total = p.methods.length * p.repeats * foldsPerRepeat;
  const bar = progress(total, `mil ${dataset.name}`, {
    force: p.progress === 'force',
    silent: p.progress === 'off',
    stream: io.stderr as NodeJS.WritableStream,
  });
  let where = '';
  let foldLog: string | undefined;
  if (p.save) {
    mkdirSync(p.out, { recursive: true });
    foldLog = join(p.out, `${p.name ?? basename(dataset.name)}.folds.jsonl`);
    writeFileSync(foldLog, '');
  }
  const res = await runMilBenchmark({
    dataset,
    methods: p.methods,
    folds: p.folds,
    repeats: p.repeats,
    seed: p.seed,
    onlyFolds: p.onlyFolds,
    config,
    progress: {
      onFoldStart: ({ method, repeat, fold }) => {
        where = `${method} r${repeat} f${fold}`;
        bar.status(where);
      },
      onEpochEnd: ({ log, epochs }) => {
        bar.status(`${where} epoch ${log.epoch + 1}/${epochs} loss ${log.loss.toFixed(3)} val ${log.valLoss?.toFixed(3) ?? '-'}`);
      },
      onFoldEnd: (r) => {
        // One JSON line per finished fold, so that a long run that is stopped keeps its folds.
        if (foldLog) appendFileSync(foldLog, `${JSON.stringify(r)}\n`);
        bar.tick(1, `${where}: acc ${pct(r.accuracy)} auc ${pct(r.auc)} (${r.seconds.toFixed(1)} s)`);
        if (!bar.active && p.progress !== 'off') {
          io.stderr.write(
            `${r.method} repeat ${r.repeat} fold ${r.fold}: acc ${pct(r.accuracy)} auc ${pct(r.auc)} best epoch ${r.bestEpoch} (${r.seconds.toFixed(1)} s)\n`,
          );
        }
      },
    },
  });
  bar.stop();
  printMilReport(res, io.stdout);
  const seconds = (performance.now() - t0) / 1000;
  if (p.save) {
    const name = p.name ?? basename(dataset.name);
    const json = writeResults(p.out, name, { ...res, source: path, backend: tf.getBackend(), cpus: cpus().length, wallSeconds: seconds });
    const svg = writeTextFile(p.out, `${name}.svg`, await milChartSvg(res));
    io.stdout.write(`\nwrote ${json}, ${svg}\n`);
  }
  io.stdout.write(`wall time ${seconds.toFixed(1)} s on ${tf.getBackend()} (${cpus().length} CPU cores)\n`);
  return 0;
}

/** The `uhop mil` command (listed in src/cli.ts). */
export const command: CommandModule<MilArgs> = { help: HELP, parse, run };
