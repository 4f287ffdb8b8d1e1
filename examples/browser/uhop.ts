/**
 * The uhop API that the browser pages (the demo and the browser test) use, in one place. It
 * names browser-safe source files only, as long as the root entry `src/index.ts` still imports
 * Node modules; once that entry is browser-safe this file re-exports from it. In a project of
 * your own, import the same names from 'uhop'.
 */
export * from '../../src/ops/index.js';
export { HopfieldPooling } from '../../src/layers/hopfieldPooling.js';
export { UHopAttention } from '../../src/layers/uhopAttention.js';
export { seededRandom } from '../../src/data/random.js';
export { maskQueries, noisyQueries } from '../../src/data/corruption.js';
export { retrievalError, nearestMemory } from '../../src/data/metrics.js';
