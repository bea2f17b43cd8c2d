// Device-resident run totals: one value per example and column, and step counts.
import * as tf from '@tensorflow/tfjs';
import { addRows, setRows } from './row-writes.js';

/**
 * Device-resident running sums, one row per example slot and one column per score column, plus a
 * last column counting the steps each example took part in. A non-trainable `tf.Variable` updated
 * with `assign` inside the caller's `tf.tidy`: nothing is read back until {@link read}.
 */
export class DeviceTotals {
  private sums: tf.Variable;
  private capacity: number;

  constructor(
    private readonly columns: number,
    initialCapacity = 1024,
  ) {
    this.capacity = Math.max(1, initialCapacity);
    this.sums = variableOf(tf.zeros([this.capacity, columns + 1]));
  }

  /**
   * Adds a step's values `[n, columns]` to the rows `slots` (unique within a step). With `keep` (a
   * scalar bool) false the step adds nothing, not even a step count. Call inside `tf.tidy`.
   */
  add(slots: Int32Array, values: tf.Tensor2D, keep?: tf.Scalar): void {
    this.ensure(maxOf(slots) + 1);
    const n = slots.length;
    const all = tf.concat([values, tf.ones([n, 1])], 1);
    // A select, not a product: 0 * NaN would still be NaN.
    const rows = keep === undefined ? all : tf.where(keep, all, tf.zerosLike(all));
    const indices = tf.tensor2d(slots, [n, 1], 'int32');
    this.sums.assign(addRows(this.sums, indices, rows));
  }

  /** Replaces the rows `slots` with stored totals (resuming a run). */
  load(slots: Int32Array, columns: readonly ArrayLike<number>[], steps: ArrayLike<number>): void {
    if (slots.length === 0) return;
    this.ensure(maxOf(slots) + 1);
    const width = this.columns + 1;
    const rows = new Float32Array(slots.length * width);
    slots.forEach((_, r) => {
      columns.forEach((col, c) => (rows[r * width + c] = col[r] ?? 0));
      rows[r * width + this.columns] = steps[r] ?? 0;
    });
    tf.tidy(() => {
      this.sums.assign(setRows(this.sums, tf.tensor2d(slots, [slots.length, 1], 'int32'), tf.tensor2d(rows, [slots.length, width])));
    });
  }

  /** Grows by doubling so that amortised growth stays O(1) per example. */
  private ensure(rows: number): void {
    if (rows <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < rows) capacity *= 2;
    const grown = tf.tidy(() => tf.concat([this.sums, tf.zeros([capacity - this.capacity, this.columns + 1])], 0));
    this.sums.dispose();
    this.sums = variableOf(grown);
    this.capacity = capacity;
  }

  /** One asynchronous read of the first `rows` slots: per-column sums and step counts. */
  async read(rows: number): Promise<{ columns: Float32Array[]; steps: Int32Array }> {
    const flat = await this.sums.data();
    const width = this.columns + 1;
    const columns = Array.from({ length: this.columns }, () => new Float32Array(rows));
    const steps = new Int32Array(rows);
    for (let r = 0; r < Math.min(rows, this.capacity); r++) {
      for (let c = 0; c < this.columns; c++) columns[c]![r] = flat[r * width + c]!;
      steps[r] = flat[r * width + this.columns]!;
    }
    return { columns, steps };
  }

  dispose(): void {
    this.sums.dispose();
  }
}

/** A non-trainable variable holding `init`'s values; `init` itself is freed. */
export function variableOf(init: tf.Tensor): tf.Variable {
  const v = tf.variable(init, false);
  init.dispose();
  return v;
}

export function maxOf(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  return max;
}
