// Page side of browser-sinks.test.ts: a synthetic run written through the browser SQLite and Parquet sinks, handed back as the files' bytes.
import { browserParquetSink, sqliteWasmSink, type BrowserParquetStorage, type SqliteWasmStorage } from '@inrun/store/browser';
import { syntheticRun } from './store-fixtures.js';

/** What the page exposes on its global object to the driver. */
export interface SinkPage {
  inrunSinkRun(o: { storage: SqliteWasmStorage; runId: string; n: number; steps: number; batch: number }): Promise<{ storage: string | null; base64: string; blobBytes: number }>;
  /** The same run through `browserParquetSink`: every file it hands out, by path, as base64. */
  inrunParquetRun(o: { storage: BrowserParquetStorage; runId: string; n: number; steps: number; batch: number; segmentSteps: number }): Promise<{ storage: string | null; files: Record<string, string> }>;
}

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

(globalThis as unknown as SinkPage).inrunSinkRun = async ({ storage, ...run }) => {
  const sink = sqliteWasmSink({ storage, file: `${run.runId}.sqlite` });
  await syntheticRun([sink], run);
  return { storage: sink.storage, base64: base64(await sink.bytes()), blobBytes: (await sink.blob()).size };
};

(globalThis as unknown as SinkPage).inrunParquetRun = async ({ storage, segmentSteps, ...run }) => {
  const sink = browserParquetSink({ storage, segmentSteps, keepSnapshots: 1 });
  await syntheticRun([sink], run);
  const files: Record<string, string> = {};
  for (const f of await sink.files()) files[f.path] = base64(new Uint8Array(await f.blob.arrayBuffer()));
  return { storage: sink.storage, files };
};
