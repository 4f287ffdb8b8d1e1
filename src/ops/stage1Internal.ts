/**
 * The internals of Stage I under one import (not part of the public API), for tests and
 * benchmarks that drive the pair kernel directly. Each part lives in its own file:
 * - src/ops/stage1Layout.ts: the memory layouts ('bsd', 'dbs') behind one interface;
 * - src/ops/pairKernel.ts: the separation loss and its analytic gradient for many sets at once;
 * - src/ops/stage1Options.ts: the loss and mask checks shared by separationLoss and the fit;
 * - src/ops/random.ts and src/ops/shapes.ts: seeded random numbers and shape helpers.
 * @internal
 */
export {
  NORM_EPS,
  disposePairConsts,
  makePairConsts,
  normalizeBackward,
  normalizeFeatures,
  pairLossAndGradF,
  pairLossAndGradU,
  pairScalar,
  type PairConsts,
  type PairSpec,
} from './pairKernel.js';
export { chooseLayout, makeLayout, preferredLayout, type PairLayout, type Stage1Layout } from './stage1Layout.js';
export { SEPARATION_LOSS_KINDS, prepareMask, resolveSpec } from './stage1Options.js';
