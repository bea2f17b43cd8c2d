// The totals a checkpoint keeps (totals.json, totals.f32): resuming from it is bit for bit whatever the sinks hold.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '../errors.js';
import type { ResumeState } from '@inrun/store';
import type { Scores } from '../types.js';

const META = 'totals.json';
const VALUES = 'totals.f32';

/**
 * The device totals at a checkpoint, as files for its folder (written inside the folder's atomic
 * rename): ids and step counts in JSON, the float32 sums row by row in binary, exactly as the device
 * holds them. A crash between the sinks' snapshot and the model's save can then never leave a
 * checkpoint whose totals only a later snapshot (or a re-summation in another order) could give.
 */
export function totalsFiles(scores: Scores, columns: readonly string[]): Record<string, string | Uint8Array> {
  const n = scores.ids.length;
  const rows = new Float32Array(n * columns.length);
  columns.forEach((name, c) => {
    const values = scores.columns[name]!;
    for (let r = 0; r < n; r++) rows[r * columns.length + c] = values[r]!;
  });
  const meta = { columns, ids: scores.ids, steps: Array.from(scores.steps) };
  return { [META]: JSON.stringify(meta), [VALUES]: new Uint8Array(rows.buffer) };
}

/** The totals saved in checkpoint folder `dir`, or null for a checkpoint written before they were. */
export function readTotalsFiles(dir: string, columns: readonly string[], step: number): ResumeState | null {
  const metaFile = join(dir, META);
  if (!existsSync(metaFile)) return null;
  const valuesFile = join(dir, VALUES);
  let meta: { columns: string[]; ids: (string | number)[]; steps: number[] };
  let bytes: Buffer;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as typeof meta;
    bytes = readFileSync(valuesFile);
  } catch (cause) {
    throw new InrunError(`${metaFile} or ${valuesFile}: unreadable (${(cause as Error).message})`, { field: 'checkpoint', code: 'bad_checkpoint', cause });
  }
  if (meta.columns.join('\u0000') !== columns.join('\u0000')) {
    throw new InrunError(`${metaFile}: the checkpoint has columns [${meta.columns.join(', ')}], this run [${columns.join(', ')}]; resume with the same methods and targets`, {
      field: 'methods',
      code: 'invalid_state',
    });
  }
  const n = meta.ids.length;
  if (bytes.byteLength !== n * columns.length * 4 || meta.steps.length !== n) {
    throw new InrunError(`${valuesFile}: holds ${bytes.byteLength} bytes, ${n} examples x ${columns.length} columns need ${n * columns.length * 4}`, {
      field: 'checkpoint',
      code: 'bad_checkpoint',
    });
  }
  const rows = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: Record<string, Float64Array> = {};
  columns.forEach((name, c) => {
    const col = new Float64Array(n);
    for (let r = 0; r < n; r++) col[r] = rows[r * columns.length + c]!;
    out[name] = col;
  });
  return { ids: meta.ids, columns: out, steps: Int32Array.from(meta.steps), step };
}
