// The record buffer: per-step device outputs read back in one batched asynchronous read.
import * as tf from '@tensorflow/tfjs';
import type { ExampleId, StepRecord } from '../types.js';

/** A step whose per-example values still live on the device. */
export interface PendingStep {
  readonly step: number;
  readonly epoch: number | null;
  readonly learningRate: number;
  readonly ids: readonly ExampleId[];
  /** `[n, columns]`, kept: the buffer owns and frees it. */
  readonly values: tf.Tensor2D;
  /** Scalar training loss, kept. */
  readonly loss: tf.Tensor;
  /** `[targets]` summed target losses, kept, or null without targets. */
  readonly targetLosses: tf.Tensor1D | null;
  /** `performance.now()` when the step started. */
  readonly startedAt: number;
  readonly attributionMs: number;
  /** Set when the next step starts. */
  stepMs?: number;
}

/**
 * Buffers per-step tensors and turns them into {@link StepRecord}s with ONE asynchronous read per
 * flush (a blocking read per step would stall a GPU backend's pipeline).
 */
export class RecordBuffer {
  private pending: PendingStep[] = [];

  constructor(
    private readonly runId: string,
    private readonly columns: readonly string[],
    private readonly targets: readonly string[],
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /** Adds a step; the previous one's duration is now known. */
  push(step: PendingStep): void {
    const previous = this.pending.at(-1);
    if (previous !== undefined) previous.stepMs = step.startedAt - previous.startedAt;
    this.pending.push(step);
  }

  /** Reads every pending step in one `data()` call; frees the tensors. */
  async drain(): Promise<StepRecord[]> {
    const steps = this.pending;
    this.pending = [];
    if (steps.length === 0) return [];
    const now = performance.now();
    const flat = tf.tidy(() =>
      tf.concat(
        steps.flatMap((s) => [tf.reshape(s.values, [-1]), tf.reshape(s.loss, [1]), ...(s.targetLosses ? [s.targetLosses] : [])]),
      ),
    );
    for (const s of steps) tf.dispose([s.values, s.loss, ...(s.targetLosses ? [s.targetLosses] : [])]);
    let data: Float32Array;
    try {
      data = (await flat.data()) as Float32Array;
    } finally {
      flat.dispose();
    }
    const records: StepRecord[] = [];
    let at = 0;
    const width = this.columns.length;
    for (const s of steps) {
      const n = s.ids.length;
      const columns: Record<string, Float32Array> = {};
      this.columns.forEach((name, c) => {
        const col = new Float32Array(n);
        for (let r = 0; r < n; r++) col[r] = data[at + r * width + c]!;
        columns[name] = col;
      });
      at += n * width;
      const loss = data[at++]!;
      const targetLosses: Record<string, number> = {};
      if (s.targetLosses) for (const name of this.targets) targetLosses[name] = data[at++]!;
      records.push({
        runId: this.runId,
        step: s.step,
        epoch: s.epoch,
        learningRate: s.learningRate,
        batchSize: n,
        loss,
        targetLosses,
        ids: s.ids,
        columns,
        attributionMs: s.attributionMs,
        stepMs: s.stepMs ?? now - s.startedAt,
      });
    }
    return records;
  }

  dispose(): void {
    for (const s of this.pending) tf.dispose([s.values, s.loss, ...(s.targetLosses ? [s.targetLosses] : [])]);
    this.pending = [];
  }
}
