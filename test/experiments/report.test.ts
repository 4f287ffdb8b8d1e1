import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  formatCell,
  formatTable,
  lineChartSpec,
  lineChartSvg,
  meanStd,
  printTable,
  progress,
  writeResults,
  writeTextFile,
} from '../../src/experiments/report.js';

describe('formatTable / printTable', () => {
  it('aligns text left and numbers right under a rule', () => {
    const text = formatTable(
      [
        { method: 'dense', error: 12.3456, M: 10 },
        { method: 'uhop+', error: 0.5, M: 500 },
      ],
      [{ key: 'method' }, { key: 'M' }, { key: 'error', header: 'err' }],
    );
    const lines = text.trimEnd().split('\n');
    assert.deepEqual(lines, ['method    M    err', '------  ---  -----', 'dense    10  12.35', 'uhop+   500    0.5']);
  });

  it('uses a column formatter and prints to the given stream', () => {
    let out = '';
    printTable([{ a: 0.25 }], [{ key: 'a', format: (v) => `${(v as number) * 100}%` }], { write: (s: string) => (out += s) });
    assert.equal(out, '  a\n---\n25%\n'); // numbers align right
  });

  it('rejects an empty column list', () => {
    assert.throws(() => formatTable([{ a: 1 }], []), /formatTable: columns must be a non-empty array/);
  });

  it('formats cells compactly', () => {
    assert.equal(formatCell(3), '3');
    assert.equal(formatCell(3.14159), '3.142');
    assert.equal(formatCell(0.0001234), '1.23e-4');
    assert.equal(formatCell(NaN), '-');
    assert.equal(formatCell(undefined), '-');
    assert.equal(formatCell('x'), 'x');
  });
});

describe('meanStd', () => {
  it('gives the mean and the n-1 standard deviation', () => {
    const { mean, std } = meanStd([1, 2, 3, 4]);
    assert.equal(mean, 2.5);
    assert.ok(Math.abs(std - Math.sqrt(5 / 3)) < 1e-12);
    assert.deepEqual(meanStd([7]), { mean: 7, std: 0 });
    assert.ok(Number.isNaN(meanStd([]).mean));
  });
});

describe('writeResults / writeTextFile', () => {
  it('writes pretty JSON (non-finite -> null, typed arrays -> arrays) into a new folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uhop-report-'));
    try {
      const path = writeResults(join(dir, 'a', 'b'), 'run', { x: NaN, y: Infinity, z: Float32Array.from([1, 2]), s: 'ok' });
      assert.ok(path.endsWith(join('a', 'b', 'run.json')));
      const parsed = JSON.parse(readFileSync(path, 'utf8'));
      assert.deepEqual(parsed, { x: null, y: null, z: [1, 2], s: 'ok' });
      const p2 = writeResults(dir, 'named.json', [1]);
      assert.ok(p2.endsWith('named.json') && !p2.endsWith('.json.json'));
      const p3 = writeTextFile(dir, 'plot.svg', '<svg/>');
      assert.equal(readFileSync(p3, 'utf8'), '<svg/>');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects names with path separators', () => {
    assert.throws(() => writeResults('/tmp', '../evil', {}), /writeResults: name must be a non-empty file name/);
    assert.throws(() => writeResults('/tmp', '', {}), /writeResults: name must be/);
  });
});

describe('lineChartSvg', () => {
  const data = [
    { M: 10, error: 1.5, std: 0.2, method: 'dense-softmax' },
    { M: 100, error: 6, std: 1, method: 'dense-softmax' },
    { M: 10, error: 0.2, std: 0.1, method: 'uhop-linear' },
    { M: 100, error: 0.9, std: 0.3, method: 'uhop-linear' },
  ];

  it('renders a valid SVG with the title, every series name and a log x axis', async () => {
    const svg = await lineChartSvg({ data, x: 'M', y: 'error', color: 'method', errorBand: 'std', title: 'Error vs size', xScale: 'log' });
    assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\s*$/);
    for (const text of ['Error vs size', 'dense-softmax', 'uhop-linear']) assert.ok(svg.includes(text), `SVG lacks '${text}'`);
    // two series -> two lines and two error bands
    assert.equal((svg.match(/class="mark-line role-mark/g) ?? []).length, 2);
    assert.equal((svg.match(/class="mark-area role-mark/g) ?? []).length, 2);
  });

  it('builds the band from the half-width field and the log scale into the spec', () => {
    const spec = lineChartSpec({ data, x: 'M', y: 'error', color: 'method', errorBand: 'std', title: 't', xScale: 'log' }) as {
      data: { values: Record<string, number>[] };
      layer: { mark: { type: string }; encoding: { x: { scale: { type: string } } } }[];
    };
    assert.equal(spec.layer[0].mark.type, 'errorband');
    assert.equal(spec.layer[1].encoding.x.scale.type, 'log');
    assert.equal(spec.data.values[1].__lower, 5);
    assert.equal(spec.data.values[1].__upper, 7);
    // 1.5 - 2 would go below 0: a band around non-negative values stops at 0.
    const clipped = lineChartSpec({ data: [{ M: 1, error: 1.5, std: 2 }], x: 'M', y: 'error', errorBand: 'std', title: 't' }) as {
      data: { values: Record<string, number>[] };
    };
    assert.equal(clipped.data.values[0].__lower, 0);
    assert.equal(clipped.data.values[0].__upper, 3.5);
  });

  it('says what is wrong with its arguments', async () => {
    await assert.rejects(lineChartSvg({ data: [], x: 'M', y: 'error', title: 't' }), /lineChartSvg: data must be a non-empty array/);
    await assert.rejects(lineChartSvg({ data, x: 'size', y: 'error', title: 't' }), /lineChartSvg: x must name a field .*got size/);
    await assert.rejects(
      lineChartSvg({ data: [{ M: 0, error: 1 }], x: 'M', y: 'error', title: 't', xScale: 'log' }),
      /lineChartSvg: a log x axis needs every 'M' > 0/,
    );
  });
});

describe('progress', () => {
  it('is silent on a non-TTY stream unless forced', () => {
    const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
    let written = '';
    stream.on('data', (c) => (written += String(c)));
    const bar = progress(3, 'job', { stream });
    assert.equal(bar.active, false);
    bar.tick();
    bar.stop();
    assert.equal(written, '');
  });

  it('draws when forced and stops cleanly', async () => {
    const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
    let written = '';
    stream.on('data', (c) => (written += String(c)));
    const bar = progress(2, 'job', { stream, force: true });
    assert.equal(bar.active, true);
    bar.tick(1, 'first');
    bar.tick(1, 'second');
    bar.stop();
    bar.tick(); // no-op after stop
    await new Promise((r) => setImmediate(r));
    assert.match(written, /job \[/);
    assert.match(written, /2\/2/);
  });

  it('never draws when silent, and checks total', () => {
    assert.equal(progress(1, 'x', { silent: true, force: true }).active, false);
    assert.throws(() => progress(-1, 'x'), /progress: total must be an integer >= 0/);
  });
});
