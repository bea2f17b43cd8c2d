// TotalsSnapshots: totals snapshots sent to the sinks, at the last step, and when the next one is due.
import type { Delivery } from '../stream/delivery.js';
import type { Scores } from '../types.js';
import type { StepCounter } from './step-counter.js';

export class TotalsSnapshots {
  /** Step of the last snapshot sent (-1: none). */
  private last = -1;

  constructor(
    private readonly delivery: Delivery,
    /** Steps between snapshots (0 = only at checkpoints and close). */
    private readonly every: number,
    private readonly counter: StepCounter,
  ) {}

  /** Whether `totalsEvery` steps passed since the last snapshot. */
  get due(): boolean {
    return this.every > 0 && this.counter.last - this.last >= this.every;
  }

  /** Sends a totals snapshot after the last step to the sinks (never dropped). */
  async push(scores: Scores, final: boolean): Promise<void> {
    const step = this.counter.last;
    this.last = step;
    await this.delivery.push({ kind: 'scores', scores, at: { step, final } });
  }

  /** A resumed run's sinks hold a snapshot at `step`. */
  resumeAt(step: number): void {
    this.last = step;
  }
}
