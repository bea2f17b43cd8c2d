// checkFiniteRows and checkInputShapes: rows an offline method takes refused when a value is NaN or infinite, or when their shape is not the model's.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';

/**
 * Throws `invalid_input` on `field` naming the first row that holds NaN or an infinity in any of
 * `tensors` (rows along axis 0): such a row would turn scores or weights into NaN without an error.
 * Integer tensors (token ids) are finite by type. Reads one boolean per row.
 */
export async function checkFiniteRows(field: string, tensors: readonly tf.Tensor[]): Promise<void> {
  for (const t of tensors) {
    if (t.dtype !== 'float32') continue;
    const bad = tf.tidy(() => tf.logicalNot(tf.isFinite(t)).reshape([t.shape[0] ?? 1, -1]).any(1));
    const rows = await bad.data();
    bad.dispose();
    const row = rows.findIndex((b) => b !== 0);
    if (row >= 0) throw new InrunError(`row ${row} holds a value that is not finite (NaN or Infinity): refused, it would make every result NaN`, { field: `${field}[${row}]`, code: 'invalid_input' });
  }
}

/** Throws `shape_mismatch` on `field` when a row tensor's shape past the batch is not that of the model's input. */
export function checkInputShapes(field: string, model: tf.LayersModel, xs: readonly tf.Tensor[]): void {
  model.inputs.forEach((input, i) => {
    const want = input.shape.slice(1);
    const got = xs[i]?.shape.slice(1);
    if (got === undefined || got.length !== want.length || want.some((d, j) => d !== null && d !== got[j])) {
      throw new InrunError(`rows of shape [${got?.join(', ') ?? ''}] do not fit the model's input ${i} (${input.name}: [${want.map((d) => d ?? 'any').join(', ')}] per row)`, { field, code: 'shape_mismatch' });
    }
  });
}
