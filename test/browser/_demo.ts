import { demoAssets, serve } from '../../examples/browser/server.js';
import { launchChromium, findChromium } from './chromium.js';
const server = await serve({ assets: await demoAssets() });
const browser = await launchChromium(findChromium()!);
for (const b of process.argv.slice(2)) {
  const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
  page.on('pageerror', (e) => console.log('pageerror:', e.message));
  page.on('console', (m) => console.log('console:', m.text()));
  const t = Date.now();
  await page.goto(`${server.origin}/?backend=${b}`);
  await page.waitForSelector('body[data-state="done"]', { state: 'attached', timeout: 300000 });
  const info = await page.evaluate(() => ({ ...document.body.dataset, note: document.getElementById('note')!.textContent, be: document.getElementById('backend')!.textContent }));
  console.log(b, Date.now() - t, 'ms', JSON.stringify(info));
  await page.screenshot({ path: `/tmp/demo-${b}.png` });
  await page.close();
}
await browser.close(); await server.close();
