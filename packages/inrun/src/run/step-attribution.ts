// StepAttribution: the optimizer seam's handler: runs one step under a capture, scores it and buffers its record.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { Capture, withCapture } from '../hooks/capture.js';
import type { FusedPlan } from '../hooks/fused.js';
import type { IdIndex } from '../hooks/ids.js';
import { readLearningRate, type Gradients, type RunCompute } from '../hooks/optimizer.js';
import type { ModelAdapter } from '../model/adapter.js';
import type { Attributor } from '../scoring/attributor.js';
import { disposePasses, type GroupPass } from '../scoring/targets.js';
import type { RecordBuffer } from '../stream/records.js';
import type { BatchQueue, PendingBatch } from './batch-queue.js';
import type { Epochs } from './epochs.js';
import { fusedStep } from './fused-step.js';
import type { StepCounter } from './step-counter.js';

/** What scores a step. */
export interface StepScoring {
  readonly model: ModelAdapter;
  readonly attributor: Attributor;
  /** The fused target pass's plan, or null when target rows take a pass of their own. */
  readonly fused: FusedPlan | null;
}

/** The run state a step reads and advances. */
export interface StepState {
  readonly queue: BatchQueue;
  readonly index: IdIndex;
  readonly buffer: RecordBuffer;
  readonly counter: StepCounter;
  readonly epochs: Epochs;
  /** Whether this step keeps a per-step record (someone reads records$, or a sink takes steps). */
  readonly keepsRecords: () => boolean;
  /** Throws when training must not go on (a sink failure, a non-finite step under 'stop'). */
  readonly guard: () => void;
}

export class StepAttribution {
  constructor(
    private readonly scoring: StepScoring,
    private readonly state: StepState,
  ) {}

  /** The optimizer seam's handler: the update's gradients, after the step was scored. */
  onGradients(compute: RunCompute): Gradients {
    this.state.guard();
    const batch = this.state.queue.take();
    if (batch === undefined) {
      throw new InrunError(
        'a training step ran without example ids. Train with run.fit(x, y, { ids }), run.fitDataset(dataset) ' +
          'whose elements are { xs, ys, ids }, or wrap a custom step in run.step(ids, () => optimizer.minimize(...)); ' +
          'call run.close() to train without attribution', { code: 'invalid_input' },
      );
    }
    const startedAt = performance.now();
    const capture = new Capture();
    let result: Gradients | null = null;
    let passes: GroupPass[] | undefined;
    try {
      const fused = this.scoring.fused;
      if (fused === null) {
        result = withCapture(capture, () => compute());
      } else {
        ({ result, passes } = fusedStep(fused, compute, capture, batch.ids.length));
      }
      this.attribute(capture, batch, result, startedAt, passes);
      return result;
    } catch (error) {
      if (result !== null) tf.dispose([result.value, ...Object.values(result.grads)]);
      throw error;
    } finally {
      capture.dispose();
      if (passes !== undefined) disposePasses(passes);
    }
  }

  private attribute(capture: Capture, batch: PendingBatch, result: Gradients, startedAt: number, passes?: GroupPass[]): void {
    const { index, buffer, counter } = this.state;
    const loss = result.value;
    const attributionStart = performance.now();
    const slots = index.slotsOf(batch.ids, batch.field);
    const n = slots.length;
    const rows = [...capture.layers.values()][0]?.calls[0]?.inputs[0]?.shape[0];
    if (rows !== undefined && rows !== n) {
      throw new InrunError(`got ${n} ids for a batch of ${rows} rows; give one id per row, in row order`, { field: batch.field, code: 'invalid_input' });
    }
    const { model, attributor } = this.scoring;
    const learningRate = readLearningRate(model.optimizer);
    const scale = { learningRate, lossScale: model.lossReduction === 'mean' ? 1 / n : 1 };
    const keep = this.state.keepsRecords();
    const out = attributor.step(capture, slots, scale, keep, counter.steps, loss, result.grads, passes);
    // Without a record the finiteness flag still waits for the next flush's read.
    if (out.values === null) {
      buffer.pushFlag(counter.steps, out.finite);
    } else {
      buffer.push({
        step: counter.steps,
        epoch: this.state.epochs.current,
        learningRate,
        ids: batch.ids,
        values: out.values,
        loss: tf.keep(loss.clone()),
        targetLosses: out.targetLosses,
        finite: out.finite,
        startedAt,
        attributionMs: performance.now() - attributionStart,
      });
    }
    counter.advance();
  }
}
