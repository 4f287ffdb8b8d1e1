/**
 * Named training recipes of `uhop mil --preset NAME`: the published MIL recipes (Ilse et al.
 * 2018's attention MIL, Ramsauer et al. 2020's Hopfield pooling) beside the harness's own
 * per-data-set configuration ('uhop-default'). A preset fixes the encoder, the head sizes, the
 * optimizer, the learning-rate schedule and the regularization for every compared method, so
 * that U-Hop pooling and its controls are trained with the same recipe as the published model.
 * docs/experiments/mil.md says what was taken from where.
 */
import {
  MIL_CONFIGS,
  MIL_DEFAULT_METHODS,
  MIL_METHOD_FAMILIES,
  milConfigFor,
  overrideMilConfig,
  type MilConfig,
  type MilConfigPatch,
  type MilMethodName,
  type MilTuneFamily,
} from './mil.js';

/** One named recipe. */
export interface MilPreset {
  description: string;
  /** Where the recipe comes from (paper, section, code). */
  source: string;
  /** The published model this preset reproduces (the method its architecture test builds). */
  reference: MilMethodName;
  /** What `uhop mil --preset NAME` runs when no --methods are given. */
  methods: MilMethodName[];
  /** The configuration for a data set name (the same for every data set except for 'uhop-default'). */
  config: (dataset: string) => MilConfig;
  /** The inner-split search of `uhop mil --preset NAME --tune` (a small grid from the paper's search space). */
  tuneFamilies: MilTuneFamily[];
}

/** The methods every published-recipe preset compares with its reference: U-Hop, its fitSteps-0 control and dense Hopfield pooling. */
const HOPFIELD_ARMS: MilMethodName[] = ['hopfield-softmax', 'uhop-nofit', 'uhop'];

/**
 * Ilse, Tomczak & Welling 2018, Attention-based deep MIL, the classical MIL benchmarks
 * (MUSK1, MUSK2, FOX, TIGER, ELEPHANT; appendix): instance encoder fc-256 + ReLU, fc-128 + ReLU,
 * the (gated) attention pooling, fc-1 + sigmoid; Adam (beta 0.9, 0.999), lr 5e-4, weight decay
 * 5e-3 (PyTorch Adam's, an L2 term), up to 100 epochs with early stopping on a validation split,
 * one bag per step, no dropout.
 */
const ILSE: MilConfig = {
  hidden: [256, 128],
  attentionUnits: 64,
  dropout: 0,
  bagDropout: 0,
  optimizer: 'adam',
  weightDecay: 5e-3,
  learningRate: 5e-4,
  lrDecay: 1,
  epochs: 100,
  // Ilse et al. stop early on the validation loss without naming a patience; 20 epochs here.
  patience: 20,
  batchSize: 1,
  valFraction: 0.2,
  // The Hopfield arms keep the harness's pooling (4 heads x 16, one state pattern, U-Hop's fit defaults).
  hopfield: MIL_CONFIGS.default.hopfield,
  standardize: true,
};

/**
 * Ramsauer et al. 2020, Hopfield Networks is All You Need, MIL benchmarks (section 4 and
 * appendix A.5): fully connected instance embedding, HopfieldPooling, a linear output; AdamW,
 * exponential learning-rate decay, bag dropout, up to 160 epochs. One point of their search
 * space (2 embedding layers of width 256; 8 heads of dimension 32; bag dropout 0.75; lr 1e-3
 * decayed by 0.98 per epoch), searched further by {@link RAMSAUER_TUNE}.
 */
const RAMSAUER: MilConfig = {
  hidden: [256, 256],
  attentionUnits: 64,
  dropout: 0,
  bagDropout: 0.75,
  optimizer: 'adamw',
  // ml-jku/hopfield-layers' MIL example (examples/mnist_bags): AdamW(lr=5e-4, weight_decay=1e-4).
  weightDecay: 1e-4,
  learningRate: 1e-3,
  lrDecay: 0.98,
  epochs: 160,
  // Early stopping on the inner validation loss; a patience keeps 160 epochs affordable here.
  patience: 20,
  batchSize: 8,
  valFraction: 0.2,
  hopfield: { numHeads: 8, hiddenSize: 32, quantity: 1, beta: 1, fitSteps: 5, separationLoss: 'lse' },
  standardize: true,
};

const cand = (name: string, overrides: MilConfigPatch) => ({ name, overrides });

/** Ramsauer et al.'s scaling factors {0.1, 1, 10} x bag dropout {0.75, 0}, scored with U-Hop (as the harness's search). */
const RAMSAUER_TUNE: MilTuneFamily[] = [
  {
    name: 'ramsauer',
    representatives: ['uhop'],
    members: MIL_METHOD_FAMILIES.hopfield,
    candidates: [
      cand('beta=1,bagDropout=0.75', {}),
      cand('beta=0.1,bagDropout=0.75', { hopfield: { beta: 0.1 } }),
      cand('beta=10,bagDropout=0.75', { hopfield: { beta: 10 } }),
      cand('beta=1,bagDropout=0', { bagDropout: 0 }),
    ],
  },
];

/** Ilse et al.'s weight decay against a tenth of it, scored with the preset's reference pooling. */
function ilseTune(reference: MilMethodName): MilTuneFamily[] {
  return [
    {
      name: 'ilse',
      representatives: [reference],
      members: [...MIL_METHOD_FAMILIES.hopfield, ...MIL_METHOD_FAMILIES.attention],
      candidates: [cand('weightDecay=5e-3', {}), cand('weightDecay=5e-4', { weightDecay: 5e-4 })],
    },
  ];
}

export type MilPresetName = 'uhop-default' | 'ilse-attention' | 'ilse-gated' | 'ramsauer-hopfield';

/** The presets of `uhop mil --preset NAME`. */
export const MIL_PRESETS: Record<MilPresetName, MilPreset> = {
  'uhop-default': {
    description: "the harness's own per-data-set configuration (MIL_CONFIGS: encoder 128-64, Adam, lr decay 0.98, <= 50 epochs)",
    source: 'uhop mil --tune on inner splits (docs/experiments/mil.md)',
    reference: 'uhop',
    methods: MIL_DEFAULT_METHODS,
    config: (dataset: string) => milConfigFor(dataset),
    tuneFamilies: [],
  },
  'ilse-attention': {
    description:
      'Ilse et al. 2018: encoder 256-128, attention pooling (L 64), Adam lr 5e-4, weight decay 5e-3, <= 100 epochs, one bag per step',
    source: 'Ilse, Tomczak & Welling, Attention-based Deep Multiple Instance Learning, ICML 2018, appendix (MIL benchmarks)',
    reference: 'attention',
    methods: ['attention', ...HOPFIELD_ARMS],
    config: () => ILSE,
    tuneFamilies: ilseTune('attention'),
  },
  'ilse-gated': {
    description: 'Ilse et al. 2018 with the gated attention pooling (otherwise as ilse-attention)',
    source: 'Ilse, Tomczak & Welling, Attention-based Deep Multiple Instance Learning, ICML 2018, appendix (MIL benchmarks)',
    reference: 'gated-attention',
    methods: ['gated-attention', ...HOPFIELD_ARMS],
    config: () => ILSE,
    tuneFamilies: ilseTune('gated-attention'),
  },
  'ramsauer-hopfield': {
    description:
      'Ramsauer et al. 2020: encoder 256-256, HopfieldPooling 8 heads x 32, AdamW lr 1e-3 x 0.98^epoch, weight decay 1e-4, bag dropout 0.75, <= 160 epochs',
    source:
      'Ramsauer et al., Hopfield Networks is All You Need, ICLR 2021, section 4 and appendix A.5 (MIL); ml-jku/hopfield-layers examples',
    reference: 'hopfield-softmax',
    methods: HOPFIELD_ARMS,
    config: () => RAMSAUER,
    tuneFamilies: RAMSAUER_TUNE,
  },
};
export const MIL_PRESET_NAMES = Object.keys(MIL_PRESETS) as MilPresetName[];

/**
 * The configuration of a preset for a data set, with overrides (which win over the preset's
 * per-method patches, as in {@link milConfigFor}).
 *
 * @example
 * ```ts
 * const config = milPresetConfig('ramsauer-hopfield', 'elephant', { epochs: 50 });
 * await runMilBenchmark({ dataset, config, methods: MIL_PRESETS['ramsauer-hopfield'].methods });
 * ```
 */
export function milPresetConfig(preset: MilPresetName, dataset: string, overrides: MilConfigPatch = {}): MilConfig {
  if (!Object.hasOwn(MIL_PRESETS, preset)) {
    throw new Error(`milPresetConfig: unknown preset '${String(preset)}'; expected one of ${MIL_PRESET_NAMES.join(', ')}`);
  }
  return overrideMilConfig(MIL_PRESETS[preset].config(dataset), overrides);
}
