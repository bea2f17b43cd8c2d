// EpochTracker: the fit callback that tells the run's Epochs where fit/fitDataset is, and when an epoch ends.
import * as tf from '@tensorflow/tfjs';
import type { Epochs } from './epochs.js';

/** Tells the run which epoch `fit`/`fitDataset` is in, and when one ends (automatic checkpoints). */
export class EpochTracker extends tf.Callback {
  constructor(
    private readonly epochs: Epochs,
    private readonly onEpochDone: (epoch: number) => Promise<void>,
  ) {
    super();
  }
  override onEpochBegin(epoch: number): Promise<void> {
    this.epochs.begin(epoch);
    return Promise.resolve();
  }
  override onEpochEnd(epoch: number): Promise<void> {
    this.epochs.end(epoch);
    return this.onEpochDone(epoch);
  }
  override onTrainEnd(): Promise<void> {
    this.epochs.leave();
    return Promise.resolve();
  }
}
