// writeRunCheckpoint: a run's checkpoint folder: the model, its point (step, epoch, learning rate), totals and sketches.
import type * as tf from '@tensorflow/tfjs';
import type { IdIndex } from '../hooks/ids.js';
import { readLearningRate } from '../hooks/optimizer.js';
import type { RunSketch } from '../scoring/attributor.js';
import type { Scores } from '../types.js';
import { checkpointName, markLatest, saveCheckpoint, type CheckpointInfo } from './checkpoint.js';
import { sketchFiles } from './sketch-files.js';
import { totalsFiles } from './totals-files.js';

/** What a checkpoint records besides the model. */
export interface CheckpointContent {
  readonly runId: string;
  readonly step: number;
  readonly epoch: number | null;
  readonly optimizer: tf.Optimizer;
  /** The totals at `step` (already sent to the sinks). */
  readonly totals: Scores;
  readonly columns: readonly string[];
  readonly sketch: RunSketch | null;
  readonly index: IdIndex;
}

/** Saves `<dir>/step-<n>` and points `<dir>/latest` at it. */
export async function writeRunCheckpoint(model: tf.LayersModel, dir: string, content: CheckpointContent): Promise<CheckpointInfo> {
  const info = {
    runId: content.runId,
    step: content.step,
    epoch: content.epoch,
    learningRate: readLearningRate(content.optimizer),
  };
  const name = checkpointName(info.step);
  const extra = { ...totalsFiles(content.totals, content.columns), ...(content.sketch === null ? {} : await sketchFiles(content.sketch, content.index)) };
  await saveCheckpoint(model, `${dir}/${name}`, info, extra);
  markLatest(dir, name);
  return { ...info, savedAt: new Date().toISOString() };
}
