// Named sources and targets of untrac(): LabelledRows or tf.data.Datasets, checked against the model.
import * as tf from '@tensorflow/tfjs';
import { InrunError, preview } from '../errors.js';
import type { ModelAdapter } from '../model/adapter.js';
import { checkLabelled } from '../scoring/targets.js';
import type { Rows } from './ascent.js';
import type { UntracData } from './untrac-options.js';

/** Checked named rows, and the tensors this module made (from datasets) that the caller disposes. */
export interface NamedRows {
  readonly names: readonly string[];
  readonly rows: ReadonlyMap<string, Rows>;
  readonly owned: readonly tf.Tensor[];
}

const list = (t: tf.Tensor | readonly tf.Tensor[]): tf.Tensor[] => (Array.isArray(t) ? [...(t as tf.Tensor[])] : [t as tf.Tensor]);

/** A dataset's `{ xs, ys }` batches concatenated into one set of tensors (read once, into memory). */
async function fromDataset(field: string, data: tf.data.Dataset<tf.TensorContainer>): Promise<{ xs: tf.Tensor[]; ys: tf.Tensor[] }> {
  const batches = (await data.toArray()) as { xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor | tf.Tensor[] }[];
  try {
    if (batches.length === 0) throw new InrunError('the dataset is empty; expected at least one row', { field, code: 'invalid_input' });
    for (const [i, b] of batches.entries()) {
      if (b === null || typeof b !== 'object' || !('xs' in b) || !('ys' in b)) {
        throw new InrunError(`expected elements { xs, ys }, got ${preview(b)} at element ${i}`, { field, code: 'invalid_input' });
      }
    }
    const join = (pick: (b: (typeof batches)[number]) => tf.Tensor[], part: string) => {
      const first = pick(batches[0]!);
      return first.map((_, j) => {
        try {
          return batches.length === 1 ? first[j]!.clone() : tf.concat(batches.map((b) => pick(b)[j]!), 0);
        } catch (cause) {
          throw new InrunError(`the dataset's batches do not concatenate: ${(cause as Error).message}`, { field: `${field}.${part}`, code: 'shape_mismatch', cause });
        }
      });
    };
    return { xs: join((b) => list(b.xs), 'xs'), ys: join((b) => list(b.ys), 'ys') };
  } finally {
    tf.dispose(batches.flatMap((b) => [...list(b.xs), ...list(b.ys)]));
  }
}

/** Reads and checks `group` (`'sources'` or `'targets'`): at least one entry, non-empty names, rows that fit the model. */
export async function namedRows(group: 'sources' | 'targets', given: Readonly<Record<string, UntracData>>, model: ModelAdapter): Promise<NamedRows> {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new InrunError(`expected an object of named { xs, ys } rows, got ${preview(given)}`, { field: group });
  }
  const names = Object.keys(given);
  if (names.length === 0) throw new InrunError('expected at least one named entry', { field: group });
  const rows = new Map<string, Rows>();
  const owned: tf.Tensor[] = [];
  try {
    for (const name of names) {
      const field = `${group}.${name}`;
      if (name.length === 0) throw new InrunError('expected a non-empty name', { field: group });
      const data = given[name]!;
      let tensors: { xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor | tf.Tensor[] };
      if (data instanceof tf.data.Dataset) {
        const read = await fromDataset(field, data);
        owned.push(...read.xs, ...read.ys);
        tensors = read;
      } else {
        if (data === null || typeof data !== 'object') throw new InrunError(`expected { xs, ys } or a tf.data.Dataset, got ${preview(data)}`, { field });
        tensors = data as { xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor | tf.Tensor[] };
      }
      rows.set(name, checkLabelled(field, tensors, model));
    }
  } catch (error) {
    tf.dispose(owned);
    throw error;
  }
  return { names, rows, owned };
}
