// Model folders against hostile layouts: weight files are read only from inside the folder, real paths resolved.
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from 'inrun';
import { loadTrainedModel } from 'inrun/internal';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('a model folder reads weights only from inside itself', () => {
  it('a weight file that is a symlink to a file outside the folder is refused', async () => {
    const root = mkdtempSync(join(tmpdir(), 'inrun-hostile-model-'));
    const dir = join(root, 'model');
    mkdirSync(dir);
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    await model.save(
      tf.io.withSaveHandler((a) => {
        writeFileSync(join(dir, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
        writeFileSync(join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const } });
      }),
    );
    (await loadTrainedModel(dir)).dispose();
    // The same bytes, now outside the folder, reached through a symlink inside it.
    renameSync(join(dir, 'weights.bin'), join(root, 'secret.bin'));
    symlinkSync(join(root, 'secret.bin'), join(dir, 'weights.bin'));
    const e = await loadTrainedModel(dir).then(() => null, (error: unknown) => error);
    expect(e).toBeInstanceOf(InrunError);
    expect((e as InrunError).message).toContain('outside its folder');
    model.dispose();
  });
});
