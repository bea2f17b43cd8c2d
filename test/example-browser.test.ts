// The in-browser example (examples/browser/): it loads without console errors in Chromium, trains on webgl, its harmful list is enriched in flipped labels, and its store downloads as a SQLite file inrun reads.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@inrun/cli';
import { buildExample, serve } from '../examples/browser/serve.js';
import { CHROMIUM, hasChromium, NO_CHROMIUM } from './browser.js';

interface ExampleState {
  backend: string;
  done: boolean;
  error: string;
  accuracy: number;
  retrainedAccuracy: number;
  harmful: { row: number; flipped: boolean }[];
}

if (!hasChromium) console.warn(NO_CHROMIUM);

describe.skipIf(!hasChromium)('examples/browser: MNIST with flipped labels on webgl', () => {
  let dir: string;
  let close: () => void;
  let url: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inrun-example-'));
    await buildExample(dir);
    const served = await serve(dir);
    url = served.url;
    close = () => served.server.close();
  });
  afterAll(() => {
    close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trains on webgl, finds flipped labels among the most harmful digits, retrains without them', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // SwiftShader: Chromium's software GPU (WebGL 2 with float32 textures), what CI has.
      args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`${url}?rows=1000&epochs=3`);
      const state = () => page.evaluate(() => (globalThis as unknown as { inrunExample: ExampleState }).inrunExample);
      // A deadline, not a timing assertion: a software GPU on two busy cores is slow.
      await page.waitForFunction(() => { const s = (globalThis as unknown as { inrunExample?: ExampleState }).inrunExample; return s !== undefined && (s.done || s.error !== ''); }, null, { timeout: 600_000, polling: 500 });
      const found = await state();
      expect(found.error).toBe('');
      expect(found.backend).toBe('webgl');
      expect(found.accuracy).toBeGreaterThan(0.6);
      // 100 most harmful of 1,000 digits, 10% flipped: 10 by chance. The run finds far more.
      expect(found.harmful).toHaveLength(100);
      expect(found.harmful.filter((h) => h.flipped).length).toBeGreaterThanOrEqual(25);
      expect(await page.locator('#harmful figure').count()).toBe(30);
      // The store the page wrote (sqlite-wasm, in memory) downloads as a SQLite file that inrun's readers open.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const file = join(dir, 'downloaded.sqlite');
      await download.saveAs(file);
      const store = await openStore(file);
      try {
        const [counted] = await store.all('SELECT COUNT(*) AS n FROM examples');
        expect(counted?.['n']).toBe(1000);
        // The flipped digits, as a source, lowered the validation loss less than the clean ones (negative in total).
        const bySource = await store.all("SELECT source, SUM(value) AS value FROM example_scores WHERE column_name = 'shapley1:val' GROUP BY source");
        const flippedValue = bySource.find((r) => r['source'] === 'flipped')?.['value'] as number;
        expect(flippedValue).toBeLessThan(0);
      } finally {
        await store.close();
      }
      await page.click('#retrain');
      await page.waitForFunction(() => !Number.isNaN((globalThis as unknown as { inrunExample: ExampleState }).inrunExample.retrainedAccuracy), null, { timeout: 600_000, polling: 500 });
      expect((await state()).retrainedAccuracy).toBeGreaterThan(0.6);
      expect(errors).toEqual([]);
      // Nothing but the page's own files: no network at run time.
      expect(requests.filter((r) => !r.startsWith(url))).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 900_000);
});
