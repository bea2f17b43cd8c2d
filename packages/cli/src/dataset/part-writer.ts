// Rows of any store into a partition's part files, through an in-memory DuckDB that holds at most one part at a time.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBAppender, DuckDBConnection, DuckDBInstance, DuckDBType } from '@duckdb/node-api';
import { DATASET_TABLES, type DatasetColumn, type DatasetTable } from './layout.js';
import { ident, literal } from '../read/duckdb-reader.js';
import { text } from '../read/text.js';
import type { Row } from '../read/reader.js';

/** Rows handed to DuckDB at once (its vector size). */
const CHUNK = 2048;

type Cell = number | string | null;

/** A stored value as the dataset column's type (SQLite keeps what it was given: ids and labels may be numbers). */
function cell(value: unknown, type: DatasetColumn['type']): Cell {
  if (value === null || value === undefined) return null;
  if (type === 'STRING') return typeof value === 'string' ? value : text(value);
  return typeof value === 'number' ? value : Number(value as string);
}

/**
 * Writes partitions. Measured here, DuckDB's Parquet writer is about 3x faster than hyparquet-writer
 * on text columns (ids, sources, texts) and dictionary-encodes the run id and other repeated text.
 */
export interface PartWriter {
  /**
   * Streams `rows` (one run's rows of `table`) into `dir` as `part-<n>.parquet` files of at most
   * `rowsPerFile` rows; no rows still make one empty file, so every run is a partition.
   */
  write(table: DatasetTable, rows: AsyncIterable<Row>, dir: string, rowsPerFile: number): Promise<{ rows: number; files: number }>;
  close(): void;
}

const part = (n: number) => `part-${String(n).padStart(6, '0')}.parquet`;

/** Opens the writer: one empty holding table per dataset table. */
export async function partWriter(): Promise<PartWriter> {
  const duckdb = await import('@duckdb/node-api');
  const instance: DuckDBInstance = await duckdb.DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
  const db: DuckDBConnection = await instance.connect();
  const typeOf: Record<DatasetColumn['type'], { sql: string; duck: DuckDBType }> = {
    INT32: { sql: 'INTEGER', duck: duckdb.INTEGER },
    DOUBLE: { sql: 'DOUBLE', duck: duckdb.DOUBLE },
    STRING: { sql: 'VARCHAR', duck: duckdb.VARCHAR },
  };
  for (const t of DATASET_TABLES) await db.run(`CREATE TABLE ${t.name} (${t.columns.map((c) => `${ident(c.name)} ${typeOf[c.type].sql}`).join(', ')})`);

  return {
    async write(table, rows, dir, rowsPerFile) {
      mkdirSync(dir, { recursive: true });
      const types = table.columns.map((c) => typeOf[c.type].duck);
      let appender: DuckDBAppender | null = null;
      let columns: Cell[][] = table.columns.map(() => []);
      let pending = 0; // rows in `columns`
      let held = 0; // rows in the holding table
      let total = 0;
      let files = 0;
      const append = async () => {
        if (pending === 0) return;
        appender ??= await db.createAppender(table.name);
        const chunk = duckdb.DuckDBDataChunk.create(types, pending);
        chunk.setColumns(columns);
        appender.appendDataChunk(chunk);
        columns = table.columns.map(() => []);
        held += pending;
        pending = 0;
      };
      const flush = async () => {
        await append();
        const done = appender;
        appender = null;
        done?.closeSync();
        // Insertion order is kept: the part holds the rows in the order they came.
        await db.run(`COPY ${table.name} TO ${literal(join(dir, part(files)))} (FORMAT parquet)`);
        await db.run(`DELETE FROM ${table.name}`);
        files += 1;
        held = 0;
      };
      try {
        for await (const row of rows) {
          // Columns an older store lacks (SQLite schema version 1) read as null.
          table.columns.forEach((c, k) => columns[k]!.push(cell(row[c.name], c.type)));
          pending += 1;
          total += 1;
          if (pending === CHUNK) await append();
          if (held + pending === rowsPerFile) await flush();
        }
        if (held + pending > 0 || files === 0) await flush();
      } finally {
        // After a failure: nothing of this table stays for the next one.
        (appender as DuckDBAppender | null)?.closeSync();
        await db.run(`DELETE FROM ${table.name}`);
      }
      return { rows: total, files };
    },
    close() {
      db.closeSync();
      instance.closeSync();
    },
  };
}
