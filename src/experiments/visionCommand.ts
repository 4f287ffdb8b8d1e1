/**
 * `uhop vision`: runs {@link runVisionExperiment} from the command line, prints the test
 * accuracy table and writes the results JSON and the learning-curve SVG.
 */
import {
  fitVariantText,
  COMMON_HELP,
  COMMON_OPTIONS,
  choiceFlag,
  numberFlag,
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
import { DEFAULT_VISION_VARIANTS, runVisionExperiment, type VisionExperimentOptions, type VisionResults } from './vision.js';
import { parseVariant, pct } from './transformerTraining.js';
import { labelledColumns, lineChartSvg, printTable, writeResults, writeTextFile } from './report.js';

const NAME = 'vision';

const OPTIONS = {
  ...COMMON_OPTIONS,
  dataset: { type: 'string' },
  'train-size': { type: 'string' },
  'test-size': { type: 'string' },
  attention: { type: 'string' },
  seeds: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  encoder: { type: 'string' },
  layers: { type: 'string' },
  dim: { type: 'string' },
  patch: { type: 'string' },
  heads: { type: 'string' },
  pooling: { type: 'string' },
  ...UHOP_FIT_OPTIONS,
  alternate: { type: 'string' },
  ...OUTPUT_OPTIONS,
} as const;

const HELP = `Usage: uhop vision [options]

Image classification with one Hopfield layer over patch tokens (the U-Hop paper's Table 1
setup; MNIST / Fashion-MNIST here), comparing attention variants under the same model,
seeds and training budget. Prints the test accuracy (mean ± std over seeds) and writes the
results JSON and a learning-curve SVG.

Data:
  --dataset NAME       mnist (default), fashion-mnist (/usr/share/datasets/fashion-mnist) or
                       the path of an IDX image folder (train-/t10k- files, raw or .gz)
  --train-size N       training images (default 2000)
  --test-size N        test images (default 1000)

Comparison:
  --attention LIST     variants: a separation (softmax, sparsemax, entmax15, ...), optionally
                       prefixed by uhop- ('uhop' = uhop-softmax) or uhop-nofit- (the same
                       U-Hop layer with fitSteps 0: Phi0 trained, never fitted; the control
                       arm) (default ${DEFAULT_VISION_VARIANTS.join(',')})
  --seeds N            seeds 0..N-1 (default 3)
  --epochs N           training epochs (default 6)
  --batch-size N       (default 64)
  --lr LR              Adam learning rate (default 0.003)

Model:
  --encoder NAME       single-hopfield (default: x + Hopfield(LN(x)), no MLP) or transformer
  --layers N           blocks of the transformer encoder (default 1)
  --dim D              token width (default 32)
  --patch P            patch side (default 7: 16 patches of a 28x28 image)
  --heads H            heads (default 2)
  --pooling NAME       mean (default), cls or hopfield

U-Hop (variants uhop-*):
  --fit-steps N        Stage-I steps per call (default 5; uhop-nofit-* always 0)
  --fit-lr LR          Stage-I step size (default: 0.5, relative, for normalized; 0.1 for
                       sgd and adam)
  --fit-optimizer NAME normalized (default: relative step with per-set backtracking), sgd
                       (the plain step used before) or adam
  --fit-loss NAME      lse (default), uniform or worst-pair
  --feature-dim D      feature dimension of Phi (default: the key dim; larger = U-Hop+)
  --fit-gradient NAME  straight-through (default: the fitted Phi's gradient given to Phi0)
                       or unrolled (the exact gradient through the fit steps)
  --fit-keep-norm      rescale each fitted W to the norm of Phi0
  --fit-strength G     use Phi0 + G (Phi_fit - Phi0) (default 1)
  --fit-strength-trainable  learn G per head (starting at --fit-strength)
  --alternate N        also alternate N Phi epochs over the training set with the first task
                       epochs (the paper's other schedule; default 0)

Output:
  --out DIR            folder for the JSON and SVG (default results/vision)
  --name NAME          file name stem (default <dataset>)
  --no-save            print the table only
  --progress           draw the progress bar even when stderr is not a terminal
  -q, --quiet          no progress bar
${COMMON_HELP}

Examples:
  uhop vision                                          # MNIST, 6 variants x 3 seeds (minutes)
  uhop vision --dataset fashion-mnist --attention softmax,uhop --seeds 5 --epochs 6
  uhop vision --encoder transformer --layers 2 --pooling cls
`;

export type VisionArgs = ExperimentArgs<VisionExperimentOptions>;

function parse(args: string[]): VisionArgs {
  const v = parseCommandArgs(NAME, args, OPTIONS);
  const int = intFlags(NAME, v);
  const variants = nameListFlag(NAME, 'attention', v.attention, 'variant', parseVariant);
  const dataset = v.dataset ?? 'mnist';
  const options: VisionExperimentOptions = {
    dataset,
    trainSize: int('train-size'),
    testSize: int('test-size'),
    variants,
    seeds: int('seeds'),
    epochs: int('epochs'),
    batchSize: int('batch-size'),
    lr: numberFlag(NAME, 'lr', v.lr, { min: 0, exclusiveMin: true }),
    encoder: choiceFlag(NAME, 'encoder', v.encoder, ['single-hopfield', 'transformer'] as const),
    numLayers: int('layers'),
    dModel: int('dim'),
    patchSize: int('patch'),
    numHeads: int('heads'),
    pooling: choiceFlag(NAME, 'pooling', v.pooling, ['mean', 'cls', 'hopfield'] as const),
    ...uhopFitFlags(NAME, v),
    alternations: int('alternate', 0),
  };
  dropUndefined(options);
  const stem = dataset === 'mnist' || dataset === 'fashion-mnist' ? dataset : 'idx';
  return { backend: v.backend, options, ...outputArgs(v, { out: 'results/vision', name: stem }) };
}

/** Prints the accuracy table of a result. */
export function printVisionReport(res: VisionResults, out: CliIO['stdout']): void {
  const c = res.config;
  const model =
    c.encoder === 'single-hopfield'
      ? `one Hopfield layer (${c.numHeads} heads) over ${(c.imageShape[0] / c.patchSize) * (c.imageShape[1] / c.patchSize)} patch tokens of width ${c.dModel}`
      : `${c.numLayers}-block transformer (${c.numHeads} heads) over ${(c.imageShape[0] / c.patchSize) * (c.imageShape[1] / c.patchSize)} patch tokens of width ${c.dModel}`;
  out.write(
    `data: ${c.dataSource}, ${c.trainSize} train / ${c.testSize} test images, ${c.numClasses} classes\n` +
      `model: ${model}, ${c.pooling} pooling; Adam lr ${c.lr}, ${c.epochs} epochs, batch ${c.batchSize}; seeds ${c.seeds.join(',')}\n` +
      `U-Hop: linear Phi${c.featureDim ? ` (D=${c.featureDim})` : ''}, ${c.fitSteps} ${c.separationLoss} fit steps (${String(c.fitOptimizer)}, lr ${c.fitLr}) per call${fitVariantText(c)}` +
      `${c.alternations ? `, ${c.alternations} alternating Phi epochs` : ''}\n\n`,
  );
  out.write(`Test accuracy % (mean ± std over ${c.seeds.length} seeds) after each epoch\n`);
  const rows = res.summary.map((s) => {
    const row: Record<string, string> = { variant: s.variant };
    for (const e of s.perEpoch) row[`epoch ${e.epoch}`] = pct(e);
    row['s/epoch'] = s.secondsPerEpoch.toFixed(1);
    row.params = String(s.parameters);
    return row;
  });
  printTable(rows, labelledColumns(rows, 'variant'), out);
  const phi = res.runs.filter((r) => r.phiEpochs.length);
  if (phi.length) {
    out.write(
      '\nPhi epochs (alternating schedule; their time is not in s/epoch): separation loss over the training set, mean over seeds\n',
    );
    const n = Math.max(...phi.map((r) => r.phiEpochs.length));
    const prow: Record<string, string>[] = [];
    for (const variant of [...new Set(phi.map((r) => r.variant))]) {
      const mine = phi.filter((r) => r.variant === variant);
      for (let e = 0; e < n; e++) {
        const logs = mine.map((r) => r.phiEpochs[e]).filter(Boolean);
        const avg = (f: (l: (typeof logs)[number]) => number) => logs.reduce((a, l) => a + f(l), 0) / logs.length;
        prow.push({
          variant,
          'before task epoch': String(e + 1),
          'loss before': avg((l) => l.lossBefore).toFixed(4),
          'loss after': avg((l) => l.lossAfter).toFixed(4),
          seconds: (avg((l) => l.ms) / 1000).toFixed(1),
        });
      }
    }
    printTable(
      prow,
      Object.keys(prow[0]).map((k) => ({ key: k })),
      out,
    );
  }
}

/** Writes `<name>.json` and `<name>-curves.svg`; returns the paths. */
export async function writeVisionFiles(res: VisionResults, dir: string, name: string): Promise<string[]> {
  const paths = [writeResults(dir, name, res)];
  const svg = await lineChartSvg({
    data: res.summary.flatMap((s) =>
      s.perEpoch.map((e) => ({ epoch: e.epoch, accuracy: 100 * e.mean, std: 100 * e.std, variant: s.variant })),
    ),
    x: 'epoch',
    y: 'accuracy',
    color: 'variant',
    errorBand: 'std',
    title: `Test accuracy vs epoch (${res.config.dataset}, ${res.config.encoder}, ${res.config.seeds.length} seeds)`,
    xTitle: 'epoch',
    yTitle: 'test accuracy (%)',
  });
  paths.push(writeTextFile(dir, `${name}-curves.svg`, svg));
  return paths;
}

function run(p: VisionArgs, io: CliIO): Promise<number> {
  return runExperimentCommand(NAME, p, io, {
    run: (onProgress) => runVisionExperiment({ ...p.options, onProgress }),
    print: printVisionReport,
    write: writeVisionFiles,
  });
}

/** The `uhop vision` command (listed in src/cli.ts). */
export const command: CommandModule<VisionArgs> = { help: HELP, parse, run };
