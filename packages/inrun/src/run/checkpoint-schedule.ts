// CheckpointSchedule: automatic checkpoints every `everySteps` steps or `everyEpochs` epochs, at most one per step.
import type { StepCounter } from './step-counter.js';

/** Automatic checkpoints (`attach({ checkpoints })`). */
export interface CheckpointPlan {
  readonly dir: string;
  readonly everySteps?: number;
  readonly everyEpochs?: number;
}

export class CheckpointSchedule {
  /** Step of the last automatic checkpoint (-1: none). */
  private last = -1;

  constructor(
    private readonly plan: CheckpointPlan | null,
    private readonly counter: StepCounter,
    /** Whether checkpoints can be taken (a LayersModel). */
    private readonly canSave: boolean,
    private readonly take: (dir: string) => Promise<unknown>,
  ) {}

  /** Automatic checkpoint every `everySteps` steps (between steps). */
  async afterStep(): Promise<void> {
    const every = this.plan?.everySteps;
    if (every === undefined || !this.canSave) return;
    const step = this.counter.last;
    if (step >= 0 && step !== this.last && (step + 1) % every === 0) {
      this.last = step;
      await this.take(this.plan!.dir);
    }
  }

  /** Automatic checkpoint after every `everyEpochs` epochs (called by fit's epoch tracker). */
  async afterEpoch(epoch: number): Promise<void> {
    const every = this.plan?.everyEpochs;
    if (every === undefined || (epoch + 1) % every !== 0 || this.counter.last === this.last) return;
    this.last = this.counter.last;
    await this.take(this.plan!.dir);
  }
}
