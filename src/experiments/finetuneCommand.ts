/**
 * `uhop finetune`: runs {@link runFinetuneExperiment} from the command line (train with
 * MultiHeadAttention, save, load, replaceAttention -> U-Hop, fine-tune, compare with
 * continuing the original) and prints and writes the comparison.
 */
import {
  fitVariantText,
  COMMON_HELP,
  COMMON_OPTIONS,
  UsageError,
  choiceFlag,
  numberFlag,
  parseCommandArgs,
  dropUndefined,
  outputArgs,
  intFlags,
  runExperimentCommand,
  OUTPUT_OPTIONS,
  UHOP_FIT_OPTIONS,
  uhopFitFlags,
  type CliIO,
  type CommandModule,
  type ExperimentArgs,
} from './command.js';
import { runFinetuneExperiment, type FinetuneExperimentOptions, type FinetuneResults } from './finetune.js';
import { parseVariant, pct } from './transformerTraining.js';
import { labelledColumns, lineChartSvg, printTable, writeResults, writeTextFile } from './report.js';

const NAME = 'finetune';

const OPTIONS = {
  ...COMMON_OPTIONS,
  task: { type: 'string' },
  attention: { type: 'string' },
  pretrain: { type: 'string' },
  epochs: { type: 'string' },
  seeds: { type: 'string' },
  lr: { type: 'string' },
  'finetune-lr': { type: 'string' },
  'batch-size': { type: 'string' },
  dim: { type: 'string' },
  heads: { type: 'string' },
  pairs: { type: 'string' },
  keys: { type: 'string' },
  values: { type: 'string' },
  dataset: { type: 'string' },
  'train-size': { type: 'string' },
  'test-size': { type: 'string' },
  ...UHOP_FIT_OPTIONS,
  'keep-checkpoints': { type: 'boolean' },
  ...OUTPUT_OPTIONS,
} as const;

const HELP = `Usage: uhop finetune [options]

U-Hop as a drop-in for attention after training: a small transformer is trained with
standard MultiHeadAttention, saved with saveModel and loaded with loadModel; one copy keeps
training as it is ("continue"), the second has its attention replaced by U-Hop with
replaceAttention (same projection weights) and is fine-tuned for the same number of epochs,
and the third (the control arm) gets the same swap with fitSteps 0: Phi0 trained, never
fitted, which tells what the per-call fit adds over the extra trainable kernel.
Prints test accuracy after pretraining, right after the swap, and after each branch.

Task:
  --task NAME          recall (default: associative recall, see 'uhop recall') or vision
  --pairs N            recall: stored pairs (default 16)
  --keys K / --values V  recall: distinct keys (64) and values (16)
  --dataset NAME       vision: mnist (default), fashion-mnist or an IDX image folder
  --train-size N       (default 3000 recall / 2000 vision)
  --test-size N        (default 1000)

Training:
  --attention NAME     the U-Hop variant swapped in: uhop (default) or uhop-<separation>
  --pretrain N         epochs with MultiHeadAttention (default 3)
  --epochs N           epochs of each branch after the swap (default 2)
  --seeds N            (default 2)
  --lr LR              Adam learning rate of the pretraining (default 0.003)
  --finetune-lr LR     Adam learning rate of both branches (default: --lr)
  --batch-size N       (default 64)
  --dim D / --heads H  token width and heads (16 and 1 for recall, 32 and 2 for vision)

U-Hop:
  --fit-steps N        Stage-I steps per call of the U-Hop branch (default 5; the control
                       branch always 0)
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
  --out DIR            (default results/finetune)
  --name NAME          file name stem (default <task>)
  --keep-checkpoints   keep the saved models under <out>/checkpoints-<name>/
  --no-save            print the table only
  --progress           draw the progress bar even when stderr is not a terminal
  -q, --quiet          no progress bar
${COMMON_HELP}

Examples:
  uhop finetune
  uhop finetune --task vision --dataset fashion-mnist --pretrain 4 --epochs 2
`;

export type FinetuneArgs = ExperimentArgs<FinetuneExperimentOptions>;

function parse(args: string[]): FinetuneArgs {
  const v = parseCommandArgs(NAME, args, OPTIONS);
  const int = intFlags(NAME, v);
  if (v.attention !== undefined) {
    let ok = false;
    try {
      const parsed = parseVariant(v.attention);
      ok = parsed.uhop && !parsed.noFit;
    } catch (e) {
      throw new UsageError(`uhop ${NAME}: --attention: ${(e as Error).message}`);
    }
    if (!ok) throw new UsageError(`uhop ${NAME}: --attention must name a U-Hop variant (uhop or uhop-<separation>), got '${v.attention}'`);
  }
  const task = choiceFlag(NAME, 'task', v.task, ['recall', 'vision'] as const) ?? 'recall';
  const output = outputArgs(v, { out: 'results/finetune', name: task });
  const options: FinetuneExperimentOptions = {
    task,
    variant: v.attention,
    pretrainEpochs: int('pretrain'),
    finetuneEpochs: int('epochs'),
    seeds: int('seeds'),
    lr: numberFlag(NAME, 'lr', v.lr, { min: 0, exclusiveMin: true }),
    finetuneLr: numberFlag(NAME, 'finetune-lr', v['finetune-lr'], { min: 0, exclusiveMin: true }),
    batchSize: int('batch-size'),
    dModel: int('dim'),
    numHeads: int('heads'),
    pairs: int('pairs'),
    numKeys: int('keys'),
    numValues: int('values', 2),
    dataset: v.dataset,
    trainSize: int('train-size'),
    testSize: int('test-size'),
    ...uhopFitFlags(NAME, v),
    checkpointDir: v['keep-checkpoints'] ? `${output.out}/checkpoints-${output.name}` : undefined,
  };
  dropUndefined(options);
  return { backend: v.backend, options, ...output };
}

/** Prints the comparison. */
export function printFinetuneReport(res: FinetuneResults, out: CliIO['stdout']): void {
  const c = res.config;
  out.write(
    `task: ${String(c.describe)}\n` +
      `pretrain ${String(c.pretrainEpochs)} epochs with MultiHeadAttention (Adam lr ${String(c.lr)}), then ${String(c.finetuneEpochs)} epochs per branch (Adam lr ${String(c.finetuneLr)}); ` +
      `swap: replaceAttention -> ${c.variant} (linear Phi, ${String(c.fitSteps)} ${String(c.separationLoss)} fit steps, ${String(c.fitOptimizer)} lr ${String(c.fitLr)}${fitVariantText(c)}); seeds ${c.seeds.join(',')}\n\n`,
  );
  out.write('Test accuracy % per seed\n');
  const rows = res.runs.map((r) => ({
    seed: String(r.seed),
    pretrained: (100 * r.pretrained).toFixed(1),
    'after swap': (100 * r.swapped).toFixed(1),
    'continue MHA': (100 * r.continueCurve[r.continueCurve.length - 1].testAcc).toFixed(1),
    [`${c.variant}, fitSteps 0 fine-tuned`]: (100 * r.nofitCurve[r.nofitCurve.length - 1].testAcc).toFixed(1),
    [`${c.variant} fine-tuned`]: (100 * r.uhopCurve[r.uhopCurve.length - 1].testAcc).toFixed(1),
    'save/load max|diff|': r.roundTripMaxDiff.toExponential(1),
  }));
  const s = res.summary;
  rows.push({
    seed: 'mean ± std',
    pretrained: pct(s.pretrained),
    'after swap': pct(s.swapped),
    'continue MHA': pct(s.continued),
    [`${c.variant}, fitSteps 0 fine-tuned`]: pct(s.nofit),
    [`${c.variant} fine-tuned`]: pct(s.uhop),
    'save/load max|diff|': '',
  });
  printTable(rows, labelledColumns(rows, 'seed'), out);
  out.write(
    `\nseconds per epoch: continue MHA ${s.continueSecondsPerEpoch.toFixed(1)}, ${c.variant} fitSteps 0 ${s.nofitSecondsPerEpoch.toFixed(1)}, ${c.variant} ${s.uhopSecondsPerEpoch.toFixed(1)}\n`,
  );
}

/** Writes `<name>.json` and `<name>-curves.svg` (pretraining, then the three branches). */
export async function writeFinetuneFiles(res: FinetuneResults, dir: string, name: string): Promise<string[]> {
  const paths = [writeResults(dir, name, res)];
  const P = Number(res.config.pretrainEpochs);
  const data: Record<string, unknown>[] = [];
  const add = (
    series: string,
    curves: { epoch: number; testAcc: number }[][],
    offset: number,
    start?: { epoch: number; acc: number[] },
  ) => {
    const n = Math.max(...curves.map((c) => c.length));
    if (start) data.push({ epoch: start.epoch, accuracy: (100 * start.acc.reduce((a, b) => a + b, 0)) / start.acc.length, series });
    for (let e = 0; e < n; e++) {
      const vals = curves.map((c) => c[e]?.testAcc).filter((x): x is number => x !== undefined);
      data.push({ epoch: offset + e + 1, accuracy: (100 * vals.reduce((a, b) => a + b, 0)) / vals.length, series });
    }
  };
  add(
    'pretrain (MultiHeadAttention)',
    res.runs.map((r) => r.pretrainCurve),
    0,
  );
  const startAcc = res.runs.map((r) => r.pretrained);
  add(
    'continue MultiHeadAttention',
    res.runs.map((r) => r.continueCurve),
    P,
    { epoch: P, acc: startAcc },
  );
  add(
    `replaceAttention -> ${res.config.variant}`,
    res.runs.map((r) => r.uhopCurve),
    P,
    { epoch: P, acc: res.runs.map((r) => r.swapped) },
  );
  // fitSteps 0 with Phi0 = identity predicts what the loaded model predicts, so it starts at `pretrained`.
  add(
    `replaceAttention -> ${res.config.variant}, fitSteps 0`,
    res.runs.map((r) => r.nofitCurve),
    P,
    { epoch: P, acc: startAcc },
  );
  const svg = await lineChartSvg({
    data,
    x: 'epoch',
    y: 'accuracy',
    color: 'series',
    title: `Fine-tuning after replaceAttention (${res.config.task}, mean over ${res.config.seeds.length} seeds)`,
    xTitle: 'epoch',
    yTitle: 'test accuracy (%)',
  });
  paths.push(writeTextFile(dir, `${name}-curves.svg`, svg));
  return paths;
}

function run(p: FinetuneArgs, io: CliIO): Promise<number> {
  return runExperimentCommand(NAME, p, io, {
    run: (onProgress) => runFinetuneExperiment({ ...p.options, onProgress }),
    print: printFinetuneReport,
    write: writeFinetuneFiles,
  });
}

/** The `uhop finetune` command (listed in src/cli.ts). */
export const command: CommandModule<FinetuneArgs> = { help: HELP, parse, run };
