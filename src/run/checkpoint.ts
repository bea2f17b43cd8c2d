// Checkpoint folders: model weights, optimizer state and inrun.json, written atomically, read back.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';

/** What inrun stores beside a checkpoint's model: where in the run it was taken. */
export interface CheckpointInfo {
  /** Run the checkpoint belongs to. */
  readonly runId: string;
  /** Last step whose update the weights include (-1 before any step). */
  readonly step: number;
  /** Last finished epoch of `run.fit`/`fitDataset`, or null in custom loops. */
  readonly epoch: number | null;
  /** The optimizer's learning rate at the checkpoint. */
  readonly learningRate: number;
  readonly savedAt: string;
}

interface StoredInfo extends CheckpointInfo {
  /** Scalar optimizer state outside `getWeights()` (Adam's beta powers), for bit-exact resumption. */
  readonly optimizerScalars: Record<string, number>;
}

const MODEL = 'model.json';
const WEIGHTS = 'weights.bin';
const INFO = 'inrun.json';
const LATEST = 'latest';

function scalarVariables(optimizer: tf.Optimizer | undefined): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [key, value] of Object.entries(optimizer ?? {})) {
    if (value instanceof tf.Variable && value.rank === 0) out.set(key, value as tf.Variable);
  }
  return out;
}

/**
 * Saves a compiled LayersModel (topology, weights, optimizer state) in tf.js' own format to the
 * folder `dir`, with `info`. The folder appears whole or not at all (written aside, then renamed).
 * tf.js' `setWeights` recomputes Adam's beta powers with `pow`, which differs from the running product
 * in the last bits; the exact values are stored too, so training resumes bit for bit.
 */
export async function saveCheckpoint(
  model: tf.LayersModel,
  dir: string,
  info: Omit<CheckpointInfo, 'savedAt'>,
  /** More files for the folder (written inside the same atomic rename), by name. */
  extra: Readonly<Record<string, string | Uint8Array>> = {},
): Promise<void> {
  if (existsSync(dir)) throw new InrunError(`checkpoint folder ${dir} exists already`, { field: 'dir', code: 'invalid_state' });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    await model.save(
      tf.io.withSaveHandler((artifacts) => {
        const { weightData, ...json } = artifacts;
        const bytes = new Uint8Array(weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(weightData));
        writeFileSync(join(tmp, WEIGHTS), bytes);
        writeFileSync(join(tmp, MODEL), JSON.stringify(json));
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const, weightDataBytes: bytes.byteLength } });
      }),
      { includeOptimizer: true },
    );
    const optimizerScalars: Record<string, number> = {};
    for (const [key, v] of scalarVariables(model.optimizer)) optimizerScalars[key] = v.dataSync()[0]!;
    const stored: StoredInfo = { ...info, savedAt: new Date().toISOString(), optimizerScalars };
    writeFileSync(join(tmp, INFO), JSON.stringify(stored, null, 2));
    for (const [name, content] of Object.entries(extra)) writeFileSync(join(tmp, name), content);
    renameSync(tmp, dir);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** Points `parent/latest` at the checkpoint folder `name` (an atomic file replace). */
export function markLatest(parent: string, name: string): void {
  const tmp = join(parent, `.${LATEST}.tmp-${process.pid}`);
  writeFileSync(tmp, name);
  renameSync(tmp, join(parent, LATEST));
}

/** Whether `path` is one checkpoint folder (it holds inrun's `inrun.json`). */
export function isCheckpointFolder(path: string): boolean {
  return existsSync(join(path, INFO));
}

/** The checkpoint folder `path` names: itself, or the one its `latest` file points at. */
export function resolveCheckpoint(path: string): string {
  const latest = join(path, LATEST);
  if (existsSync(latest)) return join(path, readFileSync(latest, 'utf8').trim());
  if (isCheckpointFolder(path)) return path;
  throw new InrunError(`no checkpoint at ${path} (expected ${INFO}, or a ${LATEST} file naming one)`, { field: 'checkpoint', code: 'bad_checkpoint' });
}

/** Reads a checkpoint's `inrun.json`. */
export function readCheckpointInfo(path: string): CheckpointInfo {
  const dir = resolveCheckpoint(path);
  const stored = JSON.parse(readFileSync(join(dir, INFO), 'utf8')) as StoredInfo;
  return { runId: stored.runId, step: stored.step, epoch: stored.epoch, learningRate: stored.learningRate, savedAt: stored.savedAt };
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint} or `run.checkpoint()`: the model, compiled with
 * its optimizer in the saved state. `path` is a checkpoint folder or a folder with a `latest` file.
 */
export async function loadCheckpoint(path: string): Promise<tf.LayersModel> {
  const dir = resolveCheckpoint(path);
  const json = JSON.parse(readFileSync(join(dir, MODEL), 'utf8')) as Omit<tf.io.ModelArtifacts, 'weightData'>;
  const weights = readFileSync(join(dir, WEIGHTS));
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  const model = await tf.loadLayersModel({ load: () => Promise.resolve({ ...json, weightData }) });
  const stored = JSON.parse(readFileSync(join(dir, INFO), 'utf8')) as StoredInfo;
  const scalars = scalarVariables(model.optimizer);
  for (const [key, value] of Object.entries(stored.optimizerScalars ?? {})) {
    const v = scalars.get(key);
    if (v !== undefined) tf.tidy(() => v.assign(tf.scalar(value)));
  }
  return model;
}

/** The folder for a run's checkpoint after `step`: `<parent>/step-000000123`. */
export function checkpointName(step: number): string {
  return `step-${String(Math.max(step, 0)).padStart(9, '0')}`;
}
