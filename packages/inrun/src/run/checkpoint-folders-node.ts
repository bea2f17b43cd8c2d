// Checkpoint folders over node:fs: what the Node entry installs (checkpoint-choice.ts).
import { markLatest, readCheckpointInfo, resolveCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { CheckpointFolders } from './checkpoint-folders.js';
import { readTotalsFiles, totalsFiles } from './totals-files.js';

export const nodeCheckpointFolders: CheckpointFolders = {
  save: saveCheckpoint,
  markLatest,
  readInfo: readCheckpointInfo,
  resolve: resolveCheckpoint,
  totalsFiles,
  readTotals: readTotalsFiles,
};
