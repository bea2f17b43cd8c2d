// Each example's latest gradient sketch, kept on the device between checkpoints.
import * as tf from '@tensorflow/tfjs';
import { setRows } from './row-writes.js';
import { maxOf, variableOf } from './totals.js';

/**
 * Each example's latest gradient sketch, on the device: `[slots, dim]`, plus the step it was taken
 * at (-1 = never). Overwritten each time the example is seen; read once per checkpoint.
 */
export class SketchStore {
  private sketches: tf.Variable;
  private steps: tf.Variable;
  private capacity: number;

  constructor(
    readonly dim: number,
    initialCapacity = 1024,
  ) {
    this.capacity = Math.max(1, initialCapacity);
    this.sketches = variableOf(tf.zeros([this.capacity, dim]));
    this.steps = variableOf(tf.fill([this.capacity], -1, 'int32'));
  }

  /** Stores `sketches [n, dim]` at `slots` (unique), taken at `step`. Call inside `tf.tidy`. */
  set(slots: Int32Array, sketches: tf.Tensor2D, step: number): void {
    this.ensure(maxOf(slots) + 1);
    const indices = tf.tensor2d(slots, [slots.length, 1], 'int32');
    this.sketches.assign(setRows(this.sketches, indices, sketches));
    this.steps.assign(setRows(this.steps, indices, tf.fill([slots.length], step, 'int32')));
  }

  private ensure(rows: number): void {
    if (rows <= this.capacity) return;
    let capacity = this.capacity;
    while (capacity < rows) capacity *= 2;
    const sketches = tf.tidy(() => tf.pad(this.sketches, [[0, capacity - this.capacity], [0, 0]]));
    const steps = tf.tidy(() => tf.pad(this.steps, [[0, capacity - this.capacity]], -1));
    this.sketches.dispose();
    this.steps.dispose();
    this.sketches = variableOf(sketches);
    this.steps = variableOf(steps);
    this.capacity = capacity;
  }

  /** The first `rows` slots: sketches row-major, and the step of each (-1 = never seen). */
  async read(rows: number): Promise<{ sketches: Float32Array; steps: Int32Array }> {
    const [all, steps] = await Promise.all([this.sketches.data(), this.steps.data()]);
    const n = Math.min(rows, this.capacity);
    return { sketches: (all as Float32Array).slice(0, n * this.dim), steps: (steps as Int32Array).slice(0, n) };
  }

  dispose(): void {
    this.sketches.dispose();
    this.steps.dispose();
  }
}
