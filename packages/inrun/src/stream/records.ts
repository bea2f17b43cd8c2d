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
  /** Scalar bool, kept: whether loss, target losses and values are all finite. */
  readonly finite: tf.Scalar;
  /** `performance.now()` when the step started. */
  readonly startedAt: number;
  readonly attributionMs: number;
  /** Set when the next step starts. */
  stepMs?: number;
}

/** One drained step: its record (null when none was kept) and whether it was finite. */
export interface DrainedStep {
  readonly step: number;
  readonly finite: boolean;
  readonly record: StepRecord | null;
}

function tensorsOf(s: PendingStep): tf.Tensor[] {
  return [s.finite, s.loss, s.values, ...(s.targetLosses ? [s.targetLosses] : [])];
}

/**
 * Buffers per-step tensors and turns them into {@link StepRecord}s with ONE asynchronous read per
 * flush (a blocking read per step would stall a GPU backend's pipeline).
 */
export class RecordBuffer {
  private pending: PendingStep[] = [];
  /** Finiteness flags of steps that keep no record, folded into one tensor (the count stays flat across steps). */
  private flags: tf.Tensor1D | null = null;
  private flagSteps: number[] = [];

  constructor(
    private readonly runId: string,
    private readonly columns: readonly string[],
    private readonly targets: readonly string[],
  ) {}

  get size(): number {
    return this.pending.length + this.flagSteps.length;
  }

  /** A step that keeps no record: only its finiteness flag (a scalar bool, taken over) waits for the read. */
  pushFlag(step: number, finite: tf.Scalar): void {
    const next = tf.tidy(() => tf.concat([...(this.flags === null ? [] : [this.flags]), tf.reshape(tf.cast(finite, 'float32'), [1])]) as tf.Tensor1D);
    this.flags?.dispose();
    finite.dispose();
    this.flags = next;
    this.flagSteps.push(step);
  }

  /** Adds a step; the previous one's duration is now known. */
  push(step: PendingStep): void {
    const previous = this.pending.at(-1);
    if (previous !== undefined) previous.stepMs = step.startedAt - previous.startedAt;
    this.pending.push(step);
  }

  /**
   * Reads every pending step in one `data()` call (the finiteness flags ride along, so detecting a
   * non-finite step costs no extra sync); frees the tensors.
   */
  async drain(): Promise<DrainedStep[]> {
    const steps = this.pending;
    const flags = this.flags;
    const flagSteps = this.flagSteps;
    this.pending = [];
    this.flags = null;
    this.flagSteps = [];
    if (steps.length === 0 && flags === null) return [];
    const now = performance.now();
    const flat = tf.tidy(() =>
      tf.concat([
        ...steps.flatMap((s) => [
          tf.reshape(tf.cast(s.finite, 'float32'), [1]),
          tf.reshape(s.values, [-1]),
          tf.reshape(s.loss, [1]),
          ...(s.targetLosses ? [s.targetLosses] : []),
        ]),
        ...(flags === null ? [] : [flags]),
      ]),
    );
    for (const s of steps) tf.dispose(tensorsOf(s));
    flags?.dispose();
    let data: Float32Array;
    try {
      data = (await flat.data()) as Float32Array;
    } finally {
      flat.dispose();
    }
    const out: DrainedStep[] = [];
    let at = 0;
    const width = this.columns.length;
    for (const s of steps) {
      const finite = data[at++] === 1;
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
      const record: StepRecord = {
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
      };
      out.push({ step: s.step, finite, record });
    }
    flagSteps.forEach((step) => out.push({ step, finite: data[at++] === 1, record: null }));
    // Records can start or stop mid-run (a subscriber arrives): keep step order.
    return out.sort((a, b) => a.step - b.step);
  }

  dispose(): void {
    for (const s of this.pending) tf.dispose(tensorsOf(s));
    this.pending = [];
    this.flags?.dispose();
    this.flags = null;
    this.flagSteps = [];
  }
}
