// The in-run gradient sketches a checkpoint folder keeps (sketches.json + sketches.f32, written by run/sketch-files.ts), read by tracin() and trak().
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '../errors.js';
import type { PieceShape } from '../ghost/types.js';
import type { ExampleId } from '../types.js';

/** Sketches a run saved with a checkpoint: each seen example's latest projected loss gradient. */
export interface StoredSketches {
  /** The projection width per side (`attach({ sketch: { size } })`). */
  readonly size: number;
  readonly seed: number;
  /** Numbers per example (the sum over pieces of min(rows, size) x min(cols, size)). */
  readonly dim: number;
  /** Covered layers in model order, each with its pieces' shapes. */
  readonly layers: readonly { readonly name: string; readonly pieces: readonly PieceShape[] }[];
  readonly ids: readonly ExampleId[];
  /** `ids.length` x `dim`, row-major. */
  readonly rows: Float32Array;
}

/** Whether the checkpoint folder holds stored sketches. */
export const hasSketches = (path: string): boolean => existsSync(join(path, 'sketches.json'));

/** Reads a checkpoint's stored sketches; none is `bad_checkpoint` on `train`. */
export function readSketches(path: string): StoredSketches {
  const file = join(path, 'sketches.json');
  if (!existsSync(file)) throw new InrunError(`no sketches in ${path}: train the run with the sketch option`, { field: 'train', code: 'bad_checkpoint' });
  const index = JSON.parse(readFileSync(file, 'utf8')) as Omit<StoredSketches, 'rows'>;
  const bytes = readFileSync(join(path, 'sketches.f32'));
  return { ...index, rows: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}
