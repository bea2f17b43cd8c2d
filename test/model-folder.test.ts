// loadModelFolder(): tf.js models saved as model.json + weight shards (tfjs-node file://, tensorflowjs_converter layout) load without tfjs-node; hostile manifests are refused.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModelFolder } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { mlp, randn } from './cases.js';
import { saveModelFiles } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('loadModelFolder', () => {
  it('loads a model saved as model.json + weight shards: same predictions; compiled with its loss when saved with its optimizer', async () => {
    const { model } = mlp(['relu', 'softmax'], true);
    const x = randn([4, 5], 3);
    for (const includeOptimizer of [false, true]) {
      const dir = await saveModelFiles(model, 3, includeOptimizer);
      for (const path of [dir, join(dir, 'model.json')]) {
        const loaded = await loadModelFolder(path);
        expect(Array.from((loaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
        expect(loaded.loss).toBe(includeOptimizer ? model.loss : undefined);
        loaded.optimizer?.dispose();
        loaded.dispose();
      }
    }
  });

  it('refuses a weight path outside the folder, a missing shard and a truncated one, naming the file', async () => {
    const { model } = mlp(['relu', 'softmax'], true);
    const dir = await saveModelFiles(model, 2);
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    const variant = (paths: string[]) => {
      const d = mkdtempSync(join(tmpdir(), 'inrun-model-folder-bad-'));
      writeFileSync(join(d, 'model.json'), JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0], paths }] }));
      return d;
    };
    const refused = async (path: string, text: string) => {
      const error = await loadModelFolder(path).then(() => null, (e: unknown) => e);
      expect(error).toMatchObject({ code: 'invalid_input', field: 'model' });
      expect((error as Error).message).toContain(text);
    };
    await refused(variant(['../../etc/passwd']), 'outside its folder');
    await refused(variant([join(dir, 'group1-shard1of2.bin')]), 'outside its folder');
    await refused(variant(['nope.bin']), 'nope.bin');
    const short = variant(['short.bin']);
    writeFileSync(join(short, 'short.bin'), new Uint8Array(8));
    await refused(short, 'truncated');
    await refused(mkdtempSync(join(tmpdir(), 'inrun-empty-')), 'model.json');
  });
});
