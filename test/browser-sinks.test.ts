// The browser sinks in headless chromium: the SQLite file (sqlite-wasm) and the Parquet files a page hands out equal the Node sinks', and open in inrun's readers and report.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openStore, writeReport } from '@inrun/cli';
import { parquetSink, sqliteSink, SQLITE_APPLICATION_ID } from '@inrun/store';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, hasChromium, NO_CHROMIUM } from './browser.js';
import { bundleForBrowser } from './browser-bundle.js';
import { open } from './browser-gpu.js';
import type { SinkPage } from './browser-sink-entry.js';
import type { WorkerReply } from './browser-sink-worker.js';
import { js, pageWith, serve, type TestServer } from './browser-server.js';
import { syntheticRun } from './store-fixtures.js';
import { chromium } from 'playwright-core';

const wasmDir = fileURLToPath(new URL('../node_modules/@sqlite.org/sqlite-wasm/sqlite-wasm/jswasm/', import.meta.url));
const RUN = { n: 60, steps: 6, batch: 20 } as const;
const tmp = mkdtempSync(join(tmpdir(), 'inrun-browser-sink-'));
let browser: Browser | undefined;
let server: TestServer | undefined;

beforeAll(async () => {
  if (!hasChromium) return;
  // TODO(browser entry): '@inrun/store/browser' has no Node built-in; the stub is for store-fixtures' imports (better-sqlite3, inrun).
  const code = await bundleForBrowser('test/browser-sink-entry.ts');
  const worker = await bundleForBrowser('test/browser-sink-worker.ts');
  server = await serve({
    '/': pageWith('/sink.js'),
    '/sink.js': js(code),
    '/worker.js': js(worker),
    // sqlite-wasm finds these next to the module that imports them (new URL(..., import.meta.url)).
    '/sqlite3.wasm': { type: 'application/wasm', body: readFileSync(join(wasmDir, 'sqlite3.wasm')) },
    '/sqlite3-opfs-async-proxy.js': js(readFileSync(join(wasmDir, 'sqlite3-opfs-async-proxy.js'), 'utf8')),
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'] });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function pageRun(runId: string): Promise<{ storage: string | null; file: string; blobBytes: number; errors: string[] }> {
  const { page, errors } = await open(browser!, `${server!.url}/`);
  await page.waitForFunction(() => typeof (globalThis as unknown as Partial<SinkPage>).inrunSinkRun === 'function', undefined, { timeout: 120_000 });
  const out = await page.evaluate((o) => (globalThis as unknown as SinkPage).inrunSinkRun(o), { storage: 'auto' as const, runId, ...RUN });
  await page.context().close();
  const file = join(tmp, `${runId}-browser.sqlite`);
  writeFileSync(file, Buffer.from(out.base64, 'base64'));
  return { storage: out.storage, file, blobBytes: out.blobBytes, errors };
}

/** The same run in a module Worker on OPFS (the page is cross-origin isolated, so sqlite-wasm installs its OPFS VFS). */
async function workerRun(runId: string): Promise<WorkerReply & { file: string; errors: string[] }> {
  const { page, errors } = await open(browser!, `${server!.url}/`);
  const reply = await page.evaluate(
    (o) =>
      new Promise<WorkerReply>((resolve) => {
        const W = (globalThis as unknown as { Worker: new (url: string, o: object) => { onmessage: (e: { data: WorkerReply }) => void; onerror: (e: { message: string }) => void; postMessage(m: unknown): void } }).Worker;
        const w = new W('/worker.js', { type: 'module' });
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => resolve({ storage: null, base64: '', reopen: '', error: e.message });
        w.postMessage(o);
      }),
    { runId, ...RUN },
  );
  await page.context().close();
  const file = join(tmp, `${runId}-opfs.sqlite`);
  writeFileSync(file, Buffer.from(reply.base64, 'base64'));
  return { ...reply, file, errors };
}

/** The same run through `browserParquetSink` in a page (OPFS or memory), saved under a folder of its own. */
async function parquetPageRun(runId: string, storage: 'opfs' | 'memory'): Promise<{ storage: string | null; folder: string; errors: string[] }> {
  const { page, errors } = await open(browser!, `${server!.url}/`);
  await page.waitForFunction(() => typeof (globalThis as unknown as Partial<SinkPage>).inrunParquetRun === 'function', undefined, { timeout: 120_000 });
  const out = await page.evaluate((o) => (globalThis as unknown as SinkPage).inrunParquetRun(o), { storage, runId, segmentSteps: 4, ...RUN });
  await page.context().close();
  const folder = join(tmp, `parquet-${storage}`);
  for (const [path, b64] of Object.entries(out.files)) {
    mkdirSync(dirname(join(folder, path)), { recursive: true });
    writeFileSync(join(folder, path), Buffer.from(b64, 'base64'));
  }
  return { storage: out.storage, folder, errors };
}

/** Every file below a folder, by path. */
function filesUnder(folder: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(folder, { recursive: true }).map(String).sort()) {
    if (statSync(join(folder, f)).isFile()) out.set(f, readFileSync(join(folder, f)).toString('base64'));
  }
  return out;
}

/** Every table's rows in key order; `runs.ended_at` (a clock time) left out. */
function dump(path: string): Record<string, unknown[]> {
  const d = new Database(path, { readonly: true });
  try {
    const out: Record<string, unknown[]> = {
      application_id: [d.pragma('application_id', { simple: true })],
      objects: d.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all(),
    };
    for (const t of ['inrun_meta', 'runs', 'columns', 'examples', 'steps', 'step_scores', 'scores', 'token_scores']) {
      const rows = d.prepare(`SELECT * FROM ${t}`).all() as Record<string, unknown>[];
      out[t] = rows.map((r) => ({ ...r, ended_at: t === 'runs' ? typeof r['ended_at'] : undefined })).map((r) => JSON.stringify(r)).sort();
    }
    return out;
  } finally {
    d.close();
  }
}

if (!hasChromium) {
  describe('browser sinks', () => {
    it.skip(NO_CHROMIUM, () => undefined);
  });
} else {
  describe('sqliteWasmSink in chromium', () => {
    it("bundles for the browser with no Node built-in stubbed ('@inrun/store/browser')", async () => {
      // esbuild (platform browser) fails on any node: import or built-in left on the graph.
      await expect(bundleForBrowser('packages/store/src/browser.ts', { stubNode: false })).resolves.toContain('sqlite3_js_db_export');
      // The check can fail: the Node entry of the same package does not bundle without stubs.
      await expect(bundleForBrowser('packages/store/src/index.ts', { stubNode: false })).rejects.toThrow(/node:|better-sqlite3/);
    });

    it('writes the same file as the Node sink, row for row; it opens in openStore and inrun report', async () => {
      const runId = 'run-browser';
      const fromPage = await pageRun(runId);
      expect(fromPage.errors).toEqual([]);
      // A page's main thread has no OPFS VFS in sqlite-wasm: 'auto' falls back to memory.
      expect(fromPage.storage).toBe('memory');
      const nodeFile = join(tmp, `${runId}-node.sqlite`);
      const truth = await syntheticRun([sqliteSink(nodeFile)], { runId, ...RUN });
      const [a, b] = [dump(fromPage.file), dump(nodeFile)];
      expect(a['application_id']).toEqual([SQLITE_APPLICATION_ID]);
      expect(a['step_scores']).toHaveLength(RUN.steps * RUN.batch * 3);
      expect(a).toEqual(b);
      expect(fromPage.blobBytes).toBe(readFileSync(fromPage.file).length);

      const store = await openStore(fromPage.file);
      expect(store.kind).toBe('sqlite');
      const rows = (await store.all("SELECT example_id, value FROM example_scores WHERE column_name = 'shapley1:val' ORDER BY example_id")) as { example_id: string; value: number }[];
      await store.close();
      const want = new Map(truth.ids.map((id, i) => [id, truth.totals['shapley1:val']![i]!]));
      expect(rows).toHaveLength(RUN.n);
      for (const r of rows) expect(r.value).toBeCloseTo(want.get(r.example_id)!, 6);
      const report = await writeReport(fromPage.file, { out: join(tmp, 'report.html') });
      expect(report).toBeDefined();
      expect(readFileSync(join(tmp, 'report.html'), 'utf8')).toContain('Most harmful (lowest shapley1:val)');
    });

    for (const storage of ['opfs', 'memory'] as const) {
      it(`browserParquetSink (${storage}, main thread): the files parquetSink writes, byte for byte; the folder opens in openStore and inrun report`, async () => {
        const runId = `run-parquet-${storage}`;
        const fromPage = await parquetPageRun(runId, storage);
        expect(fromPage.errors).toEqual([]);
        expect(fromPage.storage).toBe(storage);
        const nodeFolder = join(tmp, `parquet-node-${storage}`);
        const truth = await syntheticRun([parquetSink(nodeFolder, { segmentSteps: 4, keepSnapshots: 1 })], { runId, ...RUN });
        const got = filesUnder(fromPage.folder);
        expect([...got.keys()]).toContain(join(runId, 'steps', 'part-000001.parquet'));
        expect(got).toEqual(filesUnder(nodeFolder));

        const store = await openStore(fromPage.folder);
        expect(store.kind).toBe('parquet');
        const rows = (await store.all("SELECT example_id, value FROM example_scores WHERE column_name = 'shapley1:val' ORDER BY example_id")) as { example_id: string; value: number }[];
        await store.close();
        const want = new Map(truth.ids.map((id, i) => [id, truth.totals['shapley1:val']![i]!]));
        expect(rows).toHaveLength(RUN.n);
        for (const r of rows) expect(r.value).toBeCloseTo(want.get(String(r.example_id))!, 6);
        await writeReport(fromPage.folder, { out: join(tmp, `report-${storage}.html`) });
        expect(readFileSync(join(tmp, `report-${storage}.html`), 'utf8')).toContain('Most harmful (lowest shapley1:val)');
      });
    }

    it('on OPFS in a Worker: the file persists (a second sink finds the run) and equals the Node sink\'s', async () => {
      const runId = 'run-opfs';
      const fromWorker = await workerRun(runId);
      expect(fromWorker.error).toBeUndefined();
      expect(fromWorker.storage).toBe('opfs');
      expect(fromWorker.reopen).toContain(`run "${runId}" is already stored`);
      const nodeFile = join(tmp, `${runId}-node.sqlite`);
      await syntheticRun([sqliteSink(nodeFile)], { runId, ...RUN });
      expect(dump(fromWorker.file)).toEqual(dump(nodeFile));
      expect(fromWorker.errors).toEqual([]);
    });
  });
}
