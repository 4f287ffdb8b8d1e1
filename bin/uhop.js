#!/usr/bin/env node
// Launcher of the `uhop` command. Runs the built dist/cli.js; in a source checkout whose
// src/ is newer than the build (or with no build, or with UHOP_FROM_SOURCE=1) it runs
// src/cli.ts through tsx instead, so edits take effect without a rebuild.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli.js');
const source = join(root, 'src', 'cli.ts');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

async function loadCli() {
  const hasBuild = existsSync(built);
  const hasSource = existsSync(source);
  const preferSource =
    hasSource && (!hasBuild || process.env.UHOP_FROM_SOURCE === '1' || newestMtime(join(root, 'src')) > statSync(built).mtimeMs);
  if (preferSource) {
    try {
      const { register } = await import('tsx/esm/api');
      register();
      return await import(pathToFileURL(source).href);
    } catch (e) {
      if (!hasBuild) {
        process.stderr.write(
          `uhop: dist/cli.js is not built and src/cli.ts cannot run through tsx (${e.message}).\n` +
            'Run `npm run build`, or `npm install` to get tsx.\n',
        );
        process.exit(1);
      }
      // Fall back to the (older) build.
    }
  }
  if (!hasBuild) {
    process.stderr.write('uhop: dist/cli.js is missing; run `npm run build`.\n');
    process.exit(1);
  }
  return import(pathToFileURL(built).href);
}

const cli = await loadCli();
process.exitCode = await cli.main(process.argv.slice(2));
