// `self_influence.parquet` straight from the shards' parts through DuckDB: streamed, so the merge never holds every training row's value (100M rows would be GBs in one process).
import { renameSync, rmSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

const quoted = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** A part's `train_id` is the id's JSON (numbers stay numbers there); the output holds the id as text, as `String(id)` gives it. */
const idText = (column: string) => `CASE WHEN starts_with(${column}, '"') THEN json_extract_string(${column}, '$') ELSE ${column} END`;

/**
 * Writes `path` (`train_id`, `value`: training order, shard by shard) from the parts and returns the
 * rows written. Whole-shard parts hold `self` rows (`kind = 'self'`, `rank` = row in the shard);
 * per-checkpoint parts (`checkpoints` per shard, shard-major) hold a `self` column, summed over each
 * shard's checkpoints row by row. DuckDB sorts and sums out of core, the file is written aside and renamed.
 */
export async function writeSelfInfluence(path: string, parts: readonly string[], checkpointsPerShard: number | null): Promise<number> {
  const list = `[${parts.map(quoted).join(', ')}]`;
  const position = `list_position(${list}, filename)`;
  const select =
    checkpointsPerShard === null
      ? `SELECT ${idText('train_id')} AS train_id, score AS value FROM read_parquet(${list}, filename = true) WHERE kind = 'self' ORDER BY ${position}, rank`
      : `SELECT ${idText('id')} AS train_id, value FROM (
           SELECT shard, row, any_value(train_id) AS id, sum(self) AS value FROM (
             SELECT (${position} - 1) // ${checkpointsPerShard} AS shard, file_row_number AS row, train_id, self
             FROM read_parquet(${list}, filename = true, file_row_number = true)
           ) GROUP BY shard, row
         ) ORDER BY shard, row`;
  const tmp = `${path}.tmp-${process.pid}`;
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const result = await connection.run(`COPY (${select}) TO ${quoted(tmp)} (FORMAT parquet)`);
    const rows = Number(result.rowsChanged);
    renameSync(tmp, path);
    return rows;
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}
