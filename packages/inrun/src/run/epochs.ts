// Epochs: the epoch fit/fitDataset is in (null outside) and the last finished one, for step records and checkpoints.
export class Epochs {
  private inProgress: number | null = null;
  private done: number | null = null;

  /** Epoch in progress in fit/fitDataset, or null outside them (custom loops). */
  get current(): number | null {
    return this.inProgress;
  }

  /** The last finished epoch (what a checkpoint records), or null. */
  get finished(): number | null {
    return this.done;
  }

  begin(epoch: number): void {
    this.inProgress = epoch;
  }

  end(epoch: number): void {
    this.done = epoch;
  }

  /** The dataset ran out: the step before an epoch's end finished that epoch, so a checkpoint taken now records it. */
  endCurrent(): void {
    if (this.inProgress !== null) this.done = this.inProgress;
  }

  /** fit/fitDataset returned (or failed): steps from now on belong to no epoch. */
  leave(): void {
    this.inProgress = null;
  }

  /** A resumed run continues after the checkpoint's epoch. */
  resumeAt(finished: number | null): void {
    this.done = finished;
  }
}
