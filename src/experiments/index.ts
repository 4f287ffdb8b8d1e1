/** src/experiments: the experiments behind the `uhop` command, usable as library functions. */
export { runRetrievalExperiment, measureRetrieval, RETRIEVAL_METHODS, DEFAULT_RETRIEVAL_METHODS } from './retrieval.js';
export { printTable, formatTable, writeResults, writeTextFile, lineChartSvg, progress, meanStd } from './report.js';
