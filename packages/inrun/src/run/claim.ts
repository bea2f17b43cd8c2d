// One run per model and optimizer: marking them attached, and the fit callback that tracks epochs.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { Restore } from '../hooks/restore.js';

const ATTACHED = Symbol.for('inrun.attached');

/** Marks `owner` (a model or optimizer) as attached; throws if a live run holds it already. */
export function claim(owner: object, what: string): Restore {
  const o = owner as { [ATTACHED]?: boolean };
  if (o[ATTACHED]) throw new InrunError(`this ${what} is already attached to a run; close() that run first`, { field: 'model', code: 'invalid_state' });
  o[ATTACHED] = true;
  return () => {
    delete o[ATTACHED];
  };
}

/** Tells the run which epoch `fit`/`fitDataset` is in, and when one ends (automatic checkpoints). */
export class EpochTracker extends tf.Callback {
  constructor(private readonly run: { epoch: number | null; finishedEpoch: number | null; onEpochDone(epoch: number): Promise<void> }) {
    super();
  }
  override onEpochBegin(epoch: number): Promise<void> {
    this.run.epoch = epoch;
    return Promise.resolve();
  }
  override onEpochEnd(epoch: number): Promise<void> {
    this.run.finishedEpoch = epoch;
    return this.run.onEpochDone(epoch);
  }
  override onTrainEnd(): Promise<void> {
    this.run.epoch = null;
    return Promise.resolve();
  }
}
