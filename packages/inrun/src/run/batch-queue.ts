// BatchQueue: the example ids waiting for the optimizer step that consumes them.
import type { ExampleId } from '../types.js';

/** Ids of the rows of one step, and the field that gave them (for errors). */
export interface PendingBatch {
  readonly ids: readonly ExampleId[];
  readonly field: string;
}

/** One batch at most waits: fitDataset fetches an element right before its step, run.step queues before fn. */
export class BatchQueue {
  private batches: PendingBatch[] = [];

  /** Whether a queued batch is still waiting (a step that never ran). */
  get pending(): boolean {
    return this.batches.length > 0;
  }

  /** Queues the next step's ids, dropping a leftover (it belonged to a step that never ran). */
  set(batch: PendingBatch): void {
    this.batches = [batch];
  }

  /** The ids for the step running now, or undefined when none were queued. */
  take(): PendingBatch | undefined {
    return this.batches.shift();
  }

  clear(): void {
    this.batches = [];
  }
}
