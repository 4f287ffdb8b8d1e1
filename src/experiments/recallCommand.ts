/**
 * `uhop recall`: runs {@link runRecallExperiment} from the command line, prints the accuracy
 * table (variants x number of stored pairs) and writes the results JSON and an SVG.
 */
import {
  COMMON_HELP,
  COMMON_OPTIONS,
  UsageError,
  numberFlag,
  numberListFlag,
  parseCommandArgs,
  dropUndefined,
  outputArgs,
  intFlags,
  nameListFlag,
  runExperimentCommand,
  OUTPUT_OPTIONS,
  UHOP_FIT_OPTIONS,
  uhopFitFlags,
  type CliIO,
  type CommandModule,
  type ExperimentArgs,
} from './command.js';
import {
  DEFAULT_RECALL_PAIRS,
  DEFAULT_RECALL_VARIANTS,
  runRecallExperiment,
  type RecallExperimentOptions,
  type RecallResults,
} from './recall.js';
import { parseVariant, pct } from './transformerTraining.js';
import { labelledColumns, lineChartSvg, printTable, writeResults, writeTextFile } from './report.js';

const NAME = 'recall';

const OPTIONS = {
  ...COMMON_OPTIONS,
  pairs: { type: 'string' },
  attention: { type: 'string' },
  keys: { type: 'string' },
  values: { type: 'string' },
  'train-size': { type: 'string' },
  'test-size': { type: 'string' },
  'test-pairs': { type: 'string' },
  seeds: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  dim: { type: 'string' },
  heads: { type: 'string' },
  layers: { type: 'string' },
  ...UHOP_FIT_OPTIONS,
  ...OUTPUT_OPTIONS,
} as const;

const HELP = `Usage: uhop recall [options]

Synthetic key-value associative recall: a set of stored (key, value) pairs and a query key;
the model must output the query's value. Each pair is one token (key embedding + value
embedding), the query is a key with an empty value, and one encoder block with the compared
attention reads the query token. Compares softmax attention and U-Hop as the number of
stored pairs grows. Prints test accuracy (mean ± std over seeds; chance = 1/values) and
writes the results JSON and an SVG of accuracy vs pairs.

Task:
  --pairs LIST         numbers of stored pairs (default ${DEFAULT_RECALL_PAIRS.join(',')})
  --keys K             distinct keys (default 64; must be >= the largest pairs)
  --values V           distinct values = classes (default 16)
  --train-size N       training problems (default 3000)
  --test-size N        test problems, fresh draws (default 1000)
  --test-pairs LIST    also test each trained model on problems with these numbers of
                       pairs (same weights; sizes never seen in training)

Comparison:
  --attention LIST     variants: a separation optionally prefixed by uhop- ('uhop' =
                       uhop-softmax) or uhop-nofit- (the same U-Hop layer with fitSteps 0:
                       Phi0 trained, never fitted; the control arm), default
                       ${DEFAULT_RECALL_VARIANTS.join(',')}
  --seeds N            seeds 0..N-1 (default 2)
  --epochs N           (default 6)
  --batch-size N       (default 64)
  --lr LR              Adam learning rate (default 0.003)
  --dim D              token width (default 16)
  --heads H            (default 1)
  --layers N           encoder blocks (default 1)

U-Hop:
  --fit-steps N        Stage-I steps per call (default 5; uhop-nofit always 0)
  --fit-lr LR          Stage-I step size (default: 0.5, relative, for normalized; 0.1 for
                       sgd and adam)
  --fit-optimizer NAME normalized (default: relative step with per-set backtracking), sgd
                       (the plain step used before) or adam
  --fit-loss NAME      lse (default), uniform or worst-pair
  --feature-dim D      feature dimension of Phi (default: the key dim)
  --fit-gradient NAME  straight-through (default: the fitted Phi's gradient given to Phi0)
                       or unrolled (the exact gradient through the fit steps)
  --fit-keep-norm      rescale each fitted W to the norm of Phi0
  --fit-strength G     use Phi0 + G (Phi_fit - Phi0) (default 1)
  --fit-strength-trainable  learn G per head (starting at --fit-strength)

Output:
  --out DIR            (default results/recall)
  --name NAME          file name stem (default recall)
  --no-save            print the table only
  --progress           draw the progress bar even when stderr is not a terminal
  -q, --quiet          no progress bar
${COMMON_HELP}

Examples:
  uhop recall
  uhop recall --pairs 8,32,64 --keys 128 --attention softmax,uhop,sparsemax,uhop-sparsemax
`;

export type RecallArgs = ExperimentArgs<RecallExperimentOptions>;

function parse(args: string[]): RecallArgs {
  const v = parseCommandArgs(NAME, args, OPTIONS);
  const int = intFlags(NAME, v);
  const variants = nameListFlag(NAME, 'attention', v.attention, 'variant', parseVariant);
  const pairs = numberListFlag(NAME, 'pairs', v.pairs, { min: 1, integer: true });
  if (pairs && pairs.length === 0) throw new UsageError(`uhop ${NAME}: --pairs needs at least one number`);
  const options: RecallExperimentOptions = {
    pairs,
    variants,
    numKeys: int('keys'),
    numValues: int('values', 2),
    trainSize: int('train-size'),
    testSize: int('test-size'),
    testPairs: numberListFlag(NAME, 'test-pairs', v['test-pairs'], { min: 1, integer: true }),
    seeds: int('seeds'),
    epochs: int('epochs'),
    batchSize: int('batch-size'),
    lr: numberFlag(NAME, 'lr', v.lr, { min: 0, exclusiveMin: true }),
    dModel: int('dim'),
    numHeads: int('heads'),
    numLayers: int('layers'),
    ...uhopFitFlags(NAME, v),
  };
  dropUndefined(options);
  const maxPairs = Math.max(...(pairs ?? DEFAULT_RECALL_PAIRS), ...(options.testPairs ?? []));
  if (maxPairs > (options.numKeys ?? 64))
    throw new UsageError(`uhop ${NAME}: --pairs ${maxPairs} needs --keys >= ${maxPairs} (the keys of one problem are distinct)`);
  return { backend: v.backend, options, ...outputArgs(v, { out: 'results/recall', name: 'recall' }) };
}

/** Prints the accuracy table (one row per variant, one column per number of pairs). */
export function printRecallReport(res: RecallResults, out: CliIO['stdout']): void {
  const c = res.config;
  out.write(
    `task: ${c.numKeys} keys, ${c.numValues} values (chance ${(100 / c.numValues).toFixed(1)}%), ${c.trainSize} train / ${c.testSize} test problems per setting\n` +
      `model: pair tokens, ${c.numLayers} encoder block(s) of width ${c.dModel}, ${c.numHeads} heads; Adam lr ${c.lr}, ${c.epochs} epochs, batch ${c.batchSize}; seeds ${c.seeds.join(',')}\n` +
      `U-Hop: linear Phi${c.featureDim ? ` (D=${c.featureDim})` : ''}, ${c.fitSteps} ${c.separationLoss} fit steps (${c.fitOptimizer}, lr ${c.fitLr}) per call` +
      `${c.fitGradient && c.fitGradient !== 'straight-through' ? `, ${c.fitGradient} gradient` : ''}${c.fitKeepNorm ? ', W kept at ||Phi0||' : ''}` +
      `${c.fitStrengthTrainable ? `, trainable fit strength from ${c.fitStrength}` : c.fitStrength !== undefined && c.fitStrength !== 1 ? `, fit strength ${c.fitStrength}` : ''}\n\n`,
  );
  out.write(`Test accuracy % after ${c.epochs} epochs (mean ± std over ${c.seeds.length} seeds)\n`);
  const rows = c.variants.map((variant) => {
    const row: Record<string, string> = { variant };
    for (const p of c.pairs) {
      const s = res.summary.find((r) => r.variant === variant && r.pairs === p);
      row[`${p} pairs`] = s ? pct(s.testAcc) : '-';
    }
    const mine = res.summary.filter((r) => r.variant === variant);
    row['s/epoch'] = (mine.reduce((a, r) => a + r.secondsPerEpoch, 0) / Math.max(1, mine.length)).toFixed(1);
    return row;
  });
  printTable(rows, labelledColumns(rows, 'variant'), out);
  out.write(`\nEpochs to reach 90% test accuracy (mean over seeds that reached it; '-' = none did)\n`);
  const speed = c.variants.map((variant) => {
    const row: Record<string, string> = { variant };
    for (const p of c.pairs) {
      const mine = res.runs.filter((r) => r.variant === variant && r.pairs === p);
      const hits = mine.map((r) => r.curve.find((e) => e.testAcc >= 0.9)?.epoch).filter((e): e is number => e !== undefined);
      row[`${p} pairs`] = hits.length
        ? `${(hits.reduce((a, b) => a + b, 0) / hits.length).toFixed(1)} (${hits.length}/${mine.length})`
        : '-';
    }
    return row;
  });
  printTable(speed, labelledColumns(speed, 'variant'), out);
  if (c.testPairs?.length) {
    out.write(`\nTest accuracy % on other numbers of pairs, same weights (rows: trained on; mean ± std over seeds)\n`);
    const tr = res.summary.map((s) => {
      const row: Record<string, string> = { variant: `${s.variant}, ${s.pairs} pairs` };
      for (const t of s.transfer ?? []) row[`test ${t.pairs}`] = pct(t.testAcc);
      return row;
    });
    printTable(tr, labelledColumns(tr, 'variant'), out);
  }
}

/** Writes `<name>.json`, `<name>-pairs.svg` (final accuracy vs pairs) and `<name>-curves.svg`. */
export async function writeRecallFiles(res: RecallResults, dir: string, name: string): Promise<string[]> {
  const paths = [writeResults(dir, name, res)];
  const svg = await lineChartSvg({
    data: res.summary.map((s) => ({ pairs: s.pairs, accuracy: 100 * s.testAcc.mean, std: 100 * s.testAcc.std, variant: s.variant })),
    x: 'pairs',
    y: 'accuracy',
    color: 'variant',
    errorBand: 'std',
    xScale: 'log',
    title: `Associative recall: test accuracy vs stored pairs (${res.config.epochs} epochs, ${res.config.seeds.length} seeds)`,
    xTitle: 'stored pairs',
    yTitle: 'test accuracy (%)',
  });
  paths.push(writeTextFile(dir, `${name}-pairs.svg`, svg));
  const curves = await lineChartSvg({
    data: res.summary.flatMap((s) =>
      s.perEpoch.map((e) => ({ epoch: e.epoch, accuracy: 100 * e.mean, series: `${s.variant}, ${s.pairs} pairs` })),
    ),
    x: 'epoch',
    y: 'accuracy',
    color: 'series',
    title: 'Associative recall: test accuracy vs epoch',
    xTitle: 'epoch',
    yTitle: 'test accuracy (%)',
  });
  paths.push(writeTextFile(dir, `${name}-curves.svg`, curves));
  return paths;
}

function run(p: RecallArgs, io: CliIO): Promise<number> {
  return runExperimentCommand(NAME, p, io, {
    run: (onProgress) => runRecallExperiment({ ...p.options, onProgress }),
    print: printRecallReport,
    write: writeRecallFiles,
  });
}

/** The `uhop recall` command (listed in src/cli.ts). */
export const command: CommandModule<RecallArgs> = { help: HELP, parse, run };
