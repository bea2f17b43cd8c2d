// Which checkpoint folders implementation runs use: installed by the Node entry, absent in browsers.
import { InrunError } from '../errors.js';
import type { CheckpointFolders } from './checkpoint-folders.js';

let installed: CheckpointFolders | null = null;

/** Installs the implementation (the Node entry does, at import). */
export function useCheckpointFolders(folders: CheckpointFolders): void {
  installed = folders;
}

/**
 * The installed implementation, or an `InrunError` naming `field` (`checkpoints.dir`, `checkpoint`,
 * `resume`) where there is none: the browser entry has no file system.
 */
export function requireCheckpointFolders(field: string): CheckpointFolders {
  if (installed !== null) return installed;
  throw new InrunError(
    "checkpoint folders need a file system, which the browser entry of inrun lacks: import inrun in Node for checkpoints, or keep the model in the page with model.save('indexeddb://...') and the scores with run.scores() or a browser sink",
    { field, code: 'unsupported_platform' },
  );
}
