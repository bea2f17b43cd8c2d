// Parquet files of one segment on a Node file system: encoded by parquet-encode.ts, written atomically, read back with hyparquet.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { encodeParquet, type ParquetColumn } from './parquet-encode.js';

export type { ParquetColumn } from './parquet-encode.js';

/** Writes a Parquet file whole or not at all: aside, then renamed (a reader or a crash never sees a partial file). */
export function writeParquetFile(path: string, columns: readonly ParquetColumn[], metadata: Record<string, string> = {}): void {
  writeAtomically(path, encodeParquet(columns, metadata));
}

/** Writes a file aside and renames it into place; a failed write (a full disk) leaves no temporary file. */
export function writeAtomically(path: string, content: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** Every row of a Parquet file as objects (for resuming a run). */
export async function readParquetFile(path: string, columns?: string[]): Promise<Record<string, unknown>[]> {
  const file = await asyncBufferFromFile(path);
  return (await parquetReadObjects(columns === undefined ? { file } : { file, columns })) as Record<string, unknown>[];
}
