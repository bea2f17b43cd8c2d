// What the browser entry offers in place of features that need a file system: errors saying what to use.
import { InrunError } from './errors.js';

function unavailable(name: string, instead: string): never {
  throw new InrunError(`${name} needs a file system, which the browser entry of inrun lacks: ${instead}`, { field: name, code: 'unsupported_platform' });
}

const SINKS = "pass a browser sink from '@inrun/store/browser' (sqliteWasmSink, browserParquetSink) (or none: run.records$ and run.scores() work everywhere), or write the store from Node";
const FOLDERS = "run it in Node (import 'inrun' there); in a page keep the model with model.save('indexeddb://...')";

/** Node only: the SQLite sink writes a file with better-sqlite3. */
export function sqliteSink(..._args: unknown[]): never {
  return unavailable('sqliteSink', SINKS);
}

/** Node only: the Parquet sink writes segment files to a folder. */
export function parquetSink(..._args: unknown[]): never {
  return unavailable('parquetSink', SINKS);
}

/** Node only: checkpoints are folders. */
export function saveCheckpoint(..._args: unknown[]): never {
  return unavailable('saveCheckpoint', FOLDERS);
}

/** Node only: checkpoints are folders. */
export function loadCheckpoint(..._args: unknown[]): never {
  return unavailable('loadCheckpoint', FOLDERS);
}

/** Node only: checkpoints are folders. */
export function readCheckpointInfo(..._args: unknown[]): never {
  return unavailable('readCheckpointInfo', FOLDERS);
}

/** Node only: reads a model folder. */
export function loadModelFolder(..._args: unknown[]): never {
  return unavailable('loadModelFolder', "load the model with tf.loadLayersModel('indexeddb://...' or an http URL) instead");
}

/** Node only: TracIn reads checkpoint folders. */
export function tracin(..._args: unknown[]): never {
  return unavailable('tracin', `its checkpoints are folders: ${FOLDERS}; in a page, attach() scores during training`);
}

/** Node only: TRAK reads checkpoint folders. */
export function trak(..._args: unknown[]): never {
  return unavailable('trak', `its checkpoints are folders: ${FOLDERS}`);
}

/** Node only: UnTrac reads checkpoint folders and reports progress on the terminal. */
export function untrac(..._args: unknown[]): never {
  return unavailable('untrac', FOLDERS);
}

/** Node only: dataset-level influence is stored in a SQLite file beside the runs. */
export function readSourceInfluence(..._args: unknown[]): never {
  return unavailable('readSourceInfluence', FOLDERS);
}

/** Node only: dataset-level influence is stored in a SQLite file beside the runs. */
export function writeSourceInfluence(..._args: unknown[]): never {
  return unavailable('writeSourceInfluence', FOLDERS);
}
