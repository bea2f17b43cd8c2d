// StepCounter: how many steps the run has attributed (resumed ones included), read by flushes and checkpoints.
export class StepCounter {
  private count = 0;

  /** Attributed steps so far; also the number the next step gets. */
  get steps(): number {
    return this.count;
  }

  /** The last attributed step (-1 before the first). */
  get last(): number {
    return this.count - 1;
  }

  /** A step was attributed. */
  advance(): void {
    this.count++;
  }

  /** A resumed run continues after `step`. */
  resumeAfter(step: number): void {
    this.count = step + 1;
  }
}
