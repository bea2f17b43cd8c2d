// The checkpoint folders a run writes and resumes from: the contract, without a file system.
import type * as tf from '@tensorflow/tfjs';
import type { ResumeState } from '@inrun/store/core';
import type { Scores } from '../types.js';
import type { CheckpointInfo } from './checkpoint.js';

/**
 * What `run.checkpoint(dir)`, `checkpoints: { dir }` and `run.resume(dir)` need from a file system.
 * The Node entry (`inrun`) installs the implementation over `node:fs` (checkpoint-folders-node.ts);
 * the browser entry installs none, so these features fail there with an `InrunError`
 * (`unsupported_platform`) instead of pulling Node built-ins into a page bundle.
 */
export interface CheckpointFolders {
  /** Saves `model` with `info` and `extra` files to the folder `dir`, atomically. */
  save(model: tf.LayersModel, dir: string, info: Omit<CheckpointInfo, 'savedAt'>, extra: Readonly<Record<string, string | Uint8Array>>): Promise<void>;
  /** Points `parent/latest` at the checkpoint folder `name`. */
  markLatest(parent: string, name: string): void;
  /** The checkpoint's `inrun.json`. */
  readInfo(path: string): CheckpointInfo;
  /** The checkpoint folder `path` names (itself, or the one its `latest` file points at). */
  resolve(path: string): string;
  /** The device totals as files for the folder. */
  totalsFiles(scores: Scores, columns: readonly string[]): Record<string, string | Uint8Array>;
  /** The totals saved in checkpoint folder `dir`, or null for a checkpoint written before they were. */
  readTotals(dir: string, columns: readonly string[], step: number): ResumeState | null;
}
