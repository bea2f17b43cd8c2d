// Labelled rows from a JSON-lines file ({"id","xs","ys"} per line), whole or one row range, as tensors.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { ExampleId } from '../types.js';

/** Rows `[start, end)` of a file (0-based, counting non-empty lines). */
export interface RowRange {
  readonly start: number;
  readonly end: number;
}

/** Rows read from a file: tensors the caller disposes, and ids in file order. */
export interface FileRows {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
  readonly ids: ExampleId[];
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
    throw new InrunError(`cannot read rows from ${path}: ${e instanceof Error ? e.message : String(e)}`, { code: 'invalid_input', field: path });
  }
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of reader) if (line.trim() !== '') yield line;
  } finally {
    reader.close();
    stream.destroy();
  }
}

/** Number of rows (non-empty lines) of a JSON-lines file. */
export async function countRows(path: string): Promise<number> {
  let n = 0;
  for await (const line of lines(path)) if (line !== '') n++;
  return n;
}

/**
 * Reads rows `range` (default: all) of a JSON-lines file: one `{"id": string | number, "xs": nested
 * array, "ys": nested array}` per line, in the model's input and label shapes. Streams the file, so a
 * shard of a large file holds only its own rows.
 */
export async function readRows(path: string, range?: RowRange): Promise<FileRows> {
  const ids: ExampleId[] = [];
  const xs: unknown[] = [];
  const ys: unknown[] = [];
  let index = -1;
  for await (const line of lines(path)) {
    index++;
    if (range !== undefined && index < range.start) continue;
    if (range !== undefined && index >= range.end) break;
    const field = `${path}[${index}]`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new InrunError(`row ${index} of ${path} is not JSON`, { code: 'invalid_input', field });
    }
    const r = row as { id?: unknown; xs?: unknown; ys?: unknown } | null;
    if (r === null || typeof r !== 'object' || !(typeof r.id === 'string' || typeof r.id === 'number') || !Array.isArray(r.xs) || !Array.isArray(r.ys)) {
      throw new InrunError(`row ${index} of ${path} must be {"id": string | number, "xs": [...], "ys": [...]}`, { code: 'invalid_input', field });
    }
    ids.push(r.id);
    xs.push(r.xs);
    ys.push(r.ys);
  }
  if (ids.length === 0) throw new InrunError(`no rows in ${path}${range === undefined ? '' : ` [${range.start}, ${range.end})`}`, { code: 'invalid_input', field: path });
  return { xs: stack(xs, path, 'xs'), ys: stack(ys, path, 'ys'), ids };
}

function stack(values: unknown[], path: string, name: string): tf.Tensor {
  try {
    return tf.tensor(values as number[][]);
  } catch (e) {
    throw new InrunError(`rows of ${path} do not share one ${name} shape: ${e instanceof Error ? e.message : String(e)}`, { code: 'shape_mismatch', field: `${path}.${name}` });
  }
}

/** The ids of every row of a JSON-lines file, in file order (no tensors: the merge step needs only ids). */
export async function readIds(path: string): Promise<ExampleId[]> {
  const ids: ExampleId[] = [];
  for await (const line of lines(path)) ids.push((JSON.parse(line) as { id: ExampleId }).id);
  return ids;
}
