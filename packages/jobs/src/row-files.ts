// Labelled rows (id, xs, ys) from a JSON-lines or Parquet file, whole or one row range, as tensors.
import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import * as tf from '@tensorflow/tfjs';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { InrunError } from '@inrun/store';
import { preview } from '@inrun/store/internal';
import type { ExampleId } from '@inrun/store';

/** Rows `[start, end)` of a file (0-based: non-empty lines of JSON lines, rows of Parquet). */
export interface RowRange {
  readonly start: number;
  readonly end: number;
}

/** Rows read from a file: tensors the caller disposes, and ids in file order. */
export interface FileRows {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
  readonly ids: ExampleId[];
  /** Each row's `source` (the dataset it came from) when the file has that field or column, else null. */
  readonly sources: string[] | null;
}

/** A file whose name ends in `.parquet` (any case) is read as Parquet; any other as JSON lines. */
export function isParquetRows(path: string): boolean {
  return extname(path).toLowerCase() === '.parquet';
}

/** Number of rows of a row file: non-empty lines of JSON lines; the footer's row count of Parquet (no data read). */
export async function countRows(path: string): Promise<number> {
  if (isParquetRows(path)) return Number((await openParquet(path)).metadata.num_rows);
  let n = 0;
  for await (const line of lines(path)) if (line !== '') n++;
  return n;
}

/**
 * Reads rows `range` (default: all) of a row file, in the model's input and label shapes. JSON lines:
 * one `{"id": string | number, "xs": nested array, "ys": nested array}` per line, streamed, so a shard of
 * a large file holds only its own rows. Parquet: columns `id` (string or integer), `xs` and `ys`
 * (nested LIST columns of numbers); only the row groups that hold the range are read. Every row's `xs`
 * (and `ys`) must have the first row's shape: an {@link InrunError} names the file and the row.
 */
export async function readRows(path: string, range?: RowRange): Promise<FileRows> {
  const rows = stacker(path);
  if (isParquetRows(path)) {
    const start = range?.start ?? 0;
    for (const [i, row] of (await readParquetRows(path, ['id', 'xs', 'ys'], range, ['source'])).entries()) rows.add(start + i, row);
  } else {
    let index = -1;
    for await (const line of lines(path)) {
      index++;
      if (range !== undefined && index < range.start) continue;
      if (range !== undefined && index >= range.end) break;
      rows.add(index, parseLine(path, index, line));
    }
  }
  return rows.finish(range);
}

/** The ids of every row of a row file, in file order (no tensors: the merge step needs only ids; Parquet reads only the `id` column). */
export async function readIds(path: string): Promise<ExampleId[]> {
  if (isParquetRows(path)) return (await readParquetRows(path, ['id'])).map((row, i) => rowId(path, i, row.id));
  const ids: ExampleId[] = [];
  let index = 0;
  for await (const line of lines(path)) ids.push(rowId(path, index, parseLine(path, index++, line).id));
  return ids;
}

async function* lines(path: string): AsyncGenerator<string> {
  const stream = createReadStream(path, 'utf8');
  // A missing file rejects the first read with a plain ENOENT: name the file and the field instead.
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    throw cannotRead(path, e);
  }
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of reader) if (line.trim() !== '') yield line;
  } finally {
    reader.close();
    stream.destroy();
  }
}

function cannotRead(path: string, e: unknown): InrunError {
  return new InrunError(`cannot read rows from ${path}: ${e instanceof Error ? e.message : String(e)}`, { code: 'invalid_input', field: path });
}

function parseLine(path: string, index: number, line: string): Record<string, unknown> {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch {
    throw new InrunError(`row ${index} of ${path} is not JSON`, { code: 'invalid_input', field: `${path}[${index}]` });
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw new InrunError(`row ${index} of ${path} must be {"id": string | number, "xs": [...], "ys": [...]}`, { code: 'invalid_input', field: `${path}[${index}]` });
  }
  return row as Record<string, unknown>;
}

async function openParquet(path: string): Promise<{ file: AsyncBuffer; metadata: FileMetaData }> {
  try {
    const file = await asyncBufferFromFile(path);
    return { file, metadata: await parquetMetadataAsync(file) };
  } catch (e) {
    throw cannotRead(path, e);
  }
}

/**
 * Rows of the named columns (all present, else an error naming the missing one) and of the `optional`
 * ones the file has, over the row groups that hold `range`.
 */
async function readParquetRows(path: string, required: string[], range?: RowRange, optional: readonly string[] = []): Promise<Record<string, unknown>[]> {
  const { file, metadata } = await openParquet(path);
  const names = parquetSchema(metadata).children.map((c) => c.element.name);
  for (const c of required) {
    if (!names.includes(c)) throw new InrunError(`${path} has no column ${c} (columns: ${names.join(', ')}); row files have id, xs and ys`, { code: 'invalid_input', field: `${path}.${c}` });
  }
  const columns = [...required, ...optional.filter((c) => names.includes(c))];
  try {
    return (await parquetReadObjects({ file, metadata, columns, ...(range === undefined ? {} : { rowStart: range.start, rowEnd: range.end }) })) as Record<string, unknown>[];
  } catch (e) {
    throw cannotRead(path, e);
  }
}

/**
 * A row's id as JSON lines would give it: a string, or a number. Parquet INT64 ids come as BigInt:
 * a number when it is a safe integer (|id| < 2^53, so results equal the JSON-lines path), else its
 * decimal string (a number would silently round to another row's id).
 */
function rowId(path: string, index: number, id: unknown): ExampleId {
  if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return id;
  if (typeof id === 'bigint') return Number.isSafeInteger(Number(id)) ? Number(id) : id.toString();
  throw new InrunError(`row ${index} of ${path}: id must be a string or a number, got ${preview(id)}`, { code: 'invalid_input', field: `${path}[${index}].id` });
}

/** Collects rows, checking each one's id and shapes as it comes, and stacks them into two tensors. */
function stacker(path: string) {
  const ids: ExampleId[] = [];
  // Sources: all rows have one (a string) or none does; the first row decides which.
  let sources: string[] | null | undefined;
  // Per column: the first row's shape and index (what every later row is checked against), and the flat values.
  const column = () => ({ shape: null as number[] | null, first: 0, values: new Floats() });
  const columns = { xs: column(), ys: column() };
  return {
    add(index: number, row: Record<string, unknown>): void {
      ids.push(rowId(path, index, row.id));
      const source = row.source ?? undefined;
      if (sources === undefined) sources = source === undefined ? null : [];
      if ((sources === null) !== (source === undefined) || (source !== undefined && typeof source !== 'string')) {
        throw new InrunError(`row ${index} of ${path}: source must be a string on every row or on none (the first row read decides), got ${preview(source)}`, { code: 'invalid_input', field: `${path}[${index}].source` });
      }
      if (sources !== null) sources.push(source as string);
      for (const name of ['xs', 'ys'] as const) {
        const column = columns[name];
        const value = row[name];
        const field = `${path}[${index}].${name}`;
        if (!Array.isArray(value)) throw new InrunError(`row ${index} of ${path}: ${name} must be a (nested) array of numbers, got ${preview(value)}`, { code: 'invalid_input', field });
        const shape = shapeOf(value);
        if (column.shape === null) {
          column.shape = shape;
          column.first = index;
        } else if (shape.join() !== column.shape.join()) {
          throw new InrunError(`row ${index} of ${path}: ${name} has shape [${shape.join(', ')}], row ${column.first} has [${column.shape.join(', ')}]`, { code: 'shape_mismatch', field });
        }
        flatten(value, shape, 0, column.values, () => `row ${index} of ${path}: ${name}`, field);
      }
    },
    finish(range?: RowRange): FileRows {
      if (ids.length === 0) throw new InrunError(`no rows in ${path}${range === undefined ? '' : ` [${range.start}, ${range.end})`}`, { code: 'invalid_input', field: path });
      const tensor = (name: 'xs' | 'ys') => tf.tensor(columns[name].values.take(), [ids.length, ...columns[name].shape!]);
      return { xs: tensor('xs'), ys: tensor('ys'), ids, sources: sources ?? null };
    },
  };
}

/** A growing float32 buffer: a shard's values at 4 bytes each (a JS array of numbers takes 8 and more). */
class Floats {
  private buffer = new Float32Array(1024);
  private length = 0;

  push(value: number): void {
    if (this.length === this.buffer.length) {
      const bigger = new Float32Array(this.buffer.length * 2);
      bigger.set(this.buffer);
      this.buffer = bigger;
    }
    this.buffer[this.length++] = value;
  }

  /** The values pushed, in an array of their own size. */
  take(): Float32Array {
    return this.buffer.slice(0, this.length);
  }
}

/** The shape a nested array claims along its first elements (checked in full by {@link flatten}). */
function shapeOf(value: unknown): number[] {
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  return shape;
}

/** Appends a nested array's numbers to `out`, checking that it is not ragged and holds only numbers (Parquet INT64 BigInts become numbers). */
function flatten(value: unknown, shape: readonly number[], depth: number, out: Floats, what: () => string, field: string): void {
  if (depth === shape.length) {
    if (typeof value === 'number') out.push(value);
    else if (typeof value === 'bigint') out.push(Number(value));
    else throw new InrunError(`${what()} must hold only numbers, got ${preview(value)}`, { code: 'invalid_input', field });
    return;
  }
  if (!Array.isArray(value) || value.length !== shape[depth]) {
    throw new InrunError(`${what()} is ragged: expected ${shape[depth]} entries at depth ${depth}, got ${Array.isArray(value) ? value.length : preview(value)}`, { code: 'shape_mismatch', field });
  }
  for (const v of value) flatten(v, shape, depth + 1, out, what, field);
}
