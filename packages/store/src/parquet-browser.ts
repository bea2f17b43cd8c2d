// browserParquetSink: the Parquet store in a browser, the same files as parquetSink, in the origin private file system (OPFS) or in memory, handed out as Blobs.
import { InrunError, preview } from './errors.js';
import { ParquetRunWriter, resolveParquetOptions, RUN_FOLDERS, type ParquetSinkOptions, type RunFiles } from './parquet-run-writer.js';
import type { ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';
import { checkRunId } from './run-id.js';
import type { Sink, TotalsPoint } from './sink.js';

/** Where {@link browserParquetSink} keeps the files. */
export type BrowserParquetStorage = 'auto' | 'opfs' | 'memory';

/** Options of {@link browserParquetSink}: where, plus the Node sink's segment limits. */
export interface BrowserParquetSinkOptions extends ParquetSinkOptions {
  /** Folder in OPFS that holds one folder per run (as `parquetSink`'s folder). @defaultValue 'inrun' */
  readonly folder?: string;
  /**
   * 'opfs' writes every file to the origin private file system (it survives a reload; main thread or
   * Worker), 'memory' keeps the files in the page until they are handed out, 'auto' takes OPFS where
   * `navigator.storage.getDirectory` exists.
   * @defaultValue 'auto'
   */
  readonly storage?: BrowserParquetStorage;
  /** The OPFS root, for pages that hold a directory handle already. @defaultValue `navigator.storage.getDirectory()` */
  readonly root?: () => Promise<OpfsDirectory>;
}

/** One file of a stored run: its path under the sink's folder (`<runId>/steps/part-000000.parquet`) and its bytes. */
export interface BrowserParquetFile {
  readonly path: string;
  readonly blob: Blob;
}

/** A browser Parquet sink: a {@link Sink} whose files can be handed out. */
export interface BrowserParquetSink extends Sink {
  /** Where the files live once opened (`null` before `open`). */
  readonly storage: 'opfs' | 'memory' | null;
  /**
   * The run's files as `parquetSink` lays them out (docs/schema.md). Saved under one folder, that folder
   * opens in `inrun report`, `inrun query` and DuckDB like a Node Parquet store. After `close()`, the
   * files as closed.
   */
  files(): Promise<BrowserParquetFile[]>;
}

// The slice of the File System Access API this sink uses (OPFS; also what a test may hand in as `root`).
/** A directory of the origin private file system. */
export interface OpfsDirectory {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<OpfsDirectory>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<OpfsFile>;
  removeEntry(name: string): Promise<void>;
}
/** A file of the origin private file system. */
export interface OpfsFile {
  /** Chromium writes to a swap file and replaces the file at close(): a reader never sees part of a write. */
  createWritable(): Promise<{ write(data: Uint8Array | string): Promise<void>; close(): Promise<void>; abort(): Promise<void> }>;
  getFile(): Promise<Blob>;
}

const opfsRoot = (): (() => Promise<OpfsDirectory>) | null => {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<OpfsDirectory> } } }).navigator?.storage;
  return typeof storage?.getDirectory === 'function' ? () => storage.getDirectory!() : null;
};

const TYPES: Record<string, string> = { json: 'application/json', parquet: 'application/vnd.apache.parquet' };
const blobOf = (path: string, content: Uint8Array | string): Blob =>
  // A copy with its own ArrayBuffer: Blob parts may not view a SharedArrayBuffer.
  new Blob([typeof content === 'string' ? content : new Uint8Array(content)], { type: TYPES[path.slice(path.lastIndexOf('.') + 1)] ?? '' });

/**
 * The Parquet store in a browser: byte for byte the files `parquetSink` writes (the same encoder and
 * layout, parquet-run-writer.ts), per-step scores rolled into segments every `segmentSteps` steps or
 * `segmentRows` rows, totals snapshots, example metadata and tokens. With OPFS each call's files are
 * written before its promise resolves (so the run's back-pressure waits for the disk, and a failed write
 * is the run's sink failure, handled by `delivery.onError`), each file whole. No resume (a stored run id
 * is refused at `open`). No Node built-in on its import graph (import it from '@inrun/store/browser').
 */
export function browserParquetSink(options: BrowserParquetSinkOptions = {}): BrowserParquetSink {
  const folder = options.folder ?? 'inrun';
  const wanted = options.storage ?? 'auto';
  if (typeof folder !== 'string' || folder.length === 0 || /[/\\]/.test(folder)) throw new InrunError(`expected a folder name without slashes, got ${preview(folder)}`, { field: 'browserParquetSink.folder' });
  if (!['auto', 'opfs', 'memory'].includes(wanted)) throw new InrunError(`expected 'auto', 'opfs' or 'memory', got ${preview(wanted)}`, { field: 'browserParquetSink.storage' });
  const limits = resolveParquetOptions(options, 'browserParquetSink');
  const root = options.root ?? opfsRoot();
  let storage: 'opfs' | 'memory' | null = null;
  let runId = '';
  let writer: ParquetRunWriter | null = null;
  /** Every file of the run by path (relative to the run's folder): the content in memory, `null` once on OPFS. */
  const known = new Map<string, Uint8Array | string | null>();
  /** Writes and removals not yet on OPFS, in order. */
  let pending: { path: string; content: Uint8Array | string | null }[] = [];
  let runDir: OpfsDirectory | null = null;
  const folders = new Map<string, OpfsDirectory>();

  const files: RunFiles = {
    write(path, content) {
      known.set(path, storage === 'opfs' ? null : content);
      if (storage === 'opfs') pending.push({ path, content });
    },
    remove(path) {
      known.delete(path);
      if (storage === 'opfs') pending.push({ path, content: null });
    },
    list: (sub) => [...known.keys()].filter((p) => p.startsWith(`${sub}/`) && p.endsWith('.parquet')).map((p) => p.slice(sub.length + 1)).sort(),
  };

  const dirOf = (path: string): { dir: OpfsDirectory; name: string } => {
    const at = path.indexOf('/');
    return at < 0 ? { dir: runDir!, name: path } : { dir: folders.get(path.slice(0, at))!, name: path.slice(at + 1) };
  };
  /** Puts the pending writes on OPFS in order; the sink call's promise waits for them (and rejects if one fails). */
  const persist = async (): Promise<void> => {
    const ops = pending;
    pending = [];
    for (const { path, content } of ops) {
      const { dir, name } = dirOf(path);
      if (content === null) {
        await dir.removeEntry(name);
        continue;
      }
      const stream = await (await dir.getFileHandle(name, { create: true })).createWritable();
      try {
        await stream.write(content);
      } catch (error) {
        await stream.abort().catch(() => undefined);
        throw error;
      }
      await stream.close();
    }
  };
  const open = (): ParquetRunWriter => {
    if (writer === null) throw new InrunError('the Parquet sink is not open', { field: 'browserParquetSink', code: 'invalid_state' });
    return writer;
  };
  const alreadyStored = (): never => {
    throw new InrunError(`run "${runId}" is already stored in OPFS folder ${folder}; choose another runId`, { field: 'runId', code: 'invalid_state' });
  };

  return {
    name: `parquet-browser:${folder}`,
    get storage() {
      return storage;
    },
    async open(run: RunInfo) {
      runId = checkRunId(run.runId);
      if (wanted === 'opfs' && root === null) {
        throw new InrunError("OPFS is not available here (navigator.storage.getDirectory is missing); use storage: 'memory' or 'auto'", { field: 'browserParquetSink.storage', code: 'invalid_state' });
      }
      storage = wanted !== 'memory' && root !== null ? 'opfs' : 'memory';
      if (known.size > 0) alreadyStored();
      if (storage === 'opfs') {
        const base = await (await root!()).getDirectoryHandle(folder, { create: true });
        const exists = await base.getDirectoryHandle(runId).then(
          async (d) => d.getFileHandle('run.json').then(() => true, () => false),
          () => false,
        );
        if (exists) alreadyStored();
        runDir = await base.getDirectoryHandle(runId, { create: true });
        for (const sub of RUN_FOLDERS) folders.set(sub, await runDir.getDirectoryHandle(sub, { create: true }));
      }
      writer = new ParquetRunWriter(files, run, limits);
      writer.writeRunFile('running', null);
      await persist();
    },
    async writeExamples(examples: readonly ExampleInfo[]) {
      open().writeExamples(examples);
      await persist();
    },
    async writeSteps(records: readonly StepRecord[]) {
      open().writeSteps(records);
      await persist();
    },
    async writeScores(scores: Scores, run: RunInfo, at: TotalsPoint) {
      open().writeScores(scores, run, at);
      await persist();
    },
    async close() {
      writer?.closeSegment();
      await persist();
    },
    async files() {
      if (storage === null) throw new InrunError('nothing to hand out: the Parquet sink was never opened', { field: 'browserParquetSink', code: 'invalid_state' });
      const out: BrowserParquetFile[] = [];
      for (const [path, content] of [...known.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (content !== null) out.push({ path: `${runId}/${path}`, blob: blobOf(path, content) });
        else {
          const { dir, name } = dirOf(path);
          out.push({ path: `${runId}/${path}`, blob: await (await dir.getFileHandle(name)).getFile() });
        }
      }
      return out;
    },
  };
}
