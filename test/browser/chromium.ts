/**
 * Finding and starting the system's Chromium for the browser test (and the demo screenshot).
 * playwright-core drives it over the DevTools protocol and downloads no browser of its own;
 * the browser is Debian's `chromium` package (`apt-get install -y chromium`).
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';

/**
 * The flags the test starts Chromium with: the new headless mode, no sandbox (CI runs as root,
 * where Chromium's sandbox refuses to start), WebGPU on (off by default on Linux), and
 * SwiftShader allowed, so that WebGL2 and a WebGPU adapter exist on a machine without a GPU.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
];

/** Where Chromium is: `CHROMIUM_PATH`, or the first of chromium, chromium-browser, google-chrome on PATH. */
export function findChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`findChromium: CHROMIUM_PATH is ${fromEnv}, which does not exist`);
    return fromEnv;
  }
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    try {
      const path = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (path) return path;
    } catch {
      // not on PATH: try the next name
    }
  }
  return undefined;
}

/** Starts headless Chromium with {@link CHROMIUM_FLAGS}. */
export async function launchChromium(executablePath: string): Promise<Browser> {
  // headless: false keeps playwright from adding its own (old-mode) headless flags; the
  // --headless=new flag above makes the browser headless.
  return chromium.launch({ executablePath, headless: false, args: [...CHROMIUM_FLAGS] });
}
