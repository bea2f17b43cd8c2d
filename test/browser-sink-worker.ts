// Worker side of browser-sinks.test.ts: the synthetic run through sqliteWasmSink on OPFS (sqlite-wasm's OPFS VFS lives in Workers only).
import { sqliteWasmSink } from '@inrun/store/browser';
import { runInfo, syntheticRun } from './store-fixtures.js';

/** What the worker posts back: where the database lived, its bytes, and what reopening the file said. */
export interface WorkerReply {
  readonly storage: string | null;
  readonly base64: string;
  readonly reopen: string;
  readonly error?: string;
}

const scope = globalThis as unknown as { onmessage: (e: { data: { runId: string; n: number; steps: number; batch: number } }) => void; postMessage(m: WorkerReply): void };

scope.onmessage = ({ data: run }) => {
  void (async () => {
    try {
      const file = `${run.runId}.sqlite`;
      const sink = sqliteWasmSink({ storage: 'opfs', file });
      await syntheticRun([sink], run);
      const bytes = await sink.bytes();
      // The file persists in OPFS: a second sink on it finds the run already stored.
      const again = sqliteWasmSink({ storage: 'opfs', file });
      const reopen = await Promise.resolve(again.open(runInfo(run.runId))).then(
        () => 'opened',
        (e: unknown) => String(e),
      );
      await again.close();
      let binary = '';
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      scope.postMessage({ storage: sink.storage, base64: btoa(binary), reopen });
    } catch (e) {
      scope.postMessage({ storage: null, base64: '', reopen: '', error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e) });
    }
  })();
};
