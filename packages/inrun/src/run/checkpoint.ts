// Checkpoint folders: model weights, optimizer state and inrun.json, written atomically, read back.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';

/** What inrun stores beside a checkpoint's model: where in the run it was taken. */
export interface CheckpointInfo {
  /** Run the checkpoint belongs to. */
  readonly runId: string;
  /** Last step whose update the weights include (-1 before any step). */
  readonly step: number;
  /**
   * Last finished epoch of `run.fit`/`fitDataset` (the step's own epoch when the step is that epoch's
   * last, so resuming with `initialEpoch: epoch + 1` trains no epoch twice), or null before the first
   * epoch ends and in custom loops.
   */
  readonly epoch: number | null;
  /** The optimizer's learning rate at the checkpoint. */
  readonly learningRate: number;
  readonly savedAt: string;
}

interface StoredInfo extends CheckpointInfo {
  /** Scalar optimizer state outside `getWeights()` (Adam's beta powers), for bit-exact resumption. */
  readonly optimizerScalars: Record<string, number>;
  /** Weights in model.json's manifest (model and optimizer), to tell a checkpoint that lost some. Absent before 0.x. */
  readonly weightCount?: number;
}

/** One weight as model.json lists it (`weightSpecs` of tf.js' model artifacts). */
interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
}

/** An InrunError (`bad_checkpoint`) naming the file at fault. */
function bad(file: string, what: string, cause?: unknown): InrunError {
  return new InrunError(`${file}: ${what}`, { field: 'checkpoint', code: 'bad_checkpoint', cause });
}

/** Reads a JSON file of a checkpoint: missing or garbled is a `bad_checkpoint` naming it. */
function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw bad(file, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}); the checkpoint is incomplete`, cause);
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw bad(file, `is not valid JSON (${(cause as Error).message}); the checkpoint is corrupt`, cause);
  }
}

/** A checkpoint folder's inrun.json, checked for form. */
function readStored(dir: string): StoredInfo {
  const file = join(dir, INFO);
  const s = readJson(file) as Partial<StoredInfo> | null;
  const ok =
    s !== null &&
    typeof s === 'object' &&
    !Array.isArray(s) &&
    typeof s.runId === 'string' &&
    Number.isInteger(s.step) &&
    (s.epoch === null || Number.isInteger(s.epoch)) &&
    typeof s.learningRate === 'number';
  if (!ok) throw bad(file, 'is not an inrun checkpoint record (expected runId, step, epoch, learningRate)');
  return s as StoredInfo;
}

/** Bytes the listed weights take (float32/int32: 4 bytes, bool: 1). */
export function specBytes(specs: readonly WeightSpec[]): number {
  return specs.reduce((bytes, w) => bytes + w.shape.reduce((a, b) => a * b, 1) * (w.dtype === 'bool' ? 1 : 4), 0);
}

/** Whether `dir` holds a whole, readable checkpoint of run `runId` at `step` (files present, sizes right). */
function isComplete(dir: string): StoredInfo | null {
  try {
    const stored = readStored(dir);
    const json = readJson(join(dir, MODEL)) as { weightSpecs?: WeightSpec[] };
    if (!existsSync(join(dir, WEIGHTS)) || statSync(join(dir, WEIGHTS)).size !== specBytes(json.weightSpecs ?? [])) return null;
    return stored;
  } catch {
    return null;
  }
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
  if (existsSync(dir)) {
    // A crash after the rename but before `latest` moved leaves this step's folder behind: a whole
    // one of the same run and step is reused (resumed training is bit for bit, so it holds the same
    // state), an incomplete one is replaced, another run's is never touched.
    const existing = isComplete(dir);
    if (existing !== null && (existing.runId !== info.runId || existing.step !== info.step)) {
      throw new InrunError(`checkpoint folder ${dir} holds step ${existing.step} of run "${existing.runId}"; checkpoint run "${info.runId}" into another folder`, {
        field: 'dir',
        code: 'invalid_state',
      });
    }
    if (existing !== null) return;
    rmSync(dir, { recursive: true, force: true });
  }
  // A crash mid-save leaves `<dir>.tmp-*` behind: this step is being written again, so clear them.
  const parent = dirname(dir);
  if (existsSync(parent)) {
    for (const f of readdirSync(parent)) if (f.startsWith(`${basename(dir)}.tmp-`)) rmSync(join(parent, f), { recursive: true, force: true });
  }
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
    for (const [key, v] of scalarVariables(model.optimizer)) optimizerScalars[key] = (await v.data())[0]!;
    const weightCount = (JSON.parse(readFileSync(join(tmp, MODEL), 'utf8')) as { weightSpecs?: WeightSpec[] }).weightSpecs?.length ?? 0;
    const stored: StoredInfo = { ...info, savedAt: new Date().toISOString(), optimizerScalars, weightCount };
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
  // A process killed between this write and the rename leaves its temp file behind: one run owns the
  // folder (checkpoint folders refuse another run's steps), so any other pid's leftover is stale.
  const tmp = join(parent, `.${LATEST}.tmp-${process.pid}`);
  for (const f of readdirSync(parent)) if (f.startsWith(`.${LATEST}.tmp-`) && join(parent, f) !== tmp) rmSync(join(parent, f), { force: true });
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
  if (existsSync(latest)) {
    const dir = join(path, readFileSync(latest, 'utf8').trim());
    if (!isCheckpointFolder(dir)) throw bad(dir, `named by ${latest} is not a checkpoint folder (missing, or without ${INFO})`);
    return dir;
  }
  if (isCheckpointFolder(path)) return path;
  if (existsSync(join(path, MODEL))) throw bad(join(path, INFO), 'is missing: the checkpoint is incomplete (written by hand, or cut short)');
  throw new InrunError(`no checkpoint at ${path} (expected ${INFO}, or a ${LATEST} file naming one)`, { field: 'checkpoint', code: 'bad_checkpoint' });
}

/** Reads a checkpoint's `inrun.json`. */
export function readCheckpointInfo(path: string): CheckpointInfo {
  const dir = resolveCheckpoint(path);
  const stored = readStored(dir);
  return { runId: stored.runId, step: stored.step, epoch: stored.epoch, learningRate: stored.learningRate, savedAt: stored.savedAt };
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint} or `run.checkpoint()`: the model, compiled with
 * its optimizer in the saved state. `path` is a checkpoint folder or a folder with a `latest` file.
 */
export async function loadCheckpoint(path: string): Promise<tf.LayersModel> {
  const dir = resolveCheckpoint(path);
  const stored = readStored(dir);
  const modelFile = join(dir, MODEL);
  const json = readJson(modelFile) as { modelTopology?: unknown; weightSpecs?: WeightSpec[] } | null;
  if (json === null || typeof json !== 'object' || json.modelTopology == null || !Array.isArray(json.weightSpecs)) {
    throw bad(modelFile, 'is not a tf.js model (expected modelTopology and weightSpecs)');
  }
  const count = json.weightSpecs.length;
  if (stored.weightCount !== undefined && count !== stored.weightCount) {
    throw bad(modelFile, `lists ${count} weights, the checkpoint saved ${stored.weightCount} (model and optimizer state); it is incomplete`);
  }
  const weightsFile = join(dir, WEIGHTS);
  let weights: Buffer;
  try {
    weights = readFileSync(weightsFile);
  } catch (cause) {
    throw bad(weightsFile, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}); the checkpoint is incomplete`, cause);
  }
  const expected = specBytes(json.weightSpecs);
  if (weights.byteLength !== expected) throw bad(weightsFile, `holds ${weights.byteLength} bytes, ${MODEL}'s manifest needs ${expected}: truncated or from another model`);
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  const artifacts = json as unknown as Omit<tf.io.ModelArtifacts, 'weightData'>;
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel({ load: () => Promise.resolve({ ...artifacts, weightData }) });
  } catch (cause) {
    throw bad(modelFile, `does not load: the weights do not fit the model it describes (${(cause as Error).message})`, cause);
  }
  const scalars = scalarVariables(model.optimizer);
  for (const [key, value] of Object.entries(stored.optimizerScalars ?? {})) {
    const v = scalars.get(key);
    if (v !== undefined) tf.tidy(() => v.assign(tf.scalar(value)));
  }
  return model;
}

export { checkpointName } from './checkpoint-name.js';
