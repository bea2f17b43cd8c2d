// Page side of browser-sinks.test.ts: a synthetic run written through the browser SQLite sink, handed back as the file's bytes.
import { sqliteWasmSink, type SqliteWasmStorage } from '@inrun/store/browser';
import { syntheticRun } from './store-fixtures.js';

/** What the page exposes on its global object to the driver. */
export interface SinkPage {
  inrunSinkRun(o: { storage: SqliteWasmStorage; runId: string; n: number; steps: number; batch: number }): Promise<{ storage: string | null; base64: string; blobBytes: number }>;
}

(globalThis as unknown as SinkPage).inrunSinkRun = async ({ storage, ...run }) => {
  const sink = sqliteWasmSink({ storage, file: `${run.runId}.sqlite` });
  await syntheticRun([sink], run);
  const bytes = await sink.bytes();
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { storage: sink.storage, base64: btoa(binary), blobBytes: (await sink.blob()).size };
};
