/**
 * uhop/browser: tfjs backend selection for web pages (webgpu, webgl, wasm, cpu), with the
 * same rules and report as `uhop/node`. The layers, ops and models come from the root entry
 * (`uhop`), which works in browsers as it is.
 */
export { initBackend, BROWSER_BACKENDS, type BrowserBackendName, type BrowserBackendReport } from './backend.js';
export { describeBackend, type BackendReport } from '../backend.js';
