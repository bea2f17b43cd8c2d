// tf.js models saved as files (model.json + weight files, as tfjs-node's file:// and tensorflowjs_converter write them), loaded without tfjs-node; and "a checkpoint or a model folder".
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { isCheckpointFolder, loadCheckpoint, specBytes } from './checkpoint.js';

const MODEL_JSON = 'model.json';

function bad(file: string, what: string, cause?: unknown): InrunError {
  return new InrunError(`${file}: ${what}`, { field: 'model', code: 'invalid_input', cause });
}

/**
 * Loads a Layers model saved as files: a folder holding `model.json` (or the `model.json` itself) whose
 * `weightsManifest` names weight files beside it, the layout `model.save('file://dir')` writes with
 * tfjs-node and `tensorflowjs_converter` writes for Keras models. Plain `@tensorflow/tfjs` has no
 * `file://` loader in Node; this reads the files with `fs`, so it works on any backend. A compiled
 * model's training config (loss, optimizer) comes back with it. Weight paths must stay inside the folder.
 */
export async function loadModelFolder(path: string): Promise<tf.LayersModel> {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, MODEL_JSON) : path;
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as tf.io.ModelJSON;
  } catch (cause) {
    throw bad(file, `is not a readable model.json (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, cause);
  }
  if (json === null || typeof json !== 'object' || json.modelTopology == null || !Array.isArray(json.weightsManifest)) {
    throw bad(file, 'is not a tf.js model.json (expected modelTopology and weightsManifest)');
  }
  const dir = dirname(resolve(file));
  const artifacts = await tf.io.getModelArtifactsForJSON(json, (manifest) => {
    const specs = manifest.flatMap((group) => group.weights);
    const buffers = manifest.flatMap((group) =>
      group.paths.map((p) => {
        const at = resolve(dir, p);
        // Real paths: a weight file that is a symlink to a file elsewhere is outside the folder too.
        const rel = relative(realpathSync(dir), existsSync(at) ? realpathSync(at) : at);
        // A hostile manifest could name any file on the machine: keep reads inside the model's folder.
        if (rel.startsWith('..') || isAbsolute(rel)) throw bad(file, `names a weight file outside its folder: ${JSON.stringify(p).slice(0, 200)}`);
        try {
          const b = readFileSync(at);
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        } catch (cause) {
          throw bad(at, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}); the model is incomplete`, cause);
        }
      }),
    );
    const weightData = tf.io.concatenateArrayBuffers(buffers);
    // Quantized weights are decoded by tf.js (their stored size is not 4 bytes a value): check plain ones here.
    if (specs.every((s) => s.quantization === undefined && (s.dtype === 'float32' || s.dtype === 'int32' || s.dtype === 'bool'))) {
      const wanted = specBytes(specs);
      if (weightData.byteLength !== wanted) throw bad(file, `its weight files hold ${weightData.byteLength} bytes, the manifest needs ${wanted}: truncated or from another model`);
    }
    return Promise.resolve([specs, weightData]);
  });
  try {
    return await tf.loadLayersModel({ load: () => Promise.resolve(artifacts) });
  } catch (cause) {
    throw bad(file, `does not load as a Layers model (${(cause as Error).message})`, cause);
  }
}

/** A trained model from a path: an inrun checkpoint (or a folder with a `latest` file), else a tf.js model folder ({@link loadModelFolder}). */
export async function loadTrainedModel(path: string): Promise<tf.LayersModel> {
  if (isCheckpointFolder(path) || existsSync(join(path, 'latest'))) return loadCheckpoint(path);
  if (!existsSync(path)) throw new InrunError(`no model at ${path} (expected an inrun checkpoint folder or a tf.js model.json folder)`, { field: 'model', code: 'invalid_input' });
  return loadModelFolder(path);
}
